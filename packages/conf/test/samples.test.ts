import t from 'tap';
import {
  lockdConfig, lockdKeys, logdConfig, logdKeys, parseConf, remoteDaemonConfig, remoteDaemonKeys, renderSampleConf,
  type LoadedConfig, type SampleFamily,
} from '../src/index.js';
import { commentedKeys, uncommentSettings } from './uncomment.js';

interface Combo {
  family: SampleFamily;
  daemon: string;
  withIP: boolean;
  keys: string[];
  load: (text: string | undefined) => LoadedConfig<object>;
}

const remote = (daemon: string, withIP: boolean): Combo => {
  const ctx = { daemon, withIP, privileged: true };
  return {
    family: 'remote', daemon, withIP, keys: remoteDaemonKeys(ctx),
    load: (text) => remoteDaemonConfig(text === undefined ? undefined : parseConf(text, `${daemon}.conf`), ctx),
  };
};

const combos: Combo[] = [
  remote('libvirtd', true),
  remote('virtproxyd', true),
  ...['qemu', 'lxc', 'xen', 'ch', 'vbox', 'vz', 'bhyve', 'network', 'interface', 'nodedev', 'nwfilter', 'secret', 'storage']
    .map((d) => remote(`virt${d}d`, false)),
  {
    family: 'logd', daemon: 'virtlogd', withIP: false, keys: logdKeys(),
    load: (text) => logdConfig(text === undefined ? undefined : parseConf(text, 'virtlogd.conf')),
  },
  {
    family: 'lockd', daemon: 'virtlockd', withIP: false, keys: lockdKeys(),
    load: (text) => lockdConfig(text === undefined ? undefined : parseConf(text, 'virtlockd.conf')),
  },
];

// Fields whose sample value is deliberately not the default: the default
// itself (56) may not be written in the file, only values from 112 up.
const NOT_DEFAULT_IN_SAMPLE = new Set(['tcpMinSsf']);

/** Fields of `got` that differ from `defaults`, skipping those unset by default (samples show examples). */
function differences(got: object, defaults: object, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, d] of Object.entries(defaults)) {
    const g: unknown = (got as Record<string, unknown>)[k];
    if (d === undefined || NOT_DEFAULT_IN_SAMPLE.has(k)) continue;
    if (d !== null && typeof d === 'object' && !Array.isArray(d)) out.push(...differences(g as object, d as object, `${prefix}${k}.`));
    else if (JSON.stringify(g) !== JSON.stringify(d)) out.push(`${prefix}${k}: ${JSON.stringify(g)} != ${JSON.stringify(d)}`);
  }
  return out;
}

for (const c of combos) {
  t.test(`sample for ${c.daemon}`, async (t) => {
    const text = renderSampleConf(c.family, { daemon: c.daemon, withIP: c.withIP });
    t.equal(parseConf(text, 'sample').settings.length, 0, 'everything is commented out');
    const shown = commentedKeys(text);
    t.same([...shown].sort(), [...c.keys].sort(), 'every key read is shown, once, and nothing else');
    t.equal(new Set(shown).size, shown.length);

    const uncommented = c.load(uncommentSettings(text));
    t.same(uncommented.unknownKeys, [], 'uncommented, every key is known');
    t.same(differences(uncommented.config, c.load(undefined).config), [], 'uncommented, the defaults come back');

    t.notOk(text.split('\n').some((l) => l.length > 80), 'lines fit in 80 columns');
    if (c.family === 'remote') {
      const prefix = c.withIP ? 'libvirt' : c.daemon;
      t.match(text, `${prefix}-sock (full access)`);
      t.match(text, `${prefix}-admin-sock`);
      if (c.withIP) t.match(text, `${c.daemon}-tls.socket`);
      else t.notMatch(text, /listen_tls|TLS certificates|auth_tcp/, 'no IP sections');
    } else {
      t.match(text, `${c.daemon}-sock`);
    }
    t.match(text, `/etc/libvirt/${c.daemon}.conf`);
  });
}

t.test('listen_tls default follows the daemon', async (t) => {
  t.match(renderSampleConf('remote', { daemon: 'libvirtd', withIP: true }), /^#listen_tls = 1$/m);
  t.match(renderSampleConf('remote', { daemon: 'virtproxyd', withIP: true }), /^#listen_tls = 0$/m);
});
