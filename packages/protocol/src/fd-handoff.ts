// The fd hand-over wire format. gRPC cannot carry file descriptors, so a
// call that hands one out (virtlogd's OpenLogFile: the write end of a log
// pipe) replies with a ticket; the client redeems it on a second connection
// to the same socket, which the server tells apart from HTTP/2 by its first
// bytes:
//
//   client → server   "VIRTD-FD1 <ticket>\n"
//   server → client   one message "OK <n>\n" carrying n fds (SCM_RIGHTS),
//                     or "ERR <reason>\n" and no fds; then the server closes.

/** What a hand-over connection starts with; HTTP/2 starts with "PRI ". */
export const FD_HANDOFF_MAGIC = 'VIRTD-FD1 ';
/** Bytes enough to tell the two apart. */
export const SNIFF_BYTES = 4;
/** A request line is never longer than this. */
export const FD_HANDOFF_MAX_LINE = 128;
/** Tickets are 128 random bits, hex. */
export const TICKET_PATTERN = /^[0-9a-f]{32}$/;

export type Sniffed = 'fd-handoff' | 'other' | 'undecided';

export function sniff(head: Buffer): Sniffed {
  const n = Math.min(head.length, FD_HANDOFF_MAGIC.length);
  if (n < SNIFF_BYTES) return 'undecided';
  return head.subarray(0, n).toString('latin1') === FD_HANDOFF_MAGIC.slice(0, n) ? 'fd-handoff' : 'other';
}

export const okReply = (n: number): Buffer => Buffer.from(`OK ${n}\n`);
export const errReply = (why: string): Buffer => Buffer.from(`ERR ${why.replace(/\n/g, ' ')}\n`);

/** Parses the server's reply line; an error reply throws with its reason. */
export function parseReply(line: string): number {
  const ok = /^OK (\d+)\n$/.exec(line);
  if (ok) return Number(ok[1]);
  const err = /^ERR (.*)\n$/.exec(line);
  throw new Error(err ? err[1] : `bad fd hand-over reply ${JSON.stringify(line.slice(0, 64))}`);
}
