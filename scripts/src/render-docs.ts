// The manual pages under docs/: one renderer for the fifteen daemons (the
// sections that differ switch on the descriptor), one each for vadmin and
// vsh, and an index. Options, paths, socket names, exit codes and the CLIs'
// verbs are read from the code that the binaries run (usage(), daemonPaths(),
// socketPaths(), EXIT, the vadmin and vsh shells over fake clients, the
// client's URI resolution), so a change there shows up as a
// stale page under `generate.js --check` instead of a wrong manual. The
// prose is ours; what an option or verb means is written once, below, and
// the renderer refuses to run when the code grows an option or verb that
// has no text yet.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  daemonPaths, socketPaths, defaultTlsFiles, usage, EXIT, statusText, MAX_TIMEOUT_SECONDS, SHUTDOWN_WATCHDOG_MS,
  PRODUCT, VERSION, versionNumber, type HostContext, type DaemonPaths, type SocketPaths,
} from '@virtd/core';
import { remoteDaemonConfig, envVarName } from '@virtd/conf';
import {
  adminTarget, resolveUri, DEFAULT_PROBE, socketDir, configDir, AUTOSTART_TIMEOUT_SECONDS, type AdminClient, type VirtConnection, type SecretRef, type Resolved,
} from '@virtd/client';
import { runShell, parseOpts, type CommandDef, type GlobalOptions, type Output } from '@virtd/cli';
// Not re-exported by @virtd/cli's index: the verb tables and the per-verb help.
import { commands, type AdminContext } from '@virtd/cli/dist/src/vadmin/commands.js';
import { commands as vshCommands, type VshContext } from '@virtd/cli/dist/src/vsh/commands.js';
import { commandHelp } from '@virtd/cli/dist/src/shell/shell.js';
import { DAEMONS, modular, type VirtdDescriptor } from '@virtd/daemons';
// The secret driver's own XML parser and formatter, so vsh's examples use
// (and check) the real layout. Built before scripts through @virtd/daemons.
import { parseSecretXml, formatSecretXml, STATE_DRIVER_NAMES, type SecretDef } from '@virtd/drivers';

const SYSTEM: HostContext = { euid: 0, env: {} };
/** Session paths are shown with the variables they are built from. */
const SESSION: HostContext = {
  euid: 1000,
  env: { HOME: '$HOME', XDG_CONFIG_HOME: '$XDG_CONFIG_HOME', XDG_RUNTIME_DIR: '$XDG_RUNTIME_DIR', XDG_CACHE_HOME: '$XDG_CACHE_HOME' },
};
/** Not exported by core: pidfile.ts opens with 0644, rundir.ts creates 0755 / 0700. */
const PID_FILE_MODE = 0o644;
const RUN_DIR_MODE = { system: 0o755, session: 0o700 } as const;
/** virtlogd/virtlockd bind with a fixed mode (settings.ts), whatever the config says. */
const HELPER_SOCKET_MODE = 0o700;

const octal = (m: number): string => `0${m.toString(8).padStart(3, '0')}`;
const c = (s: string | number): string => `\`${s}\``;
const link = (page: string): string => `[${page}](${page}.md)`;
const section = (title: string, ...blocks: string[]): string => [`## ${title}`, ...blocks].join('\n\n');
const table = (head: readonly string[], rows: readonly (readonly string[])[]): string =>
  [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const list = (items: readonly string[]): string => items.map((i) => `- ${i}`).join('\n');
const page = (title: string, sections: readonly string[]): string => `${[`# ${title}`, ...sections].join('\n\n')}\n`;
const words = (xs: readonly string[], conj = 'and'): string =>
  xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} ${conj} ${xs[xs.length - 1]}`;

// ---- daemons ----------------------------------------------------------------

interface HelpOption { readonly form: string; readonly short: string; readonly long: string; readonly arg?: string }

/** The option lines of the daemon's own --help text, in its order. */
function helpOptions(d: VirtdDescriptor): HelpOption[] {
  const text = usage(d, { paths: daemonPaths(d, SYSTEM), sockets: {}, tls: defaultTlsFiles(SYSTEM) });
  const out: HelpOption[] = [];
  for (const line of text.split('\n')) {
    const m = /^ {2}(-(\w) \| --([\w-]+)(?: <([\w-]+)>)?) /.exec(line);
    if (m) out.push({ form: m[1]!, short: m[2]!, long: m[3]!, ...(m[4] ? { arg: m[4] } : {}) });
  }
  return out;
}

const remoteDefaults = (d: VirtdDescriptor, privileged: boolean): ReturnType<typeof remoteDaemonConfig>['config'] =>
  remoteDaemonConfig(undefined, { daemon: d.name, withIP: d.withIP, privileged }).config;

/** What holds auto-shutdown off (auto-shutdown.ts inhibitions): guests of the hypervisor drivers, ephemeral secrets, virtlogd's session logs. */
const GUEST_DRIVERS: readonly string[] = ['qemu', 'xen', 'lxc'];
function inhibitors(d: VirtdDescriptor): string {
  const holds = [
    ...(d.drivers.some((x) => GUEST_DRIVERS.includes(x)) ? ['a guest is running'] : []),
    ...(d.drivers.includes('secret') ? ['an ephemeral secret exists'] : []),
    ...(d.family === 'logd' ? ['a guest log file is open (session instance only)'] : []),
  ];
  return holds.length ? `While ${words(holds, 'or')} the daemon stays, and looks again one period later. ` : '';
}

/** What each option does; `arg` is the argument's name as --help spells it. */
const OPTION_TEXT: Record<string, (d: VirtdDescriptor, arg: string) => string> = {
  help: () => 'Print a summary of the options, with the default paths of the current mode (system or session), '
    + 'to standard error, and exit with status 0.',
  verbose: () => 'Log informational messages too: lowers the default log priority to 2 (info) when `LIBVIRT_DEBUG` '
    + 'or `log_level` left it higher. A lower level set there is kept.',
  daemon: (d) => {
    const sys = daemonPaths(d, SYSTEM);
    const ses = daemonPaths(d, SESSION);
    return 'Run in the background. The command starts a copy of itself in a new session, with its working '
      + 'directory at `/` and standard input, output and error on `/dev/null`, waits until that copy has opened '
      + 'its sockets, written its pid file and initialised its drivers, and then exits with status 0. When the '
      + `copy fails to start, the command prints \`${d.name}: error: <reason>. Check /var/log/messages or run `
      + 'without --daemon for more info.` and exits with the copy\'s status (see EXIT STATUS). Relative '
      + '`--config` and `--pid-file` paths are resolved before the daemon leaves the current directory. '
      + 'Unless a log output is configured, a daemon started this way logs to the journal when it is reachable, '
      + `otherwise to ${c(sys.logFile)} (system) or ${c(ses.logFile)} (session).`;
  },
  listen: (d) => {
    const ip = remoteDefaults(d, true).ip!;
    return `Also open the TCP and TLS listeners that \`listen_tcp\` and \`listen_tls\` enable in ${d.name}.conf `
      + `(defaults: \`listen_tcp = ${ip.listenTcp ? 1 : 0}\`, \`listen_tls = ${ip.listenTls ? 1 : 0}\`, so `
      + `\`--listen\` alone opens the TLS port ${ip.tlsPort}, which needs the certificates listed under FILES). `
      + `Without it ${d.name} serves its UNIX sockets only. Not allowed under socket activation: the daemon `
      + `exits with status ${EXIT.NETWORK}; enable ${c(`${d.name}-tcp.socket`)} or ${c(`${d.name}-tls.socket`)} instead.`;
  },
  timeout: (d, arg) => `Exit after ${c(`<${arg}>`)} seconds during which no client is connected to any of the daemon's `
    + 'sockets, administration clients included, counting from when the daemon is ready; the count starts again '
    + 'whenever the last client leaves. '
    + inhibitors(d)
    + `${c(`<${arg}>`)} is a whole number from 0 to ${MAX_TIMEOUT_SECONDS} (the largest number of milliseconds a C int `
    + 'holds, in seconds); 0, the default, disables auto-shutdown. Any other value is rejected with '
    + `"Invalid value for timeout" and exit status ${EXIT.FAILURE}. \`vadmin daemon-timeout\` changes it at run time.`,
  config: (_d, arg) => `Read ${c(`<${arg}>`)} instead of the default configuration file (see FILES). A file named here `
    + 'must exist; a missing default file just means built-in defaults. A file that cannot be read or parsed, '
    + `or a setting of the wrong type, stops start-up with status ${EXIT.FAILURE}. Unknown settings are ignored.`,
  version: (d) => `Print \`${d.name} (${PRODUCT}) <version>\` to standard output and exit with status 0.`,
  'pid-file': (_d, arg) => `Write the process id to ${c(`<${arg}>`)} instead of the default pid file (see FILES); an empty `
    + 'argument (`--pid-file=`) means no pid file at all. The file stays locked while the daemon runs, so a '
    + `second instance using it fails with status ${EXIT.PIDFILE}; it is removed when the daemon exits.`,
};

function optionsSection(d: VirtdDescriptor): string {
  return section('OPTIONS', ...helpOptions(d).map((o) => {
    const text = OPTION_TEXT[o.long];
    if (!text) throw new Error(`${d.name} --help lists --${o.long}, which render-docs.ts does not describe`);
    return `### ${c(o.form)}\n\n${text(d, o.arg ?? '')}`;
  }));
}

