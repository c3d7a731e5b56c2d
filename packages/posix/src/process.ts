// Process-level calls Node 20 lacks: execve in place, reaping, rlimits.
import { bound, check, errno, ERRNO, PosixError } from './libc.js';

/**
 * Replaces this process image, keeping the pid and every fd not marked
 * close-on-exec. Only returns by throwing.
 */
export function execve(path: string, argv: string[], env: Record<string, string | undefined>): never {
  const envp = Object.entries(env)
    .filter((kv): kv is [string, string] => kv[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  bound().execve(path, [...argv, null], [...envp, null]);
  throw new PosixError('execve', errno(), path);
}

const WNOHANG = 1;

export interface Reaped { pid: number; status: number }

/** Reaps every child that has exited, without waiting. */
export function reapChildren(): Reaped[] {
  const out: Reaped[] = [];
  for (;;) {
    const status = [0];
    const pid = bound().waitpid(-1, status, WNOHANG) as number;
    if (pid > 0) { out.push({ pid, status: status[0]! }); continue; }
    if (pid === -1 && errno() !== ERRNO.ECHILD) throw new PosixError('waitpid', errno());
    return out;
  }
}

/**
 * Reaps one child if it has exited: its status, 'running', or 'unknown'
 * when it is not (or no longer) our child.
 */
export function reapPid(pid: number): Reaped | 'running' | 'unknown' {
  const status = [0];
  const r = bound().waitpid(pid, status, WNOHANG) as number;
  if (r === pid) return { pid, status: status[0]! };
  if (r === 0) return 'running';
  return 'unknown';
}

export const RLIMIT_NOFILE = 7;

export interface Rlimit { cur: number; max: number }

export function getRlimit(resource: number): Rlimit {
  const out: { cur?: bigint | number; max?: bigint | number } = {};
  check('getrlimit', bound().getrlimit(resource, out));
  const num = (v: bigint | number | undefined): number =>
    v === undefined || BigInt(v) >= 0x7fffffffffffffffn ? Infinity : Number(v);
  return { cur: num(out.cur), max: num(out.max) };
}

export function setRlimit(resource: number, lim: Rlimit): void {
  const big = (n: number): bigint => (Number.isFinite(n) ? BigInt(n) : 0xffffffffffffffffn);
  check('setrlimit', bound().setrlimit(resource, { cur: big(lim.cur), max: big(lim.max) }));
}
