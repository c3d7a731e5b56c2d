// Who may call what: one table of every method of every service against
// every role a socket can give, generated from the protocol package so a
// new method or service cannot slip through untested. Each cell is one
// call on a fresh connection with an all-default request:
//   S  served: a handler ran (it may still fail for want of arguments)
//   D  refused by the read-only socket: OPERATION_DENIED "read only access prevents …"
//   U  not offered on that socket: UNIMPLEMENTED, which the client library reports as NO_SUPPORT
//   R  the connection refused at once by the peer-credential (SO_PEERCRED) check
// Sockets other users reach have their file and directory modes loosened
// to 0777 first, so every R is the daemon's own check, not the kernel's.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ALL_METHODS } from '@virtd/protocol/methods';
import { ConnectService } from '@virtd/protocol/connect';
import { Connection, unixTarget } from '@virtd/client';
import {
  startDaemon, isRoot, ensureUser, runtimeDirFor, userEnv, tempDir, probeMethods, probeMethodsAs, listServices,
  type DaemonHandle, type MethodShape, type Outcome, type Probe, type TestUser,
} from '@virtd/test-utils';

const ADMIN = 'virtd.admin.v1.Admin';
const CONNECT = 'virtd.connect.v1.Connect';
const SECRET = 'virtd.secret.v1.Secret';
const LOGD = 'virtd.logd.v1.LogManager';
const LOCKD = 'virtd.lockd.v1.LockSpace';
/** Served on every socket of every daemon, whatever its role. */
const EVERYWHERE = ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

/**
 * Served but not generated: reflection's v1alpha twin (grpcurl asks for it
 * first), made in core from the v1 definition under another path.
 */
const EXTRA_METHODS: readonly MethodShape[] = [{
  path: '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', service: 'grpc.reflection.v1alpha.ServerReflection',
  method: 'ServerReflectionInfo', requestStream: true, responseStream: true,
}];

const SYMBOL: Record<Outcome, string> = { served: 'S', 'read-only-denied': 'D', unimplemented: 'U', refused: 'R', other: '?' };

