import { spawn } from 'node:child_process';
import type { TestUser } from './users.js';

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface RunOptions {
  readonly user?: TestUser;
  readonly env?: Record<string, string>;
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/** Runs a command to completion (as `user` when given), collecting its output. */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      ...(o.user ? { uid: o.user.uid, gid: o.user.gid, cwd: o.cwd ?? o.user.home } : o.cwd ? { cwd: o.cwd } : {}),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(o.user ? { HOME: o.user.home } : { HOME: process.env.HOME ?? '/root' }), ...(o.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    const t = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    p.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
    // A child may exit without reading its input; that is not our failure.
    p.stdin.on('error', () => undefined);
    p.stdin.end(o.input ?? '');
  });
}
