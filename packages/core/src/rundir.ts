// The run directory, created with libvirt's modes (0755 system, 0700
// session) and checked before we put sockets in it: in session mode it must
// be ours, a real directory, and writable by nobody else, or another user
// could plant or intercept our sockets.
import fs from 'node:fs';
import { VirtError } from '@virtd/errors';
import type { Mode } from './paths.js';

export function ensureRunDir(dir: string, mode: Mode, euid: number): void {
  const want = mode === 'system' ? 0o755 : 0o700;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: want });
  } catch (e) {
    throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, {
      message: `Unable to create run directory '${dir}': ${(e as Error).message}`, cause: e,
    });
  }
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, { message: `Run directory '${dir}' is not a directory (symlink or file); refusing to use it` });
  }
  if (st.uid !== euid) {
    throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, { message: `Run directory '${dir}' belongs to uid ${st.uid}, not to us (uid ${euid}); refusing to use it` });
  }
  if (mode === 'session' && (st.mode & 0o022) !== 0) {
    throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, {
      message: `Run directory '${dir}' is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); refusing to use it`,
    });
  }
}
