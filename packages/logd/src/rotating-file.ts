// Log files with libvirt's rotation (virRotatingFile): the live file <path>,
// backups <path>.0 (newest) … <path>.<max_backups-1> (oldest). Before a
// write would cross max_size, the part that fits is written — cut short
// just after a newline when one falls in the last 80 bytes of it — and the
// file rolls over. A file already over the limit rolls before anything is
// written; one exactly at it rolls when more data comes. max_size 0 never
// rolls. Writes are queued and done off the event loop.
import fs from 'node:fs';
import fsp from 'node:fs/promises';

/** A newline this close to the cut point ends the file instead (libvirt's 80). */
export const LINE_SLACK = 80;

export const backupName = (path: string, i: number): string => `${path}.${i}`;

// Node opens every file close-on-exec already.
const FLAGS = fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_WRONLY;

export class RotatingFileWriter {
  readonly path: string;
  readonly maxSize: number;
  readonly maxBackups: number;
  private fh: fsp.FileHandle | undefined;
  /** Size of the live file as we have written it. */
  private size = 0;
  private ino = 0;
  /** Serialises appends, rollovers and close. */
  private queue: Promise<void> = Promise.resolve();
  private failed: Error | undefined;
  /** Set by discard(): queued writes reject without writing. */
  private discarding = false;

  private constructor(path: string, maxSize: number, maxBackups: number) {
    this.path = path;
    this.maxSize = maxSize;
    this.maxBackups = maxBackups;
  }

  /** Opens (creating, 0600) the live file; `truncate` removes it and its backups first. */
  static async open(path: string, maxSize: number, maxBackups: number, truncate = false): Promise<RotatingFileWriter> {
    const w = new RotatingFileWriter(path, maxSize, maxBackups);
    if (truncate) {
      for (const p of [path, ...Array.from({ length: maxBackups }, (_, i) => backupName(path, i))]) {
        await fsp.rm(p, { force: true });
      }
    }
    await w.openLive();
    return w;
  }

  /** Inode and size of the live file: the position GetLogFilePosition reports. */
  position(): { inode: number; offset: number } {
    return { inode: this.ino, offset: this.size };
  }

  /** Appends in order; resolves once written (or rejects with the write error). */
  append(data: Buffer): Promise<void> {
    const p = this.queue.then(() => this.write(data));
    this.queue = p.catch(() => {});
    return p;
  }

  /** Waits for every queued write. */
  flush(): Promise<void> {
    return this.queue;
  }

  close(): Promise<void> {
    const p = this.queue.then(async () => {
      await this.fh?.close();
      this.fh = undefined;
    });
    this.queue = p.catch(() => {});
    return p;
  }

  /**
   * Starts a new line unless the log already ends with one: a writer that
   * died mid-line (QEMU killed, or virtlogd itself killed between reading a
   * chunk and writing the rest) leaves a partial last line, and the next
   * writer's first line must not be glued to it. The log ends at the live
   * file's last byte, or the newest backup's when the live file is empty.
   * libvirt does not do this; ours keeps every line of a log either whole or
   * a cut-short last line of one writer (test/src/crash.test.ts).
   */
  endLine(): Promise<void> {
    const p = this.queue.then(async () => {
      const last = this.size > 0 ? await lastByte(this.path)
        : this.maxBackups > 0 ? await lastByte(backupName(this.path, 0)) : undefined;
      if (last !== undefined && last !== 0x0a) await this.write(Buffer.from('\n'));
    });
    this.queue = p.catch(() => {});
    return p;
  }

  /**
   * Drops whatever is queued and not yet written (each such append rejects
   * without touching the file): for a writer whose file failed, so a full
   * disk is not hit again once per queued chunk.
   */
  discard(): void {
    this.discarding = true;
  }

  get error(): Error | undefined {
    return this.failed;
  }

  private async openLive(): Promise<void> {
    this.fh = await fsp.open(this.path, FLAGS, 0o600);
    const st = await this.fh.stat();
    this.size = st.size;
    this.ino = st.ino;
  }

  private async write(data: Buffer): Promise<void> {
    if (this.discarding) throw this.failed ?? new Error(`writes to ${this.path} were discarded`);
    try {
      let rest = data;
      if (this.maxSize > 0 && this.size > this.maxSize) await this.rollover();
      while (rest.length) {
        let n = rest.length;
        if (this.maxSize > 0) {
          const room = this.maxSize - this.size;
          if (room <= 0) { await this.rollover(); continue; }
          if (rest.length > room) {
            n = room;
            const nl = rest.lastIndexOf(0x0a, room - 1);
            if (nl >= 0 && nl >= room - LINE_SLACK) n = nl + 1;
          }
        }
        await this.writeAll(rest.subarray(0, n));
        rest = rest.subarray(n);
        if (rest.length && this.maxSize > 0) await this.rollover();
      }
    } catch (e) {
      this.failed = e as Error;
      throw e;
    }
  }

  private async writeAll(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh!.write(buf, off, buf.length - off);
      off += bytesWritten;
      this.size += bytesWritten;
    }
  }

  private async rollover(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    if (this.maxBackups === 0) {
      await fsp.rm(this.path, { force: true });
    } else {
      for (let i = this.maxBackups - 2; i >= 0; i--) {
        await fsp.rename(backupName(this.path, i), backupName(this.path, i + 1)).catch(ignoreMissing);
      }
      await fsp.rename(this.path, backupName(this.path, 0)).catch(ignoreMissing);
    }
    await this.openLive();
  }
}

/** The last byte of a file; undefined when it is missing or empty. */
async function lastByte(file: string): Promise<number | undefined> {
  let fh: fsp.FileHandle;
  try { fh = await fsp.open(file, 'r'); } catch { return undefined; }
  try {
    const { size } = await fh.stat();
    if (size === 0) return undefined;
    const buf = Buffer.alloc(1);
    const { bytesRead } = await fh.read(buf, 0, 1, size - 1);
    return bytesRead === 1 ? buf[0] : undefined;
  } finally {
    await fh.close();
  }
}

function ignoreMissing(e: NodeJS.ErrnoException): void {
  if (e.code !== 'ENOENT') throw e;
}

/**
 * Reads up to maxlen bytes starting at (inode, offset): in the live file or
 * whichever backup has that inode, then on through newer files. An inode
 * no longer present starts at the oldest backup, at the same offset.
 */
export async function readFromPosition(path: string, maxBackups: number, pos: { inode: number; offset: number }, maxlen: number): Promise<Buffer> {
  // Oldest first: .N-1 … .0, then the live file.
  const files = [...Array.from({ length: maxBackups }, (_, i) => backupName(path, maxBackups - 1 - i)), path];
  const opened: { p: string; ino: number; size: number }[] = [];
  for (const p of files) {
    try {
      const st = await fsp.stat(p);
      opened.push({ p, ino: st.ino, size: st.size });
    } catch { /* missing backup */ }
  }
  let start = opened.findIndex((f) => f.ino === pos.inode);
  if (start < 0) start = 0;
  const out: Buffer[] = [];
  let left = maxlen;
  let offset = pos.offset;
  for (let i = start; i < opened.length && left > 0; i++) {
    const f = opened[i]!;
    if (offset < f.size) {
      const fh = await fsp.open(f.p, 'r');
      try {
        const buf = Buffer.alloc(Math.min(left, f.size - offset));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        out.push(buf.subarray(0, bytesRead));
        left -= bytesRead;
      } finally {
        await fh.close();
      }
    }
    offset = 0;
  }
  return Buffer.concat(out);
}
