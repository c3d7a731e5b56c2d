// The run directory, created with libvirt's modes (0755 system, 0700
// session) and checked before we put sockets in it or read anything from
// it: it must be a real directory (not a symlink), ours, and in session mode
// writable by nobody else, or another user could plant or intercept our
// sockets, pid file and re-exec state. libvirt 9.0 only creates it
// (g_mkdir_with_parents) and would use whatever it finds there; refusing is
// our addition (session.test.ts pins each case with real users).
import fs from 'node:fs';
import { VirtError } from '@virtd/errors';
import type { Mode } from './paths.js';

const refuse = (message: string): VirtError => new VirtError('SYSTEM_ERROR', 'NONE', undefined, { message });

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function ensureRunDir(dir: string, mode: Mode, euid: number): void {
  const want = mode === 'system' ? 0o755 : 0o700;
  // lstat first: mkdir -p would create directories through a planted symlink.
  let st = lstat(dir);
  if (!st) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: want });
      // libvirt sets its umask (022 or 077) around the mkdir; ours may differ.
      fs.chmodSync(dir, want);
    } catch (e) {
      throw refuse(`Unable to create run directory '${dir}': ${(e as Error).message}`);
    }
    st = fs.lstatSync(dir);
  }
  if (st.isSymbolicLink()) {
    throw refuse(`Run directory '${dir}' is a symbolic link (to '${readLink(dir)}'); refusing to use it`);
  }
  if (!st.isDirectory()) throw refuse(`Run directory '${dir}' is not a directory; refusing to use it`);
  if (st.uid !== euid) {
    throw refuse(`Run directory '${dir}' belongs to uid ${st.uid}, not to us (uid ${euid}); refusing to use it`);
  }
  if (mode === 'session' && (st.mode & 0o022) !== 0) {
    throw refuse(`Run directory '${dir}' is writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); refusing to use it`);
  }
}

function readLink(p: string): string {
  try { return fs.readlinkSync(p); } catch { return '?'; }
}
