// Two isolated hosts, one run: a namespace systemd over our units (put in
// place by our install step) and one over Debian's stock libvirt 9.0 units
// (unpacked from libvirt-daemon-system into .cache/libvirt-stock, never
// installed). Both get the same drop-ins and the same libvirtd.conf
// overrides, private /run, /etc/libvirt, /var/lib/libvirt,
// /var/cache/libvirt and /var/log/libvirt, so neither touches the machine's
// own libvirt, and both run at the same time so that their measurements
// can be interleaved. See ../../shared/TESTING.md §1 for the isolation
// rules (@virtd/test-utils' SystemdNamespace applies them).
import fs from 'node:fs';
import path from 'node:path';
import { SystemdNamespace, run } from '@virtd/test-utils';
import type { Side } from './worker.js';
import { REPO_DIR } from './worker.js';

/** The daemons this benchmark starts; virtlogd and virtlockd ship beside libvirtd. */
export const DAEMONS = ['libvirtd', 'virtlogd', 'virtlockd'] as const;
export type DaemonName = (typeof DAEMONS)[number];

export const SOCKETS: readonly string[] = [
  'libvirtd.socket', 'libvirtd-ro.socket', 'libvirtd-admin.socket',
  'virtlogd.socket', 'virtlogd-admin.socket', 'virtlockd.socket', 'virtlockd-admin.socket',
];

export const STOCK_DIR = path.join(REPO_DIR, '.cache', 'libvirt-stock');
const STOCK_UNITS = path.join(STOCK_DIR, 'lib', 'systemd', 'system');

/**
 * Prepended to libvirtd.conf on both sides (the first occurrence of a key
 * wins in libvirt's grammar). auth "none": there is no polkit/D-Bus inside
 * the namespace, and both sides should do the same work per client. Client
 * limits high so that the clients benchmark finds the real ceiling.
 */
export const LIBVIRTD_CONF_OVERRIDES = [
  '# virtd-node bench overrides (same on both sides)',
  'auth_unix_ro = "none"',
  'auth_unix_rw = "none"',
  'max_clients = 20000',
  'max_anonymous_clients = 20000',
  '',
].join('\n');

/** Drop-ins on both sides; logd/lockd become Type=notify so `systemctl start` waits for READY=1. */
function dropIns(): Record<string, string> {
  const units: Record<string, string> = {};
  for (const d of DAEMONS) {
    units[`${d}.service.d/bench.conf`] = [
      '[Unit]', 'DefaultDependencies=no', 'StartLimitIntervalSec=0',
      '[Service]', `StandardOutput=append:/run/${d}.log`, `StandardError=append:/run/${d}.log`,
      // Stock virtlogd/virtlockd units are Type=simple (so are ours, to match):
      // systemctl would return at fork. Both daemons send READY=1 when given a
      // NOTIFY_SOCKET, so Type=notify makes the start measurement comparable.
      ...(d === 'libvirtd' ? [] : ['Type=notify']),
      '',
    ].join('\n');
  }
  for (const s of SOCKETS) units[`${s}.d/bench.conf`] = '[Unit]\nDefaultDependencies=no\n';
  return units;
}

/**
 * Real libvirtd's qemu driver runs guests as libvirt-qemu:libvirt-qemu
 * (Debian's qemu.conf); without that user its initialisation fails and the
 * daemon exits. libvirt-daemon-system would create them; it is not installed.
 */
export async function ensureLibvirtQemuUser(): Promise<void> {
  const has = async (db: string): Promise<boolean> => (await run('getent', [db, 'libvirt-qemu'])).code === 0;
  if (!(await has('group'))) {
    const r = await run('groupadd', ['-r', 'libvirt-qemu']);
    if (r.code !== 0 && !(await has('group'))) throw new Error(`groupadd libvirt-qemu: ${r.stderr.trim()}`);
  }
  if (!(await has('passwd'))) {
    const r = await run('useradd', ['-r', '-g', 'libvirt-qemu', '-d', '/var/lib/libvirt', '-s', '/usr/sbin/nologin', '-c', 'Libvirt Qemu', 'libvirt-qemu']);
    if (r.code !== 0 && !(await has('passwd'))) throw new Error(`useradd libvirt-qemu: ${r.stderr.trim()}`);
  }
}

export class Host {
  private constructor(
    readonly side: Side,
    readonly ns: SystemdNamespace,
    /** Host-side directory of this side's files (outside /tmp: the namespace hides /tmp). */
    readonly dir: string,
  ) {}

  get pid(): number { return this.ns.pid; }

