// Session mode end to end, as a real ordinary user created by the test:
// every daemon with a session instance binds its sockets under
// $XDG_RUNTIME_DIR/libvirt (else $HOME/.cache/libvirt), reads its config
// from $XDG_CONFIG_HOME/libvirt (else $HOME/.config/libvirt), serves the
// user, and leaves nothing behind. The daemons whose driver is system-only
// do what libvirt 9.0's do as an ordinary user. Where libvirt 9.0 is
// installed (/usr/sbin/libvirtd, virtlogd, virtlockd, virsh), the same
// user runs it beside ours and the two are compared.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { DAEMONS, SESSION_DRIVERS, type VirtdDescriptor } from '@virtd/daemons';
import { STATE_DRIVER_NAMES } from '@virtd/drivers';
import {
  startDaemon, ensureUser, runtimeDirFor, userEnv, isRoot, run, tempDir, binPath, repoRoot, sessionProbeScript, waitFor,
  type TestUser, type SessionProbeResult, type SessionProbeSpec,
} from '@virtd/test-utils';

/** What a directory holds: name, kind, permission bits, owner. */
interface Entry { name: string; kind: string; mode: string; uid: number }

function listing(dir: string, keepDirs = false): Entry[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort().map((name) => {
    const st = fs.lstatSync(path.join(dir, name));
    const kind = st.isSocket() ? 'socket' : st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    return { name, kind, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid };
  }).filter((e) => keepDirs || e.kind !== 'dir');
}

const modeOf = (p: string): string => (fs.statSync(p).mode & 0o7777).toString(8).padStart(4, '0');

/** Makes `dir` (and parents) and hands the new part to the user. */
function userDir(user: TestUser, dir: string, mode = 0o700): string {
  const made = fs.mkdirSync(dir, { recursive: true, mode });
  if (made) {
    for (let d = dir; d.length >= made.length; d = path.dirname(d)) fs.chownSync(d, user.uid, user.gid);
  }
  return dir;
}

function userFile(user: TestUser, file: string, text: string): void {
  userDir(user, path.dirname(file));
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chownSync(file, user.uid, user.gid);
}

/** The admin URI of a daemon: libvirtd and virtproxyd share the "libvirtd" scheme (the libvirt prefix). */
const adminUri = (d: VirtdDescriptor): string => `${d.sockPrefix === 'libvirt' ? 'libvirtd' : d.name}:///session`;

const vboxPresent = ['/usr/lib/virtualbox/VBoxSVC', '/opt/VirtualBox/VBoxSVC'].some((p) => fs.existsSync(p));

type OpenAnswer = { ok: true } | { ok: false; error: string };

/**
 * What opening `<driver>:///session` on a session daemon gives, as libvirt
 * 9.0's session libvirtd answers (checked against it below where installed).
 */
function expectedOpen(driver: string): OpenAnswer {
  if (driver === 'vbox' && !vboxPresent) return { ok: false, error: 'internal error: unable to initialize VirtualBox driver API' };
  if ((SESSION_DRIVERS as readonly string[]).includes(driver)) return { ok: true };
  const errors: Record<string, string> = {
    lxc: "internal error: Unexpected LXC URI path '/session', try lxc:///system",
    nwfilter: "internal error: unexpected nwfilter URI path '/session', try nwfilter:///system",
    xen: 'internal error: libxenlight state driver is not active',
    bhyve: 'no connection driver available for bhyve:///session',
  };
  return { ok: false, error: errors[driver]! };
}

/**
 * A session libvirtd's answers: every driver's session URI, and the
 * /system and bare paths a client reaches only with ?socket= (where
 * libvirt's nwfilter opens even unprivileged). Pinned against libvirt's own
 * session libvirtd below.
 */
const LIBVIRTD_SESSION_OPENS: Readonly<Record<string, OpenAnswer>> = {
  ...Object.fromEntries(['qemu', 'network', 'interface', 'nodedev', 'secret', 'storage', 'nwfilter', 'lxc', 'xen', 'vbox', 'bhyve']
    .map((x) => [`${x}:///session`, expectedOpen(x)])),
  'nwfilter:///system': { ok: true },
  'lxc:///system': { ok: false, error: 'internal error: lxc state driver is not active' },
  'lxc:///': { ok: false, error: 'internal error: lxc state driver is not active' },
  'xen:///system': { ok: false, error: 'internal error: libxenlight state driver is not active' },
  'network:///system': { ok: false, error: "internal error: unexpected network URI path '/system', try network:///session" },
};

/**
 * tap records every child process, this user's too, under .tap/processinfo;
 * ensureUser opens that directory to other users, but a tap run started
 * meanwhile in the same checkout makes it anew: open it again before each
 * process the user runs.
 */
