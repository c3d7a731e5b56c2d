// Redeeming an fd ticket (client side of the core's fd hand-over): a second
// connection to the daemon's socket, owned by us rather than libuv, because
// a libuv-read socket drops SCM_RIGHTS fds. Readiness comes from poll(2) on
// a koffi worker thread, so the event loop never blocks.
import { connectUnix, sendWithFds, recvWithFds, waitReadable, closeFd } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import { FD_HANDOFF_MAGIC, parseReply } from '@virtd/protocol/fd-handoff';

/** Fetches the fds a call's reply promised, as close-on-exec fds we now own. */
export async function receiveFds(socketPath: string, ticket: string, timeoutMs = 10_000): Promise<number[]> {
  const sock = connectUnix(socketPath);
  const fds: number[] = [];
  try {
    sendWithFds(sock, Buffer.from(`${FD_HANDOFF_MAGIC}${ticket}\n`), []);
    const deadline = Date.now() + timeoutMs;
    let line = '';
    while (!line.includes('\n')) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await waitReadable(sock, left))) throw new Error('no answer in time');
      const r = recvWithFds(sock, 256, 16);
      if (!r) continue;
      fds.push(...r.fds);
      if (r.data.length === 0) throw new Error('connection closed before the answer');
      line += r.data.toString('latin1');
    }
    const n = parseReply(line);
    if (fds.length !== n) throw new Error(`expected ${n} fds, got ${fds.length}`);
    return fds;
  } catch (e) {
    for (const f of fds) closeFd(f);
    throw VirtError.raw('SYSTEM_ERROR', 'RPC', `Unable to receive file descriptors from ${socketPath}: ${(e as Error).message}`);
  } finally {
    closeFd(sock);
  }
}
