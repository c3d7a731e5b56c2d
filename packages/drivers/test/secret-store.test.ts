// The secret store after a crash: temporary files of dead writers and value
// files without a definition (a define or delete cut short) are removed at
// load and never loaded; an ephemeral secret made persistent is written
// value first, so its definition (the commit point) never appears alone.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { SecretStore } from '../src/secret/store.js';
import { parseSecretXml, formatSecretXml } from '../src/secret/def.js';

const log = pino({ level: 'silent' });
const UUID = '11111111-2222-3333-4444-555555555555';
const ORPHAN = '66666666-7777-8888-9999-000000000000';
const def = parseSecretXml(`<secret ephemeral='no' private='no'><uuid>${UUID}</uuid><usage type='ceph'><name>a</name></usage></secret>`);

t.test('load removes the debris of a killed writer and keeps the rest', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, `${UUID}.xml`), formatSecretXml(def));
  fs.writeFileSync(path.join(dir, `${UUID}.base64`), Buffer.from('value').toString('base64'));
  // A pid no process has (above pid_max's default range) and our own (a stale file of an earlier holder of the pid).
  fs.writeFileSync(path.join(dir, `.${UUID}.base64.999999999.tmp`), 'half');
  fs.writeFileSync(path.join(dir, `.${UUID}.xml.${process.pid}.tmp`), '<secr');
  // A live process's temporary file is its business.
  fs.writeFileSync(path.join(dir, `.${UUID}.xml.1.tmp`), 'in flight');
  fs.writeFileSync(path.join(dir, `${ORPHAN}.base64`), Buffer.from('stale').toString('base64'));

  const loaded = new SecretStore(dir, log).load();
  t.same(loaded.map((s) => [s.def.uuid, s.value?.toString()]), [[UUID, 'value']], 'the whole secret loads');
  t.same(fs.readdirSync(dir).sort(), [`.${UUID}.xml.1.tmp`, `${UUID}.base64`, `${UUID}.xml`].sort(), 'debris removed');
});

t.test('saveNew writes the value before the definition', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new SecretStore(dir, log);
  store.load();
  const order: string[] = [];
  const rename = fs.renameSync;
  fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => { order.push(path.basename(String(to))); rename(from, to); }) as typeof fs.renameSync;
  try { store.saveNew(def, Buffer.from('v')); } finally { fs.renameSync = rename; }
  t.same(order, [`${UUID}.base64`, `${UUID}.xml`]);
  t.same(store.load().map((s) => s.value?.toString()), ['v']);
});
