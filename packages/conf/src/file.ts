// The one place this package touches the filesystem: read a config file
// with libvirt's size limit and missing-file rule, then parse it.
import fs from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import { ConfError } from './errors.js';
import { parseConf, type ConfFile } from './grammar.js';

/** libvirt refuses config files larger than this (virConfReadFile). */
export const MAX_CONF_FILE_BYTES = 10 * 1024 * 1024;

const describe = (e: unknown): string => {
  const errno = (e as NodeJS.ErrnoException).errno;
  return (errno !== undefined && getSystemErrorMap().get(errno)?.[1]) || String((e as Error).message ?? e);
};

/**
 * Read and parse a config file. A missing file (ENOENT only, as libvirt's
 * `access()` check) is `undefined` unless `required`, e.g. for a path given
 * with `--config`. Any other failure is a ConfError naming the path.
 */
export function readConfFile(path: string, opts: { required: boolean }): ConfFile | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !opts.required) return undefined;
    throw new ConfError({ file: path, code: 'OPEN_FAILED', reason: `failed to open configuration file: ${describe(e)}`, cause: e });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    // Read by chunks rather than trusting st_size: /proc files and pipes report 0.
    for (;;) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > MAX_CONF_FILE_BYTES) {
        throw new ConfError({
          file: path, code: 'READ_FAILED', reason: `configuration file is larger than ${MAX_CONF_FILE_BYTES} bytes`,
        });
      }
    }
  } catch (e) {
    if (e instanceof ConfError) throw e;
    throw new ConfError({ file: path, code: 'READ_FAILED', reason: `failed to read configuration file: ${describe(e)}`, cause: e });
  } finally {
    fs.closeSync(fd);
  }
  // Invalid UTF-8 is replaced, not refused: libvirt reads bytes, and stray
  // Latin-1 in a comment must not stop a daemon.
  return parseConf(Buffer.concat(chunks, total).toString('utf8'), path);
}