function synopsis(d: VirtdDescriptor): string {
  const opts = helpOptions(d).map((o) => (o.arg ? `[-${o.short} ${o.arg}]` : `[-${o.short}]`));
  return section('SYNOPSIS', ['```', `${d.name} ${opts.join(' ')}`, '```'].join('\n'));
}

function description(d: VirtdDescriptor): string {
  const paras: string[] = [];
  const modularList = words(modular.map((m) => link(m.name)));
  if (d.name === 'libvirtd') {
    paras.push(`${d.name} is the monolithic libvirt daemon: one process carries every driver (${words(d.drivers.map(c))}, `
      + 'in that load order) and serves them to clients such as virsh over its UNIX sockets and, when started with '
      + '`--listen`, over TCP and TLS.',
    `The modular daemons split the same work between one process per driver (${modularList}) and `
      + `${link('virtproxyd')}, which binds libvirtd's socket paths and hands each connection to the daemon of the `
      + 'driver its URI names. A host runs either libvirtd or the modular daemons; the two cannot run side by side, '
      + 'as they use the same socket paths.');
  } else if (d.name === 'virtproxyd') {
    const ip = remoteDefaults(d, true).ip!;
    paras.push(`${d.name} loads no driver. It binds the socket paths of the monolithic ${link('libvirtd')} `
      + `(prefix ${c(d.sockPrefix)}), so that clients written for libvirtd keep working on a host that runs the `
      + `modular daemons (${modularList}), and passes each connection on to the daemon of the driver the client's `
      + 'URI names. Run it instead of libvirtd, never beside it.',
    `It is also the modular setup's daemon for remote clients. Unlike libvirtd it has no \`--listen\` option: it `
      + `always opens the listeners that \`listen_tcp\` and \`listen_tls\` enable in ${d.name}.conf (defaults `
      + `${ip.listenTcp ? 1 : 0} and ${ip.listenTls ? 1 : 0} respectively), except under socket activation, where its `
      + '`-tcp` and `-tls` socket units decide.');
  } else if (d.family === 'remote') {
    const drv = d.drivers[0]!;
    paras.push(`${d.name} serves the ${c(drv)} driver alone. It is one of the modular daemons that replace the `
      + `monolithic ${link('libvirtd')}, which carries this driver together with all the others. Clients reach it on `
      + `its own sockets (${c(`${d.sockPrefix}-sock`)}), or through ${link('virtproxyd')}, which binds libvirtd's socket `
      + 'paths and passes connections for this driver on. Run the modular daemons or libvirtd, not both.');
  } else if (d.family === 'logd') {
    paras.push(`${d.name} keeps the log files of virtual machines for the hypervisor daemons (${link('virtqemud')}, or `
      + `${link('libvirtd')}). A hypervisor daemon asks it to open a guest's log file and gets back a pipe; ${d.name} `
      + 'writes whatever comes through it to the file and rotates the file by size (`max_size`, `max_backups`). '
      + 'As it is virtlogd, not the hypervisor daemon, that holds the files, the hypervisor daemon can restart '
      + 'without losing guest output.',
    'In system mode each pipe is enlarged to 1 MiB (libvirt keeps the kernel\'s 64 KiB), so a guest writing a '
      + 'burst blocks less often and a re-exec has more room to hold what arrives meanwhile; a session virtlogd '
      + 'keeps the default, as larger pipes would count against the user\'s pipe quota. Each writer starts on a new line: when a log ends mid-line (its last writer, or virtlogd, was killed there), '
      + 'a newline goes in before the next writer\'s output. A write that fails (a full disk, say) is logged once '
      + 'and closes that one pipe, so its writer gets `EPIPE`; every other log file goes on.');
  } else {
    paras.push(`${d.name} holds the locks on the disks of virtual machines for the hypervisor daemons, so that no `
      + 'two guests, on this host or on hosts sharing the storage, use a disk at the same time. The locks belong to '
      + `the ${d.name} process; a guest's locks are released when the connection opened for it closes, that is when `
      + 'the guest process exits.');
  }

  const sys = daemonPaths(d, SYSTEM);
  const ses = daemonPaths(d, SESSION);
  if (d.sessionSupported) {
    paras.push(`Run as root, ${d.name} is the system instance: configuration in ${c(sys.configDir)}, sockets in `
      + `${c(sys.runDir)}, serving the whole host. Run as any other user it is that user's session instance: `
      + `configuration in ${c(ses.configDir)}, sockets in ${c(ses.runDir)}, `
      + `${d.family === 'remote' ? 'no read-only socket, ' : ''}and only that user may connect.`);
  } else {
    const driver = d.drivers[0] as keyof typeof STATE_DRIVER_NAMES;
    paras.push(`${d.name} serves root only (system mode): the ${c(driver)} driver has no per-user instance. Started by `
      + `an ordinary user it does what libvirt's does: it starts as that user's session instance (sockets in `
      + `${c(ses.runDir)}), then its driver declines to initialise, it logs "Initialization of mandatory `
      + `${STATE_DRIVER_NAMES[driver]} state driver skipped" and "Driver state initialization failed", and stops as on `
      + `\`SIGTERM\`, sockets and pid file removed, with status ${EXIT.OK}; no client is served meanwhile.`);
  }
  const mainSockets = d.family !== 'remote' ? 'main socket' : d.withIP ? 'main, read-only, TCP and TLS sockets' : 'main and read-only sockets';
  paras.push(`Inside, two servers answer calls, as \`vadmin server-list\` shows: ${c(d.name)} behind the ${mainSockets}, `
    + `and ${c('admin')} behind the administration `
    + `socket that ${link('vadmin')} talks to.`);
  return section('DESCRIPTION', ...paras);
}

function filesTable(d: VirtdDescriptor, host: HostContext): string {
  const paths: DaemonPaths = daemonPaths(d, host);
  const sockets: SocketPaths = socketPaths(d, paths);
  const conf = d.family === 'remote' ? remoteDefaults(d, paths.mode === 'system') : undefined;
  const sockMode = (m: number | undefined): string => octal(m ?? HELPER_SOCKET_MODE);
  const rows: string[][] = [[c(paths.configFile), 'configuration file', '']];
  if (sockets.rw) rows.push([c(sockets.rw), d.family === 'remote' ? 'main socket, full access' : 'main socket', sockMode(conf?.unixSockRwPerms)]);
  if (sockets.ro) rows.push([c(sockets.ro), 'read-only socket', sockMode(conf?.unixSockRoPerms)]);
  if (sockets.admin) rows.push([c(sockets.admin), 'administration socket (vadmin)', sockMode(conf?.unixSockAdminPerms)]);
  if (conf?.ip) {
    const when = d.listenFlag ? 'with `--listen` and' : 'when';
    rows.push([`TCP port ${conf.ip.tcpPort}`, `unencrypted listener, ${when} \`listen_tcp = 1\``, ''],
      [`TCP port ${conf.ip.tlsPort}`, `TLS listener, ${when} \`listen_tls = 1\``, '']);
    const tls = defaultTlsFiles(host);
    rows.push([c(tls.key), 'TLS server private key', ''], [c(tls.cert), 'TLS server certificate', ''],
      [c(tls.ca), 'CA certificate for TLS', ''], [c(tls.crl), 'certificate revocation list, if present', '']);
  }
  rows.push([c(paths.pidFile), 'pid file, locked while the daemon runs', octal(PID_FILE_MODE)],
    [c(paths.runDir), 'run directory, created at start', octal(RUN_DIR_MODE[paths.mode])],
    [c(paths.logFile), 'log file with `--daemon` when the journal is not reachable', '']);
  if (d.execRestart) {
    rows.push([c(paths.restartStateFile), 'state handed from one image to the next at a `SIGUSR1` re-exec; read and '
      + 'removed at once by the new image', '0700']);
  }
  return table(['Path', 'What', 'Mode'], rows);
}

function filesSection(d: VirtdDescriptor): string {
  const blocks = ['### System mode (root)', filesTable(d, SYSTEM)];
  if (d.sessionSupported) blocks.push('### Session mode (other users)', filesTable(d, SESSION));
  if (d.family === 'remote') {
    const dir = '<unix_sock_dir>';
    const moved = socketPaths(d, daemonPaths(d, SESSION), dir);
    blocks.push('The socket modes shown are the defaults of `unix_sock_rw_perms`, `unix_sock_ro_perms` and '
      + '`unix_sock_admin_perms`; `unix_sock_group` sets the sockets\' group and `unix_sock_dir` moves them'
      + (d.sessionSupported ? ` (a session instance then binds only its main socket, ${c(moved.rw!)})` : '')
      + '. Under socket activation the socket units set paths, modes and owners instead.');
  } else {
    blocks.push(`The sockets of ${d.name} always have mode ${octal(HELPER_SOCKET_MODE)}: in system mode only root may `
      + 'connect, in session mode only the user running it.');
  }
  blocks.push(`The shipped configuration file, with every setting and its default, is ${c(`etc/libvirt/${d.name}.conf`)}.`);
  return section('FILES', ...blocks);
}

