// The open log files (libvirt's virLogHandler): each is a pipe whose read
// end we keep and whose write end the caller takes (the hypervisor gives it
// to QEMU as stdout/stderr), feeding a rotating file. A system virtlogd asks
// the kernel for larger pipes than its 64 KiB (HandlerOptions.pipeSize), so a
// chatty guest blocks less. Pipes are read by libuv with the `onread` mode,
// so pausing stops the kernel reads at once: what we have not read stays in
// the pipe, which is what lets a re-exec lose nothing. EOF (the last writer is gone) closes
// the entry; so does a failed write (a full disk, say), as in libvirt: the
// error is logged once, the pipe's read end closed (the writer gets EPIPE),
// and every other file goes on (test/src/diskfull.test.ts).
//
// A log is written by one writer after another (one pipe per guest run, or
// an appended message). A new writer starts on a new line: if the log ends
// mid-line because the last writer, or virtlogd itself, was killed there,
// a newline goes in first, so each line in a log is whole or the cut-short
// last line of one writer (test/src/crash.test.ts). After a re-exec the
// same writer goes on, so nothing is added then.
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { pipe, setPipeSize, closeFd, setCloexec, bytesReadable, O_CLOEXEC } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import { RotatingFileWriter, readFromPosition } from './rotating-file.js';

export interface Rotation {
  /** max_size: bytes before a file rolls over; 0 never. */
  readonly maxSize: number;
  /** max_backups: rotated files kept. */
  readonly maxBackups: number;
}

export interface Domain {
  readonly uuid: string;
  readonly name: string;
}

export interface Position {
  readonly inode: number;
  readonly offset: number;
}

export interface OpenFile {
  readonly path: string;
  readonly driver: string;
  readonly dom: Domain;
  readonly pos: Position;
}

/** libvirt's "handler" object in virtlogd's state file. */
export interface HandlerState {
  files: { pipefd: number; path: string; driver: string; domname: string; domuuid: string }[];
}

/** Reads stop while this much is waiting to be written; the pipe holds the rest. */
const HIGH_WATER = 4 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;
/** Spare read buffers kept for the next burst (4 MiB), whatever the number of pipes. */
const MAX_SPARES = 16;
/** libvirt's cap on one ReadLogFile. */
export const READ_MAX = 4 * 1024 * 1024;
export const OPEN_TRUNCATE = 1;

interface Entry {
  readonly path: string;
  readonly driver: string;
  readonly dom: Domain;
  readonly pipeFd: number;
  readonly sock: net.Socket;
  readonly writer: RotatingFileWriter;
  /** Bytes read from the pipe so far (GetLogFilePosition drains up to a mark). */
  bytesIn: number;
  /** Bytes read and not yet written. */
  pending: number;
  /** Held by us (quiesce, back-pressure) rather than by EOF. */
  paused: boolean;
  quiesced: boolean;
  release: (() => void) | undefined;
}

export interface HandlerOptions {
  readonly log: Logger;
  /** Session mode: each open file holds auto-shutdown off. */
  readonly inhibit?: () => () => void;
  /** Bytes to ask for each pipe; unset keeps the kernel's default (64 KiB). */
  readonly pipeSize?: number;
}

const busyError = (p: string): VirtError =>
  VirtError.raw('SYSTEM_ERROR', 'LOGGING', `Cannot open log file: '${p}': Device or resource busy`);

const notOpen = (p: string): VirtError =>
  VirtError.raw('INVALID_ARG', 'LOGGING', `invalid argument: No open log file ${p}`);

export class LogHandler {
  private rotation: Rotation;
  private readonly opts: HandlerOptions;
  private readonly files = new Map<string, Entry>();
  /** Paths being opened, so two opens of one path cannot race. */
  private readonly opening = new Set<string>();
  /** Read buffers back from the write queue, shared by every pipe. */
  private readonly spares: Buffer[] = [];

  constructor(rotation: Rotation, opts: HandlerOptions) {
    this.rotation = rotation;
    this.opts = opts;
  }

  get size(): number {
    return this.files.size;
  }

