// One pino root per daemon, a child logger per layer ("rpc.server",
// "daemon", …), and libvirt's two gates in front of every message: the
// category priority (first matching filter, else log_level) decides whether
// it is logged at all, then each output's own priority decides where it goes.
// Filters, outputs and the level change at run time through the admin API.
import fs from 'node:fs';
import pino, { type Logger } from 'pino';
import { connectUnixDatagram, sendDatagram, closeFd } from '@virtd/posix';
import { journalSend } from 'node-systemd-socket';
import {
  type LogFilter, type LogOutput, type Priority, DEFAULT_PRIORITY, categoryPriority,
} from './settings.js';
import { formatText, toPriority, type LogRecord } from './format.js';

export type { Logger };
export { formatText };

const PINO_LEVEL: Record<Priority, string> = { 1: 'debug', 2: 'info', 3: 'warn', 4: 'error' };
// syslog(3) / journal priorities for our four levels.
const SYSLOG_PRIO: Record<Priority, number> = { 1: 7, 2: 6, 3: 4, 4: 3 };
const LOG_DAEMON = 3 << 3;

interface Sink {
  readonly spec: LogOutput;
  write(rec: LogRecord, line: () => string): void;
  close(): void;
}

function openSink(spec: LogOutput, ident: string): Sink {
  switch (spec.kind) {
    case 'stderr':
      return { spec, write: (_r, line) => void process.stderr.write(line()), close: () => {} };
    case 'file': {
      // Log files hold whatever clients sent us: owner-only, like libvirt's.
      const fd = fs.openSync(spec.arg!, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
      return {
        spec,
        write: (_r, line) => { try { fs.writeSync(fd, line()); } catch { /* a full disk must not kill the daemon */ } },
        close: () => fs.closeSync(fd),
      };
    }
    case 'syslog': {
      let fd = -1;
      try { fd = connectUnixDatagram('/dev/log'); } catch { /* no syslog daemon: messages are dropped */ }
      const tag = `${spec.arg}[${process.pid}]`;
      return {
        spec,
        write: (rec) => {
          if (fd < 0) return;
          const prio = LOG_DAEMON | SYSLOG_PRIO[toPriority(rec.level)];
          sendDatagram(fd, Buffer.from(`<${prio}>${tag}: ${rec.module ?? 'daemon'} : ${rec.msg ?? ''}`));
        },
        close: () => { if (fd >= 0) closeFd(fd); },
      };
    }
    case 'journald':
      return {
        spec,
        write: (rec) => {
          journalSend({
            MESSAGE: rec.msg ?? '',
            PRIORITY: SYSLOG_PRIO[toPriority(rec.level)],
            SYSLOG_IDENTIFIER: ident,
            SYSLOG_PID: rec.pid,
            CODE_FUNC: rec.module ?? 'daemon',
          });
        },
        close: () => {},
      };
  }
}

export interface LogSettings {
  readonly level: Priority;
  readonly filters: readonly LogFilter[];
  readonly outputs: readonly LogOutput[];
}

export class LogManager {
  /** The pino root; children are made per module and cached. */
  readonly root: Logger;
  private readonly children = new Map<string, Logger>();
  private sinks: Sink[] = [];
  private current: LogSettings;
  private readonly ident: string;

  /**
   * @param ident daemon name, used as syslog/journal identity
   * @param settings effective level, filters and outputs (outputs already
   *   defaulted by the caller per libvirt's rules)
   */
  constructor(ident: string, settings: LogSettings) {
    this.ident = ident;
    this.current = settings;
    this.sinks = settings.outputs.map((o) => openSink(o, ident));
    const dispatch = {
      write: (line: string): void => {
        let rec: LogRecord;
        try { rec = JSON.parse(line) as LogRecord; } catch { return; }
        const prio = toPriority(rec.level);
        let text: string | undefined;
        const lineOnce = (): string => (text ??= formatText(rec));
        for (const s of this.sinks) if (prio >= s.spec.priority) s.write(rec, lineOnce);
      },
    };
    this.root = pino({ level: 'debug', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime }, dispatch);
  }

  /** The logger for one layer, e.g. get('rpc.server'). */
  get(module: string): Logger {
    let child = this.children.get(module);
    if (!child) {
      child = this.root.child({ module });
      child.level = this.levelFor(module);
      this.children.set(module, child);
    }
    return child;
  }

  settings(): LogSettings {
    return this.current;
  }

  /** Applies new settings at once to every existing logger. */
  update(next: Partial<LogSettings>): void {
    const settings: LogSettings = { ...this.current, ...next };
    if (next.outputs) {
      const opened = next.outputs.map((o) => openSink(o, this.ident));
      for (const s of this.sinks) s.close();
      this.sinks = opened;
    }
    this.current = settings;
    for (const [module, child] of this.children) child.level = this.levelFor(module);
  }

  close(): void {
    for (const s of this.sinks) s.close();
    this.sinks = [];
  }

  /**
   * The pino level for a category: its filter or default priority, raised to
   * the lowest output priority, since nothing below that is written anyway.
   */
  private levelFor(module: string): string {
    const cat = categoryPriority(this.current.filters, module, this.current.level);
    const minOut = Math.min(4, ...this.sinks.map((s) => s.spec.priority)) as Priority;
    return PINO_LEVEL[Math.max(cat, minOut) as Priority];
  }
}

export interface DefaultOutputContext {
  daemonize: boolean;
  stdinIsTTY: boolean;
  journald: boolean;
  /** Where --daemon writes when journald is absent. */
  logFile: string;
  priority: Priority;
}

/**
 * libvirt's default output when none is configured anywhere: journald when
 * reachable (under --daemon always, otherwise only without a terminal),
 * else a file under --daemon, else stderr. Journald never gets debug.
 */
export function defaultOutputs(ctx: DefaultOutputContext): LogOutput[] {
  if (ctx.journald && (ctx.daemonize || !ctx.stdinIsTTY)) {
    return [{ priority: Math.max(2, ctx.priority) as Priority, kind: 'journald' }];
  }
  if (ctx.daemonize) return [{ priority: ctx.priority, kind: 'file', arg: ctx.logFile }];
  return [{ priority: ctx.priority, kind: 'stderr' }];
}

export { DEFAULT_PRIORITY };