function signalsSection(d: VirtdDescriptor): string {
  const rows: string[][] = [
    ['`SIGTERM`, `SIGINT`, `SIGQUIT`', `Graceful stop: stop accepting, close every client, ${d.family === 'remote' ? 'clean up the drivers, ' : ''}remove the `
      + `pid file and exit with status ${EXIT.OK}. If that takes longer than ${SHUTDOWN_WATCHDOG_MS / 1000} s the daemon `
      + `gives up and exits with status ${EXIT.FAILURE}.`],
    ['`SIGHUP`', d.family === 'remote'
      ? 'Reload the drivers\' state (not the configuration file, which is read only at start). Ignored, with a '
        + 'warning, until the drivers have finished initialising and while a reload is still running.'
      : `Logged and ignored, so the guests' ${d.family === 'logd' ? 'log files stay open' : 'locks stay held'} `
        + '(libvirt\'s own daemon of this name has no handler and dies of it). To apply a changed configuration file, '
        + 'send `SIGUSR1`.'],
    ['`SIGUSR1`', d.execRestart
      ? 'Re-execute in place: stop accepting, let calls in flight finish'
        + (d.family === 'logd' ? ' and write out what the log pipes already delivered' : '')
        + ', write the state file (see FILES), and execute the same command line as the same process. Every '
        + 'listening socket, client connection'
        + (d.family === 'logd' ? ', log pipe (unread data stays in the pipe)' : ', held lock (the files stay open and locked)')
        + ' is kept; clients notice nothing and their next call works. The new image reads the configuration '
        + 'file again' + (d.family === 'logd' ? ' (new `max_size`/`max_backups` apply to the reopened files)' : '')
        + '. `SIGUSR1` and `SIGHUP` arriving while the new image starts are caught (a preloaded shim holds them): '
        + 'one more re-exec honours the first; `SIGHUP` is logged and ignored. Under systemd the daemon reports '
        + '`RELOADING=1` before and `READY=1` after; `systemctl reload` sends `SIGUSR1`. If calls do not finish within '
        + '30 s, the re-exec is abandoned and the daemon carries on as it was.'
      : 'Logged and ignored.'],
    ['`SIGUSR2`', 'Logged and ignored.'],
    ['`SIGPIPE`', 'Ignored: a client that goes away only closes its own connection.'],
  ];
  return section('SIGNALS', table(['Signal', 'Effect'], rows));
}

function exitSection(d: VirtdDescriptor): string {
  const rows: [number, string][] = [
    [EXIT.OK, '`--help` or `--version`, or a graceful stop (signal, auto-shutdown) that finished in time'
      + (d.family === 'remote' && d.drivers.length > 0
        ? '; also a stop because driver initialisation failed (logged: "Driver state initialization failed"), as '
          + `libvirt stops then${d.sessionSupported ? '' : ', which is what happens when an ordinary user starts it'}`
        : '') + '.'],
    [EXIT.FAILURE, 'Bad command line; configuration file or `LIBVIRT_*` logging variable that cannot be used; pid '
      + 'file locked by another instance, or one that is a symbolic link, not a regular file, not ours or a hard '
      + `link (never written through); or a graceful stop that did not finish within ${SHUTDOWN_WATCHDOG_MS / 1000} s.`],
    [EXIT.RUNDIR, 'The run directory cannot be created, or is a symbolic link, belongs to another user or, in session '
      + 'mode, is writable by group or others (the message names it; nothing is created in it).'],
    [EXIT.INIT, `The ${d.family === 'remote' ? 'drivers or programs' : 'programs'} could not be loaded, or the servers could not be set up.`],
    [EXIT.NETWORK, `A socket cannot be bound or claimed: ${words([
      'address in use',
      ...(d.withIP ? ['bad TLS files'] : []),
      ...(d.family === 'remote' ? ['an authentication scheme this build cannot serve on an open socket'] : []),
      'malformed socket activation',
      'an activated socket nobody claims',
      ...(d.listenFlag ? ['`--listen` under socket activation'] : []),
    ], 'or')}.`],
  ];
  if (d.execRestart) {
    rows[rows.findIndex(([code]) => code === EXIT.INIT)]![1] += ' A re-exec state file (see FILES) that cannot be read or is '
      + 'not valid, is a symbolic link or is not ours (a state file of another process is ignored instead).';
  }
  return section('EXIT STATUS',
    'The status tells which start-up step failed; one log line names the step and the cause. With `--daemon` the '
    + 'waiting command prints the text of the third column and exits with the same status.',
    table(['Status', 'Meaning', 'Reported by `--daemon` as'],
      rows.map(([code, text]) => [String(code), text, code === EXIT.OK ? '' : `"${statusText(code)}"`])));
}

function environmentSection(d: VirtdDescriptor): string {
  const v = envVarName(d.name);
  return section('ENVIRONMENT', list([
    '`LIBVIRT_DEBUG`: default log priority, 1 (debug) to 4 (error) or the words `debug`, `info`, `warning`, '
      + '`error`. Overrides `log_level`; `--verbose` still lowers it to 2. Any other value stops start-up.',
    '`LIBVIRT_LOG_FILTERS`, `LIBVIRT_LOG_OUTPUTS`: replace `log_filters` and `log_outputs` of the configuration '
      + 'file, with the same syntax.',
    '`HOME`, `XDG_CONFIG_HOME`, `XDG_RUNTIME_DIR`, `XDG_CACHE_HOME`: where a session instance keeps its files. '
      + 'Unset, `XDG_CONFIG_HOME` is `$HOME/.config`, `XDG_CACHE_HOME` is `$HOME/.cache`, and `XDG_RUNTIME_DIR` '
      + 'falls back to the cache directory. A session instance fails to start (status 1) when one of them is unset and so is `HOME`. Ignored in system mode.',
    '`NOTIFY_SOCKET`: set by systemd for `Type=notify` services. The daemon sends `READY=1` once every socket is '
      + 'bound or claimed and the drivers are initialised, `STATUS=` lines while it runs, `RELOADING=1` on '
      + `${d.execRestart ? '`SIGUSR1` (and `READY=1` from the new image)' : '`SIGHUP`'} and \`STOPPING=1\` when it stops.`,
    '`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`: socket activation (see SYSTEMD). Honoured only when '
      + '`LISTEN_PID` is this process; then `LISTEN_FDNAMES` must name every socket passed. The three are removed '
      + 'from the environment once read, so child processes never see them.',
    `${c(v)}: not read by the daemon itself; the ${c(`${d.name}.service`)} unit passes it on the command line, `
      + `as in ${c(`ExecStart=${d.name} $${v}`)}. Set it in the unit's environment file (${c(`/etc/sysconfig/${d.name}`)}, `
      + `or ${c(`/etc/default/${d.name}`)} on Debian), for example ${c(`${v}="--timeout 120"`)}.`,
  ]));
}

function systemdSection(d: VirtdDescriptor): string {
  const sys = socketPaths(d, daemonPaths(d, SYSTEM));
  const ip = d.family === 'remote' ? remoteDefaults(d, true).ip : undefined;
  const units: [string, string, string][] = [[`${d.name}.socket`, c(sys.rw!), 'main socket']];
  if (sys.ro) units.push([`${d.name}-ro.socket`, c(sys.ro), 'read-only socket (system mode only)']);
  units.push([`${d.name}-admin.socket`, c(sys.admin!), 'administration socket']);
  if (ip) {
    units.push([`${d.name}-tcp.socket`, `port ${ip.tcpPort}`, 'unencrypted TCP, `auth_tcp`'],
      [`${d.name}-tls.socket`, `port ${ip.tlsPort}`, 'TLS, `auth_tls` and the TLS files']);
  }
  const blocks = [
    `When systemd starts ${d.name} through its socket units, the daemon binds no socket itself. It claims each `
      + 'socket systemd passes by the name of the unit that created it, as `LISTEN_FDNAMES` tells (the unit name, '
      + 'since the units set no `FileDescriptorName=`):',
    table(['Socket unit', 'Listens on', 'Serves'], units.map(([u, where, what]) => [c(u), where, what])),
    'A unit that is not passed means that socket is not served: disabling a socket unit switches that socket off. '
      + `A passed socket that none of these names claims stops start-up with status ${EXIT.NETWORK}. The daemon never `
      + 'falls back to binding a socket of its own under activation, and leaves activated socket files in place '
      + 'when it exits. The units decide paths, modes and owners; '
      + (d.family === 'remote'
        ? `the \`unix_sock_*\`${ip ? ', `listen_*`, `*_port` and `listen_addr`' : ''} settings are then ignored.`
        : 'the daemon does not check them.'),
  ];
  if (d.listenFlag) blocks.push(`\`--listen\` cannot be combined with activation (status ${EXIT.NETWORK}): enable the \`-tcp\` or \`-tls\` socket unit instead.`);
  blocks.push(`The service unit ${c(`${d.name}.service`)} runs ${c(`${d.name} $${envVarName(d.name)}`)}; `
    + (d.family === 'remote'
      ? '`systemctl reload` sends `SIGHUP`. '
      : '`systemctl reload` sends `SIGUSR1`: the daemon re-executes in place (see SIGNALS). ')
    + 'A `--timeout` there lets an idle daemon exit, since systemd keeps its sockets and starts it again on the next connection.');
  return section('SYSTEMD', ...blocks);
}

function seeAlso(d: VirtdDescriptor): string {
  const pages = d.name === 'libvirtd' || d.name === 'virtproxyd'
    ? [...DAEMONS.map((x) => x.name), 'vadmin']
    : ['libvirtd', 'virtproxyd', 'virtlogd', 'virtlockd', 'vadmin'];
  return section('SEE ALSO', `${pages.filter((p) => p !== d.name).map(link).join(', ')}, ${link('index')}`);
}