  /**
   * Boots one side. `dir` must not be under /tmp, /run or /var/tmp: those
   * are private tmpfs inside, and the init script copies units from there.
   */
  static async boot(side: Side, dir: string): Promise<Host> {
    fs.mkdirSync(dir, { recursive: true });
    const units = dropIns();
    const etc = path.join(dir, 'etc-libvirt');
    fs.rmSync(etc, { recursive: true, force: true });
    if (side === 'ours') {
      const prefix = path.join(dir, 'prefix');
      const unitdir = path.join(dir, 'vendor-units');
      const sysconf = path.join(dir, 'etc');
      const inst = await run(process.execPath, [path.join(REPO_DIR, 'scripts/dist/install.js'),
        `--prefix=${prefix}`, `--unitdir=${unitdir}`, `--sysconfdir=${sysconf}`, '--envdir=default', '--no-reload']);
      if (inst.code !== 0) throw new Error(`our install step failed: ${inst.stderr}`);
      for (const f of fs.readdirSync(unitdir)) {
        if (/^(libvirtd|virtlogd|virtlockd)[.-]/.test(f)) units[f] = fs.readFileSync(path.join(unitdir, f), 'utf8');
      }
      fs.renameSync(path.join(sysconf, 'libvirt'), etc);
    } else {
      await ensureLibvirtQemuUser();
      if (!fs.existsSync(path.join(STOCK_UNITS, 'libvirtd.service'))) {
        throw new Error(`${STOCK_UNITS} is missing: run bash scripts/setup.sh (it unpacks libvirt-daemon-system there)`);
      }
      for (const f of fs.readdirSync(STOCK_UNITS)) {
        if (/^(libvirtd|virtlogd|virtlockd)[.-]/.test(f)) units[f] = fs.readFileSync(path.join(STOCK_UNITS, f), 'utf8');
      }
      fs.cpSync(path.join(STOCK_DIR, 'etc', 'libvirt'), etc, { recursive: true });
    }
    const conf = path.join(etc, 'libvirtd.conf');
    fs.writeFileSync(conf, LIBVIRTD_CONF_OVERRIDES + (fs.existsSync(conf) ? fs.readFileSync(conf, 'utf8') : ''));
    const binds = [{ host: etc, target: '/etc/libvirt' }];
    for (const v of ['lib', 'cache', 'log']) {
      const h = path.join(dir, `var-${v}-libvirt`);
      fs.mkdirSync(h, { recursive: true, mode: 0o755 });
      binds.push({ host: h, target: `/var/${v}/libvirt` });
    }
    const ns = await SystemdNamespace.boot({ units, binds }, dir);
    const host = new Host(side, ns, dir);
    try {
      // Both units Want= systemd-machined; there is no D-Bus in here for it.
      await host.ctl('mask', '--runtime', 'systemd-machined.service');
      await host.ctl('daemon-reload');
      await host.ctl('start', ...SOCKETS);
    } catch (e) {
      await ns.shutdown();
      throw e;
    }
    return host;
  }

  /** systemctl inside; throws with its stderr when it fails. */
  async ctl(...args: string[]): Promise<string> {
    const r = await this.ns.systemctl(...args);
    if (r.code !== 0) throw new Error(`${this.side}: systemctl ${args.join(' ')} → ${r.code}: ${r.stderr.trim()}${await this.logTail(args)}`);
    return r.stdout;
  }

  private async logTail(args: readonly string[]): Promise<string> {
    const d = DAEMONS.find((n) => args.some((a) => a.startsWith(`${n}.`)));
    if (!d) return '';
    const r = await this.ns.exec(['tail', '-n', '15', `/run/${d}.log`]);
    return r.stdout ? `\n/run/${d}.log:\n${r.stdout}` : '';
  }

  async show(unit: string, props: readonly string[]): Promise<Record<string, string>> {
    return this.ns.show(unit, props);
  }

  /** A shell command inside (mount and pid namespaces); rejects when it fails. */
  async sh(script: string, timeoutMs = 120_000): Promise<string> {
    const r = await this.ns.exec(['bash', '-c', script], { timeoutMs });
    if (r.code !== 0) throw new Error(`${this.side}: ${script.slice(0, 200)} → ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async stop(daemon: DaemonName): Promise<void> {
    await this.ctl('stop', `${daemon}.service`);
  }

  async isActive(daemon: DaemonName): Promise<boolean> {
    return (await this.show(`${daemon}.service`, ['ActiveState'])).ActiveState === 'active';
  }

  /** Resident set of the unit's main process, in KiB (VmRSS). */
  async rssKiB(daemon: DaemonName): Promise<number> {
    const { MainPID } = await this.show(`${daemon}.service`, ['MainPID']);
    if (!MainPID || MainPID === '0') throw new Error(`${this.side} ${daemon}: not running`);
    const status = await this.sh(`cat /proc/${MainPID}/status`);
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    if (!m) throw new Error(`${this.side} ${daemon}: no VmRSS`);
    return Number(m[1]);
  }

  /** CPU time (user + system) the unit's main process has used so far, in ms. */
  async cpuMs(daemon: DaemonName): Promise<number> {
    const { MainPID } = await this.show(`${daemon}.service`, ['MainPID']);
    if (!MainPID || MainPID === '0') throw new Error(`${this.side} ${daemon}: not running`);
    const out = await this.sh(`getconf CLK_TCK; cat /proc/${MainPID}/stat`);
    const [hz, stat] = out.split('\n') as [string, string];
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / Number(hz);
  }

  async shutdown(): Promise<void> {
    await this.ns.shutdown();
  }
}
