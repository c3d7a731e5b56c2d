// Native journal entries (MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=, …).
import fs from 'node:fs';
import { libsystemd } from './libsystemd.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

/** True when journald is reachable, the test libvirt uses to pick its default output. */
export function journalAvailable(socketPath = JOURNAL_SOCKET): boolean {
  try {
    fs.accessSync(socketPath, fs.constants.W_OK);
    return libsystemd() !== null;
  } catch {
    return false;
  }
}

/** Sends one entry; field names must be upper-case journal field names. */
export function journalSend(fields: Record<string, string | number>): boolean {
  const lib = libsystemd();
  if (!lib) return false;
  const parts = Object.entries(fields).map(([k, v]) => Buffer.from(`${k}=${v}`));
  const iov = Buffer.alloc(16 * parts.length);
  parts.forEach((p, i) => {
    iov.writeBigUInt64LE(lib.koffi.address(p), 16 * i);
    iov.writeBigUInt64LE(BigInt(p.length), 16 * i + 8);
  });
  return lib.journalSendv(iov, parts.length) >= 0;
}
