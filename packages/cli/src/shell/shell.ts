// The shell both CLIs share, after virsh/virt-admin: global options, then
// one command with its options, or an interactive session reading commands
// from stdin. Errors print as `error: …` lines and the exit status is 1.
import readline from 'node:readline';
import { isVirtError } from '@virtd/errors';
import { CommandError, isConnectFailure, parseOpts, splitLine, type CommandDef } from './command.js';

export interface GlobalOptions {
  readonly connect?: string;
  readonly quiet: boolean;
  readonly readonly: boolean;
}

export interface Output {
  print(text: string): void;
  /** Bytes as they are (secret values printed --plain). */
  printBytes(bytes: Buffer): void;
  error(line: string): void;
  /** A warning the client library met on the way to an error, in libvirt's log line shape. */
  warn?(line: string): void;
}

export interface ShellSpec<Ctx> {
  /** Program name in messages and help. */
  readonly prog: string;
  readonly description: string;
  readonly commands: readonly CommandDef<Ctx>[];
  /** Accepts -r/--readonly (vsh). */
  readonly readonlyFlag?: boolean;
  readonly version: () => string;
  readonly context: (g: GlobalOptions, out: Output) => Ctx;
  /** Releases the context's connection. */
  readonly close: (ctx: Ctx) => void | Promise<void>;
  /** Lines printed before an error that means "could not connect". */
  readonly connectFailure?: (message: string) => string | undefined;
}

const stdout: Output = {
  print: (t) => void process.stdout.write(t),
  printBytes: (b) => void process.stdout.write(b),
  error: (l) => void process.stderr.write(`error: ${l}\n`),
  warn: (l) => void process.stderr.write(`${logTime(new Date())}: ${process.pid}: warning : ${l}\n`),
};

/** libvirt's log time stamp: 2026-11-26 09:47:49.759+0000. */
const logTime = (d: Date): string => d.toISOString().replace('T', ' ').replace('Z', '+0000');

/** Warnings carried by an error or any of its causes, outermost first. */
function warningsOf(e: unknown): string[] {
  const out: string[] = [];
  for (let x = e; x; x = (x as { cause?: unknown }).cause) {
    if (isVirtError(x)) out.push(...x.warnings);
  }
  return out;
}

export function findCommand<Ctx>(spec: ShellSpec<Ctx>, name: string): CommandDef<Ctx> | undefined {
  return spec.commands.find((c) => c.name === name || c.aliases?.includes(name));
}

function usage<Ctx>(spec: ShellSpec<Ctx>): string {
  const lines = [
    '',
    `${spec.prog} [options]... [<command_string>]`,
    `${spec.prog} [options]... <command> [args...]`,
    '',
    '  options:',
    '    -c | --connect=URI      connection URI',
    '    -h | --help             this help',
    '    -q | --quiet            quiet mode',
  ];
  if (spec.readonlyFlag) lines.push('    -r | --readonly         connect readonly');
  lines.push('    -v | -V | --version     program version', '', '  commands (non interactive mode):', '');
  const groups = [...new Set(spec.commands.map((c) => c.group))];
  for (const g of groups) {
    lines.push(` ${g}`);
    for (const c of spec.commands.filter((x) => x.group === g)) lines.push(`    ${c.name.padEnd(30)} ${c.help}`);
    lines.push('');
  }
  lines.push(`  (specify help <command> for details about the command)`, '');
  return lines.join('\n') + '\n';
}

/** The help text of one command, laid out like virsh's. */
export function commandHelp<Ctx>(cmd: CommandDef<Ctx>): string {
  const syn = cmd.opts.map((o) => {
    const arg = o.type === 'bool' ? `--${o.name}` : o.positional ? `[--${o.name}] <${o.type}>` : `--${o.name} <${o.type}>`;
    return o.required ? arg : `[${arg}]`;
  });
  const lines = ['  NAME', `    ${cmd.name} - ${cmd.help}`, '', '  SYNOPSIS', `    ${[cmd.name, ...syn].join(' ')}`, ''];
  if (cmd.aliases?.length) lines.push('  ALIASES', `    ${cmd.aliases.join(', ')}`, '');
  lines.push('  DESCRIPTION', `    ${cmd.desc ?? cmd.help}`, '');
  if (cmd.opts.length) {
    lines.push('  OPTIONS');
    for (const o of cmd.opts) {
      const arg = o.type === 'bool' ? `--${o.name}` : `${o.positional ? '[--' + o.name + '] ' : '--' + o.name + ' '}<${o.type}>`;
      lines.push(`    ${arg.padEnd(22)} ${o.help}`);
    }
    lines.push('');
  }
  return lines.join('\n') + '\n';
}

interface Parsed { globals: GlobalOptions; rest: string[]; help: boolean; version: boolean }

