// Secrets on disk, in libvirt's layout: <dir>/<uuid>.xml and, once a value
// is set, <dir>/<uuid>.base64, both 0600 in a 0700 directory. Every file is
// written to a temporary name, fsync'd and renamed over the old one (then
// the directory is fsync'd), so a crash at any point leaves either the old
// or the new content, never a torn file.
//
// The XML file is the commit point of a secret: a value file without one is
// never loaded. So a secret written whole (definition and value at once)
// gets its value first, and a removal unlinks the definition first; a crash
// in between leaves an orphaned value file, which the next load removes,
// together with temporary files a killed daemon left (test/src/crash.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { VirtError } from '@virtd/errors';
import { parseSecretXml, formatSecretXml, type SecretDef } from './def.js';

export interface StoredSecret {
  def: SecretDef;
  value?: Buffer;
}

export class SecretStore {
  readonly dir: string;
  private readonly log: Logger;

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.log = log;
  }

  /** Loads every persistent secret; broken files are logged and skipped, as libvirt does. */
  load(): StoredSecret[] {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.removeDebris();
    const out: StoredSecret[] = [];
    for (const f of fs.readdirSync(this.dir).filter((n) => n.endsWith('.xml') && !n.startsWith('.')).sort()) {
      const file = path.join(this.dir, f);
      try {
        const def = parseSecretXml(fs.readFileSync(file, 'utf8'));
        if (`${def.uuid}.xml` !== f) throw new Error(`file name does not match uuid ${def.uuid}`);
        const valueFile = path.join(this.dir, `${def.uuid}.base64`);
        const b64 = fs.existsSync(valueFile) ? fs.readFileSync(valueFile, 'utf8').trim() : undefined;
        out.push({ def, ...(b64 !== undefined ? { value: Buffer.from(b64, 'base64') } : {}) });
      } catch (e) {
        this.log.error({ err: e, file }, 'skipping unreadable secret file');
      }
    }
    return out;
  }

  saveDef(def: SecretDef): void {
    this.atomicWrite(`${def.uuid}.xml`, formatSecretXml(def));
  }

  saveValue(uuid: string, value: Buffer): void {
    this.atomicWrite(`${uuid}.base64`, value.toString('base64'));
  }

  /** A secret that was not on disk (new, or ephemeral until now) with its value: value first. */
  saveNew(def: SecretDef, value: Buffer | undefined): void {
    if (value) this.saveValue(def.uuid, value);
    this.saveDef(def);
  }

  remove(uuid: string): void {
    for (const f of [`${uuid}.xml`, `${uuid}.base64`]) {
      try { fs.unlinkSync(path.join(this.dir, f)); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.failed('delete', f, e);
      }
    }
    this.syncDir();
  }

  /**
   * What a killed writer leaves: temporary files of processes that are
   * gone, and value files whose definition is not there (a define or a
   * removal cut short). Nothing here is ever loaded; it would only pile up,
   * or lend a stale value to a secret later defined with that UUID.
   */
  private removeDebris(): void {
    const names = fs.readdirSync(this.dir);
    const has = new Set(names);
    for (const f of names) {
      const tmp = /^\..+\.(\d+)\.tmp$/.exec(f);
      const debris = tmp ? !isAlive(Number(tmp[1]))
        : f.endsWith('.base64') && !f.startsWith('.') && !has.has(`${f.slice(0, -'.base64'.length)}.xml`);
      if (!debris) continue;
      try {
        fs.unlinkSync(path.join(this.dir, f));
        this.log.warn({ file: path.join(this.dir, f) }, tmp ? 'removed a temporary file left by an interrupted write'
          : 'removed a secret value file without a definition (an interrupted define or delete)');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ err: e, file: f }, 'cannot remove leftover secret file');
      }
    }
  }

  private atomicWrite(name: string, text: string): void {
    const final = path.join(this.dir, name);
    const tmp = path.join(this.dir, `.${name}.${process.pid}.tmp`);
    let fd: number | undefined;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = undefined;
      fs.renameSync(tmp, final);
      this.syncDir();
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw this.failed('write', name, e);
    }
  }

  private syncDir(): void {
    const fd = fs.openSync(this.dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  }

  private failed(op: string, name: string, e: unknown): VirtError {
    return new VirtError('SYSTEM_ERROR', 'SECRET', undefined, {
      message: `cannot ${op} secret file '${path.join(this.dir, name)}': ${(e as Error).message}`, cause: e,
    });
  }
}

/** Whether another process with this pid exists (at load we write nothing, so files of our pid are stale too). */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