function reportable(): void {
  try { fs.chmodSync(path.join(repoRoot, '.tap', 'processinfo'), 0o1777); } catch { /* not under tap */ }
}

async function probe(user: TestUser, env: Record<string, string>, spec: SessionProbeSpec): Promise<SessionProbeResult> {
  reportable();
  const r = await run(process.execPath, [sessionProbeScript, JSON.stringify(spec)], { user, env, timeoutMs: 30_000 });
  try {
    return JSON.parse(r.stdout) as SessionProbeResult;
  } catch {
    throw new Error(`session probe failed (${r.code}): ${r.stdout}${r.stderr}`);
  }
}

const REAL = {
  libvirtd: '/usr/sbin/libvirtd',
  virtlogd: '/usr/sbin/virtlogd',
  virtlockd: '/usr/sbin/virtlockd',
  virsh: '/usr/bin/virsh',
};
const haveReal = (name: keyof typeof REAL): boolean => fs.existsSync(REAL[name]);

interface Layout {
  /** The run dir's entries (no subdirectories) while the daemon ran. */
  entries: Entry[];
  runDirMode: string;
}

if (!isRoot()) {
  t.pass('skipped: these tests run daemons as a created ordinary user; run them as root');
} else {
  // A user of its own: other test files count the processes of theirs.
  const user = ensureUser('virtsession');
  const sessionDaemons = DAEMONS.filter((d) => d.sessionSupported);
  const systemOnly = DAEMONS.filter((d) => !d.sessionSupported);
  /** What our daemons left in their run dir, by variant and name, for the comparison with libvirt. */
  const seen = new Map<string, Layout>();

  /**
   * One daemon, start to stop, in one of the two layouts: XDG variables
   * set, or unset (only HOME, so the $HOME/.cache and $HOME/.config
   * fallbacks apply). Its config file sets max_clients and a log file;
   * the admin API and the log file prove it was read.
   */
  async function sessionRun(t: Test, d: VirtdDescriptor, variant: 'xdg' | 'home', maxClients: number): Promise<void> {
    let env: Record<string, string>;
    let runDir: string;
    let confDir: string;
    let logDir: string;
    if (variant === 'xdg') {
      const xdg = runtimeDirFor(user);
      env = userEnv(user, xdg);
      runDir = path.join(xdg, 'libvirt');
      confDir = path.join(`${xdg}.config`, 'libvirt');
      logDir = `${xdg}.cache`;
    } else {
      const home = userDir(user, path.join(tempDir('virtd-home-'), 'home'));
      env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, USER: user.name, LOGNAME: user.name };
      runDir = path.join(home, '.cache', 'libvirt');
      confDir = path.join(home, '.config', 'libvirt');
      logDir = home;
    }
    const logFile = path.join(logDir, `${d.name}-from-conf.log`);
    userFile(user, path.join(confDir, `${d.name}.conf`), `max_clients = ${maxClients}\nlog_level = 2\nlog_outputs = "2:file:${logFile}"\n`);

    reportable();
    const h = startDaemon({ name: d.name, mode: 'session', user, env });
    t.teardown(() => h.kill());
    const rw = path.join(runDir, `${d.sockPrefix}-sock`);
    const admin = path.join(runDir, `${d.sockPrefix}-admin-sock`);
    await h.socketReady(admin);

    t.equal(modeOf(runDir), '0700', `run dir ${runDir} is 0700`);
    t.equal(fs.statSync(runDir).uid, user.uid, 'and the user\'s');
    const entries = listing(runDir);
    t.same(entries, [
      { name: `${d.sockPrefix}-admin-sock`, kind: 'socket', mode: '0700', uid: user.uid },
      { name: `${d.sockPrefix}-sock`, kind: 'socket', mode: '0700', uid: user.uid },
      { name: `${d.name}.pid`, kind: 'file', mode: '0644', uid: user.uid },
    ], 'main and admin sockets (0700) and the pid file; no -sock-ro');
    seen.set(`${variant}:${d.name}`, { entries, runDirMode: modeOf(runDir) });
    t.equal(fs.readFileSync(path.join(runDir, `${d.name}.pid`), 'utf8'), String(h.pid));

    // The user's own calls: health on the main socket, its drivers' session
    // URIs, and the admin API through the admin URI (socket resolved by the
    // client from the same environment).
    const expected: Record<string, OpenAnswer> = d.name === 'libvirtd' ? { ...LIBVIRTD_SESSION_OPENS }
      : d.family === 'remote' && d.name !== 'virtproxyd' ? Object.fromEntries(d.drivers.map((x) => [`${x}:///session`, expectedOpen(x)]))
        : {};
    const r = await probe(user, env, { main: rw, open: Object.keys(expected), admin: adminUri(d), server: d.name });
    t.same(r.health, { ok: true, status: '1' }, 'the main socket serves the user (health SERVING)');
    for (const o of r.opens) {
      const want = expected[o.uri]!;
      if (want.ok) t.same({ ok: o.ok, opened: o.opened, error: o.error }, { ok: true, opened: o.uri, error: undefined }, `${o.uri} opens`);
      else t.same({ ok: o.ok, error: o.error }, want, `${o.uri} refused as libvirt refuses it`);
    }
    t.equal(r.admin?.socket, admin, 'the admin URI leads to the admin socket');
    t.same(r.admin?.servers, [d.name, 'admin'], 'admin API answers');
    t.equal(r.admin?.maxClients, maxClients, `max_clients from ${confDir}/${d.name}.conf`);
    t.equal(r.admin?.logOutputs, `2:file:${logFile}`, 'log_outputs from the same file');
    t.match(fs.readFileSync(logFile, 'utf8'), `${d.name} `, 'log_level and the log file it names: the start-up line is there');
    t.match(fs.readFileSync(logFile, 'utf8'), 'starting in session mode');

    const exit = await h.stop('SIGTERM');
    t.same(exit, { code: 0, signal: null }, 'SIGTERM: status 0');
    t.same(listing(runDir), [], 'sockets and pid file removed');
  }

  // tap runs sibling subtests one at a time unless t.jobs says otherwise.
  const JOBS = 3;

  t.test('every session daemon, XDG variables set', async (t) => {
    t.jobs = JOBS;
    await Promise.all(sessionDaemons.map((d, i) => t.test(d.name, (t) => sessionRun(t, d, 'xdg', 40 + i))));
  });

  t.test('XDG variables unset: $HOME/.cache and $HOME/.config, one daemon of each kind', async (t) => {
    // One code path (paths.ts) for all; a daemon of each family and socket prefix.
    const kinds = ['libvirtd', 'virtproxyd', 'virtsecretd', 'virtlogd', 'virtlockd'];
    t.jobs = JOBS;
    await Promise.all(sessionDaemons.filter((d) => kinds.includes(d.name)).map((d, i) => t.test(d.name, (t) => sessionRun(t, d, 'home', 70 + i))));
  });

  t.test('system-only daemons as an ordinary user stop at driver initialisation, as libvirt 9.0\'s', async (t) => {
    // libvirt's modular daemon treats its one driver as mandatory: the
    // driver skips itself unprivileged, virStateInitialize fails, the daemon
    // SIGTERMs itself and exits 0 (remote_daemon.c daemonRunStateInit).
    t.jobs = JOBS;
    const client = t.test('a client of a system-only driver\'s session URI autostarts the daemon and fails as libvirt\'s does', async (t) => {
      // libvirt 9.0's virsh -c 'lxc:///session?mode=direct' (virtlxcd built
      // from the 9.0 sources): after about 5 s of retries, exactly this.
      const xdg = runtimeDirFor(user);
      const env = { ...userEnv(user, xdg), PATH: `${path.dirname(binPath('vsh'))}:${process.env.PATH ?? '/usr/bin:/bin'}` };
      reportable();
      const r = await run(binPath('vsh'), ['-c', 'lxc:///session', 'uri'], { user, env });
      t.equal(r.code, 1);
      t.equal(r.stderr.split('\n').filter((l) => l.startsWith('error: ')).join('\n'), 'error: failed to connect to the hypervisor\n'
        + `error: Failed to connect socket to '${xdg}/libvirt/virtlxcd-sock': No such file or directory`);
      t.same(listing(path.join(xdg, 'libvirt')), [], 'the autostarted virtlxcd left nothing behind');
      t.match(fs.readFileSync(path.join(`${xdg}.cache`, 'libvirt', 'virtlxcd.log'), 'utf8'),
        'Initialization of mandatory LXC state driver skipped', 'its --daemon log says why');
    });
    await Promise.all(systemOnly.map((d) => t.test(d.name, async (t) => {
      const xdg = runtimeDirFor(user);
      const env = userEnv(user, xdg, { LIBVIRT_LOG_OUTPUTS: '2:stderr' });
      reportable();
      const h = startDaemon({ name: d.name, mode: 'session', user, env, args: ['--verbose'] });
      t.teardown(() => h.kill());
      const exit = await h.exited;
      t.same(exit, { code: 0, signal: null }, 'status 0');
      const state = STATE_DRIVER_NAMES[d.drivers[0] as keyof typeof STATE_DRIVER_NAMES];
      t.match(h.stderr, new RegExp(`error : \\w+ : Initialization of mandatory ${state} state driver skipped\\n`
        + `[\\s\\S]*error : \\w+ : Driver state initialization failed\\n`), 'libvirt\'s two error lines');
      t.match(h.stderr, `starting in session mode`, 'it did start as the user\'s session instance');
      t.notMatch(h.stderr, / ready/, 'never ready: no client was served');
      t.same(listing(path.join(xdg, 'libvirt')), [], 'sockets and pid file removed');
    })));
    await client;
  });

  t.test('libvirt 9.0 as the same user: same run dir, sockets, modes and pid file', { skip: !haveReal('virtlogd') && 'libvirt not installed' }, async (t) => {
    for (const [name, variant] of [['virtlogd', 'xdg'], ['virtlockd', 'xdg'], ['virtlogd', 'home'], ['libvirtd', 'xdg']] as const) {
      if (!haveReal(name)) continue;
      const ours = seen.get(`${variant}:${name}`);
      if (!ours) { t.fail(`no record of our ${name} (${variant})`); continue; }
      let env: Record<string, string>;
      let runDir: string;
      if (variant === 'xdg') {
        const xdg = runtimeDirFor(user);
        env = userEnv(user, xdg);
        runDir = path.join(xdg, 'libvirt');
      } else {
        const home = userDir(user, path.join(tempDir('virtd-home-'), 'home'));
        env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, USER: user.name, LOGNAME: user.name };
        runDir = path.join(home, '.cache', 'libvirt');
      }
      const real = await runReal(t, user, name, env, runDir);
      t.same(real.entries, ours.entries, `${name} (${variant}): libvirt's run dir holds what ours held`);
      t.equal(real.runDirMode, ours.runDirMode, `${name} (${variant}): run dir mode`);
    }
  });

  t.test('libvirt 9.0\'s session libvirtd answers driver URIs as ours did', { skip: !(haveReal('libvirtd') && haveReal('virsh')) && 'libvirt not installed' }, async (t) => {
    // Ours answered LIBVIRTD_SESSION_OPENS above (its libvirtd run); here
    // libvirt's answers the same URIs through virsh, as the same user.
    const xdg = runtimeDirFor(user);
    const env = { ...userEnv(user, xdg), LIBVIRT_AUTOSTART: '0' };
    const sock = path.join(xdg, 'libvirt', 'libvirt-sock');
    const real = startReal(user, 'libvirtd', env);
    t.teardown(() => real.kill('SIGKILL'));
    await waitFor(() => fs.existsSync(sock), 20_000, 'libvirt\'s session libvirtd');
    const uris = Object.keys(LIBVIRTD_SESSION_OPENS);
    const answers = await Promise.all(uris.map((u) => run(REAL.virsh, ['-c', `${u}?socket=${sock}`, 'uri'], { user, env })));
    uris.forEach((u, i) => {
      const r = answers[i]!;
      const want = LIBVIRTD_SESSION_OPENS[u]!;
      // virsh prints the URI it was given, parameters included (vsh too: connect.test).
      if (want.ok) t.same({ code: r.code, stderr: r.stderr, stdout: r.stdout }, { code: 0, stderr: '', stdout: `${u}?socket=${sock}\n\n` }, `${u}: opens in libvirt's too`);
      else t.equal(r.stderr, `error: failed to connect to the hypervisor\nerror: ${want.error}\n`, `${u}: libvirt's refusal is ours`);
    });
    const exited = new Promise((resolve) => real.once('exit', resolve));
    real.kill('SIGTERM');
    await exited;
  });
}

/** libvirt's own binary as the user, with --timeout so it never outlives the test. */
function startReal(user: TestUser, name: 'libvirtd' | 'virtlogd' | 'virtlockd', env: Record<string, string>): ChildProcess {
  const p = spawn(REAL[name], ['--timeout', '30'], { uid: user.uid, gid: user.gid, cwd: user.home, env, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr!.resume();
  return p;
}

async function runReal(t: Test, user: TestUser, name: 'libvirtd' | 'virtlogd' | 'virtlockd', env: Record<string, string>, runDir: string): Promise<Layout> {
  const p = startReal(user, name, env);
  t.teardown(() => { p.kill('SIGKILL'); });
  const prefix = name === 'libvirtd' ? 'libvirt' : name;
  await waitFor(() => fs.existsSync(path.join(runDir, `${prefix}-admin-sock`)) && fs.existsSync(path.join(runDir, `${name}.pid`)), 20_000, `libvirt's ${name}`);
  // libvirtd also makes per-driver state directories there; only files count.
  const layout = { entries: listing(runDir), runDirMode: modeOf(runDir) };
  const exited = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGTERM');
  await exited;
  return layout;
}