function parseGlobals<Ctx>(spec: ShellSpec<Ctx>, argv: readonly string[]): Parsed {
  let connect: string | undefined;
  let quiet = false;
  let ro = false;
  let help = false;
  let version = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') break;
    if (a === '--') { i++; break; }
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new CommandError(`option '${flag}' requires an argument`);
      return v;
    };
    switch (flag) {
      case '-c': case '--connect': connect = value(); break;
      case '-q': case '--quiet': quiet = true; break;
      case '-h': case '--help': help = true; break;
      case '-v': case '-V': case '--version': version = true; break;
      case '-d': case '--debug': case '-l': case '--log': value(); break;
      case '-r': case '--readonly':
        if (!spec.readonlyFlag) throw new CommandError(`unsupported option '${flag}'. See --help.`);
        ro = true;
        break;
      default:
        if (/^-c./.test(a)) { connect = a.slice(2); break; }
        throw new CommandError(`unsupported option '${a}'. See --help.`);
    }
  }
  return { globals: { ...(connect !== undefined ? { connect } : {}), quiet, readonly: ro }, rest: argv.slice(i), help, version };
}

/** Runs one command line; returns the exit status. */
export async function runShell<Ctx>(spec: ShellSpec<Ctx>, argv: readonly string[], out: Output = stdout): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseGlobals(spec, argv);
  } catch (e) {
    out.error((e as Error).message);
    return 1;
  }
  if (parsed.help) { out.print(usage(spec)); return 0; }
  if (parsed.version) { out.print(`${spec.version()}\n`); return 0; }
  const ctx = spec.context(parsed.globals, out);
  try {
    if (parsed.rest.length) return (await runOne(spec, ctx, parsed.rest, out, parsed.globals)) ? 0 : 1;
    return await interactive(spec, ctx, out, parsed.globals);
  } finally {
    await spec.close(ctx);
  }
}

async function runOne<Ctx>(spec: ShellSpec<Ctx>, ctx: Ctx, words: readonly string[], out: Output, g: GlobalOptions): Promise<boolean> {
  const [name, ...args] = words;
  if (!name) return true;
  if (name === 'help') {
    const which = args[0] ? findCommand(spec, args[0]) : undefined;
    // A group keyword lists that group's commands, as virsh's help does.
    const group = args[0] && !which ? spec.commands.filter((c) => c.group.includes(`help keyword '${args[0]}'`)) : [];
    if (args[0] && !which && !group.length) { out.error(`command or command group '${args[0]}' doesn't exist`); return false; }
    if (group.length) {
      out.print(` ${group[0]!.group}\n${group.map((c) => `    ${c.name.padEnd(30)} ${c.help}\n`).join('')}\n`);
      return true;
    }
    out.print(which ? commandHelp(which) : usage(spec));
    return true;
  }
  const cmd = findCommand(spec, name);
  if (!cmd) {
    out.error(`unknown command: '${name}'`);
    return false;
  }
  try {
    const opts = parseOpts(cmd as CommandDef<unknown>, args);
    const ok = (await cmd.run(ctx, opts)) !== false;
    if (!g.quiet) out.print('\n');
    return ok;
  } catch (e) {
    // libvirt logs them as they happen, so they come before the error lines.
    for (const w of warningsOf(e)) out.warn?.(w);
    report(spec, e, out);
    if (!g.quiet && !isConnectFailure(e)) out.print('\n');
    return false;
  }
}

function report<Ctx>(spec: ShellSpec<Ctx>, e: unknown, out: Output): void {
  if (e instanceof CommandError) {
    for (const l of e.lines) out.error(l);
    const cause = (e as { cause?: unknown }).cause;
    if (cause) report(spec, cause, out);
    return;
  }
  if (isVirtError(e)) {
    const pre = spec.connectFailure?.(e.message);
    if (pre) out.error(pre);
    out.error(e.message);
    return;
  }
  out.error(e instanceof Error ? e.message : String(e));
}

async function interactive<Ctx>(spec: ShellSpec<Ctx>, ctx: Ctx, out: Output, g: GlobalOptions): Promise<number> {
  const tty = !!process.stdin.isTTY;
  const rl = readline.createInterface({ input: process.stdin, ...(tty ? { output: process.stdout, prompt: `${spec.prog} # ` } : {}), terminal: tty });
  let status = 0;
  if (tty) rl.prompt();
  for await (const line of rl) {
    let words: string[];
    try {
      words = splitLine(line);
    } catch (e) {
      report(spec, e, out);
      continue;
    }
    if (words[0] === 'quit' || words[0] === 'exit') break;
    status = (await runOne(spec, ctx, words, out, { ...g, quiet: true })) ? 0 : 1;
    if (tty) rl.prompt();
  }
  rl.close();
  return status;
}

export function withContext(context: string, e: unknown): CommandError {
  const err = new CommandError(context);
  (err as { cause?: unknown }).cause = e;
  return err;
}
