// Real ordinary users for session-mode tests (never root pretending).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { tempDir } from './tmp.js';

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export const isRoot = (): boolean => process.geteuid?.() === 0;

/**
 * tap follows every child process (its processinfo hook rides along in the
 * environment) and records it under .tap/processinfo at exit; a child
 * running as another user must be able to write there.
 */
export function letOtherUsersReport(): void {
  if (!process.env.TAP) return;
  const dir = path.resolve(__dirname, '../../../../.tap/processinfo');
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o1777);
  } catch { /* not under tap's project root */ }
}

/** The user, created with a home directory if missing (needs root). */
export function ensureUser(name: string): TestUser {
  const lookup = (): string | undefined => {
    try { return execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim(); } catch { return undefined; }
  };
  let line = lookup();
  if (!line) {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', name], { stdio: 'ignore' });
    } catch (e) {
      // Another test process may have created it in the meantime.
      if (!lookup()) throw e;
    }
    line = lookup();
  }
  const f = line!.split(':');
  letOtherUsersReport();
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

/**
 * A private XDG_RUNTIME_DIR for the user (0700, owned by them), like
 * /run/user/UID but isolated per test.
 */
export function runtimeDirFor(user: TestUser): string {
  const base = tempDir('virtd-xdg-');
  const dir = path.join(base, `run-${user.uid}`);
  // Config and cache directories beside it, so tests never share (or
  // spoil) the user's real ~/.config and ~/.cache.
  for (const d of [dir, `${dir}.config`, `${dir}.cache`]) {
    fs.mkdirSync(d, { mode: 0o700 });
    fs.chownSync(d, user.uid, user.gid);
  }
  return dir;
}

/** The environment a login session of the user would have, with the test's private XDG directories. */
export function userEnv(user: TestUser, runtimeDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: `${runtimeDir}.config`,
    XDG_CACHE_HOME: `${runtimeDir}.cache`,
    ...extra,
  };
}
