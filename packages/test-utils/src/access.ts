// Walking every method of every service on one socket and saying, per
// method, how the daemon answered: served (a handler ran), refused by the
// read-only socket, not offered there (UNIMPLEMENTED), or the connection
// refused outright. The access-matrix test builds its table from these.
import * as grpc from '@grpc/grpc-js';
import type { Target } from '@virtd/client';
import type { RawResult } from './grpc.js';
import { run } from './run.js';
import type { TestUser } from './users.js';

/** What a test needs to know of a method to call it by path. */
export interface MethodShape {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** For the read-only refusal's wording ("read only access prevents virSecretDefineXML"). */
  readonly api?: string;
  readonly service: string;
  readonly method: string;
}

export type Outcome =
  /** A handler ran: OK, or an error the program raised (it carries libvirt's error code). */
  | 'served'
  /** libvirt's OPERATION_DENIED "read only access prevents …" of the read-only socket. */
  | 'read-only-denied'
  /** The service is not offered on this socket (the client library says NO_SUPPORT). */
  | 'unimplemented'
  /** The connection was dropped before any call was served (peer-credential check). */
  | 'refused'
  /** Anything else: the test shows the code and details. */
  | 'other';

export interface Probe extends RawResult {
  readonly path: string;
  readonly outcome: Outcome;
}

const VIR_ERR_OPERATION_DENIED = '29';

/** The read-only socket's refusal, word for word as libvirt writes it. */
export const readOnlyDenial = (m: MethodShape): string =>
  `operation forbidden: read only access prevents ${m.api ?? `${m.service}.${m.method}`}`;

export function classify(m: MethodShape, r: RawResult): Outcome {
  const virtCode = r.metadata['virt-error-code'];
  if (r.code === grpc.status.PERMISSION_DENIED && virtCode === VIR_ERR_OPERATION_DENIED && r.details === readOnlyDenial(m)) {
    return 'read-only-denied';
  }
  if (r.code === grpc.status.OK || virtCode !== undefined) return 'served';
  if (r.code === grpc.status.UNIMPLEMENTED) return 'unimplemented';
  // grpc-js reports a connection closed before HTTP/2 was set up as
  // UNAVAILABLE; EACCES would also be UNAVAILABLE, so name it apart.
  if (r.code === grpc.status.UNAVAILABLE && !/EACCES|ENOENT|ECONNREFUSED/.test(r.details)) return 'refused';
  return 'other';
}

const identity = (b: Buffer): Buffer => b;

const clientFor = (target: Target): grpc.Client => new grpc.Client(target.address, target.credentials, {
  // grpc-js shares a subchannel between clients of one target by default,
  // so after one refused connection later calls would fail without the
  // daemon ever seeing them; a pool of its own makes each client connect.
  'grpc.use_local_subchannel_pool': 1,
  ...(target.serverName ? { 'grpc.ssl_target_name_override': target.serverName } : {}),
});

const metaOf = (md?: grpc.Metadata): Record<string, string> =>
  Object.fromEntries(Object.entries(md?.getMap() ?? {}).map(([k, v]) => [k, String(v)]));

/**
 * One call by path with raw protobuf bytes (empty: an all-default request)
 * on the given client. Streams are cancelled after their first message
 * (served is served).
 */
export function callOn(client: grpc.Client, m: MethodShape, payload: Buffer = Buffer.alloc(0), deadlineMs = 10_000): Promise<RawResult> {
  return new Promise<RawResult>((resolve) => {
    const done = (s: { code: grpc.status; details: string; metadata?: grpc.Metadata }): void =>
      resolve({ code: s.code, details: s.details, metadata: metaOf(s.metadata) });
    const opts = { deadline: Date.now() + deadlineMs };
    if (!m.requestStream && !m.responseStream) {
      client.makeUnaryRequest(m.path, identity, identity, payload, new grpc.Metadata(), opts,
        (err) => done(err ? { code: err.code, details: err.details, metadata: err.metadata } : { code: grpc.status.OK, details: '' }));
      return;
    }
    let call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>;
    if (!m.requestStream) {
      call = client.makeServerStreamRequest(m.path, identity, identity, payload, new grpc.Metadata(), opts);
    } else {
      const duplex = client.makeBidiStreamRequest(m.path, identity, identity, new grpc.Metadata(), opts);
      duplex.write(payload);
      duplex.end();
      call = duplex;
    }
    let gotMessage = false;
    call.on('data', () => { gotMessage = true; call.cancel(); });
    call.on('error', () => { /* reported through 'status' */ });
    call.on('status', (s) => done({ code: gotMessage && s.code === grpc.status.CANCELLED ? grpc.status.OK : s.code, details: s.details, metadata: s.metadata }));
  });
}

/** callOn on a connection of its own, closed after the call. */
export async function callOnce(target: Target, m: MethodShape, payload?: Buffer, deadlineMs?: number): Promise<RawResult> {
  const client = clientFor(target);
  try {
    return await callOn(client, m, payload, deadlineMs);
  } finally {
    client.close();
  }
}

export interface ProbeOptions {
  /**
   * A connection per call, so each refusal is a connection the daemon
   * turned away; otherwise one connection carries every call.
   */
  readonly fresh?: boolean;
  readonly concurrency?: number;
}

/** Calls each method once with an all-default request and says how it was answered. */
export async function probeMethods(target: Target, methods: readonly MethodShape[], o: ProbeOptions = {}): Promise<Probe[]> {
  const out: Probe[] = new Array(methods.length);
  const shared = o.fresh ? undefined : clientFor(target);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < methods.length) {
      const i = next++;
      const m = methods[i]!;
      const r = shared ? await callOn(shared, m) : await callOnce(target, m);
      out[i] = { ...r, path: m.path, outcome: classify(m, r) };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 4, methods.length) }, worker));
  } finally {
    shared?.close();
  }
  return out;
}

/** The script behind probeMethodsAs (reads the methods as JSON on stdin). */
export const accessProbeScript = require.resolve('./access-probe.js');

/** One socket for probeMethodsAs, and how to walk it. */
export interface ProbeJob {
  readonly socket: string;
  readonly options?: ProbeOptions;
}

/**
 * probeMethods on UNIX sockets, run as another user: one process of theirs
 * walks every socket (in parallel), one result list per job.
 */
export async function probeMethodsAs(user: TestUser, jobs: readonly ProbeJob[], methods: readonly MethodShape[]): Promise<Probe[][]> {
  const r = await run(process.execPath, [accessProbeScript], { user, input: JSON.stringify({ jobs, methods }) });
  if (r.code !== 0) throw new Error(`access probe as ${user.name} failed (${r.code ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Probe[][];
}

/** The services a socket offers, as its reflection service lists them. */
export async function listServices(target: Target): Promise<string[]> {
  const { ServerReflectionService: S } = await import('@virtd/protocol/reflection');
  const def = S.ServerReflectionInfo;
  const client = new grpc.Client(target.address, target.credentials, { 'grpc.use_local_subchannel_pool': 1 });
  try {
    const call = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, new grpc.Metadata(),
      { deadline: Date.now() + 10_000 });
    call.write({ listServices: '' });
    const reply = await new Promise<ReturnType<typeof def.responseDeserialize>>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.end();
    return (reply.listServicesResponse?.service ?? []).map((s) => s.name ?? '');
  } finally {
    client.close();
  }
}