  /** Creates the pipe for `path` and returns its write end, which the caller now owns. */
  async open(driver: string, dom: Domain, file: string, flags: number): Promise<{ pos: Position; writeFd: number }> {
    checkPath(file);
    if (flags & ~OPEN_TRUNCATE) throw new VirtError('INVALID_ARG', 'LOGGING', `unsupported flags (0x${(flags & ~OPEN_TRUNCATE).toString(16)})`);
    if (this.files.has(file) || this.opening.has(file)) throw busyError(file);
    this.opening.add(file);
    try {
      const writer = await RotatingFileWriter.open(file, this.rotation.maxSize, this.rotation.maxBackups, (flags & OPEN_TRUNCATE) !== 0)
        .catch((e: NodeJS.ErrnoException) => {
          throw VirtError.raw('SYSTEM_ERROR', 'LOGGING', `Unable to open file: ${file}: ${e.message}`);
        });
      // Cosmetic: a file that cannot take the newline (a full disk) still opens,
      // as in libvirt; the first write that fails then closes the entry.
      await writer.endLine().catch((e: Error) => this.opts.log.warn({ err: e, path: file }, `cannot end the last line of ${file}`));
      const [readFd, writeFd] = pipe(O_CLOEXEC);
      if (this.opts.pipeSize !== undefined) {
        try { setPipeSize(readFd, this.opts.pipeSize); } catch { /* refused: the default size works too */ }
      }
      this.add({ path: file, driver, dom, readFd, writer });
      return { pos: writer.position(), writeFd };
    } finally {
      this.opening.delete(file);
    }
  }

  /** Writes out what the pipe already holds, then reports where the live file ends. */
  async position(file: string, flags: number): Promise<Position> {
    if (flags !== 0) throw new VirtError('INVALID_ARG', 'LOGGING', `unsupported flags (0x${flags.toString(16)})`);
    const e = this.files.get(file);
    if (!e) throw notOpen(file);
    await this.drain(e);
    return e.writer.position();
  }

  async read(file: string, pos: Position, maxlen: number, flags: number): Promise<Buffer> {
    if (flags !== 0) throw new VirtError('INVALID_ARG', 'LOGGING', `unsupported flags (0x${flags.toString(16)})`);
    if (maxlen > READ_MAX) {
      throw new VirtError('INTERNAL_ERROR', 'LOGGING', `Requested data len ${maxlen} is larger than maximum ${READ_MAX}`);
    }
    checkPath(file);
    try {
      return await readFromPosition(file, this.rotation.maxBackups, pos, maxlen);
    } catch (e) {
      throw VirtError.raw('SYSTEM_ERROR', 'LOGGING', `Unable to read from ${file}: ${(e as Error).message}`);
    }
  }

  /** Appends to the open file for `path`, or through a writer opened just for this message. */
  async append(file: string, message: string, flags: number): Promise<void> {
    if (flags !== 0) throw new VirtError('INVALID_ARG', 'LOGGING', `unsupported flags (0x${flags.toString(16)})`);
    checkPath(file);
    const data = Buffer.from(message);
    const e = this.files.get(file);
    try {
      if (e) {
        await e.writer.append(data);
        return;
      }
      const w = await RotatingFileWriter.open(file, this.rotation.maxSize, this.rotation.maxBackups);
      try {
        await w.endLine();
        await w.append(data);
      } finally { await w.close(); }
    } catch (err) {
      throw VirtError.raw('SYSTEM_ERROR', 'LOGGING', `Unable to write to ${file}: ${(err as Error).message}`);
    }
  }

  list(): OpenFile[] {
    return [...this.files.values()].map((e) => ({ path: e.path, driver: e.driver, dom: e.dom, pos: e.writer.position() }));
  }

  /** Stops reading every pipe and waits until everything read is on disk. */
  async quiesce(): Promise<void> {
    for (const e of this.files.values()) {
      e.quiesced = true;
      e.sock.pause();
    }
    await Promise.all([...this.files.values()].map((e) => e.writer.flush()));
  }

  /** Reads again (a re-exec that did not happen). */
  unquiesce(): void {
    for (const e of this.files.values()) {
      e.quiesced = false;
      this.maybeResume(e);
    }
  }

  /** Read ends, kept across a re-exec. */
  fds(): number[] {
    return [...this.files.values()].map((e) => e.pipeFd);
  }

  toState(): HandlerState {
    return {
      files: [...this.files.values()].map((e) => ({
        pipefd: e.pipeFd, path: e.path, driver: e.driver, domname: e.dom.name, domuuid: e.dom.uuid,
      })),
    };
  }