export function renderDaemonPage(d: VirtdDescriptor): string {
  return page(`${d.name}(8)`, [
    section('NAME', `${d.name} - ${d.summary}`),
    synopsis(d),
    description(d),
    optionsSection(d),
    filesSection(d),
    signalsSection(d),
    exitSection(d),
    environmentSection(d),
    systemdSection(d),
    seeAlso(d),
  ]);
}

// ---- vadmin -----------------------------------------------------------------

const EXAMPLE_TIME = 1767225600; // 2026-01-01 00:00:00 UTC

/** An admin client that answers with fixed data, so examples print what vadmin prints. */
function fakeAdmin(main: string): AdminClient {
  const client = (id: number) => ({ server: main, id, timestamp: EXAMPLE_TIME + id * 60, transport: 'unix' as const });
  const fake: Partial<AdminClient> = {
    libVersion: async () => ({ version: versionNumber(VERSION), name: PRODUCT }),
    listServers: async () => [main, 'admin'],
    threadpoolInfo: async () => ({ minWorkers: 5, maxWorkers: 20, nWorkers: 5, freeWorkers: 4, prioWorkers: 5, jobQueueDepth: 0 }),
    setThreadpool: async () => {},
    listClients: async () => [client(1), client(2)],
    lookupClient: async (_s, id) => client(id),
    clientInfo: async (_s, id) => ({
      ...client(id),
      params: [
        { field: 'readonly', value: false }, { field: 'unix_user_id', value: 0 }, { field: 'unix_user_name', value: 'root' },
        { field: 'unix_group_id', value: 0 }, { field: 'unix_group_name', value: 'root' }, { field: 'unix_process_id', value: 4242 },
      ],
    }),
    closeClient: async () => {},
    clientLimits: async () => ({ nclientsMax: 5000, nclients: 2, nclientsUnauthMax: 20, nclientsUnauth: 0 }),
    setClientLimits: async () => {},
    logLevel: async () => 3,
    setLogLevel: async () => {},
    logFilters: async () => '1:*rpc* 3:*util*',
    setLogFilters: async () => {},
    logOutputs: async () => '2:journald',
    setLogOutputs: async () => {},
    updateTlsFiles: async () => {},
    setDaemonTimeout: async () => {},
  };
  return fake as AdminClient;
}

/** Runs vadmin's real shell over the fake client; returns what it printed. */
async function vadmin(argv: readonly string[]): Promise<string> {
  let printed = '';
  const out: Output = { print: (t) => { printed += t; }, printBytes: (b) => { printed += b.toString('utf8'); }, error: (l) => { printed += `error: ${l}\n`; } };
  const context = (g: GlobalOptions, o: Output): AdminContext => {
    let uri = g.connect ?? 'libvirtd:///system';
    return {
      out: o, globals: g,
      admin: () => fakeAdmin(/^(\w+):/.exec(uri)![1]!),
      reconnect: (u) => { uri = u ?? 'libvirtd:///system'; },
      currentUri: () => uri,
      close: () => {},
    };
  };
  await inUtc(() => runShell<AdminContext>({ prog: 'vadmin', description: '', commands, version: () => VERSION, context, close: () => {} }, argv, out));
  return printed;
}

/** The CLIs print local times; examples must not depend on where they are generated. */
async function inUtc<T>(fn: () => Promise<T>): Promise<T> {
  const tz = process.env.TZ;
  process.env.TZ = 'UTC';
  try {
    return await fn();
  } finally {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  }
}

interface VerbDoc { readonly text: string; readonly example: readonly string[]; readonly uri?: string }

/** What each verb does, and the arguments of its example (run against the fake client above). */
const VERBS: Record<string, VerbDoc> = {
  uri: { text: 'Print the admin URI in use: the one given with `-c` or the last `connect`, else the default (see URIS). Does not connect.', example: [] },
  version: { text: 'Print the version of vadmin and of the daemon behind the admin URI.', example: [] },
  connect: {
    text: 'Connect to another daemon\'s admin server (useful in interactive mode); without a URI, to the default one. '
      + 'The connection is checked by listing the servers.',
    example: ['virtlogd:///system'],
  },
  'server-list': { text: 'List the servers inside the daemon: the main server, named after the daemon, and `admin`.', example: [] },
  'server-threadpool-info': {
    text: 'Show a server\'s worker pool: its configured minimum and maximum (`min_workers`, `max_workers`), the '
      + 'workers running and idle, the priority workers, and the calls waiting for a worker.',
    example: ['virtqemud'],
  },
  'server-threadpool-set': {
    text: 'Change a server\'s worker pool limits while it runs. At least one option is required, and `--min-workers` '
      + 'may not exceed `--max-workers`. The change lasts until the daemon restarts.',
    example: ['virtqemud', '--max-workers', '40'],
  },
  'client-list': { text: 'List the clients connected to a server: id, transport (`unix`, `tcp`, `tls`) and connection time.', example: ['virtqemud'] },
  'client-info': {
    text: 'Show what a server knows about one client: connection time, transport, whether it is read-only, and the '
      + 'identity of its peer (user, group and process for UNIX sockets).',
    example: ['virtqemud', '1'],
  },
  'client-disconnect': { text: 'Close one client\'s connection.', example: ['virtqemud', '2'] },
  'server-clients-info': {
    text: 'Show a server\'s client limits and current counts: `max_clients`, clients connected, '
      + '`max_anonymous_clients` and clients not yet authenticated.',
    example: ['virtqemud'],
  },
  'server-clients-set': {
    text: 'Change a server\'s client limits while it runs. At least one option is required; the limit on clients '
      + 'not yet authenticated may not exceed the total.',
    example: ['virtqemud', '--max-clients', '100', '--max-unauth-clients', '10'],
  },
  'server-update-tls': {
    text: 'Make a server read its TLS key, certificate, CA and revocation list again, for new connections. Fails on '
      + 'a server without a TLS listener.',
    example: ['libvirtd'], uri: 'libvirtd:///system',
  },
  'daemon-log-filters': {
    text: 'Without `--filters`, print the daemon\'s log filters; with it, replace them (an empty string removes '
      + 'them all). The syntax is that of `log_filters`.',
    example: [],
  },
  'daemon-log-outputs': {
    text: 'Without `--outputs`, print the daemon\'s log outputs; with it, replace them (an empty string restores '
      + 'the default output). The syntax is that of `log_outputs`.',
    example: [],
  },
  'daemon-log-level': {
    text: 'Not in virt-admin. Without `--level`, print the daemon\'s default log priority; with it, set it, '
      + 'from 1 (debug) to 4 (error), as `log_level` does.',
    example: [],
  },
  'daemon-timeout': {
    text: 'Set the daemon\'s auto-shutdown timeout, as its `--timeout` option does; 0 disables it.',
    example: ['--timeout', '120'],
  },
};

