// Node opens its inspector on port 9229 when a SIGUSR1 lands before any
// handler is installed. Tests ask whether one particular process did: a
// machine-wide look at the port would also see other tests beside it.
import fs from 'node:fs';

const PORT_HEX = ':240D'; // 9229 as /proc/net/tcp prints it
const LISTEN = '0A';

/** What Node prints on stderr when a SIGUSR1 starts (or fails to start) its inspector. */
export const INSPECTOR_STARTED = /Debugger listening on|Starting inspector on/;

/** Whether `pid` holds a socket listening on 9229 (looked up in its own network namespace). */
export function inspectorOpenIn(pid: number): boolean {
  const inodes = new Set<string>();
  for (const f of ['tcp', 'tcp6']) {
    let text = '';
    try { text = fs.readFileSync(`/proc/${pid}/net/${f}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.toUpperCase().endsWith(PORT_HEX) && cols[3] === LISTEN) inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return false;
  let fds: string[];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return false; }
  return fds.some((fd) => {
    try { return inodes.has(/^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? ''); } catch { return false; }
  });
}
