// Run-directory and file care in session mode, with real users: a run dir
// that another user made, a symlink planted in its place, or one that is
// group/world writable is refused before anything is created in it; a pid
// file or re-exec state file planted as a symlink by another user is never
// written through. libvirt 9.0 checks none of this (it mkdirs, opens and
// follows whatever is there); refusing is ours.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import {
  startDaemon, ensureUser, runtimeDirFor, userEnv, isRoot, tempDir, repoRoot, run, sessionProbeScript, waitFor,
  type TestUser, type DaemonHandle,
} from '@virtd/test-utils';

/** Names in a directory (none if it is missing). */
const names = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

/** See session.test.ts: tap's processinfo directory must stay open to the test users. */
function reportable(): void {
  try { fs.chmodSync(path.join(repoRoot, '.tap', 'processinfo'), 0o1777); } catch { /* not under tap */ }
}

function ownedDir(owner: TestUser, dir: string, mode: number): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, owner.uid, owner.gid);
  fs.chmodSync(dir, mode);
  return dir;
}

/** A file the user can write, so following a link to it would clobber it. */
function victimFile(owner: TestUser): string {
  const p = path.join(ownedDir(owner, path.join(tempDir('virtd-victim-'), 'd'), 0o755), 'precious');
  fs.writeFileSync(p, 'precious\n', { mode: 0o644 });
  fs.chownSync(p, owner.uid, owner.gid);
  return p;
}

/** A symlink at `at` to `to`, planted by (owned by) `owner`. */
function plant(owner: TestUser, at: string, to: string): void {
  fs.symlinkSync(to, at);
  fs.lchownSync(at, owner.uid, owner.gid);
}

/** The daemon runs and fails at start-up; resolves with its status and stderr. */
async function refused(t: Test, name: string, user: TestUser, env: Record<string, string>, args: string[] = []): Promise<DaemonHandle> {
  reportable();
  const h = startDaemon({ name, mode: 'session', user, env, args });
  t.teardown(() => h.kill());
  await h.exited;
  return h;
}

