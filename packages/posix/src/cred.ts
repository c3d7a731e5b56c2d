// Who is on the other end of a UNIX socket, and the names behind ids.
import { bound, check, address } from './libc.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface PeerCred { pid: number; uid: number; gid: number }

/** SO_PEERCRED of a connected UNIX socket. Meaningless on TCP: callers check the transport. */
export function peerCred(fd: number): PeerCred {
  const out: Partial<PeerCred> = {};
  const len = [12];
  check('getsockopt(SO_PEERCRED)', bound().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, out, len), `fd ${fd}`);
  return { pid: out.pid ?? 0, uid: out.uid ?? 0, gid: out.gid ?? 0 };
}

// struct passwd / struct group both start with a char* name; that is all we read.
const RECORD_SIZE = 64;
const STRBUF_SIZE = 16384;

function nameVia(fn: 'getpwuid_r' | 'getgrgid_r', id: number): string | undefined {
  const rec = Buffer.alloc(RECORD_SIZE);
  const buf = Buffer.alloc(STRBUF_SIZE);
  const result: unknown[] = [null];
  const rc = bound()[fn](id, rec, buf, buf.length, result);
  if (rc !== 0 || !result[0]) return undefined;
  return readCString(rec.readBigUInt64LE(0), buf);
}

function readCString(ptr: bigint, buf: Buffer): string | undefined {
  const base = address(buf);
  const off = Number(ptr - base);
  if (off < 0 || off >= buf.length) return undefined;
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 ? buf.length : end);
}

export const userName = (uid: number): string | undefined => nameVia('getpwuid_r', uid);
export const groupName = (gid: number): string | undefined => nameVia('getgrgid_r', gid);

/** gid of a group name, or undefined when no such group exists. */
export function groupId(name: string): number | undefined {
  const rec = Buffer.alloc(RECORD_SIZE);
  const buf = Buffer.alloc(STRBUF_SIZE);
  const result: unknown[] = [null];
  const rc = bound().getgrnam_r(name, rec, buf, buf.length, result);
  if (rc !== 0 || !result[0]) return undefined;
  // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; ... }
  return rec.readUInt32LE(16);
}

