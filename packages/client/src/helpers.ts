// Clients of the two helper daemons: virtlogd's LogManager (what a
// hypervisor daemon calls to give a guest a log pipe) and virtlockd's
// LockSpace (what a guest's lock plugin calls), with the default socket of
// each for the caller's mode.
import path from 'node:path';
import { LogManagerService } from '@virtd/protocol/logd';
import { LockSpaceService } from '@virtd/protocol/lockd';
import { Connection, unixTarget } from './connection.js';
import { socketDir, type Env } from './paths.js';
import { receiveFds } from './fd-handoff.js';

export interface Domain { uuid: string; name: string }
export interface LogFilePosition { inode: number; offset: number }
export interface OpenLogFile { path: string; driver: string; dom: Domain; pos: LogFilePosition }

/** virtlogd's / virtlockd's main socket: root's under /run/libvirt, a user's under $XDG_RUNTIME_DIR. */
export function helperSocket(daemon: 'virtlogd' | 'virtlockd', euid: number, env: Env): string {
  return path.join(socketDir(euid === 0 ? 'system' : 'session', env), `${daemon}-sock`);
}

const pos = (p: { inode?: number | null; offset?: number | null } | null | undefined): LogFilePosition =>
  ({ inode: Number(p?.inode ?? 0), offset: Number(p?.offset ?? 0) });

export class LogManagerClient {
  readonly socket: string;
  private readonly conn: Connection;

  constructor(socket: string) {
    this.socket = socket;
    this.conn = new Connection(unixTarget(socket));
  }

  /** Opens `file` for a domain; resolves with the pipe's write end, an fd the caller owns. */
  async openLogFile(driver: string, dom: Domain, file: string, flags = 0): Promise<{ fd: number; pos: LogFilePosition }> {
    const r = await this.conn.unary<object, { pos?: object; fdTicket?: string }>(LogManagerService, 'OpenLogFile', { driver, dom, path: file, flags });
    const [fd] = await receiveFds(this.socket, r.fdTicket ?? '');
    return { fd: fd!, pos: pos(r.pos) };
  }

  async getLogFilePosition(file: string): Promise<LogFilePosition> {
    return pos(await this.conn.unary(LogManagerService, 'GetLogFilePosition', { path: file, flags: 0 }));
  }

  async readLogFile(file: string, at: LogFilePosition, maxlen: number): Promise<Buffer> {
    const r = await this.conn.unary<object, { data?: Uint8Array }>(LogManagerService, 'ReadLogFile', { path: file, pos: at, maxlen, flags: 0 });
    return Buffer.from(r.data ?? new Uint8Array());
  }

  async appendLogFile(driver: string, dom: Domain, file: string, message: string): Promise<void> {
    await this.conn.unary(LogManagerService, 'AppendLogFile', { driver, dom, path: file, message, flags: 0 });
  }

  async list(): Promise<OpenLogFile[]> {
    const r = await this.conn.unary<object, { files?: { path?: string; driver?: string; dom?: Partial<Domain>; pos?: object }[] }>(
      LogManagerService, 'ListLogFiles', {});
    return (r.files ?? []).map((f) => ({
      path: f.path ?? '', driver: f.driver ?? '', dom: { uuid: f.dom?.uuid ?? '', name: f.dom?.name ?? '' }, pos: pos(f.pos),
    }));
  }

  get connected(): boolean {
    return this.conn.connected;
  }

  close(): void {
    this.conn.close();
  }
}

export interface LockOwner { uuid: string; name: string; id: number; pid: number }
export interface HeldResource { lockspace: string; name: string; path: string; shared: boolean; owners: number[] }

/** libvirt's VIR_LOCK_SPACE_PROTOCOL_ACQUIRE_RESOURCE_* flags. */
export const LOCK_ACQUIRE = { SHARED: 1, AUTOCREATE: 2 } as const;

export class LockClient {
  readonly socket: string;
  private readonly conn: Connection;

  constructor(socket: string) {
    this.socket = socket;
    this.conn = new Connection(unixTarget(socket));
  }

  private async call(method: keyof typeof LockSpaceService, req: object): Promise<void> {
    await this.conn.unary(LockSpaceService, method, req);
  }

  register(owner: LockOwner): Promise<void> { return this.call('Register', { owner, flags: 0 }); }
  restrict(): Promise<void> { return this.call('Restrict', { flags: 0 }); }
  newLockSpace(dir: string): Promise<void> { return this.call('New', { path: dir, flags: 0 }); }
  createLockSpace(dir: string): Promise<void> { return this.call('CreateLockSpace', { path: dir }); }
  createResource(lockspace: string, name: string): Promise<void> { return this.call('CreateResource', { path: lockspace, name, flags: 0 }); }
  deleteResource(lockspace: string, name: string): Promise<void> { return this.call('DeleteResource', { path: lockspace, name, flags: 0 }); }
  acquire(lockspace: string, name: string, flags = 0): Promise<void> { return this.call('AcquireResource', { path: lockspace, name, flags }); }
  release(lockspace: string, name: string): Promise<void> { return this.call('ReleaseResource', { path: lockspace, name, flags: 0 }); }

  async list(): Promise<HeldResource[]> {
    const r = await this.conn.unary<object, { resources?: Partial<HeldResource>[] }>(LockSpaceService, 'List', {});
    return (r.resources ?? []).map((x) => ({
      lockspace: x.lockspace ?? '', name: x.name ?? '', path: x.path ?? '', shared: !!x.shared, owners: (x.owners ?? []).map(Number),
    }));
  }

  get connected(): boolean {
    return this.conn.connected;
  }

  close(): void {
    this.conn.close();
  }
}
