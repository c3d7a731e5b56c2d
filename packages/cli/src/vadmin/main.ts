// vadmin: the admin CLI (virt-admin's verbs and output).
import { runShell } from '../shell/shell.js';
import { commands, adminContext, versionInfo, type AdminContext } from './commands.js';

export async function run(argv: readonly string[]): Promise<number> {
  return runShell<AdminContext>({
    prog: 'vadmin',
    description: 'manage virtd-node daemons over their admin sockets',
    commands,
    version: () => versionInfo().VERSION,
    context: adminContext,
    close: (ctx) => ctx.close(),
    connectFailure: (m) => (m.startsWith('Failed to connect socket') ? 'Failed to connect to the admin server' : undefined),
  }, argv);
}

export function main(argv: readonly string[]): void {
  run(argv).then(
    (code) => { process.exitCode = code; },
    (e) => { process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`); process.exitCode = 1; },
  );
}
