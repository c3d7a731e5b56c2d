// Handing file descriptors to clients (server side). A program that wants
// to give a client an fd offers it here and replies with the ticket; the
// client redeems the ticket on a fresh connection to the same socket, which
// the server recognises by its first bytes (sniffConnection) and passes to
// serve(). The fds go out with sendmsg on the accepted socket's own fd:
// sending SCM_RIGHTS works on a libuv socket, only receiving does not.
// Wire format: @virtd/protocol/fd-handoff.
import crypto from 'node:crypto';
import type net from 'node:net';
import type { Logger } from 'pino';
import { sendWithFds, closeFd, setCloexec } from '@virtd/posix';
import {
  FD_HANDOFF_MAGIC, FD_HANDOFF_MAX_LINE, TICKET_PATTERN, sniff, okReply, errReply,
} from '@virtd/protocol/fd-handoff';

/** An unredeemed ticket lives this long; then its fds are closed. */
export const TICKET_TTL_MS = 30_000;

interface Ticket {
  readonly fds: number[];
  /** Only a peer with this uid may redeem it (the caller's). */
  readonly uid: number | undefined;
  readonly expires: number;
}

/** A ticket as the re-exec state file carries it. */
export interface TicketState {
  ticket: string;
  fds: number[];
  uid?: number;
  expires: number;
}

export class FdHandoff {
  private readonly tickets = new Map<string, Ticket>();
  private readonly log: Logger;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(log: Logger) {
    this.log = log;
  }

  /** Takes ownership of `fds` until they are redeemed or the ticket expires. */
  offer(fds: number[], uid: number | undefined): string {
    const ticket = crypto.randomBytes(16).toString('hex');
    this.tickets.set(ticket, { fds, uid, expires: Date.now() + TICKET_TTL_MS });
    this.armSweeper();
    return ticket;
  }

  /** Answers a hand-over connection; `head` is what sniffing already read. */
  serve(sock: net.Socket, head: Buffer, peerUid: number | undefined): void {
    let line = head;
    const finish = (): void => {
      sock.off('data', onData);
      const text = line.toString('latin1');
      const nl = text.indexOf('\n');
      const ticket = text.slice(FD_HANDOFF_MAGIC.length, nl);
      this.redeem(sock, ticket, peerUid);
    };
    const onData = (d: Buffer): void => {
      line = Buffer.concat([line, d]);
      if (line.includes(0x0a)) finish();
      else if (line.length > FD_HANDOFF_MAX_LINE) sock.destroy();
    };
    if (line.includes(0x0a)) { finish(); return; }
    sock.on('data', onData);
    sock.resume();
  }

  private redeem(sock: net.Socket, ticket: string, peerUid: number | undefined): void {
    const t = TICKET_PATTERN.test(ticket) ? this.tickets.get(ticket) : undefined;
    const fd = (sock as unknown as { _handle?: { fd: number } })._handle?.fd;
    let reply: Buffer;
    let fds: number[] = [];
    if (!t || t.expires < Date.now()) reply = errReply('unknown or expired ticket');
    else if (t.uid !== undefined && peerUid !== t.uid) reply = errReply('ticket belongs to another user');
    else {
      reply = okReply(t.fds.length);
      fds = t.fds;
    }
    try {
      if (fd === undefined || sendWithFds(fd, reply, fds) !== reply.length) throw new Error('short send');
      if (fds.length) {
        // Sent: our copies go, as libvirt closes its pipe write end.
        this.tickets.delete(ticket);
        for (const f of fds) closeFd(f);
      }
    } catch (e) {
      this.log.warn({ err: e }, 'could not hand over fds; the ticket stays valid');
    }
    sock.destroy();
  }

  /** The fds held for tickets, kept across a re-exec. */
  fds(): number[] {
    return [...this.tickets.values()].flatMap((t) => t.fds);
  }

  toState(): TicketState[] {
    return [...this.tickets].map(([ticket, t]) => ({ ticket, fds: t.fds, ...(t.uid !== undefined ? { uid: t.uid } : {}), expires: t.expires }));
  }

  restore(state: readonly TicketState[]): void {
    for (const s of state) {
      for (const f of s.fds) setCloexec(f, true);
      this.tickets.set(s.ticket, { fds: [...s.fds], uid: s.uid, expires: s.expires });
    }
    if (state.length) this.armSweeper();
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const t of this.tickets.values()) for (const f of t.fds) closeFd(f);
    this.tickets.clear();
  }

  private armSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, t] of this.tickets) {
        if (t.expires >= now) continue;
        this.tickets.delete(k);
        for (const f of t.fds) closeFd(f);
      }
      if (!this.tickets.size) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, 1000);
    this.sweeper.unref();
  }
}

export type SniffResult = { kind: 'fd-handoff'; head: Buffer } | { kind: 'other' } | { kind: 'closed' };

/**
 * Reads a new connection's first bytes to tell a hand-over from HTTP/2.
 * For 'other' the bytes read are pushed back into the socket. cancel()
 * settles it as 'other' at once (a re-exec cannot wait for a silent peer).
 */
export function sniffConnection(sock: net.Socket): { result: Promise<SniffResult>; cancel: () => void } {
  let head: Buffer = Buffer.alloc(0);
  let settle: (r: SniffResult) => void = () => {};
  const result = new Promise<SniffResult>((resolve) => { settle = resolve; });
  let settled = false;
  const done = (r: SniffResult): void => {
    if (settled) return;
    settled = true;
    sock.off('data', onData);
    sock.off('close', onClose);
    sock.pause();
    if (r.kind === 'other' && head.length) sock.unshift(head);
    settle(r);
  };
  const onData = (d: Buffer): void => {
    head = head.length ? Buffer.concat([head, d]) : d;
    const k = sniff(head);
    if (k === 'other') done({ kind: 'other' });
    else if (k === 'fd-handoff') done({ kind: 'fd-handoff', head });
  };
  const onClose = (): void => done({ kind: 'closed' });
  sock.on('data', onData);
  sock.once('close', onClose);
  sock.resume();
  return { result, cancel: () => done({ kind: 'other' }) };
}
