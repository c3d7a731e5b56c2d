// Installs virtd-node on this host (or into a staging --destdir):
//   PREFIX/sbin/<daemon>, PREFIX/bin/{vsh,vadmin}   launchers into this checkout
//   UNITDIR/*.service, *.socket                      units, ExecStart= pointing at PREFIX/sbin
//                                                    (default PREFIX/lib/systemd/system)
//   SYSCONFDIR/libvirt/<daemon>.conf                 default configs, never overwriting
//   SYSCONFDIR/{default|sysconfig}/<daemon>         env files, never overwriting
//   PREFIX/share/doc/virtd-node/*.md                 the manual pages
//   PREFIX/share/virtd-node/install-manifest.json    what was put where
// and runs `systemctl daemon-reload` when installing into the live system.
// --uninstall removes exactly what the manifest lists; a config or env file
// the administrator has changed since is kept and reported.
//
//   node scripts/dist/install.js [--prefix=/usr/local] [--destdir=DIR] [--unitdir=PREFIX/lib/systemd/system]
//        [--sysconfdir=/etc] [--envdir=default|sysconfig] [--no-reload] [--uninstall]
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { DAEMONS } from '@virtd/daemons';
import { renderUnits, renderEnvFile } from './render-units.js';

const ROOT = path.resolve(__dirname, '..', '..');

export interface InstallOptions {
  readonly prefix: string;
  readonly destdir: string;
  readonly unitdir: string;
  readonly sysconfdir: string;
  readonly envdir: 'default' | 'sysconfig';
  readonly reload: boolean;
}

interface Entry {
  /** Final path (without destdir). */
  readonly path: string;
  readonly sha256: string;
  /** Config files are kept at uninstall when changed since. */
  readonly config: boolean;
}

interface Manifest { readonly version: 1; readonly options: InstallOptions; readonly files: Entry[]; readonly dirs: string[] }

const sha = (text: string | Buffer): string => crypto.createHash('sha256').update(text).digest('hex');

export function parseArgs(argv: readonly string[]): { opts: InstallOptions; uninstall: boolean } {
  const get = (name: string): string | undefined => {
    const a = argv.find((x) => x.startsWith(`--${name}=`));
    return a?.slice(name.length + 3);
  };
  const known = ['prefix', 'destdir', 'unitdir', 'sysconfdir', 'envdir'];
  for (const a of argv) {
    if (a === '--uninstall' || a === '--no-reload') continue;
    if (!known.some((k) => a.startsWith(`--${k}=`))) throw new Error(`unknown argument '${a}'`);
  }
  const prefix = path.resolve(get('prefix') ?? '/usr/local');
  const envdir = get('envdir') ?? (fs.existsSync('/etc/default') || !fs.existsSync('/etc/sysconfig') ? 'default' : 'sysconfig');
  if (envdir !== 'default' && envdir !== 'sysconfig') throw new Error(`--envdir must be default or sysconfig, not '${envdir}'`);
  return {
    uninstall: argv.includes('--uninstall'),
    opts: {
      prefix,
      destdir: get('destdir') ? path.resolve(get('destdir')!) : '',
      // Vendor units go where systemd looks for them below the prefix
      // (/usr/local/lib/systemd/system), so administrators can still mask
      // them or add drop-ins under /etc/systemd/system.
      unitdir: path.resolve(get('unitdir') ?? path.join(prefix === '/usr' ? '/' : prefix, 'lib', 'systemd', 'system')),
      sysconfdir: path.resolve(get('sysconfdir') ?? '/etc'),
      envdir,
      reload: !argv.includes('--no-reload'),
    },
  };
}

const manifestPath = (o: InstallOptions): string => path.join(o.prefix, 'share', 'virtd-node', 'install-manifest.json');

