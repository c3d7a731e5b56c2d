// Session daemons start on demand, as libvirt's client starts them: no
// socket → take an fcntl lock on $XDG_RUNTIME_DIR/libvirt/<daemon>.lock (so
// two racing clients start one daemon), start `<daemon> --timeout=120`
// daemonized, wait for the socket, drop the lock.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tryLockByte0 } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import type { Env } from './paths.js';

/** libvirt's idle timeout for autostarted daemons. */
export const AUTOSTART_TIMEOUT_SECONDS = 120;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * The daemon binary: VIRTD_PATH (a directory or the binary itself), then
 * PATH, /usr/sbin, /usr/local/sbin, then this checkout's node_modules/.bin.
 */
export function findDaemon(name: string, env: Env): string {
  const candidates: string[] = [];
  if (env.VIRTD_PATH) {
    candidates.push(fs.existsSync(env.VIRTD_PATH) && fs.statSync(env.VIRTD_PATH).isDirectory()
      ? path.join(env.VIRTD_PATH, name) : env.VIRTD_PATH);
  }
  for (const dir of [...(env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/local/sbin']) candidates.push(path.join(dir, name));
  candidates.push(path.resolve(__dirname, '../../../../node_modules/.bin', name));
  for (const c of candidates) {
    try { fs.accessSync(c, fs.constants.X_OK); return c; } catch { /* next */ }
  }
  throw new VirtError('SYSTEM_ERROR', 'RPC', undefined, { message: `Cannot find '${name}' in the path` });
}

/**
 * Waits for the fcntl lock on `p`, making sure the locked inode is still the
 * one at the path (the holder unlinks it when done).
 */
async function lockFile(p: string): Promise<number> {
  for (let i = 0; ; i++) {
    const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
    while (!tryLockByte0(fd)) {
      if (i++ > 3000) { fs.closeSync(fd); throw new VirtError('OPERATION_TIMEOUT', 'RPC', `timed out waiting for ${p}`); }
      await sleep(10);
    }
    let same = false;
    try { same = fs.statSync(p).ino === fs.fstatSync(fd).ino; } catch { same = false; }
    if (same) return fd;
    fs.closeSync(fd);
  }
}

/** Starts the session daemon behind `socket` unless it is already up. */
export async function autostart(daemon: string, socket: string, env: Env): Promise<void> {
  if (await canConnect(socket)) return;
  const dir = path.dirname(socket);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lockPath = path.join(dir, `${daemon}.lock`);
  const fd = await lockFile(lockPath);
  try {
    if (await canConnect(socket)) return;
    const wanted = Number(env.VIRTD_AUTOSTART_TIMEOUT);
    const timeout = env.VIRTD_AUTOSTART_TIMEOUT && Number.isInteger(wanted) && wanted > 0 ? wanted : AUTOSTART_TIMEOUT_SECONDS;
    const bin = findDaemon(daemon, env);
    const keep = ['PATH', 'HOME', 'USER', 'LOGNAME', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'LIBVIRT_DEBUG', 'LIBVIRT_LOG_OUTPUTS', 'LIBVIRT_LOG_FILTERS'];
    const childEnv = Object.fromEntries(keep.filter((k) => env[k] !== undefined).map((k) => [k, env[k]!]));
    // --daemon: the launcher exits once the daemon is ready (or failed).
    const status = await new Promise<number | null>((resolve, reject) => {
      const p = spawn(bin, [`--timeout=${timeout}`, '--daemon'], { env: childEnv, stdio: 'ignore' });
      p.on('error', reject);
      p.on('exit', (code) => resolve(code));
    });
    if (status !== 0) throw new VirtError('SYSTEM_ERROR', 'RPC', undefined, { message: `Failed to start ${daemon}: exit status ${status}` });
    for (let i = 0; i < 500 && !(await canConnect(socket)); i++) await sleep(10);
  } finally {
    // Unlinked while we hold it: a waiter that then locks the old inode
    // notices (lockFile checks) and takes the new file instead.
    fs.rmSync(lockPath, { force: true });
    fs.closeSync(fd);
  }
}
