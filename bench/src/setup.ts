// What the real side needs, installed when missing (as root only): Debian's
// libvirt 9.0 daemons and clients, python3-libvirt, and Debian's stock
// units and configs, unpacked (never installed: installing
// libvirt-daemon-system would enable real libvirt's sockets on the machine)
// under .cache/libvirt-stock — the same as scripts/setup.sh does.
import fs from 'node:fs';
import path from 'node:path';
import { run } from '@virtd/test-utils';
import { STOCK_DIR } from './hosts.js';

export const REAL_PACKAGES = ['libvirt-daemon', 'libvirt-clients', 'python3-libvirt'] as const;

async function installed(pkg: string): Promise<boolean> {
  const r = await run('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return r.code === 0 && r.stdout.includes('install ok installed');
}

/** Installs what is missing; returns what it did, or throws with the reason the real side cannot run. */
export async function ensureRealLibvirt(progress: (msg: string) => void): Promise<string[]> {
  const did: string[] = [];
  const missing: string[] = [];
  for (const p of REAL_PACKAGES) if (!(await installed(p))) missing.push(p);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  if (missing.length) {
    progress(`installing ${missing.join(' ')} (apt-get)`);
    let r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000 });
    if (r.code !== 0) {
      await run('apt-get', ['update'], { env, timeoutMs: 600_000 });
      r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000 });
    }
    if (r.code !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed: ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
    did.push(`installed ${missing.join(' ')}`);
  }
  if (!fs.existsSync(path.join(STOCK_DIR, 'lib', 'systemd', 'system', 'libvirtd.service'))) {
    progress('unpacking Debian\'s libvirt-daemon-system (units and configs) into .cache/libvirt-stock');
    const dl = path.join(path.dirname(STOCK_DIR), 'libvirt-stock-deb');
    fs.rmSync(dl, { recursive: true, force: true });
    fs.mkdirSync(dl, { recursive: true });
    try {
      const r = await run('apt-get', ['download', 'libvirt-daemon-system'], { cwd: dl, env, timeoutMs: 300_000 });
      const deb = fs.readdirSync(dl).find((f) => f.endsWith('.deb'));
      if (r.code !== 0 || !deb) throw new Error(`apt-get download libvirt-daemon-system failed: ${r.stderr.trim()}`);
      const x = await run('dpkg-deb', ['-x', path.join(dl, deb), STOCK_DIR]);
      if (x.code !== 0) throw new Error(`dpkg-deb -x: ${x.stderr.trim()}`);
      did.push('unpacked libvirt-daemon-system');
    } finally {
      fs.rmSync(dl, { recursive: true, force: true });
    }
  }
  return did;
}
