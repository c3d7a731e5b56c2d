export { runShell, type ShellSpec, type GlobalOptions, type Output } from './shell/shell.js';
export { formatTable, kv, localTime } from './shell/table.js';
export { parseOpts, splitLine, CommandError, type CommandDef, type OptDef } from './shell/command.js';