/** The lines of one `help <verb>` section, without its heading. */
function helpBlock(help: string, heading: string): string[] {
  const lines = help.split('\n');
  const start = lines.indexOf(`  ${heading}`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines.slice(start + 1, end).map((l) => l.trim());
}

/** One verb's page entry: what it does, and the calls its example runs (against a fake client). */
interface VerbPage {
  readonly text: string;
  readonly calls: readonly { readonly uri: string; readonly args: readonly string[] }[];
  /** Blocks shown before the example, e.g. an input file. */
  readonly before?: readonly string[];
}

/**
 * The COMMANDS section of a CLI page: the verbs grouped as `<prog> --help`
 * groups them, each with its synopsis and options from `help <verb>`, the
 * prose from `describe`, and what the shell prints for the example calls.
 */
async function commandsSection(
  prog: string, cmds: readonly CommandDef<never>[], run: (argv: readonly string[]) => Promise<string>,
  describe: (name: string) => VerbPage | undefined, intro: string,
): Promise<string> {
  const usageText = await run(['--help']);
  const blocks: string[] = [];
  for (const group of usageText.split('\n').filter((l) => /^ \S.*:$/.test(l))) {
    blocks.push(`### ${group.trim().replace(/:$/, '')}`);
    for (const cmd of cmds.filter((x) => x.group === group.trim())) {
      const doc = describe(cmd.name);
      if (!doc) throw new Error(`${prog} verb '${cmd.name}' is not described in render-docs.ts`);
      const runs: string[] = [];
      for (const call of doc.calls) {
        parseOpts(cmd as CommandDef<unknown>, call.args); // the example must be a valid call
        const output = (await run(['-c', call.uri, cmd.name, ...call.args])).trimEnd();
        runs.push(`$ ${[prog, '-c', call.uri, cmd.name, ...call.args].join(' ')}`, ...(output ? [output] : []));
      }
      const help = commandHelp(cmd);
      const opts = helpBlock(help, 'OPTIONS').map((l) => {
        // `[--name] <type>`, `--name <type>` or `--name`; long ones leave a single space before the text.
        const m = /^(\[?--[\w-]+\]?(?: <\w+>)?)\s+(.*)$/.exec(l)!;
        return `${c(m[1]!)}: ${m[2]}`;
      });
      blocks.push([
        `#### ${c(cmd.name)}`,
        ...(cmd.aliases?.length ? [`Alias: ${cmd.aliases.map(c).join(', ')}.`] : []),
        ['```', helpBlock(help, 'SYNOPSIS')[0], '```'].join('\n'),
        doc.text,
        ...(opts.length ? [list(opts)] : []),
        ...(doc.before ?? []),
        ...(runs.length ? [[doc.calls.length > 1 ? 'Examples:' : 'Example:', '', '```', ...runs, '```'].join('\n')] : []),
      ].join('\n\n'));
    }
  }
  return section('COMMANDS', intro, ...blocks);
}

const vadminCommands = (): Promise<string> => commandsSection('vadmin', commands, vadmin, (name) => {
  const doc = VERBS[name];
  return doc && { text: doc.text, calls: [{ uri: doc.uri ?? 'virtqemud:///system', args: doc.example }] };
}, 'Verbs are grouped as in `vadmin help`; `vadmin help <verb>` prints a verb\'s synopsis '
  + 'and options. Options of the form `[--name] <type>` may also be given by position, in the order shown.');

const GLOBAL_OPTIONS: Record<string, string> = {
  '-c | --connect=URI': 'Admin URI of the daemon to manage (see URIS); also `-cURI` and `--connect URI`.',
  '-h | --help': 'Print the global options and the list of verbs, and exit with status 0.',
  '-q | --quiet': 'Do not print the empty line that otherwise follows the output of each verb.',
  '-v | -V | --version': 'Print vadmin\'s version and exit with status 0.',
};

async function vadminOptions(): Promise<string> {
  const usageText = await vadmin(['--help']);
  const opts = usageText.split('\n').map((l) => /^ {4}(-\S.*?)\s{2,}/.exec(l)?.[1]).filter((x): x is string => !!x);
  return section('OPTIONS', ...opts.map((o) => {
    const text = GLOBAL_OPTIONS[o];
    if (!text) throw new Error(`vadmin --help lists '${o}', which render-docs.ts does not describe`);
    return `### ${c(o)}\n\n${text}`;
  }), 'For compatibility with virt-admin, `-d | --debug <level>` and `-l | --log <file>` are accepted and ignored. '
    + 'Global options end at the first word that does not start with `-`, or after `--`.');
}

function urisSection(): string {
  const row = (d: VirtdDescriptor): string[] => {
    // libvirt's rule: "libvirtd" names the libvirt- prefix, any other scheme is the prefix itself.
    const scheme = d.sockPrefix === 'libvirt' ? 'libvirtd' : d.sockPrefix;
    const cells = [link(d.name)];
    for (const host of [SYSTEM, SESSION]) {
      const paths = daemonPaths(d, host);
      const uri = `${scheme}:///${paths.mode}`;
      const sock = adminTarget(uri, host.env).socket;
      if (sock !== socketPaths(d, paths).admin) throw new Error(`${uri} names ${sock}, not ${d.name}'s admin socket`);
      cells.push(paths.mode === 'session' && !d.sessionSupported ? '-' : `${c(uri)} → ${c(sock)}`);
    }
    return cells;
  };
  const dead = adminTarget('virtproxyd:///system', {}).socket;
  return section('URIS',
    'An admin URI names the administration socket of one daemon; vadmin connects to nothing else (no host, no transport: '
      + 'remote administration is not supported).',
    list([
      'Scheme: `libvirtd` stands for the socket prefix `libvirt`, shared by libvirtd and virtproxyd; any scheme '
        + 'starting with `virt` is itself the prefix. The socket is `<prefix>-admin-sock`. Other schemes are refused.',
      'Path: `/system` looks in `/run/libvirt`, `/session` in `$XDG_RUNTIME_DIR/libvirt` (`$XDG_CACHE_HOME/libvirt` '
        + 'or `$HOME/.cache/libvirt` when unset). Other paths are refused.',
      '`?socket=<path>` names the socket directly, whatever the scheme and path say. No other parameter is accepted.',
      'Without `-c`: `LIBVIRT_ADMIN_DEFAULT_URI`, else `uri_default` from `libvirt-admin.conf` (`/etc/libvirt/` as '
        + 'root, `$XDG_CONFIG_HOME/libvirt/` otherwise), else `libvirtd:///system` as root and `libvirtd:///session` '
        + 'for other users.',
    ]),
    table(['Daemon', 'System mode', 'Session mode'], DAEMONS.map(row)),
    `As virtproxyd binds libvirtd's socket paths, its admin socket is reached with \`libvirtd:///system\`; `
      + `\`virtproxyd:///system\` names ${c(dead)}, which no daemon binds.`);
}

export async function renderVadminPage(): Promise<string> {
  const usageText = await vadmin(['--help']);
  const synopsisLines = usageText.split('\n').filter((l) => l.startsWith('vadmin '));
  return page('vadmin(1)', [
    section('NAME', 'vadmin - manage virtd-node daemons over their admin sockets'),
    section('SYNOPSIS', ['```', ...synopsisLines, '```'].join('\n')),
    section('DESCRIPTION',
      'vadmin talks to the administration server of one daemon, over its admin socket: it lists the daemon\'s servers '
        + 'and clients, changes worker and client limits, logging and the auto-shutdown timeout while the daemon runs. '
        + 'It takes virt-admin\'s verbs and prints their output in virt-admin\'s layout.',
      'With a verb on the command line it runs that verb and exits. Without one it reads verbs from standard input, '
        + 'one per line, with a prompt on a terminal, until `quit`, `exit` or end of input. `help` lists the verbs and '
        + '`help <verb>` describes one. The admin socket only admits clients running as the same user as the daemon.'),
    await vadminOptions(),
    await vadminCommands(),
    urisSection(),
    section('EXIT STATUS', table(['Status', 'Meaning'], [
      ['0', 'The verb (or, interactively, the last verb) succeeded; also `--help` and `--version`.'],
      ['1', 'An unknown verb or option, a bad option value, a failed connection, or an error from the daemon. Each '
        + 'error is printed on standard error as `error: <message>` lines.'],
    ])),
    section('SEE ALSO', `${DAEMONS.map((d) => link(d.name)).join(', ')}, ${link('index')}`),
  ]);
}

// ---- vsh --------------------------------------------------------------------

/** The secrets vsh's examples show; the first is also the one secret.xml defines. */
const EXAMPLE_SECRETS: readonly SecretDef[] = [
  {
    uuid: '5f0c2d9e-7b1a-4c3e-9d8f-2a6b4e1c7d90', ephemeral: false, private: false,
    description: 'LUKS passphrase of data.qcow2', usageType: 'volume', usageId: '/var/lib/libvirt/images/data.qcow2',
  },
  {
    uuid: 'c41e8a77-0d2b-4f65-8e19-b3a5d6f0e812', ephemeral: false, private: true,
    description: 'CHAP password', usageType: 'iscsi', usageId: 'iqn.2026-01.org.example:storage',
  },
];
const EXAMPLE_VALUE = Buffer.from('correct horse battery staple');
/** Input files of the examples: shown on the page, written to a scratch directory for the run. */
const EXAMPLE_FILES: Readonly<Record<string, string>> = {
  'secret.xml': formatSecretXml(EXAMPLE_SECRETS[0]!),
  'passphrase.b64': `${EXAMPLE_VALUE.toString('base64')}\n`,
};
const [SECRET_A, SECRET_B] = EXAMPLE_SECRETS.map((x) => x.uuid) as [string, string];

const EXAMPLE_CAPABILITIES = [
  '<capabilities>', '', '  <host>', '    <uuid>4c4c4544-0042-3910-8057-b7c04f4d3732</uuid>', '    <cpu>',
  '      <arch>x86_64</arch>', '      <vendor>Intel</vendor>', "      <microcode version='240'/>",
  "      <signature family='6' model='158' stepping='10'/>", "      <topology sockets='1' dies='1' cores='4' threads='2'/>",
  ...['fpu', 'vme', 'sse2', 'ht', 'vmx', 'avx2'].map((f) => `      <feature name='${f}'/>`),
  '    </cpu>', '    <topology>', "      <cells num='1'>", "        <cell id='0'>", "          <memory unit='KiB'>16318480</memory>",
  '          <distances>', "            <sibling id='0' value='10'/>", '          </distances>', "          <cpus num='8'>",
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `            <cpu id='${i}' socket_id='0' die_id='0' core_id='${i % 4}' siblings='${i % 4},${i % 4 + 4}'/>`),
  '          </cpus>', '        </cell>', '      </cells>', '    </topology>', '    <secmodel>', '      <model>none</model>',
  '      <doi>0</doi>', '    </secmodel>', '  </host>', '', '  <guest>', '    <os_type>hvm</os_type>', "    <arch name='x86_64'>",
  '      <wordsize>64</wordsize>', '      <emulator>/usr/bin/qemu-system-x86_64</emulator>',
  ...['pc', 'pc-i440fx-8.2', 'q35', 'pc-q35-8.2'].map((m) => `      <machine>${m}</machine>`),
  "      <domain type='qemu'/>", "      <domain type='kvm'/>", '    </arch>', '  </guest>', '', '</capabilities>', '',
].join('\n');

const secretRef = (d: SecretDef): SecretRef => ({ uuid: d.uuid, usageType: d.usageType, usageId: d.usageId });

