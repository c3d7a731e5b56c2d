// Where the daemons' sockets are, as the client library computes them.
import path from 'node:path';

export type Env = Readonly<Record<string, string | undefined>>;

/** /run/libvirt for system, $XDG_RUNTIME_DIR/libvirt (or ~/.cache/libvirt) for session. */
export function socketDir(mode: 'system' | 'session', env: Env): string {
  if (mode === 'system') return '/run/libvirt';
  const runtime = env.XDG_RUNTIME_DIR || path.join(env.XDG_CACHE_HOME || path.join(env.HOME ?? '/', '.cache'));
  return path.join(runtime, 'libvirt');
}

export function configDir(mode: 'system' | 'session', env: Env): string {
  if (mode === 'system') return '/etc/libvirt';
  return path.join(env.XDG_CONFIG_HOME || path.join(env.HOME ?? '/', '.config'), 'libvirt');
}