/** Every method path of every service object the protocol package generated. */
function generatedPaths(): Map<string, string> {
  const dir = path.dirname(require.resolve('@virtd/protocol/methods'));
  const found = new Map<string, string>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.js'))) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(dir, f)) as Record<string, unknown>;
    for (const [name, v] of Object.entries(mod)) {
      if (!name.endsWith('Service') || typeof v !== 'object' || v === null) continue;
      for (const def of Object.values(v as Record<string, { path?: unknown }>)) {
        if (typeof def?.path === 'string') found.set(def.path, `${f}:${name}`);
      }
    }
  }
  return found;
}

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test('every method × every role', async (t) => {
    // ---- the rows: every generated method, and nothing generated outside ALL_METHODS
    const generated = generatedPaths();
    for (const [p, where] of generated) t.ok(ALL_METHODS[p], `${p} (${where}) is in ALL_METHODS`);
    for (const p of Object.keys(ALL_METHODS)) t.ok(generated.has(p), `${p} has a generated service definition`);
    const rows: MethodShape[] = [
      ...Object.entries(ALL_METHODS).map(([p, m]) => ({ ...m, path: p })),
      ...EXTRA_METHODS,
    ];

    // ---- the daemons: between them every service, with every role it can have
    const owner = ensureUser('virttest');
    const other = ensureUser('virttest2');
    const runLv = tempDir('virtd-run-');
    const runLogd = tempDir('virtd-run-');
    const runLockd = tempDir('virtd-run-');
    const xdg = runtimeDirFor(owner);
    const lv = startDaemon({ name: 'libvirtd', mode: 'system', exposeRunDir: runLv });
    const logd = startDaemon({ name: 'virtlogd', mode: 'system', exposeRunDir: runLogd });
    const lockd = startDaemon({ name: 'virtlockd', mode: 'system', exposeRunDir: runLockd });
    const sec = startDaemon({ name: 'virtsecretd', mode: 'session', user: owner, env: userEnv(owner, xdg) });
    const all = [lv, logd, lockd, sec];
    t.teardown(() => { for (const h of all) h.kill(); });
    const secDir = path.join(xdg, 'libvirt');
    await Promise.all([
      lv.ready('/run/libvirt/libvirt-admin-sock'),
      logd.ready('/run/libvirt/virtlogd-admin-sock'),
      lockd.ready('/run/libvirt/virtlockd-admin-sock'),
      sec.socketReady(path.join(secDir, 'virtsecretd-admin-sock')),
    ]);

    interface Column {
      readonly key: string;
      readonly what: string;
      readonly daemon: DaemonHandle;
      /** Path from the test's view (host side of the exposed run directory). */
      readonly socket: string;
      /** As the daemon logs it. */
      readonly listener: string;
      readonly as: TestUser | 'root';
      /** Services with handlers on this socket, beside EVERYWHERE. */
      readonly serves: readonly string[];
      readonly readOnly?: boolean;
      /** The uid the socket insists on, when the caller is not it: every call refused. */
      readonly refusedFor?: number;
    }
    const sys = (daemon: DaemonHandle, runDir: string, name: string) => ({
      daemon, socket: path.join(runDir, name), listener: `/run/libvirt/${name}`,
    });
    const columns: Column[] = [
      { key: 'lv rw', what: 'libvirtd main socket, root (system mode)', ...sys(lv, runLv, 'libvirt-sock'), as: 'root', serves: [CONNECT, SECRET] },
      { key: 'lv ro', what: 'libvirtd read-only socket, root', ...sys(lv, runLv, 'libvirt-sock-ro'), as: 'root', serves: [CONNECT, SECRET], readOnly: true },
      { key: 'lv ro/u', what: `libvirtd read-only socket (0777 by default), ordinary user ${other.name}`, ...sys(lv, runLv, 'libvirt-sock-ro'), as: other, serves: [CONNECT, SECRET], readOnly: true },
      { key: 'lv adm', what: 'libvirtd admin socket, root', ...sys(lv, runLv, 'libvirt-admin-sock'), as: 'root', serves: [ADMIN] },
      { key: 'lv adm/u', what: `libvirtd admin socket loosened to 0777, ${other.name}`, ...sys(lv, runLv, 'libvirt-admin-sock'), as: other, serves: [ADMIN], refusedFor: 0 },
      { key: 'logd rw', what: 'virtlogd main socket, root (system mode)', ...sys(logd, runLogd, 'virtlogd-sock'), as: 'root', serves: [LOGD] },
      { key: 'logd rw/u', what: `virtlogd main socket loosened to 0777, ${other.name}`, ...sys(logd, runLogd, 'virtlogd-sock'), as: other, serves: [LOGD], refusedFor: 0 },
      { key: 'logd adm', what: 'virtlogd admin socket, root', ...sys(logd, runLogd, 'virtlogd-admin-sock'), as: 'root', serves: [ADMIN] },
      { key: 'logd adm/u', what: `virtlogd admin socket loosened to 0777, ${other.name}`, ...sys(logd, runLogd, 'virtlogd-admin-sock'), as: other, serves: [ADMIN], refusedFor: 0 },
      { key: 'lockd rw', what: 'virtlockd main socket, root (system mode)', ...sys(lockd, runLockd, 'virtlockd-sock'), as: 'root', serves: [LOCKD] },
      { key: 'lockd rw/u', what: `virtlockd main socket loosened to 0777, ${other.name}`, ...sys(lockd, runLockd, 'virtlockd-sock'), as: other, serves: [LOCKD], refusedFor: 0 },
      { key: 'lockd adm', what: 'virtlockd admin socket, root', ...sys(lockd, runLockd, 'virtlockd-admin-sock'), as: 'root', serves: [ADMIN] },
      { key: 'lockd adm/u', what: `virtlockd admin socket loosened to 0777, ${other.name}`, ...sys(lockd, runLockd, 'virtlockd-admin-sock'), as: other, serves: [ADMIN], refusedFor: 0 },
      { key: 'sec rw/o', what: `virtsecretd session main socket, its owner ${owner.name}`, daemon: sec, socket: path.join(secDir, 'virtsecretd-sock'), listener: path.join(secDir, 'virtsecretd-sock'), as: owner, serves: [CONNECT, SECRET] },
      { key: 'sec rw/u', what: `virtsecretd session main socket, dirs and socket 0777, ${other.name}`, daemon: sec, socket: path.join(secDir, 'virtsecretd-sock'), listener: path.join(secDir, 'virtsecretd-sock'), as: other, serves: [CONNECT, SECRET], refusedFor: owner.uid },
      { key: 'sec adm/o', what: `virtsecretd session admin socket, its owner ${owner.name}`, daemon: sec, socket: path.join(secDir, 'virtsecretd-admin-sock'), listener: path.join(secDir, 'virtsecretd-admin-sock'), as: owner, serves: [ADMIN] },
      { key: 'sec adm/u', what: `virtsecretd session admin socket, dirs and socket 0777, ${other.name}`, daemon: sec, socket: path.join(secDir, 'virtsecretd-admin-sock'), listener: path.join(secDir, 'virtsecretd-admin-sock'), as: other, serves: [ADMIN], refusedFor: owner.uid },
    ];

    // Every service must have a home: a socket where it is served.
    const homes = new Set([...EVERYWHERE, ...columns.flatMap((c) => c.serves)]);
    for (const s of new Set(rows.map((r) => r.service))) {
      t.ok(homes.has(s), `${s} has a row and a daemon serving it (add its daemon and roles to this table)`);
    }

    // What each socket says it serves must be what the table expects of it,
    // and every method of it must be a row.
    const rowServices = new Set(rows.map((r) => r.service));
    for (const c of columns.filter((x) => x.as === 'root')) {
      const listed = await listServices(unixTarget(c.socket));
      t.same([...listed].sort(), [...EVERYWHERE, ...c.serves].sort(), `${c.key}: reflection lists what the table expects`);
      for (const s of listed) t.ok(rowServices.has(s), `${c.key}: ${s} has rows`);
    }

    // Loosen what other users would otherwise be stopped by (the kernel's
    // EACCES), so what remains is the daemon's own peer check.
    for (const p of [xdg, secDir]) fs.chmodSync(p, 0o777);
    for (const c of columns) if (c.refusedFor !== undefined) fs.chmodSync(c.socket, 0o777);

    const expected = (c: Column, m: MethodShape): Outcome => {
      if (c.refusedFor !== undefined) return 'refused';
      if (EVERYWHERE.includes(m.service)) return 'served';
      if (!c.serves.includes(m.service)) return 'unimplemented';
      return c.readOnly && ALL_METHODS[m.path]?.access !== 'read' ? 'read-only-denied' : 'served';
    };

    // Other users first, and their refusals counted before the owners'
    // columns run: those call every admin write method, and an empty
    // SetLoggingOutputs puts the daemon's log outputs back to its defaults.
    const cells = new Map<string, Map<string, Probe>>();
    const record = (c: Column, r: Probe[]): void => { cells.set(c.key, new Map(r.map((p) => [p.path, p]))); };
    /** Root's columns in this process; each user's in one process of theirs. */
    const probe = async (cs: Column[]): Promise<void> => {
      const byUser = new Map<TestUser, Column[]>();
      for (const c of cs) if (c.as !== 'root') byUser.set(c.as, [...(byUser.get(c.as) ?? []), c]);
      await Promise.all([
        ...cs.filter((c) => c.as === 'root').map(async (c) => record(c, await probeMethods(unixTarget(c.socket), rows))),
        ...[...byUser].map(async ([user, mine]) => {
          const results = await probeMethodsAs(user, mine.map((c) => ({ socket: c.socket, options: { fresh: c.refusedFor !== undefined } })), rows);
          mine.forEach((c, i) => record(c, results[i]!));
        }),
      ]);
    };
    await probe(columns.filter((c) => c.as === other));
    // Each refused connection was the daemon's peer check, logged as such
    // (at least once per call: grpc-js may try to connect more than once).
    for (const c of columns.filter((x) => x.refusedFor !== undefined)) {
      const line = `connection refused: peer uid ${other.uid} is not ${c.refusedFor}`;
      const n = c.daemon.stderr.split('\n').filter((l) => l.includes(line) && l.includes(`listener=${c.listener}`)).length;
      t.ok(n >= rows.length, `${c.key}: every refused connection logged (${n} lines for ${rows.length} calls)`);
    }
    await probe(columns.filter((c) => c.as !== other));
    let mismatches = 0;
    for (const m of rows) {
      for (const c of columns) {
        const got = cells.get(c.key)!.get(m.path);
        const want = expected(c, m);
        if (!got || got.outcome !== want) {
          mismatches++;
          t.fail(`${m.path} on ${c.key} (${c.what}): want ${want}, got ${got ? `${got.outcome}: ${grpc.status[got.code]} ${got.details}` : 'no call'}`);
        }
      }
    }
    t.equal(mismatches, 0, `${rows.length} methods × ${columns.length} sockets answered as the table says`);

    // Reads on the read-only socket were never refused on access grounds.
    const roReads = rows.filter((m) => ALL_METHODS[m.path]?.access === 'read' && [CONNECT, SECRET, ...EVERYWHERE].includes(m.service));
    for (const key of ['lv ro', 'lv ro/u']) {
      const denied = roReads.filter((m) => {
        const r = cells.get(key)!.get(m.path)!;
        return r.code === grpc.status.PERMISSION_DENIED || /read only access/.test(r.details);
      });
      t.same(denied.map((m) => m.path), [], `${key}: no read method refused on access grounds (${roReads.length} walked)`);
    }

    // The client library words a service the socket lacks as libvirt does.
    const adminConn = new Connection(unixTarget(columns.find((c) => c.key === 'lv adm')!.socket));
    await t.rejects(adminConn.unary(ConnectService, 'GetType', {}), { code: 'NO_SUPPORT' },
      'Connect on the admin socket: NO_SUPPORT through the client library');
    adminConn.close();

    // ---- the table itself, as documentation
    const width = Math.max(...rows.map((r) => r.path.length));
    const colWidth = Math.max(...columns.map((c) => c.key.length)) + 1;
    const head = `${'method'.padEnd(width)} acc   ${columns.map((c) => c.key.padEnd(colWidth)).join('')}`;
    const lines = rows.map((m) => {
      const acc = (ALL_METHODS[m.path]?.access ?? 'read').padEnd(6);
      return `${m.path.padEnd(width)} ${acc}${columns.map((c) => {
        const got = cells.get(c.key)!.get(m.path);
        const s = got ? SYMBOL[got.outcome] : '-';
        return (got?.outcome === expected(c, m) ? s : `${s}!`).padEnd(colWidth);
      }).join('')}`;
    });
    t.comment([
      'Access matrix: S served, D read only access prevents…, U unimplemented (NO_SUPPORT), R refused at connect (SO_PEERCRED); ! marks a cell that broke the rule',
      ...columns.map((c) => `  ${c.key.padEnd(colWidth)}${c.what}`),
      head, ...lines,
    ].join('\n'));

    // Nothing the calls did stopped any daemon.
    for (const h of all) t.equal(h.proc.exitCode, null, 'still running');
    for (const h of [lv, logd, lockd]) t.same(await h.stop(), { code: 0, signal: null }, 'clean exit');
    t.same(await sec.stop(), { code: 0, signal: null }, 'session daemon: clean exit');
  });
}
