// vsh: the virsh-like CLI for what the daemons serve so far.
import { runShell } from '../shell/shell.js';
import { versionInfo } from '../vadmin/commands.js';
import { commands, vshContext, type VshContext } from './commands.js';

export async function run(argv: readonly string[]): Promise<number> {
  return runShell<VshContext>({
    prog: 'vsh',
    description: 'the virtd-node management shell',
    commands,
    readonlyFlag: true,
    version: () => versionInfo().VERSION,
    context: vshContext,
    close: (ctx) => ctx.close(),
  }, argv);
}

export function main(argv: readonly string[]): void {
  run(argv).then(
    (code) => { process.exitCode = code; },
    (e) => { process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`); process.exitCode = 1; },
  );
}
