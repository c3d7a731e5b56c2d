import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import {
  isConfError, lockdConfig, logdConfig, parseConf, parseSysconfig, readConfFile, remoteDaemonConfig,
  type ConfFile, type LoadedConfig,
} from '../src/index.js';
import { recomment, uncommentSettings } from './uncomment.js';

// The files a distribution ships must load as they are, and with every
// example setting uncommented. scripts/setup.sh extracts Debian's
// libvirt-daemon-system 9.0 package into .cache/libvirt-stock without
// installing it (installing would enable real libvirt's units); an
// installed /etc/libvirt or VIRTD_STOCK_CONF_DIR is used when present.
const extracted = path.resolve(__dirname, '../../../../.cache/libvirt-stock/etc/libvirt');
const dir = process.env.VIRTD_STOCK_CONF_DIR
  ?? (fs.existsSync(path.join(extracted, 'libvirtd.conf')) ? extracted : '/etc/libvirt');

type Loader = (file: ConfFile) => LoadedConfig<object>;
function loaderFor(name: string): Loader | undefined {
  const daemon = name.replace(/\.conf$/, '');
  if (daemon === 'virtlogd') return logdConfig;
  if (daemon === 'virtlockd') return lockdConfig;
  if (daemon === 'libvirtd' || daemon === 'virtproxyd') {
    return (f) => remoteDaemonConfig(f, { daemon, withIP: true, privileged: true });
  }
  if (/^virt[a-z]+d$/.test(daemon)) return (f) => remoteDaemonConfig(f, { daemon, withIP: false, privileged: true });
  return undefined;
}

// Example values in the stock samples that our validation refuses, and why.
// libvirt refuses them too: they are placeholders, not settings.
const KNOWN_CONFLICTS: Record<string, Record<string, RegExp>> = {
  // The example host UUID is all zeros ("Can't setup host uuid" in libvirt as well).
  'libvirtd.conf': { host_uuid: /all bytes identical/ },
};

const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.conf')).sort() : [];
const daemonFiles = files.filter((f) => loaderFor(f));

if (!['libvirtd.conf', 'virtlogd.conf', 'virtlockd.conf'].some((f) => files.includes(f))) {
  t.skip(`no stock libvirtd.conf, virtlogd.conf or virtlockd.conf in ${dir} (set VIRTD_STOCK_CONF_DIR)`, () => {});
} else {
  t.test(`stock files in ${dir} parse`, async (t) => {
    for (const name of files) {
      t.doesNotThrow(() => readConfFile(path.join(dir, name), { required: true }), name);
    }
  });

  for (const name of daemonFiles) {
    const load = loaderFor(name)!;
    t.test(`stock ${name} loads`, async (t) => {
      const loaded = load(readConfFile(path.join(dir, name), { required: true })!);
      t.ok(Object.isFrozen(loaded.config));
    });

    t.test(`stock ${name} loads with its examples uncommented`, async (t) => {
      let text = uncommentSettings(fs.readFileSync(path.join(dir, name), 'utf8'));
      const conflicts = KNOWN_CONFLICTS[name] ?? {};
      for (;;) {
        try {
          const loaded = load(parseConf(text, name));
          t.same(loaded.unknownKeys, [], 'every example key is one we read (or know to be obsolete)');
          break;
        } catch (e) {
          if (!isConfError(e) || e.key === undefined || !conflicts[e.key]) throw e;
          t.match(e.message, conflicts[e.key]!, `known conflict: ${e.message}`);
          text = recomment(text, e.key);
        }
      }
    });
  }

  const defaults = path.join(dir, '..', 'default');
  t.test('stock environment files parse', { skip: !fs.existsSync(defaults) && `no ${defaults}` }, async (t) => {
    for (const name of fs.readdirSync(defaults)) {
      t.type(parseSysconfig(fs.readFileSync(path.join(defaults, name), 'utf8')), 'object', name);
    }
  });
}
