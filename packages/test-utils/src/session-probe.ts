// Run as the session user by tests (one process per daemon, to keep them
// cheap): a health check on the main socket, connection opens of driver
// URIs there, and the admin API on the admin socket that the admin URI
// names (resolved by the client library from this process's XDG variables
// or their $HOME fallbacks, as vadmin would). Prints one JSON object.
//   node session-probe.js '{"main":"/…/virtqemud-sock","open":["qemu:///session"],"admin":"virtqemud:///session","server":"virtqemud"}'
import { AdminClient, Connection, unixTarget } from '@virtd/client';
import { HealthService } from '@virtd/protocol/health';
import { ConnectService } from '@virtd/protocol/connect';

export interface SessionProbeSpec {
  /** The main socket. */
  readonly main: string;
  /** Driver URIs to open, each on its own connection. */
  readonly open?: readonly string[];
  /** An admin URI ("virtqemud:///session"); the socket comes from the environment. */
  readonly admin?: string;
  /** The main server's name, for its client limits. */
  readonly server?: string;
}

export interface SessionProbeResult {
  health: { ok: boolean; status?: string; error?: string };
  opens: { uri: string; ok: boolean; opened?: string; type?: string; error?: string }[];
  admin?: { socket: string; servers?: string[]; maxClients?: number; logOutputs?: string; error?: string };
}

/** This script's path, to run it as another user. */
export const sessionProbeScript = __filename;

const DEADLINE_MS = 10_000;
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

async function main(spec: SessionProbeSpec): Promise<SessionProbeResult> {
  const out: SessionProbeResult = { health: { ok: false }, opens: [] };
  const conn = new Connection(unixTarget(spec.main));
  try {
    const r = await conn.unary<object, { status?: number | string }>(HealthService, 'Check', {}, { deadlineMs: DEADLINE_MS });
    out.health = { ok: true, status: String(r.status ?? '') };
  } catch (e) {
    out.health = { ok: false, error: message(e) };
  } finally {
    conn.close();
  }
  for (const uri of spec.open ?? []) {
    const c = new Connection(unixTarget(spec.main));
    try {
      const r = await c.unary<object, { uri?: string; type?: string }>(ConnectService, 'Open', { uri }, { deadlineMs: DEADLINE_MS });
      out.opens.push({ uri, ok: true, opened: r.uri ?? '', type: r.type ?? '' });
    } catch (e) {
      out.opens.push({ uri, ok: false, error: message(e) });
    } finally {
      c.close();
    }
  }
  if (spec.admin) {
    let a: AdminClient | undefined;
    try {
      a = AdminClient.open(spec.admin, process.env, process.geteuid!());
      out.admin = { socket: a.socket };
      out.admin.servers = await a.listServers();
      if (spec.server) out.admin.maxClients = (await a.clientLimits(spec.server)).nclientsMax;
      out.admin.logOutputs = await a.logOutputs();
    } catch (e) {
      out.admin = { ...(out.admin ?? { socket: '' }), error: message(e) };
    } finally {
      a?.close();
    }
  }
  return out;
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]!) as SessionProbeSpec).then(
    (r) => { process.stdout.write(JSON.stringify(r)); },
    (e: unknown) => { process.stdout.write(JSON.stringify({ fatal: message(e) })); process.exitCode = 1; },
  );
}