if (!isRoot()) {
  t.pass('skipped: these tests create users and run daemons as them; run them as root');
} else {
  // Users of its own: other test files count the processes of theirs.
  const user = ensureUser('virtrundir');
  const other = ensureUser('virtrundir2');

  /** The user's environment with XDG_RUNTIME_DIR pointed at `runtime`. */
  const envWith = (runtime: string): Record<string, string> => ({ ...userEnv(user, runtimeDirFor(user)), XDG_RUNTIME_DIR: runtime });

  t.test('a run dir that another user made is refused, nothing created in it', async (t) => {
    // A shared, sticky directory (as /tmp is) where the other user got there first.
    const shared = ownedDir({ ...user, uid: 0, gid: 0 }, path.join(tempDir('virtd-shared-'), 'run'), 0o1777);
    const planted = ownedDir(other, path.join(shared, 'libvirt'), 0o777);
    for (const name of ['virtsecretd', 'virtlogd']) {
      const h = await refused(t, name, user, envWith(shared));
      t.equal(h.proc.exitCode, 2, `${name}: status 2`);
      t.match(h.stderr, `Unable to create rundir (stage rundir): Run directory '${planted}' belongs to uid ${other.uid}, `
        + `not to us (uid ${user.uid}); refusing to use it`);
      t.same(names(planted), [], 'no socket, pid file or state read there');
    }
  });

  t.test('a symlink planted as the run dir is refused, and not followed', async (t) => {
    const xdg = runtimeDirFor(user);
    const target = ownedDir(other, path.join(tempDir('virtd-elsewhere-'), 'd'), 0o777);
    plant(other, path.join(xdg, 'libvirt'), path.join(target, 'libvirt'));
    const h = await refused(t, 'virtqemud', user, envWith(xdg));
    t.equal(h.proc.exitCode, 2);
    t.match(h.stderr, `Run directory '${xdg}/libvirt' is a symbolic link (to '${target}/libvirt'); refusing to use it`);
    t.same(names(target), [], 'nothing made through the link, not even the directory it names');
    // Pointing at an existing directory changes nothing.
    fs.mkdirSync(path.join(target, 'libvirt'));
    fs.chmodSync(path.join(target, 'libvirt'), 0o777);
    const again = await refused(t, 'virtlockd', user, envWith(xdg));
    t.equal(again.proc.exitCode, 2);
    t.same(names(path.join(target, 'libvirt')), [], 'nothing created in the directory it names');
  });

  t.test('a group- or world-writable run dir is refused, even the user\'s own', async (t) => {
    for (const mode of [0o770, 0o777, 0o720]) {
      const xdg = runtimeDirFor(user);
      const dir = ownedDir(user, path.join(xdg, 'libvirt'), mode);
      const h = await refused(t, 'virtsecretd', user, envWith(xdg));
      t.equal(h.proc.exitCode, 2, `mode ${mode.toString(8)}: status 2`);
      t.match(h.stderr, `Run directory '${dir}' is writable by group or others (mode 0${mode.toString(8)}); refusing to use it`);
      t.same(names(dir), []);
    }
    // 0755 is private enough: nobody else can write there.
    const xdg = runtimeDirFor(user);
    ownedDir(user, path.join(xdg, 'libvirt'), 0o755);
    reportable();
    const ok = startDaemon({ name: 'virtsecretd', mode: 'session', user, env: envWith(xdg) });
    t.teardown(() => ok.kill());
    await ok.socketReady(path.join(xdg, 'libvirt', 'virtsecretd-sock'));
    t.same(await ok.stop(), { code: 0, signal: null }, 'a 0755 run dir of the user is used');
  });

  t.test('a pid file planted as a symlink, or as another user\'s file, is never written', async (t) => {
    const victim = victimFile(user);
    const xdg = runtimeDirFor(user);
    const dir = ownedDir(user, path.join(xdg, 'libvirt'), 0o700);
    plant(other, path.join(dir, 'virtsecretd.pid'), victim);
    const h = await refused(t, 'virtsecretd', user, envWith(xdg));
    t.equal(h.proc.exitCode, 1, 'status 1, the pid file\'s');
    t.match(h.stderr, `Unable to obtain pidfile (stage pidfile): Failed to acquire pid file '${dir}/virtsecretd.pid': `
      + 'it is a symbolic link; refusing to follow it');
    t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the file it points to is untouched');
    t.same(names(dir), ['virtsecretd.pid'], 'no socket bound');

    // --pid-file in a shared directory where the other user planted a link
    // or a file of theirs. Without the sticky bit the kernel's
    // protected_symlinks/protected_regular do not apply: our checks refuse;
    // with it (as /tmp) the kernel refuses first (EACCES). Either way the
    // daemon stops with status 1 and writes nothing.
    for (const [mode, sticky] of [[0o777, false], [0o1777, true]] as const) {
      const shared = ownedDir({ ...user, uid: 0, gid: 0 }, path.join(tempDir('virtd-shared-'), 'tmp'), mode);
      plant(other, path.join(shared, 'link.pid'), victim);
      const theirs = path.join(shared, 'theirs.pid');
      fs.writeFileSync(theirs, 'theirs\n');
      fs.chownSync(theirs, other.uid, other.gid);
      fs.chmodSync(theirs, 0o666);
      for (const [file, why] of [['link.pid', 'it is a symbolic link; refusing to follow it'],
        ['theirs.pid', `it belongs to uid ${other.uid}, not to us (uid ${user.uid}); refusing to write it`]] as const) {
        const xdg2 = runtimeDirFor(user);
        const r = await refused(t, 'virtlogd', user, envWith(xdg2), [`--pid-file=${path.join(shared, file)}`]);
        t.equal(r.proc.exitCode, 1, `${file} in a ${sticky ? 'sticky' : 'plain'} shared dir: status 1`);
        t.match(r.stderr, `Failed to acquire pid file '${path.join(shared, file)}': ${sticky ? 'EACCES' : why}`);
        t.same(names(path.join(xdg2, 'libvirt')), [], 'no socket bound');
      }
      t.equal(fs.readFileSync(theirs, 'utf8'), 'theirs\n', 'the other user\'s file is untouched');
    }
    t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'nor the user\'s file the links name');
  });

  t.test('a re-exec state file planted as a symlink is removed at start-up, replaced at SIGUSR1', async (t) => {
    const victim = victimFile(user);
    const xdg = runtimeDirFor(user);
    const dir = ownedDir(user, path.join(xdg, 'libvirt'), 0o700);
    const state = path.join(dir, 'virtlogd-restart-exec.json');
    plant(other, state, victim);
    // A cold start never restores: whatever is at the path is stale, and is
    // unlinked (the link, not its target) with a warning.
    reportable();
    const cold = startDaemon({ name: 'virtlogd', mode: 'session', user, env: envWith(xdg), args: ['--verbose'] });
    t.teardown(() => cold.kill());
    await cold.socketReady(path.join(dir, 'virtlogd-sock'));
    t.match(cold.stderr, `removed a stale re-exec state file: cannot use re-exec state file ${state}: it is a symbolic link; refusing to follow it`);
    t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'nothing read through it, nothing written');
    t.notOk(fs.existsSync(state), 'the link is gone');
    t.same(await cold.stop(), { code: 0, signal: null });

    // Running: the link appears before a SIGUSR1. The state is written to a
    // new file in its place (unlink, O_EXCL), never through it.
    reportable();
    const d = startDaemon({ name: 'virtlockd', mode: 'session', user, env: envWith(xdg), args: ['--verbose'] });
    t.teardown(() => d.kill());
    const sock = path.join(dir, 'virtlockd-sock');
    await d.socketReady(sock);
    const lockState = path.join(dir, 'virtlockd-restart-exec.json');
    plant(other, lockState, victim);
    d.signal('SIGUSR1');
    await waitFor(() => {
      if (d.proc.exitCode !== null) throw new Error(`virtlockd died:\n${d.output}`);
      return /ready again after re-exec/.test(d.stderr);
    }, 20_000, 're-exec');
    t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the file the link named is untouched');
    t.notOk(fs.existsSync(lockState), 'the new image took its state and removed the file');
    t.equal(d.proc.exitCode, null, 'same process, still running');
    reportable();
    const r = await run(process.execPath, [sessionProbeScript, JSON.stringify({ main: sock })], { user, env: envWith(xdg) });
    t.match(r.stdout, '"health":{"ok":true', 'and serving the user');
    t.same(await d.stop(), { code: 0, signal: null });
  });
}
