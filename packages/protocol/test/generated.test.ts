// The generated code is committed; this fails when it no longer matches
// what the generator makes from proto/, i.e. someone edited a .proto and
// forgot `npm run generate -w @virtd/protocol`.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AdminMethods, AdminService } from '../src/generated/admin.js';
import { HealthMethods } from '../src/generated/health.js';
import { ServerReflectionMethods } from '../src/generated/reflection.js';

const pkg = path.resolve(__dirname, '../..');

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => !fs.statSync(path.join(dir, f)).isDirectory()).sort();
}

t.test('generated code is up to date', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-gen-check-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [path.join(pkg, 'scripts/generate.mjs'), '--out', out], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  for (const sub of ['generated', 'src/generated']) {
    const want = listFiles(path.join(out, sub));
    t.same(listFiles(path.join(pkg, sub)), want, `${sub}: same files`);
    for (const f of want) {
      const fresh = fs.readFileSync(path.join(out, sub, f), 'utf8');
      const committed = fs.readFileSync(path.join(pkg, sub, f), 'utf8');
      t.ok(fresh === committed, `${sub}/${f} is stale: run npm run generate -w @virtd/protocol`);
    }
  }
});

t.test('every method declares its access', async (t) => {
  const tables = [AdminMethods, HealthMethods, ServerReflectionMethods];
  for (const table of tables) {
    for (const [p, info] of Object.entries(table as Record<string, { access: string }>)) {
      t.match(info.access, /^(read|write)$/, p);
    }
  }
  const admin = AdminMethods;
  t.equal(admin['/virtd.admin.v1.Admin/ListServers']!.access, 'read', 'options are read from the .proto');
  t.equal(admin['/virtd.admin.v1.Admin/SetDaemonTimeout']!.access, 'write');
  t.equal(admin['/virtd.admin.v1.Admin/ListServers']!.priority, true);
});

t.test('codecs round-trip and keep 64-bit ids as numbers', async (t) => {
  const buf = AdminService.LookupClient.requestSerialize({ server: 'virtqemud', id: 2 ** 40 + 7 });
  const back = AdminService.LookupClient.requestDeserialize(buf);
  t.equal(back.server, 'virtqemud');
  t.equal(back.id, 2 ** 40 + 7);
  const set = AdminService.SetClientLimits.requestDeserialize(
    AdminService.SetClientLimits.requestSerialize({ server: 'x', nclientsMax: 0 }));
  t.equal(set.nclientsMax, 0, 'optional field present with a zero value');
  t.equal(set.nclientsUnauthMax, null, 'absent optional field is null');
});