  /**
   * Takes the pipes back after a re-exec. Files are reopened by path (append)
   * under the rotation now configured, so a changed virtlogd.conf applies.
   */
  async restore(state: HandlerState): Promise<void> {
    for (const f of state.files ?? []) {
      setCloexec(f.pipefd, true);
      let writer: RotatingFileWriter;
      try {
        writer = await RotatingFileWriter.open(f.path, this.rotation.maxSize, this.rotation.maxBackups);
      } catch (e) {
        // The file is gone for good (its directory removed): drop the pipe,
        // so the writer sees EPIPE rather than a silent black hole.
        this.opts.log.error({ err: e, path: f.path }, 'cannot reopen log file after re-exec');
        closeFd(f.pipefd);
        continue;
      }
      this.add({ path: f.path, driver: f.driver, dom: { name: f.domname, uuid: f.domuuid }, readFd: f.pipefd, writer });
    }
  }

  /** Closes every file (shutdown); unread pipe data is lost, as in libvirt. */
  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((e) => this.closeEntry(e)));
  }

  private add(o: { path: string; driver: string; dom: Domain; readFd: number; writer: RotatingFileWriter }): void {
    // A large read hands its buffer to the write queue instead of copying
    // it (counted at its full size against HIGH_WATER) and libuv reads on
    // into a spare one; a small read is copied, so a trickle of short lines
    // never pins whole buffers.
    let current = this.spareBuffer();
    // The reader needs its entry, which needs the socket the reader feeds.
    const ref: { entry?: Entry } = {};
    const onread = (n: number, buf: Buffer): boolean => {
      const e = ref.entry!;
      const give = n >= READ_CHUNK / 4;
      const chunk = give ? buf.subarray(0, n) : Buffer.from(buf.subarray(0, n));
      const held = give ? buf.length : n;
      if (give) current = this.spareBuffer();
      e.bytesIn += n;
      e.pending += held;
      e.writer.append(chunk).then(
        () => { e.pending -= held; if (give) this.keepSpare(buf); this.maybeResume(e); },
        (err: Error) => {
          // Chunks queued behind the failed one fail too; report the first.
          if (this.files.get(e.path) !== e) return;
          this.opts.log.error({ err, path: e.path }, `Unable to write to ${e.path}: ${err.message}; closing it`);
          void this.closeEntry(e, true);
        },
      );
      if (e.pending >= HIGH_WATER) {
        e.paused = true;
        return false;
      }
      return true;
    };
    // `onread` is accepted by the constructor, though @types/node lists it only for connect().
    const opts = { fd: o.readFd, readable: true, writable: false, onread: { buffer: () => current, callback: onread } };
    const sock = new net.Socket(opts as net.SocketConstructorOpts);
    const e: Entry = {
      path: o.path, driver: o.driver, dom: o.dom, pipeFd: o.readFd, sock, writer: o.writer,
      bytesIn: 0, pending: 0, paused: false, quiesced: false, release: this.opts.inhibit?.(),
    };
    ref.entry = e;
    sock.on('end', () => void this.closeEntry(e));
    sock.on('error', (err) => {
      this.opts.log.warn({ err, path: e.path }, 'log pipe read failed; closing it');
      void this.closeEntry(e);
    });
    this.files.set(o.path, e);
  }

  private spareBuffer(): Buffer {
    return this.spares.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
  }

  private keepSpare(buf: Buffer): void {
    if (this.spares.length < MAX_SPARES) this.spares.push(buf);
  }

  private maybeResume(e: Entry): void {
    if (e.quiesced || e.sock.destroyed) return;
    if (e.paused && e.pending < HIGH_WATER / 2) {
      e.paused = false;
      e.sock.resume();
    }
  }

  /** Reads until what was in the pipe when we were asked is written out. */
  private async drain(e: Entry): Promise<void> {
    const mark = e.bytesIn + safeReadable(e.pipeFd);
    while (e.bytesIn < mark && this.files.get(e.path) === e && !e.quiesced) {
      if (e.paused) { e.paused = false; e.sock.resume(); }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await e.writer.flush();
  }

  /** Forgets the entry and closes its pipe; `failed`: its file cannot be written, drop what is queued. */
  private async closeEntry(e: Entry, failed = false): Promise<void> {
    if (this.files.get(e.path) !== e) return;
    this.files.delete(e.path);
    e.sock.destroy();
    e.release?.();
    if (failed) e.writer.discard();
    await e.writer.close().catch(() => {});
  }
}

function checkPath(p: string): void {
  if (!path.isAbsolute(p)) throw new VirtError('INVALID_ARG', 'LOGGING', `log file path '${p}' is not absolute`);
}

function safeReadable(fd: number): number {
  try { return bytesReadable(fd); } catch { return 0; }
}