/** A connection that answers with fixed data, so examples print what vsh prints; `problems` collects bad examples. */
function fakeVirt(uri: string, problems: string[]): VirtConnection {
  const scheme = /^(\w+)/.exec(uri)?.[1] ?? '';
  const lookup = async (uuid: string): Promise<SecretRef> => {
    const d = EXAMPLE_SECRETS.find((x) => x.uuid === uuid);
    if (!d) problems.push(`example names unknown secret '${uuid}'`);
    return secretRef(d ?? EXAMPLE_SECRETS[0]!);
  };
  const fake: Partial<VirtConnection> = {
    uri,
    type: scheme === 'qemu' ? 'QEMU' : scheme,
    getUri: async () => uri,
    libVersion: async () => versionNumber(VERSION),
    hvVersion: async () => 8_002_002,
    hostname: async () => 'host1.example.org',
    nodeInfo: async () => ({ model: 'x86_64', memory: 16318480, cpus: 8, mhz: 4600, nodes: 1, sockets: 1, cores: 4, threads: 2 }),
    capabilities: async () => EXAMPLE_CAPABILITIES,
    secretDefine: async (xml) => secretRef(parseSecretXml(xml)),
    secretLookup: lookup,
    secretUndefine: async () => {},
    secretList: async () => EXAMPLE_SECRETS.map(secretRef),
    secretXml: async (uuid) => formatSecretXml(EXAMPLE_SECRETS.find((x) => x.uuid === uuid)!),
    secretSetValue: async () => {},
    secretGetValue: async () => EXAMPLE_VALUE,
    secretEvents: (filter, onEvent) => {
      // One event, then the stream ends (an example with --loop still terminates).
      let finish = (): void => {};
      const done = new Promise<void>((r) => { finish = r; });
      setImmediate(() => {
        const d = EXAMPLE_SECRETS.find((x) => !filter.uuid || x.uuid === filter.uuid)!;
        onEvent({ secret: secretRef(d), kind: filter.kind ?? 'lifecycle', lifecycle: 'defined', timestamp: EXAMPLE_TIME * 1000 + 833 });
        finish();
      });
      return { cancel: () => finish(), done };
    },
    close: async () => {},
  };
  return fake as VirtConnection;
}

/** Without -c (or with -c ''), the daemon vsh reaches picks its driver: virtqemud's, as root. */
const DEFAULT_PICKED = 'qemu:///system';
const probeSockets = (mode: keyof typeof DEFAULT_PROBE): string => DEFAULT_PROBE[mode].map((d) => c(`virt${d}d-sock`)).join(', ');

/** The spec of vsh's real shell (main.ts), over the fake connection. */
function vshShell(problems: string[]): Parameters<typeof runShell<VshContext>>[0] {
  const context = (g: GlobalOptions, o: Output): VshContext => {
    let uri = g.connect || DEFAULT_PICKED;
    return {
      out: o, globals: g, helpers: {},
      conn: async () => fakeVirt(uri, problems),
      reconnect: (u) => { uri = u || DEFAULT_PICKED; },
      close: async () => {},
    };
  };
  return { prog: 'vsh', description: '', commands: vshCommands, readonlyFlag: true, version: () => VERSION, context, close: () => {} };
}