/** Every file install would write: final path → content, and whether it is a config file. */
export function plan(o: InstallOptions): { path: string; text: string; mode: number; config: boolean }[] {
  const node = process.execPath;
  const launcher = (script: string): string =>
    `#!/bin/sh\n# virtd-node launcher (scripts/install); runs the code in ${ROOT}.\nexec '${node}' '${script}' "$@"\n`;
  const out: { path: string; text: string; mode: number; config: boolean }[] = [];
  for (const d of DAEMONS) {
    out.push({ path: path.join(o.prefix, 'sbin', d.name), text: launcher(path.join(ROOT, 'packages/daemons/bin', d.name)), mode: 0o755, config: false });
  }
  for (const c of ['vsh', 'vadmin']) {
    out.push({ path: path.join(o.prefix, 'bin', c), text: launcher(path.join(ROOT, 'packages/cli/bin', c)), mode: 0o755, config: false });
  }
  const envdir = path.join(o.sysconfdir, o.envdir);
  const docdir = path.join(o.prefix, 'share', 'doc', 'virtd-node');
  for (const [name, text] of renderUnits({ sbindir: path.join(o.prefix, 'sbin'), envdir, docdir })) {
    out.push({ path: path.join(o.unitdir, name), text, mode: 0o644, config: false });
  }
  for (const d of DAEMONS) {
    out.push({ path: path.join(o.sysconfdir, 'libvirt', `${d.name}.conf`), text: fs.readFileSync(path.join(ROOT, 'etc/libvirt', `${d.name}.conf`), 'utf8'), mode: 0o644, config: true });
    out.push({ path: path.join(envdir, d.name), text: renderEnvFile(d), mode: 0o644, config: true });
  }
  for (const f of fs.readdirSync(path.join(ROOT, 'docs')).filter((x) => x.endsWith('.md'))) {
    out.push({ path: path.join(docdir, f), text: fs.readFileSync(path.join(ROOT, 'docs', f), 'utf8'), mode: 0o644, config: false });
  }
  return out;
}

function liveSystemd(o: InstallOptions): boolean {
  return !o.destdir && o.reload && fs.existsSync('/run/systemd/system');
}

function daemonReload(o: InstallOptions, log: (s: string) => void): void {
  if (!liveSystemd(o)) return;
  try {
    execFileSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
    log('systemctl daemon-reload');
  } catch (e) {
    log(`warning: systemctl daemon-reload failed: ${(e as Error).message}`);
  }
}

export function install(o: InstallOptions, log: (s: string) => void = () => {}): Manifest {
  const at = (p: string): string => path.join(o.destdir || '/', p);
  const files: Entry[] = [];
  const dirs: string[] = [];
  if (o.destdir) fs.mkdirSync(o.destdir, { recursive: true });
  const mkdir = (dir: string): void => {
    // Remember the directories we create, top-down, to remove them if empty later.
    const missing: string[] = [];
    for (let d = dir; d !== path.dirname(d) && !fs.existsSync(at(d)); d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) { fs.mkdirSync(at(d), { mode: 0o755 }); dirs.push(d); }
  };
  for (const f of plan(o)) {
    const target = at(f.path);
    if (f.config && fs.existsSync(target)) {
      log(`kept existing ${f.path}`);
      continue;
    }
    mkdir(path.dirname(f.path));
    // Write beside, then rename: an interrupted install leaves no half file.
    const tmp = `${target}.virtd-tmp`;
    fs.writeFileSync(tmp, f.text, { mode: f.mode });
    fs.chmodSync(tmp, f.mode);
    fs.renameSync(tmp, target);
    files.push({ path: f.path, sha256: sha(f.text), config: f.config });
  }
  const manifest: Manifest = { version: 1, options: o, files, dirs };
  mkdir(path.dirname(manifestPath(o)));
  fs.writeFileSync(at(manifestPath(o)), JSON.stringify(manifest, null, 2) + '\n');
  log(`installed ${files.length} files; manifest ${manifestPath(o)}`);
  daemonReload(o, log);
  return manifest;
}

export function uninstall(o: InstallOptions, log: (s: string) => void = () => {}): void {
  const at = (p: string): string => path.join(o.destdir || '/', p);
  const mf = at(manifestPath(o));
  if (!fs.existsSync(mf)) throw new Error(`nothing to uninstall: no manifest at ${mf}`);
  const m = JSON.parse(fs.readFileSync(mf, 'utf8')) as Manifest;
  for (const f of m.files) {
    const p = at(f.path);
    if (!fs.existsSync(p)) continue;
    if (f.config && sha(fs.readFileSync(p)) !== f.sha256) {
      log(`kept ${f.path}: changed since installation`);
      continue;
    }
    fs.unlinkSync(p);
  }
  fs.unlinkSync(mf);
  for (const d of [...m.dirs, path.dirname(manifestPath(o))].sort((a, b) => b.length - a.length)) {
    try { fs.rmdirSync(at(d)); } catch { /* not empty or already gone */ }
  }
  log(`removed ${m.files.length} files`);
  daemonReload(o, log);
}

if (require.main === module) {
  try {
    const { opts, uninstall: remove } = parseArgs(process.argv.slice(2));
    const log = (s: string): void => { process.stdout.write(`${s}\n`); };
    if (remove) uninstall(opts, log);
    else install(opts, log);
  } catch (e) {
    process.stderr.write(`install: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
