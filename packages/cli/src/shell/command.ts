// virsh-style commands: a name, aliases, help, typed options (some also
// positional, filled in order), and a run function. Shared by vadmin and vsh.
export type OptType = 'string' | 'int' | 'bool';

export interface OptDef {
  readonly name: string;
  readonly type: OptType;
  readonly help: string;
  readonly required?: boolean;
  /** May be given without --name, in declaration order (virsh's DATA options). */
  readonly positional?: boolean;
  /** --name with an empty string is allowed. */
  readonly emptyOk?: boolean;
}

export type OptValues = Readonly<Record<string, string | number | boolean | undefined>>;

export interface CommandDef<Ctx> {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly group: string;
  readonly help: string;
  readonly desc?: string;
  readonly opts: readonly OptDef[];
  /** Runs the command; returns false (or throws) on failure. */
  readonly run: (ctx: Ctx, opts: OptValues) => Promise<boolean | void> | boolean | void;
  /** Does not need a connection (help, quit). */
  readonly noConnect?: boolean;
}

/** A failure the shell reports as `error: <line>` lines, then exits 1. */
export class CommandError extends Error {
  readonly lines: readonly string[];
  constructor(...lines: string[]) {
    super(lines.join('\n'));
    this.name = 'CommandError';
    this.lines = lines;
  }
}

/**
 * The connection could not be opened, so the command never ran: virsh and
 * virt-admin connect before running it and print no blank line after this.
 */
export class ConnectFailure extends CommandError {}

export const isConnectFailure = (e: unknown): boolean =>
  e instanceof ConnectFailure || (e instanceof Error && e.message.startsWith('Failed to connect socket'));

const UINT_MAX = 4294967295;

/** Parses a command's arguments as virsh does. */
export function parseOpts(cmd: CommandDef<unknown>, args: readonly string[]): OptValues {
  const out: Record<string, string | number | boolean | undefined> = {};
  const positional = cmd.opts.filter((o) => o.positional);
  const set = (o: OptDef, raw: string): void => {
    if (o.type === 'int') {
      if (!/^\+?\d+$/.test(raw) || Number(raw) > UINT_MAX) {
        throw new CommandError(`Numeric value '${raw}' for <${o.name}> option is malformed or out of range`);
      }
      out[o.name] = Number(raw);
    } else {
      if (raw === '' && !o.emptyOk) throw new CommandError(`option --${o.name} expects a non-empty value`);
      out[o.name] = raw;
    }
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const o = cmd.opts.find((x) => x.name === name);
      if (!o) throw new CommandError(`command '${cmd.name}' doesn't support option --${name}`);
      if (o.type === 'bool') { out[o.name] = true; continue; }
      const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
      if (value === undefined) throw new CommandError(`expected syntax: --${name} <${o.type}>`);
      set(o, value);
      continue;
    }
    const next = positional.find((o) => out[o.name] === undefined);
    if (!next) throw new CommandError(`unexpected data '${a}'`);
    set(next, a);
  }
  for (const o of cmd.opts) {
    if (o.required && out[o.name] === undefined) {
      throw new CommandError(`command '${cmd.name}' requires <${o.name}> option`);
    }
  }
  return out;
}

/** Splits an interactive line like a shell: quotes and backslashes. */
export function splitLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") { quote = c; inWord = true; }
    else if (c === '\\' && i + 1 < line.length) { cur += line[++i]; inWord = true; }
    else if (/\s/.test(c)) { if (inWord) { out.push(cur); cur = ''; inWord = false; } }
    else { cur += c; inWord = true; }
  }
  if (quote) throw new CommandError('missing closing quote');
  if (inWord) out.push(cur);
  return out;
}
