// A stand-in for QEMU writing to a virtlogd pipe: numbered lines written in
// pieces of any size (a piece may start and end anywhere in a line, as a
// guest's console output does), until the pipe breaks (EPIPE: virtlogd
// closed the read end, or died). By default a child process with the pipe
// as stdout, as QEMU has it, reporting on stderr after each write the last
// line it has written whole, so a test knows what was in the pipe before
// any call it makes. `inProcess` writes from the test process instead: the
// same stream, without a process start per writer.
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';

/** The line a writer session writes for a sequence number (no newline; its length varies with seq). */
export function logLine(session: number, seq: number): string {
  return `${session} ${seq} ${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(8).slice(0, 10 + ((seq * 37) % 250))}`;
}

const SCRIPT = `
  const fs = require('fs');
  const [session, first, maxPiece, pauseMs] = process.argv.slice(1).map(Number);
  const line = ${logLine.toString()};
  let seq = first;
  let pending = '';
  let done = first - 1;
  const tick = () => {
    const size = 1 + Math.floor(Math.random() * (Math.random() < 0.5 ? Math.min(64, maxPiece) : maxPiece));
    while (pending.length < size) pending += line(session, seq++) + '\\n';
    const piece = pending.slice(0, size);
    for (;;) {
      try { fs.writeSync(1, piece); break; } catch (e) {
        if (e.code === 'EAGAIN') continue;
        fs.writeSync(2, 'END ' + done + ' ' + e.code + '\\n');
        process.exit(0);
      }
    }
    pending = pending.slice(size);
    done += piece.split('\\n').length - 1;
    fs.writeSync(2, 'AT ' + done + '\\n');
    setTimeout(tick, pauseMs < 0 ? (Math.random() < 0.5 ? 0 : 1) : pauseMs);
  };
  tick();
`;

export interface LogWriterOptions {
  /** Session number written at the start of each line. */
  readonly session: number;
  /** First sequence number. */
  readonly first: number;
  /** Largest piece per write, in bytes (default 2048). */
  readonly maxPiece?: number;
  /** Pause between writes in ms; by default 0 or 1 at random. */
  readonly pauseMs?: number;
  /** Write from this process rather than a child. */
  readonly inProcess?: boolean;
}

export class LogWriter {
  /** The child process; undefined for an in-process writer. */
  readonly proc: ChildProcess | undefined;
  readonly session: number;
  readonly first: number;
  /** The last line written whole into the pipe so far (first - 1: none yet). */
  last: number;
  /** Set once the pipe broke: the errno code the write failed with. */
  endedWith: string | undefined;
  /** Resolves once the writer is done (the pipe broke, or kill()). */
  readonly exited: Promise<void>;
  private reported = '';
  private stopped = false;

  /** Starts the writer on `fd` (a pipe's write end), which it takes over: our copy is closed. */
  constructor(fd: number, o: LogWriterOptions) {
    this.session = o.session;
    this.first = o.first;
    this.last = o.first - 1;
    const maxPiece = o.maxPiece ?? 2048;
    const pauseMs = o.pauseMs ?? -1;
    if (o.inProcess) {
      this.proc = undefined;
      this.exited = this.writeHere(fd, maxPiece, pauseMs);
      return;
    }
    // A bare environment: a test runner's NODE_OPTIONS would add most of a second to its start.
    const proc = spawn(process.execPath, ['-e', SCRIPT, String(o.session), String(o.first), String(maxPiece), String(pauseMs)],
      { stdio: ['ignore', fd, 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    this.proc = proc;
    fs.closeSync(fd);
    proc.stderr!.on('data', (d: Buffer) => this.parse(d.toString()));
    this.exited = new Promise((resolve) => proc.on('close', () => resolve()));
  }

  /** The child's loop, run here: each write waits in libuv's threadpool while the pipe is full. */
  private async writeHere(fd: number, maxPiece: number, pauseMs: number): Promise<void> {
    let seq = this.first;
    let pending = '';
    try {
      while (!this.stopped) {
        const size = 1 + Math.floor(Math.random() * (Math.random() < 0.5 ? Math.min(64, maxPiece) : maxPiece));
        while (pending.length < size) pending += `${logLine(this.session, seq++)}\n`;
        const piece = Buffer.from(pending.slice(0, size), 'latin1');
        try {
          for (let off = 0; off < piece.length;) {
            off += await new Promise<number>((resolve, reject) =>
              fs.write(fd, piece, off, piece.length - off, null, (err, n) => (err ? reject(err) : resolve(n))));
          }
        } catch (e) {
          this.endedWith = (e as NodeJS.ErrnoException).code ?? 'unknown';
          return;
        }
        pending = pending.slice(size);
        this.last += piece.toString('latin1').split('\n').length - 1;
        await new Promise((resolve) => setTimeout(resolve, pauseMs < 0 ? (Math.random() < 0.5 ? 0 : 1) : pauseMs));
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  private parse(text: string): void {
    this.reported += text;
    const lines = this.reported.split('\n');
    this.reported = lines.pop()!;
    for (const l of lines) {
      const m = /^(AT|END) (-?\d+)(?: (\S+))?$/.exec(l);
      if (!m) continue;
      this.last = Number(m[2]);
      if (m[1] === 'END') this.endedWith = m[3] ?? 'unknown';
    }
  }

  /** The exact bytes of lines first..last, as they went into the pipe. */
  text(upTo = this.last): string {
    let s = '';
    for (let i = this.first; i <= upTo; i++) s += `${logLine(this.session, i)}\n`;
    return s;
  }

  kill(): void {
    this.stopped = true;
    this.proc?.kill('SIGKILL');
  }
}
