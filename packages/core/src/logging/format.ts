// libvirt's log line format, kept free of pino so that failures before
// logging exists (bad arguments, a broken config file) cost no module loads.

export type Priority = 1 | 2 | 3 | 4;

const LIBVIRT_NAME: Record<Priority, string> = { 1: 'debug', 2: 'info', 3: 'warning', 4: 'error' };

/** pino's numeric level as libvirt's priority. */
export function toPriority(pinoLevel: number): Priority {
  if (pinoLevel >= 50) return 4;
  if (pinoLevel >= 40) return 3;
  if (pinoLevel >= 30) return 2;
  return 1;
}

export interface LogRecord {
  level: number;
  time: number;
  pid: number;
  module?: string;
  msg?: string;
  [key: string]: unknown;
}

const BASE_KEYS = new Set(['level', 'time', 'pid', 'module', 'msg', 'hostname']);

/** libvirt's timestamp form: 2026-11-26 03:13:01.677+0000 */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '+0000');
}

/**
 * Control characters escaped: messages and fields carry what peers sent
 * (a certificate's DN, a URI, a file name), and a newline in one must not
 * forge a second log line.
 */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (ch) =>
    ch === '\n' ? '\\n' : ch === '\r' ? '\\r' : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The line libvirt writes to stderr and files, with our extra fields appended. */
export function formatText(rec: LogRecord): string {
  const prio = toPriority(rec.level);
  let extra = '';
  for (const [k, v] of Object.entries(rec)) {
    if (BASE_KEYS.has(k)) continue;
    const val = k === 'err' && v && typeof v === 'object' ? (v as { message?: string }).message : v;
    extra += ` ${k}=${typeof val === 'string' ? val : JSON.stringify(val)}`;
  }
  return `${timestamp(rec.time)}: ${rec.pid}: ${LIBVIRT_NAME[prio]} : ${rec.module ?? 'daemon'} : ${oneLine(`${rec.msg ?? ''}${extra}`)}\n`;
}
