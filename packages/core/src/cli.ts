// The command line, as libvirt's getopt_long takes it: bundled short
// options (-vd), attached or separate arguments (-t5, -t 5, --timeout=5,
// --timeout 5), GNU permutation (options may follow operands), and `--`.
import type { DaemonDescriptor } from './descriptor.js';
import type { DaemonPaths, SocketPaths, TlsFiles } from './paths.js';

export interface CommandLine {
  readonly help: boolean;
  readonly version: boolean;
  readonly verbose: boolean;
  readonly daemon: boolean;
  /** libvirtd only. */
  readonly listen: boolean;
  /** Seconds; undefined when not given (0 given means disabled). */
  readonly timeout?: number;
  readonly configFile?: string;
  /** '' means no pid file at all. */
  readonly pidFile?: string;
}

/** A usage error: the message goes to stderr, then the usage text, exit 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface OptSpec { short: string; long: string; arg: boolean; key: keyof CommandLine }

function optionsFor(d: DaemonDescriptor): OptSpec[] {
  const opts: OptSpec[] = [
    { short: 'h', long: 'help', arg: false, key: 'help' },
    { short: 'v', long: 'verbose', arg: false, key: 'verbose' },
    { short: 'd', long: 'daemon', arg: false, key: 'daemon' },
    { short: 't', long: 'timeout', arg: true, key: 'timeout' },
    { short: 'f', long: 'config', arg: true, key: 'configFile' },
    { short: 'V', long: 'version', arg: false, key: 'version' },
    { short: 'p', long: 'pid-file', arg: true, key: 'pidFile' },
  ];
  if (d.listenFlag) opts.splice(3, 0, { short: 'l', long: 'listen', arg: false, key: 'listen' });
  return opts;
}

/** INT_MAX / 1000: the timeout must fit in milliseconds in a C int. */
export const MAX_TIMEOUT_SECONDS = 2147483;

function parseTimeout(text: string): number {
  if (!/^[+]?\d+$/.test(text.trim())) throw new UsageError('Invalid value for timeout');
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n > MAX_TIMEOUT_SECONDS) throw new UsageError('Invalid value for timeout');
  return n;
}

export function parseCommandLine(d: DaemonDescriptor, argv: readonly string[]): CommandLine {
  const specs = optionsFor(d);
  const out: Record<string, unknown> = { help: false, version: false, verbose: false, daemon: false, listen: false };
  const operands: string[] = [];
  const set = (spec: OptSpec, value?: string): void => {
    if (spec.key === 'timeout') out.timeout = parseTimeout(value!);
    else if (spec.arg) out[spec.key] = value;
    else out[spec.key] = true;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { operands.push(...argv.slice(i + 1)); break; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      // getopt_long accepts any unambiguous prefix of a long option.
      const matches = specs.filter((s) => s.long.startsWith(name));
      const spec = matches.find((s) => s.long === name) ?? (matches.length === 1 ? matches[0] : undefined);
      if (!spec || name === '') {
        throw new UsageError(matches.length > 1
          ? `option '${a}' is ambiguous`
          : `unrecognized option '${a}'`);
      }
      if (spec.arg) {
        const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (value === undefined) throw new UsageError(`option '--${spec.long}' requires an argument`);
        set(spec, value);
      } else {
        if (eq >= 0) throw new UsageError(`option '--${spec.long}' doesn't allow an argument`);
        set(spec);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const spec = specs.find((s) => s.short === c);
        if (!spec) throw new UsageError(`invalid option -- '${c}'`);
        if (spec.arg) {
          const rest = a.slice(j + 1);
          const value = rest !== '' ? rest : argv[++i];
          if (value === undefined) throw new UsageError(`option requires an argument -- '${c}'`);
          set(spec, value);
          break;
        }
        set(spec);
      }
      continue;
    }
    operands.push(a);
  }
  // libvirtd & co reject operands; virtlogd and virtlockd ignore them, as libvirt does.
  if (operands.length && d.family === 'remote' && !out.help && !out.version) {
    throw new UsageError('unexpected, non-option, command line arguments');
  }
  return out as unknown as CommandLine;
}

export interface UsageContext {
  readonly paths: DaemonPaths;
  readonly sockets: SocketPaths;
  readonly tls: TlsFiles;
}

/** The usage text, laid out like libvirt's; paths are those of the current mode. */
export function usage(d: DaemonDescriptor, u: UsageContext): string {
  const session = u.paths.mode === 'session';
  const shown = (p: string): string => (session ? p.replace(/^.*\/libvirt\//, '$XDG_RUNTIME_DIR/libvirt/') : p);
  const lines = [
    '',
    'Usage:',
    `  ${d.name} [options]`,
    '',
    'Options:',
    '  -h | --help            Display program help',
    '  -v | --verbose         Verbose messages',
    '  -d | --daemon          Run as a daemon & write PID file',
  ];
  if (d.listenFlag) lines.push('  -l | --listen          Listen for TCP/IP connections');
  lines.push(
    '  -t | --timeout <secs>  Exit after timeout period',
    '  -f | --config <file>   Configuration file',
    '  -V | --version         Display version information',
    '  -p | --pid-file <file> Change name of PID file',
    '',
    `${d.summary}:`,
    '',
    '  Default paths:',
    '',
    '    Configuration file (unless overridden by -f):',
    `      ${session ? `$XDG_CONFIG_HOME/libvirt/${d.name}.conf` : u.paths.configFile}`,
    '',
    '    Sockets:',
  );
  // libvirt lists the main and read-only sockets, not the admin one.
  for (const p of [u.sockets.rw, u.sockets.ro]) if (p) lines.push(`      ${shown(p)}`);
  if (d.withIP) {
    lines.push(
      '',
      '    TLS:',
      `      CA certificate: ${session ? '$HOME/.pki/libvirt/cacert.pem' : u.tls.ca}`,
      `      Server certificate: ${session ? '$HOME/.pki/libvirt/servercert.pem' : u.tls.cert}`,
      `      Server private key: ${session ? '$HOME/.pki/libvirt/serverkey.pem' : u.tls.key}`,
    );
  }
  lines.push(
    '',
    '    PID file (unless overridden by -p):',
    `      ${session ? `$XDG_RUNTIME_DIR/libvirt/${d.name}.pid` : u.paths.pidFile}`,
    '',
  );
  return lines.join('\n') + '\n';
}
