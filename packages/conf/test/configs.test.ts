import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  clientLimitsProblem, ConfError, lockdConfig, logdConfig, MAX_CONF_FILE_BYTES, parseConf, parseUuid,
  readConfFile, remoteDaemonConfig, type RemoteDaemonContext,
} from '../src/index.js';
import { cases, expectGolden, readCase } from './golden.js';

// remote/<daemon>-<what>.conf: the daemon comes from the case name (IP keys
// for libvirtd and virtproxyd); a first line `# ctx: {...}` overrides the rest.
function contextOf(name: string, text: string): RemoteDaemonContext {
  const daemon = name.split('-')[0]!;
  const header = /^# ctx: (\{.*\})\n/.exec(text);
  return {
    daemon,
    withIP: daemon === 'libvirtd' || daemon === 'virtproxyd',
    privileged: true,
    ...(header ? (JSON.parse(header[1]!) as Partial<RemoteDaemonContext>) : {}),
  };
}

t.test('typed config golden files', async (t) => {
  for (const name of cases('remote')) {
    const text = readCase('remote', name);
    expectGolden(t, 'remote', name, () => remoteDaemonConfig(parseConf(text, `${name}.conf`), contextOf(name, text)));
  }
  for (const name of cases('logd')) {
    expectGolden(t, 'logd', name, () => logdConfig(parseConf(readCase('logd', name), `${name}.conf`)));
  }
  for (const name of cases('lockd')) {
    expectGolden(t, 'lockd', name, () => lockdConfig(parseConf(readCase('lockd', name), `${name}.conf`)));
  }
});

t.test('no file means the same defaults as an empty file', async (t) => {
  for (const daemon of ['libvirtd', 'virtproxyd', 'virtqemud', 'virtnetworkd']) {
    const ctx = { daemon, withIP: daemon.endsWith('proxyd') || daemon === 'libvirtd', privileged: true };
    t.same(remoteDaemonConfig(undefined, ctx), remoteDaemonConfig(parseConf('', 'e'), ctx), daemon);
  }
  t.same(logdConfig(undefined), logdConfig(parseConf('', 'e')));
  t.same(lockdConfig(undefined), lockdConfig(parseConf('', 'e')));
});

t.test('configs are frozen all the way down', async (t) => {
  const { config } = remoteDaemonConfig(parseConf('tls_allowed_dn_list = [ "a" ]\n', 'f'),
    { daemon: 'libvirtd', withIP: true, privileged: true });
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.ip) && Object.isFrozen(config.accessDrivers));
  t.ok(Object.isFrozen(config.ip?.tlsAllowedDnList));
  t.ok(Object.isFrozen(logdConfig(undefined).config) && Object.isFrozen(lockdConfig(undefined).config));
});

t.test('validation errors carry code, key and position', async (t) => {
  const ctx = { daemon: 'virtqemud', withIP: false, privileged: true };
  const e = t.throws(() => remoteDaemonConfig(parseConf('\n  auth_unix_rw = "x"\n', 'q.conf'), ctx)) as ConfError;
  t.match(e, { code: 'CONFIG_UNSUPPORTED', domain: 'CONF', key: 'auth_unix_rw', line: 2, column: 18 });
  const g = t.throws(() => remoteDaemonConfig(parseConf('unix_sock_group = 1\n', 'q.conf'), ctx)) as ConfError;
  t.match(g, { code: 'INTERNAL_ERROR', key: 'unix_sock_group', message: "q.conf:1:19: expected a string for 'unix_sock_group' parameter" });
});

t.test('client limits rule', async (t) => {
  t.equal(clientLimitsProblem(5000, 20), undefined);
  t.equal(clientLimitsProblem(20, 20), undefined);
  t.equal(clientLimitsProblem(0, 0), undefined);
  t.equal(clientLimitsProblem(10, 0), undefined, '0 anonymous clients means no separate limit');
  t.match(clientLimitsProblem(10, 11), /maximum number of clients must not be less than/);
});

t.test('UUID syntax follows libvirt', async (t) => {
  t.equal(parseUuid('00112233-4455-6677-8899-aabbccddeeff')?.length, 16);
  t.ok(parseUuid('00112233445566778899AABBCCDDEEFF'));
  t.ok(parseUuid(' 0011-2233-4455-6677-8899-aabb-ccdd-eeff\n'));
  t.equal(parseUuid('0-0112233445566778899aabbccddeeff'), undefined, 'a dash may not split a byte');
  t.equal(parseUuid(''), undefined);
});

t.test('reading files', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conf-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const missing = path.join(dir, 'missing.conf');
  t.equal(readConfFile(missing, { required: false }), undefined);
  t.throws(() => readConfFile(missing, { required: true }), {
    code: 'OPEN_FAILED', file: missing, message: `${missing}: failed to open configuration file: no such file or directory`,
  });

  const good = path.join(dir, 'good.conf');
  fs.writeFileSync(good, 'max_clients = 7\n');
  t.match(readConfFile(good, { required: true })?.lookup('max_clients')?.value, { kind: 'integer', value: 7n });
  t.equal(readConfFile(good, { required: false })?.filename, good);

  const bad = path.join(dir, 'bad.conf');
  fs.writeFileSync(bad, 'max_clients = many\n');
  t.throws(() => readConfFile(bad, { required: false }), { message: `${bad}:1:15: expecting a value` });

  t.throws(() => readConfFile(dir, { required: false }), { code: 'READ_FAILED', file: dir, message: new RegExp(`^${dir}: failed to read`) });

  const big = path.join(dir, 'big.conf');
  const line = `${'#'.repeat(1023)}\n`;
  fs.writeFileSync(big, line.repeat(MAX_CONF_FILE_BYTES / 1024));
  t.ok(readConfFile(big, { required: true }), 'exactly 10 MiB is accepted');
  fs.appendFileSync(big, '\n');
  t.throws(() => readConfFile(big, { required: true }), {
    code: 'READ_FAILED', message: `${big}: configuration file is larger than 10485760 bytes`,
  });

  if (process.getuid?.() !== 0) {
    const locked = path.join(dir, 'locked.conf');
    fs.writeFileSync(locked, '', { mode: 0 });
    t.throws(() => readConfFile(locked, { required: false }), { code: 'OPEN_FAILED', message: /permission denied/ },
      'only a missing file may be skipped');
  }
});