/** Runs vsh's shell over the fake connection, with the example files in a scratch directory; returns what it printed. */
async function vsh(argv: readonly string[]): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'render-docs-'));
  try {
    for (const [name, text] of Object.entries(EXAMPLE_FILES)) fs.writeFileSync(path.join(dir, name), text);
    let printed = '';
    const out: Output = { print: (t) => { printed += t; }, printBytes: (b) => { printed += b.toString('utf8'); }, error: (l) => { printed += `error: ${l}\n`; } };
    const problems: string[] = [];
    const args = argv.map((a) => (a in EXAMPLE_FILES ? path.join(dir, a) : a));
    await inUtc(() => runShell<VshContext>(vshShell(problems), args, out));
    if (problems.length) throw new Error(`vsh ${argv.join(' ')}: ${problems.join('; ')}`);
    return printed.split(`${dir}${path.sep}`).join('');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fileBlock = (name: string, lang = ''): string => [`With ${c(name)} holding:`, '', `\`\`\`${lang}`, EXAMPLE_FILES[name]!.trimEnd(), '```'].join('\n');

interface VshVerbDoc {
  readonly text: string;
  /** The arguments of each example call; the URI is `secret:///system` for secret-* verbs, else `qemu:///system`. */
  readonly examples: readonly (readonly string[])[];
  readonly before?: readonly string[];
}

const QEMU_ONLY = 'Only the QEMU driver answers it; on a connection to another driver (`secret:///…`, `network:///…`, …) '
  + 'the command fails with "this function is not supported by the connection driver".';

/** What each vsh verb does, and the arguments of its examples (run against the fake connection above). */
const VSH_VERBS: Record<string, VshVerbDoc> = {
  uri: {
    text: 'Print the URI of the connection as virsh does: the one it was opened with (`-c`, `connect`, or the '
      + 'default URI, see CONNECTION URIs), transport, host and parameters included; when there was none, the one '
      + 'the daemon picked (`driver:///path`). It opens the connection when none is open yet.',
    examples: [[]],
  },
  version: {
    text: 'Print the version of vsh\'s library, then the daemon\'s: `Using API` is the connection\'s driver type and the '
      + 'daemon\'s version, `Running hypervisor` the hypervisor\'s version, for QEMU that of the first `qemu-system-*` '
      + 'emulator found. Drivers without a hypervisor version (secret, network, …, or QEMU on a host without an emulator) '
      + 'fail on that last line with "failed to get the hypervisor version", after printing the others.',
    examples: [[]],
  },
  hostname: {
    text: `Print the name of the host the daemon runs on. ${QEMU_ONLY}`,
    examples: [[]],
  },
  nodeinfo: {
    text: 'Print a summary of the host\'s processors and memory, read from `/proc` and `/sys` when asked: the machine '
      + 'architecture as CPU model, the CPUs online, the frequency (cpufreq\'s maximum for cpu0, else `/proc/cpuinfo`), '
      + `sockets per NUMA cell, cores per socket, threads per core, NUMA cells, and memory in KiB. ${QEMU_ONLY}`,
    examples: [[]],
  },
  capabilities: {
    text: 'Print the capabilities XML: the host (UUID, CPU architecture, vendor, signature, topology and feature '
      + 'flags, NUMA cells with their memory and CPUs, security model `none`), then one `<guest>` per `qemu-system-*` '
      + 'emulator found, with its machine types and domain types: `qemu`, and `kvm` too when `/dev/kvm` is usable and '
      + `the emulator is of the host's architecture. ${QEMU_ONLY} The example is shortened; a real host lists many more `
      + 'CPU features and machine types.',
    examples: [[]],
  },
  connect: {
    text: 'Close the connection and open one to the given URI, or to the default URI (see CONNECTION URIs) without '
      + 'one; `-r` still applies. Prints nothing when it succeeds, and fails as any other command fails to connect. '
      + 'Mostly of use in interactive mode, where the commands that follow use the new connection.',
    examples: [['secret:///system']],
  },
  'secret-define': {
    text: 'Define a secret from an XML file, or change the definition of the secret with the same `<uuid>`; without '
      + '`<uuid>` the daemon picks a random one. `ephemeral=\'yes\'` keeps the secret in the daemon\'s memory only '
      + '(and holds off its auto-shutdown while it exists), otherwise it is saved under the daemon\'s configuration '
      + 'directory; `private=\'yes\'` means its value can be set but never read back. `<usage type=...>` ties it to '
      + 'one user: `volume` (a `<volume>` path), `ceph` or `tls` or `vtpm` (a `<name>`), `iscsi` (a `<target>`); no two '
      + 'secrets may share a usage. A redefinition may neither change the usage nor make a private secret public.',
    examples: [['secret.xml']],
    before: [fileBlock('secret.xml', 'xml')],
  },
  'secret-undefine': {
    text: 'Delete a secret and its value.',
    examples: [[SECRET_B]],
  },
  'secret-dumpxml': {
    text: 'Print a secret\'s definition as XML (never its value).',
    examples: [[SECRET_A]],
  },
  'secret-list': {
    text: 'List the secrets, sorted by UUID, with their usage (`<type> <id>`, or `Unused`). Each option keeps only '
      + 'the secrets it names; combined, a secret must match all of them.',
    examples: [[]],
  },
  'secret-set-value': {
    text: 'Set a secret\'s value (private secrets included). With `--file` the value is read from the file, as base64 '
      + 'text (surrounding white space ignored) or, with `--plain`, as raw bytes, a trailing newline included. '
      + 'Otherwise it is the base64 argument, which other users can see in the process list: vsh says so with '
      + '"error: Passing secret value as command-line argument is insecure!", then sets it anyway. `--file` wins '
      + 'when both are given.',
    examples: [[SECRET_A, '--file', 'passphrase.b64']],
    before: [fileBlock('passphrase.b64')],
  },
  'secret-get-value': {
    text: 'Print a secret\'s value in base64 or, with `--plain`, as text without a newline of its own. Fails for a private '
      + 'secret ("Invalid secret: secret is private") and for a secret without a value.',
    examples: [[SECRET_A], [SECRET_A, '--plain']],
  },
  'secret-event': {
    text: 'With `--list`, print the event types. With `--event lifecycle` (a secret defined or undefined) or `--event '
      + 'value-changed`, wait for such an event, of any secret or of the one `--secret` names (by UUID), print it and '
      + 'exit; with `--loop`, keep printing events until interrupted or, with `--timeout`, until that many seconds have '
      + 'passed ("event loop timed out"). Either way the count of events follows. `--timestamp` puts the local time '
      + 'of each event first.',
    examples: [['--event', 'lifecycle', '--timestamp'], ['--list']],
  },
  'vlock-register': {
    text: 'Register a lock owner on vsh\'s connection to virtlockd (root\'s socket when run as root, else your own '
      + 'session\'s; `--socket` names another). The connection stays open for the rest of the vsh session and holds '
      + 'every lock acquired on it: run the lock verbs in one interactive vsh. `--pid` is the process the locks are '
      + 'held for (default: vsh itself). When the connection closes, virtlockd releases the owner\'s locks and, if '
      + 'the owner was the connecting process and held any, stops it (SIGTERM, then SIGKILL), as it does for a guest '
      + 'whose hypervisor lost its disk locks.',
    examples: [],
  },
  'vlock-acquire': {
    text: 'Take a lock for the registered owner: exclusive, or `--shared` (joins other shared holders). Without '
      + '`--lockspace` the resource is a full path in the default lock space; with it, a file name in that directory. '
      + '`--autocreate` creates a missing resource file and removes it again when the last holder releases it. Fails with '
      + '"Lockspace resource \'NAME\' is locked" when another owner holds it.',
    examples: [],
  },
  'vlock-release': {
    text: 'Release a lock the registered owner holds.',
    examples: [],
  },
  'vlock-list': {
    text: 'List every resource virtlockd holds, with its lock space (`(default)` for full paths), mode and owner pids. '
      + 'Any connection may list, so an administrator sees who holds what without registering.',
    examples: [],
  },
  'log-list': {
    text: 'List the log files virtlogd has open (one per guest pipe): path, driver, domain and the live file\'s size.',
    examples: [],
  },
};

const vshExampleUri = (verb: string): string => (verb.startsWith('secret-') ? 'secret:///system' : 'qemu:///system');

const VSH_GLOBAL_OPTIONS: Record<string, string> = {
  '-c | --connect=URI': 'Connection URI (see CONNECTION URIs); also `-cURI` and `--connect URI`. Without it, the '
    + 'default URI.',
  '-h | --help': 'Print the global options and the list of commands, and exit with status 0.',
  '-q | --quiet': 'Do not print the empty line that otherwise follows the output of each command.',
  '-r | --readonly': 'Connect to the read-only socket (`…-sock-ro`) of a local `/system` URI, where the daemon '
    + 'allows only calls that change nothing. Session daemons have no read-only socket, and vsh does not ask the '
    + 'daemon itself for a read-only connection, so the option has no effect on `/session`, TCP and TLS URIs, or '
    + 'with `?socket=`.',
  '-v | -V | --version': 'Print vsh\'s version and exit with status 0.',
};

async function vshOptions(): Promise<string> {
  const usageText = await vsh(['--help']);
  const opts = usageText.split('\n').map((l) => /^ {4}(-\S.*?)\s{2,}/.exec(l)?.[1]).filter((x): x is string => !!x);
  return section('OPTIONS', ...opts.map((o) => {
    const text = VSH_GLOBAL_OPTIONS[o];
    if (!text) throw new Error(`vsh --help lists '${o}', which render-docs.ts does not describe`);
    return `### ${c(o)}\n\n${text}`;
  }), 'For compatibility with virsh, `-d | --debug <level>` and `-l | --log <file>` are accepted and ignored. '
    + 'Global options end at the first word that does not start with `-`, or after `--`.');
}

const vshCommandsSection = (): Promise<string> => commandsSection('vsh', vshCommands, vsh, (name) => {
  const doc = VSH_VERBS[name];
  return doc && { text: doc.text, ...(doc.before ? { before: doc.before } : {}), calls: doc.examples.map((args) => ({ uri: vshExampleUri(name), args })) };
}, 'Commands are grouped as in `vsh help`; `vsh help <command>` prints a command\'s synopsis and options. Options '
  + 'of the form `[--name] <type>` may also be given by position, in the order shown. The examples run vsh against '
  + 'a stand-in for the daemon that answers with fixed data, so names, numbers and times are made up; the layout is vsh\'s.');

/** Where a local URI leads (no file system look-up: ?mode= is always given). */
function localTarget(uri: string, host: HostContext, readonly = false, env: Record<string, string> = {}): Resolved {
  return resolveUri(uri, { readonly, env: { ...host.env, ...env }, euid: host.euid });
}

function connectionUrisSection(): string {
  const libvirtd = DAEMONS.find((d) => d.name === 'libvirtd')!;
  const sockets = (d: VirtdDescriptor, host: HostContext): SocketPaths => socketPaths(d, daemonPaths(d, host));
  const same = (uri: string, got: string | undefined, want: string | undefined): string => {
    if (got !== want) throw new Error(`${uri} leads to ${got}, not ${want}`);
    return c(got!);
  };
  const row = (label: string, scheme: string, mode: 'direct' | 'legacy', d: VirtdDescriptor): string[] => {
    const sys = `${scheme}:///system?mode=${mode}`;
    const ses = `${scheme}:///session?mode=${mode}`;
    const started = localTarget(ses, SESSION).autostart;
    if (d.sessionSupported && started !== d.name) throw new Error(`${ses} autostarts ${started}, not ${d.name}`);
    return [
      label,
      same(sys, localTarget(sys, SYSTEM).socket, sockets(d, SYSTEM).rw),
      same(`${sys} (-r)`, localTarget(sys, SYSTEM, true).socket, sockets(d, SYSTEM).ro),
      d.sessionSupported ? same(ses, localTarget(ses, SESSION).socket, sockets(d, SESSION).rw) : '-',
    ];
  };
  const rows = [
    ...modular.map((d) => row(`${c(`${d.drivers[0]!}:///…`)}, direct: ${link(d.name)}`, d.drivers[0]!, 'direct', d)),
    row(`any driver, legacy: ${link('libvirtd')} or ${link('virtproxyd')}`, 'qemu', 'legacy', libvirtd),
  ];
  const noSession = modular.filter((d) => !d.sessionSupported);
  const q = 'qemu:///session?mode=direct';
  if (localTarget(q, SESSION, false, { LIBVIRT_AUTOSTART: '0' }).autostart) throw new Error('LIBVIRT_AUTOSTART=0 no longer stops autostart');
  if (localTarget(`qemu:///session?socket=/x`, SESSION).autostart) throw new Error('?socket= now autostarts');
  const rootSession = localTarget(q, SYSTEM);
  if (rootSession.autostart || path.dirname(rootSession.socket!) !== socketDir('system', SYSTEM.env)) {
    throw new Error('root\'s session URIs no longer lead to the system sockets');
  }
  const ip = remoteDefaults(libvirtd, true).ip!;
  const tcpPort = Number(/:(\d+)$/.exec(resolveUri('qemu+tcp://host.example/system', { readonly: false, env: {}, euid: 0 }).target.description)![1]);
  if (String(tcpPort) !== ip.tcpPort) throw new Error(`vsh's TCP port ${tcpPort} is not the daemons' tcp_port ${ip.tcpPort}`);
  const conf = (mode: 'system' | 'session', host: HostContext): string => c(path.join(configDir(mode, host.env), 'libvirt.conf'));

  return section('CONNECTION URIs',
    'A connection URI has the form `driver[+transport]://[host][:port]/path[?parameters]`. The driver (`qemu`, '
      + '`secret`, `network`, …) is the scheme; the path is `/system` for the privileged daemons, run by root, or '
      + '`/session` for the daemons of the calling user. vsh finds the daemon from the URI, then asks it to open '
      + '`driver:///path` (transport, host and parameters stripped); the daemon refuses a driver it does not carry, '
      + 'and a path other than its own mode\'s.',
    '### Default URI',
    `Without \`-c\`, and for \`connect\` without a URI: \`LIBVIRT_DEFAULT_URI\`, else \`uri_default\` in `
      + `${c('libvirt.conf')} (${conf('system', SYSTEM)} as root, ${conf('session', SESSION)} otherwise; a file that `
      + 'exists but cannot be read or parsed is an error), else no URI at all, as virsh: vsh connects to the first '
      + `socket that exists of ${probeSockets('system')} (as root; ${probeSockets('session')} `
      + 'for other users), else libvirtd\'s, and the daemon there picks its own driver (`uri` then prints, say, '
      + `${c(DEFAULT_PICKED)}). An empty \`-c ''\` skips the variable and the file and goes straight to that last choice.`,
    '### Local URIs',
    `\`driver:///system\` and \`driver:///session\` (or \`driver+unix:///…\`) connect to a UNIX socket in `
      + `${c(socketDir('system', SYSTEM.env))} or ${c(socketDir('session', SESSION.env))} `
      + '(`$XDG_CACHE_HOME/libvirt`, else `$HOME/.cache/libvirt`, when `XDG_RUNTIME_DIR` is unset). A host name with '
      + 'the `unix` transport is refused. As root, a `/session` URI uses the system directory, and no daemon is started.',
    list([
      'Direct or legacy: vsh takes the socket of the driver\'s own modular daemon ("direct") when it exists, else '
        + 'libvirt\'s shared socket ("legacy", bound by libvirtd or by virtproxyd, which passes the connection on to '
        + 'the modular daemon) when that exists, else the direct one. `?mode=direct` or `?mode=legacy` makes the '
        + 'choice; any other mode is refused ("Unknown remote mode").',
      '`?socket=PATH` connects to PATH, whatever the rest of the URI says: no choice, no read-only variant, no autostart.',
      'Other parameters are ignored.',
    ]),
    table(['URI, mode: daemon', 'System socket', 'System, `-r`', 'Session socket'], rows),
    `${words(noSession.map((d) => link(d.name)))} have no session instance; a \`/session\` URI of their driver `
      + 'starts the daemon, which stops again at driver initialisation (status 0, as libvirt\'s); vsh, like virsh, then '
      + 'fails after its retries with "Failed to connect socket to \'<dir>/<daemon>-sock\': No such file or directory".',
    '### Session autostart',
    'For a `/session` URI whose socket accepts no connection, vsh starts the daemon (the direct one, or libvirtd in '
      + 'legacy mode), as libvirt\'s client does. It creates the socket directory (mode 0700) if needed, takes a lock '
      + 'on `<daemon>.lock` there, so that of several clients starting at once only one starts the daemon (the '
      + 'others wait for the lock, about 30 seconds at most, then find the socket), and looks for the binary: '
      + '`VIRTD_PATH` (the binary itself, or a directory holding it), then each directory of `PATH`, `/usr/sbin`, '
      + '`/usr/local/sbin`, and last the `node_modules/.bin` of the checkout vsh runs from. It runs '
      + `${c(`<daemon> --timeout=${AUTOSTART_TIMEOUT_SECONDS} --daemon`)}, so the daemon exits after `
      + `${AUTOSTART_TIMEOUT_SECONDS} seconds without clients, with an environment reduced to \`PATH\`, \`HOME\`, `
      + '`USER`, `LOGNAME`, the `XDG_*` directories and the `LIBVIRT_DEBUG`, `LIBVIRT_LOG_FILTERS` and '
      + '`LIBVIRT_LOG_OUTPUTS` logging settings; waits until the daemon reports that it is ready (or failed, '
      + '"Failed to start <daemon>: exit status N"), then up to about 5 seconds for the socket; and removes the '
      + 'lock file. `LIBVIRT_AUTOSTART=0` turns autostart off; `VIRTD_AUTOSTART_TIMEOUT` sets another `--timeout`.',
    '### Remote URIs',
    `\`driver+tls://host[:port]/system\` (also \`driver://host/system\`: a host without a transport means TLS) `
      + `connects over TLS to port ${ip.tlsPort} by default, \`driver+tcp://host[:port]/system\` over plain TCP to `
      + `port ${tcpPort}, the daemons' default \`tls_port\` and \`tcp_port\`; without a host, to \`localhost\`. `
      + 'What listens there is libvirtd started with `--listen`, or virtproxyd, with `listen_tls` or `listen_tcp` '
      + 'enabled. Other transports (`ssh`, `libssh`, `ext`, …) are refused ("transport in URL not recognised").',
    list([
      'TLS presents a client certificate and checks the server\'s. The files are, as root, '
        + '`/etc/pki/CA/cacert.pem`, `/etc/pki/libvirt/clientcert.pem` and `/etc/pki/libvirt/private/clientkey.pem`; '
        + 'for other users `cacert.pem`, `clientcert.pem` and `clientkey.pem` in `$HOME/.pki/libvirt`; with '
        + '`?pkipath=DIR`, the same three names in DIR. A missing file stops the connection ("Cannot access CA '
        + 'certificate \'…\'"), and so does a client certificate not signed by that CA ("Our own certificate … failed '
        + 'validation against …"), before any connection. The server\'s certificate must be signed by that CA and name '
        + 'the host of the URI; `?no_verify=1` skips the host name check (the CA check stays). A server certificate '
        + 'that fails is reported as virsh reports it: a `warning :` line with the reason ("Certificate check failed '
        + 'Certificate [session] owner does not match the hostname …", "… hasn\'t got a known issuer."), then '
        + '"authentication failed: Failed to verify peer\'s certificate".',
      'TCP neither encrypts nor authenticates from vsh\'s side: the daemon accepts it only as its `auth_tcp` allows. '
        + 'Use it on trusted networks only.',
    ]));
}

export async function renderVshPage(): Promise<string> {
  const usageText = await vsh(['--help']);
  const synopsisLines = usageText.split('\n').filter((l) => l.startsWith('vsh '));
  return page('vsh(1)', [
    section('NAME', 'vsh - the virtd-node management shell'),
    section('SYNOPSIS', ['```', ...synopsisLines, '```'].join('\n')),
    section('DESCRIPTION',
      'vsh is the command-line client of the daemons\' driver APIs, after virsh: it takes virsh\'s command names and '
        + 'options and prints virsh\'s output layout and error messages, for what the daemons implement so far: '
        + 'host queries and the secret driver. The daemons speak gRPC, not libvirt\'s RPC protocol, so vsh stands in '
        + 'for virsh with them.',
      'vsh opens one connection, when the first command needs it, to the daemon that the connection URI leads to '
        + '(see CONNECTION URIs): over a UNIX socket on this host, starting a session daemon when none runs, or over '
        + `TLS or TCP to another. Host commands are answered by the connection's driver. Secret commands need a daemon `
        + `that carries the secret driver: ${link('virtsecretd')} (\`secret:///system\`), or ${link('libvirtd')} `
        + 'whatever driver the URI names.',
      'With a command on the command line it runs that command and exits. Without one it reads commands from standard '
        + 'input, one per line, with shell-like quoting and a `vsh # ` prompt on a terminal, until `quit`, `exit` or '
        + 'end of input; the connection stays open from one command to the next. `help` lists the commands and '
        + '`help <command>` describes one; the group keywords shown in the list are not accepted by `help`.'),
    await vshOptions(),
    await vshCommandsSection(),
    connectionUrisSection(),
    section('ENVIRONMENT', list([
      '`LIBVIRT_DEFAULT_URI`: the connection URI when `-c` is not given.',
      '`LIBVIRT_AUTOSTART`: `0` stops vsh from starting session daemons.',
      `\`VIRTD_AUTOSTART_TIMEOUT\`: the \`--timeout\` of an autostarted daemon, in seconds, instead of ${AUTOSTART_TIMEOUT_SECONDS}.`,
      '`VIRTD_PATH`: the daemon binary to autostart, or the directory holding it; searched before `PATH`.',
      '`PATH`: searched for the daemon binary to autostart, and passed on to it.',
      '`XDG_RUNTIME_DIR`, `XDG_CACHE_HOME`, `HOME`: where session sockets are (`$XDG_RUNTIME_DIR/libvirt`, else '
        + '`$XDG_CACHE_HOME/libvirt`, else `$HOME/.cache/libvirt`). `HOME` also locates the TLS files of users other than root.',
      '`XDG_CONFIG_HOME`: where a user\'s `libvirt.conf` is (`$XDG_CONFIG_HOME/libvirt`, else `$HOME/.config/libvirt`).',
      '`TZ`: the time zone of `secret-event --timestamp`.',
    ])),
    section('EXIT STATUS', table(['Status', 'Meaning'], [
      ['0', 'The command (or, interactively, the last command) succeeded; also `--help` and `--version`.'],
      ['1', 'An unknown command or option, a bad option value, a failed connection, or an error from the daemon. Each '
        + 'error is printed on standard error as `error: <message>` lines, the context first ("failed to connect to '
        + 'the hypervisor", "Failed to list secrets", …) and the daemon\'s message after it.'],
    ])),
    section('SEE ALSO', `${link('virtqemud')}, ${link('virtsecretd')}, ${link('libvirtd')}, ${link('virtproxyd')}, `
      + `${link('vadmin')}, ${link('index')}`),
  ]);
}

// ---- index and all pages ----------------------------------------------------

function renderIndex(): string {
  const role = (d: VirtdDescriptor): string =>
    d.family === 'logd' ? 'guest log files'
      : d.family === 'lockd' ? 'disk locks'
        : d.name === 'libvirtd' ? 'monolithic: every driver'
          : d.name === 'virtproxyd' ? 'proxy to the modular daemons'
            : `modular: ${d.drivers.join(', ')}`;
  return page('virtd-node manual pages', [
    'Generated by `node scripts/dist/generate.js` from the daemon descriptors and the code; edit '
      + '`scripts/src/render-docs.ts`, not these files.',
    section('Daemons (section 8)', table(['Page', 'Summary', 'Serves'],
      DAEMONS.map((d) => [link(d.name), d.summary, role(d)]))),
    section('Commands (section 1)', table(['Page', 'Summary'], [
      [link('vadmin'), 'manage virtd-node daemons over their admin sockets'],
      [link('vsh'), 'the virtd-node management shell'],
    ])),
    section('Configuration files', `Each daemon's default configuration file is ${c('etc/libvirt/<daemon>.conf')}, installed as `
      + `${c('/etc/libvirt/<daemon>.conf')}; see FILES in the daemon's page.`),
    section('Other pages', table(['Page', 'Summary'], [
      ['[performance](performance.md)', 'our daemons measured against real libvirt 9.0 (`npm run bench`); written by hand'],
    ])),
  ]);
}

/** Repo-relative path → file text, for every page under docs/. */
export async function renderDocs(): Promise<Map<string, string>> {
  const out = new Map<string, string>([['docs/index.md', renderIndex()]]);
  for (const d of DAEMONS) out.set(`docs/${d.name}.md`, renderDaemonPage(d));
  out.set('docs/vadmin.md', await renderVadminPage());
  out.set('docs/vsh.md', await renderVshPage());
  return out;
}
