// The top of every daemon: command line, config, logging, paths, pid file,
// servers, sockets (activated or bound), readiness, signals and shutdown.
// Start-up runs in libvirt's order, each step in a named stage whose exit
// code the process ends with if it fails. Signals and process.exit live
// here and in bin/ only.
import fs from 'node:fs';
import path from 'node:path';
import {
  readConfFile, remoteDaemonConfig, logdConfig, lockdConfig, type ConfFile,
} from '@virtd/conf';
import { VirtError } from '@virtd/errors';
import type { Logger } from 'pino';
import type { Notifier } from 'node-systemd-socket';
import { takeOverSignals, earlySignalCounts, earlyInspectorUrl, type CaughtSignal } from './early-signals.js';
import { parseCommandLine, usage, UsageError, type CommandLine } from './cli.js';
import { daemonPaths, socketPaths, defaultTlsFiles, type HostContext, type DaemonPaths, type SocketPaths } from './paths.js';
import { ensureRunDir } from './rundir.js';
import { StartupError, stage, statusText, EXIT } from './stages.js';
import { formatText } from './logging/format.js';
import { formatOutputs, type LogOutput } from './logging/settings.js';
import { coreSettings, checkAuthSupported, type CoreSettings, type FamilyConfig } from './settings.js';
import { AutoShutdown } from './auto-shutdown.js';
import { daemonChild, spawnDaemonChild, type DaemonChild } from './daemonize.js';
import { VERSION, PRODUCT } from './version.js';
import type { LogManager } from './logging/log.js';
import type { PidFile } from './pidfile.js';
import type { Server, Role } from './server.js';
import type { Listener } from './listener.js';
import type { TlsEndpoint } from './tls.js';
import type { HealthState } from './rpc/health.js';
import type { DaemonDescriptor, DaemonModule } from './descriptor.js';
import type { DaemonRuntime } from './runtime.js';
import type { Program } from './program.js';
import type { FdHandoff } from './fd-handoff.js';
import { takeReexecMarker, REEXEC_ENV, type DaemonState } from './exec-state.js';

type Serving = typeof import('./serving.js');
let servingModule: Serving | undefined;
/** The serving layers, loaded once start-up is past the cheap checks. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const serving = (): Serving => (servingModule ??= require('./serving.js') as Serving);

/** libvirt gives a graceful stop this long before exiting with status 1. */
export const SHUTDOWN_WATCHDOG_MS = 30_000;

/** A plain libvirt-style line on stderr, for failures before logging exists. */
function stderrLine(level: number, module: string, msg: string): void {
  process.stderr.write(formatText({ level, time: Date.now(), pid: process.pid, module, msg }));
}

class Daemon {
  private readonly d: DaemonDescriptor;
  private readonly argv: readonly string[];
  private readonly env: Record<string, string | undefined>;
  private readonly host: HostContext;
  private notifierInstance: Notifier | undefined;
  // Set as start-up proceeds; read by shutdown, which may come at any point.
  private logs: LogManager | undefined;
  private log: Logger | undefined;
  private pidFile: PidFile | undefined;
  private servers = new Map<string, Server>();
  private module: DaemonModule | undefined;
  private autoShutdown: AutoShutdown | undefined;
  private healthState: HealthState | undefined;
  private daemonChild: DaemonChild | undefined;
  private driversReady = false;
  private reloading = false;
  private quitting: Promise<number> | undefined;
  private quitRequested: string | undefined;
  private fdHandoffInstance: FdHandoff | undefined;
  private paths: DaemonPaths | undefined;
  /** A re-exec is under way (SIGUSR1s meanwhile are one and the same request). */
  private reexecing = false;
  private resolveRun: ((code: number) => void) | undefined;

  private get notifier(): Notifier {
    return (this.notifierInstance ??= serving().createNotifier());
  }

  private get health(): HealthState {
    return (this.healthState ??= new (serving().HealthState)());
  }

  constructor(d: DaemonDescriptor, argv: readonly string[], env: Record<string, string | undefined>) {
    this.d = d;
    this.argv = argv;
    this.env = env;
    this.host = { euid: process.geteuid!(), env };
  }

  /** Runs the daemon to the end; resolves with the exit status. */
  async main(): Promise<number> {
    for (const sig of takeOverSignals((s) => this.onSignal(s))) this.onSignal(sig);
    try {
      return await this.start();
    } catch (e) {
      return this.failed(e);
    }
  }

  private async start(): Promise<number> {
    const d = this.d;
    let paths: DaemonPaths;
    let cli: CommandLine;
    try {
      paths = daemonPaths(d, this.host);
      cli = parseCommandLine(d, this.argv);
    } catch (e) {
      if (e instanceof UsageError) {
        process.stderr.write(`${d.name}: ${e.message}\n`);
        if (e.message !== 'Invalid value for timeout') process.stderr.write(this.usageText(daemonPathsSafe(d, this.host)));
        return EXIT.FAILURE;
      }
      throw new StartupError('arguments', e);
    }
    if (cli.help) {
      process.stderr.write(this.usageText(paths));
      return EXIT.OK;
    }
    if (cli.version) {
      process.stdout.write(`${d.name} (${PRODUCT}) ${VERSION}\n`);
      return EXIT.OK;
    }

    const configFile = cli.configFile ?? paths.configFile;
    const config = await stage('config', () => this.loadConfig(configFile, !!cli.configFile));
    const settings = await stage('config', () => coreSettings({
      descriptor: d, config, env: this.env, verbose: cli.verbose, tlsDefaults: defaultTlsFiles(this.host),
    }));
    this.daemonChild = daemonChild(this.env);
    const daemonize = cli.daemon && !this.daemonChild;
    const logs = await stage('logging', () => this.setupLogging(settings, paths, cli.daemon));
    const log = logs.get('daemon');
    this.log = log;
    log.info(`${d.name} ${VERSION} (${PRODUCT}) starting in ${paths.mode} mode`);

    const sockets = socketPaths(d, paths, settings.unix.dir);
    this.paths = paths;
    // The run dir is checked before anything in it is read (the re-exec
    // state) or written: one that another user controls is never used.
    await stage('rundir', () => {
      ensureRunDir(paths.runDir, paths.mode, this.host.euid);
      if (settings.unix.dir) fs.mkdirSync(settings.unix.dir, { recursive: true, mode: paths.mode === 'system' ? 0o755 : 0o700 });
    });
    // A re-exec'd image neither daemonizes again nor gives up its pid file
    // lock: the old image's descriptor still holds it.
    const reexeced = d.execRestart ? takeReexecMarker(this.env) : undefined;
    if (daemonize && !reexeced) return this.daemonizeParent(cli);
    const pidPath = cli.pidFile ?? paths.pidFile;
    if (pidPath !== '') {
      this.pidFile = await stage('pidfile', () => serving().PidFile.acquire(path.resolve(pidPath), process.pid, reexeced?.pidFd));
    }
    // Only with the pid file held: a second instance started meanwhile must
    // not take (and so destroy) the state of the one re-executing.
    const restored = d.execRestart ? await stage('init', () => this.takeState(paths, reexeced !== undefined)) : undefined;

    this.autoShutdown = new AutoShutdown(() => this.quit(`no client for ${this.autoShutdown?.timeout} s`));
    const rt = this.runtime(paths, config);
    await stage('init', async () => {
      const module = await d.load(rt);
      this.module = module;
      this.createServers(rt, settings, module.programs);
    });

    if (restored) await stage('init', () => this.restore(restored));
    else await stage('network', () => this.openSockets(settings, sockets, cli));
    this.checkQuit();

    // Driver initialisation holds auto-shutdown off; clients wait in the
    // backlog until it is done, and only then are we ready.
    if (this.module?.init) {
      const release = this.autoShutdown.inhibit();
      this.notifier.status('Initializing drivers');
      try {
        await this.module.init();
      } catch (e) {
        return this.driverInitFailed(e);
      } finally {
        release();
      }
    }
    this.driversReady = true;
    if (restored) this.reportEarlySignals();
    if (cli.timeout) this.autoShutdown.setTimeout(cli.timeout);
    for (const s of this.servers.values()) s.start();
    this.autoShutdown.setClientCount(this.totalClients());

    const where = [...this.servers.values()].flatMap((s) => s.boundListeners().map((l) => `${l.role}:${l.listener.address}`));
    log.info({ sockets: where, ...(restored ? { clients: this.totalClients() } : {}) }, restored ? 'ready again after re-exec' : 'ready');
    this.notifier.ready(this.statusLine());
    this.daemonChild?.report(EXIT.OK);
    this.checkQuit();
    return new Promise<number>((resolve) => {
      this.resolveRun = resolve;
      // A SIGUSR1 that came while we started is honoured now.
      if (this.pendingReexec) queueMicrotask(() => { this.pendingReexec = false; this.reexec(); });
    });
  }

  /**
   * libvirt's daemonRunStateInit on failure: log it, then stop the way
   * SIGTERM does (sockets and pid file removed), with status 0. It is how a
   * modular daemon whose driver has no instance in this mode (virtlxcd run
   * by an ordinary user) ends. The --daemon parent had been told "started"
   * before driver initialisation in libvirt, so it is told so here too.
   */
  private driverInitFailed(e: unknown): Promise<number> {
    this.log?.error((e as Error).message ?? String(e));
    this.log?.error('Driver state initialization failed');
    this.daemonChild?.report(EXIT.OK);
    return new Promise<number>((resolve) => {
      this.resolveRun = resolve;
      this.quit('driver state initialization failed');
    });
  }

  private usageText(paths: DaemonPaths): string {
    let sockets: SocketPaths = {};
    try { sockets = socketPaths(this.d, paths); } catch { /* shown without sockets */ }
    return usage(this.d, { paths, sockets, tls: safeTls(this.host) });
  }

  private loadConfig(file: string, required: boolean): FamilyConfig {
    let conf: ConfFile | undefined;
    try {
      conf = readConfFile(file, { required });
    } catch (e) {
      throw new VirtError('CONF_SYNTAX', 'CONF', undefined, { message: `Can't load config file: ${(e as Error).message}`, cause: e });
    }
    const d = this.d;
    const loaded = d.family === 'remote'
      ? remoteDaemonConfig(conf, { daemon: d.name, withIP: d.withIP, privileged: this.host.euid === 0 })
      : d.family === 'logd' ? logdConfig(conf) : lockdConfig(conf);
    this.pendingUnknownKeys = loaded.unknownKeys;
    return loaded.config;
  }

  private pendingUnknownKeys: string[] = [];

  private setupLogging(settings: CoreSettings, paths: DaemonPaths, daemonized: boolean): LogManager {
    const outputs: LogOutput[] = settings.log.outputs ?? this.defaultOutputs(settings, paths, daemonized);
    for (const o of outputs) if (o.kind === 'file') fs.mkdirSync(path.dirname(o.arg!), { recursive: true, mode: 0o700 });
    const logs = new (serving().LogManager)(this.d.name, { level: settings.log.level, filters: settings.log.filters, outputs });
    this.logs = logs;
    const conf = logs.get('conf');
    for (const k of this.pendingUnknownKeys) conf.debug(`ignoring unknown config key '${k}'`);
    return logs;
  }

  private defaultOutputs(settings: CoreSettings, paths: DaemonPaths, daemonized: boolean): LogOutput[] {
    const S = serving();
    return S.defaultOutputs({
      daemonize: daemonized,
      stdinIsTTY: !!process.stdin.isTTY,
      journald: S.journalAvailable(),
      logFile: paths.logFile,
      priority: settings.log.level,
    });
  }

  private async daemonizeParent(cli: CommandLine): Promise<number> {
    // The child re-reads everything, from '/', so paths must be absolute.
    const args: string[] = [];
    if (cli.verbose) args.push('--verbose');
    if (cli.listen) args.push('--listen');
    if (cli.timeout !== undefined) args.push(`--timeout=${cli.timeout}`);
    if (cli.configFile) args.push(`--config=${path.resolve(cli.configFile)}`);
    if (cli.pidFile !== undefined) args.push(`--pid-file=${cli.pidFile === '' ? '' : path.resolve(cli.pidFile)}`);
    args.push('--daemon');
    const code = await spawnDaemonChild(process.argv[1]!, args, this.env);
    if (code === EXIT.OK) return EXIT.OK;
    process.stderr.write(`${this.d.name}: error: ${statusText(code ?? EXIT.FAILURE)}. `
      + 'Check /var/log/messages or run without --daemon for more info.\n');
    return code ?? EXIT.FAILURE;
  }

  private runtime(paths: DaemonPaths, config: FamilyConfig): DaemonRuntime {
    const logs = this.logs!;
    return {
      descriptor: this.d,
      host: this.host,
      paths,
      logs,
      servers: this.servers,
      autoShutdown: this.autoShutdown!,
      config,
      log: (m) => logs.get(m),
      fdHandoff: () => (this.fdHandoffInstance ??= new (serving().FdHandoff)(logs.get('rpc.fdhandoff'))),
    };
  }

  private createServers(rt: DaemonRuntime, s: CoreSettings, programs: readonly Program[]): void {
    const { Server, healthProgram, reflectionPrograms, adminProgram } = serving();
    const health = this.health;
    const withExtras = (own: readonly Program[]): Program[] => {
      const list: Program[] = [...own];
      const names = (): string[] => list.map((p) => serviceName(p));
      list.push(healthProgram(health, names), ...reflectionPrograms(names));
      return list;
    };
    const main = new Server(s.main, withExtras(programs), this.logs!.get('rpc.server'));
    const admin = new Server(s.admin, withExtras([adminProgram(rt, () => formatOutputs(this.defaultOutputs(s, rt.paths, !!this.daemonChild)))]),
      this.logs!.get('rpc.server'));
    this.servers.clear();
    this.servers.set(main.name, main);
    this.servers.set(admin.name, admin);
    for (const srv of this.servers.values()) {
      srv.on('clients', () => {
        this.autoShutdown?.setClientCount(this.totalClients());
        this.scheduleStatus();
      });
    }
  }

  private totalClients(): number {
    let n = 0;
    for (const s of this.servers.values()) n += s.clientCount;
    return n;
  }

  /** Listeners from systemd when activated, else bound per config. */
  private async openSockets(s: CoreSettings, sockets: SocketPaths, cli: CommandLine): Promise<void> {
    const { Activation, stripListenEnv, bindUnix, bindTcp, fromActivation, TlsEndpoint } = serving();
    const d = this.d;
    const main = this.servers.get(d.name)!;
    const admin = this.servers.get('admin')!;
    const system = this.host.euid === 0;
    const euid = this.host.euid;
    // Admin sockets only ever serve our own uid; so does everything in
    // session mode, and virtlogd/virtlockd always (root in system mode).
    const mainUid = !system || d.family !== 'remote' ? euid : undefined;
    const act = Activation.fromEnv(this.env, process.pid);
    const added: { srv: Server; role: Role; listeners: Listener[]; tls?: TlsEndpoint; uid?: number }[] = [];
    const ipWanted = d.withIP && (cli.listen || !d.listenFlag);

    if (act) {
      stripListenEnv(this.env);
      if (cli.listen) {
        throw new VirtError('OPERATION_INVALID', 'SYSTEMD',
          '--listen parameter not permitted with systemd activation sockets, see \'man libvirtd\' for further guidance');
      }
      const claim = (suffix: string, transport: 'unix' | 'tcp' | 'tls', backlog: number): Listener[] =>
        act.claim(`${d.name}${suffix}.socket`).map((fd) => fromActivation(fd, transport, `${d.name}${suffix}.socket`, backlog));
      added.push({ srv: main, role: 'rw', listeners: claim('', 'unix', s.mainBacklog), ...(mainUid !== undefined ? { uid: mainUid } : {}) });
      if (system && d.family === 'remote') added.push({ srv: main, role: 'ro', listeners: claim('-ro', 'unix', s.mainBacklog) });
      added.push({ srv: admin, role: 'admin', listeners: claim('-admin', 'unix', s.adminBacklog), uid: euid });
      if (d.withIP && s.ip) {
        added.push({ srv: main, role: 'rw', listeners: claim('-tcp', 'tcp', s.mainBacklog) });
        const tlsFds = claim('-tls', 'tls', s.mainBacklog);
        if (tlsFds.length) added.push({ srv: main, role: 'rw', listeners: tlsFds, tls: new TlsEndpoint(s.ip.tls) });
      }
      act.complete();
    } else {
      const unix = (p: string | undefined, mode: number, backlog: number): Listener[] =>
        p ? [bindUnix(p, { mode, backlog, ...(s.unix.group ? { group: s.unix.group } : {}) })] : [];
      added.push({ srv: main, role: 'rw', listeners: unix(sockets.rw, s.unix.rwPerms, s.mainBacklog), ...(mainUid !== undefined ? { uid: mainUid } : {}) });
      added.push({ srv: main, role: 'ro', listeners: unix(sockets.ro, s.unix.roPerms, s.mainBacklog) });
      added.push({ srv: admin, role: 'admin', listeners: unix(sockets.admin, s.unix.adminPerms, s.adminBacklog), uid: euid });
      if (ipWanted && s.ip) {
        if (s.ip.listenTcp) added.push({ srv: main, role: 'rw', listeners: await bindTcp(s.ip.listenAddr, s.ip.tcpPort, s.mainBacklog, 'tcp') });
        if (s.ip.listenTls) {
          const tls = new TlsEndpoint(s.ip.tls);
          added.push({ srv: main, role: 'rw', listeners: await bindTcp(s.ip.listenAddr, s.ip.tlsPort, s.mainBacklog, 'tls'), tls });
        }
      }
    }
    const tcpUsed = added.some((a) => a.listeners.some((l) => l.transport === 'tcp'));
    const tlsUsed = added.some((a) => a.listeners.some((l) => l.transport === 'tls'));
    checkAuthSupported(s, tcpUsed, tlsUsed);
    for (const a of added) {
      if (!a.listeners.length) continue;
      a.srv.addService(a.role, a.listeners, {
        ...this.serviceOptions(a.srv, a.role),
        ...(a.tls ? { tls: a.tls } : {}),
        ...(a.uid !== undefined ? { requiredUid: a.uid } : {}),
      });
    }
  }

  /** What a service gets besides its listeners: fd hand-over on the main read-write socket. */
  private serviceOptions(srv: Server, role: Role): { fdHandoff?: FdHandoff } {
    const h = this.fdHandoffInstance;
    return h && srv.name === this.d.name && role === 'rw' ? { fdHandoff: h } : {};
  }

  // ---- re-exec (SIGUSR1: virtlogd, virtlockd) -------------------------------

  /**
   * Reads and unlinks our state file, if the previous image left one. At a
   * cold start any file there is stale (a kill during a re-exec, a reused
   * pid): removed with a warning, never fatal, never restored.
   */
  private takeState(paths: DaemonPaths, reexeced: boolean): DaemonState | undefined {
    const S = serving();
    if (!reexeced) {
      try {
        const stale = S.takeStateFile(paths.restartStateFile, process.pid);
        if (stale.kind !== 'none') this.log?.warn(`removed a stale re-exec state file ${paths.restartStateFile} (not re-executed)`);
      } catch (e) {
        // Unreadable (a symlink, another user's): unlinked, never followed.
        try { fs.rmSync(paths.restartStateFile, { force: true }); } catch { /* a directory: left alone */ }
        this.log?.warn(`removed a stale re-exec state file: ${(e as Error).message}`);
      }
      return undefined;
    }
    const r = S.takeStateFile(paths.restartStateFile, process.pid);
    if (r.kind === 'foreign') {
      this.log?.warn(`ignoring re-exec state file ${paths.restartStateFile}: it belongs to pid ${r.magic}, not us`);
      return undefined;
    }
    return r.kind === 'ours' ? r.state : undefined;
  }

  private async restore(state: DaemonState): Promise<void> {
    const { restoreAll, reapInherited } = serving();
    await restoreAll(this.reexecParts(), state, (srv, role) => this.serviceOptions(srv, role));
    if (state.children?.length) reapInherited(state.children, this.log!);
    this.log?.info({ clients: this.totalClients() }, 're-executed in place');
  }

  private reexecParts(): { servers: Map<string, Server>; module: DaemonModule; handoff: FdHandoff | undefined } {
    return { servers: this.servers, module: this.module ?? { programs: [] }, handoff: this.fdHandoffInstance };
  }

  /** SIGUSR1: quiesce, write the state, exec ourselves; on any failure carry on serving. */
  private reexec(): void {
    const log = this.log;
    if (!this.resolveRun || this.quitting) {
      // Still starting (or stopping): nothing to carry over safely yet.
      if (!this.resolveRun) this.pendingReexec = true;
      return;
    }
    if (this.reexecing) return;
    this.reexecing = true;
    const S = serving();
    const parts = this.reexecParts();
    log?.info('re-executing in place on SIGUSR1');
    this.notifier.reloading();
    this.autoShutdown?.stop();
    void S.quiesceAll(parts).then(() => {
      const { state, fds } = S.buildState(parts, process.pid);
      const pidFd = this.pidFile?.descriptor;
      if (pidFd !== undefined) fds.push(pidFd);
      S.writeStateFile(this.paths!.restartStateFile, state);
      // Log writes are synchronous (files, pipes, datagrams): nothing to flush.
      log?.debug({ fds: fds.length }, 'state written; exec');
      S.execSelf({ keepFds: fds, env: { ...this.env, [REEXEC_ENV]: String(pidFd ?? -1) } });
    }).catch((e: unknown) => {
      // Before the exec nothing is lost: carry on as we were.
      log?.error({ err: e }, 're-exec failed; carrying on without it');
      try { fs.rmSync(this.paths!.restartStateFile, { force: true }); } catch { /* not written */ }
      S.unquiesceAll(parts);
      this.autoShutdown?.restart();
      this.reexecing = false;
      this.notifier.ready(this.statusLine());
    });
  }

  private pendingReexec = false;

  /** What arrived while the new image started, and an inspector that must go. */
  private reportEarlySignals(): void {
    const c = earlySignalCounts();
    const seen = Object.entries(c.byShim).filter(([, n]) => n > 0).map(([sig, n]) => `${sig}×${n}`);
    if (seen.length) this.log?.info(`signals during re-exec start-up: ${seen.join(', ')} (repeats of one signal count once)`);
    if (c.shim === 'missed') this.log?.warn('the signal shim was not preloaded (LD_PRELOAD ignored?): start-up was unprotected');
    const url = earlyInspectorUrl();
    if (url) {
      // Its socket is close-on-exec: one more re-exec closes it.
      this.log?.warn(`a SIGUSR1 during start-up opened the inspector (${url}); re-executing to close it`);
      this.pendingReexec = true;
    }
  }

  // ---- signals and shutdown ------------------------------------------------

  private onSignal(sig: CaughtSignal): void {
    switch (sig) {
      case 'SIGTERM':
      case 'SIGINT':
      case 'SIGQUIT':
        this.quit(`caught ${sig}`);
        return;
      case 'SIGHUP':
        this.reload();
        return;
      case 'SIGUSR1':
        if (this.d.execRestart) { this.reexec(); return; }
        this.log?.info(`ignoring ${sig}`);
        return;
      default:
        this.log?.info(`ignoring ${sig}`);
    }
  }

  private reload(): void {
    const log = this.log;
    if (this.d.family !== 'remote') {
      // libvirt's virtlogd/virtlockd die on SIGHUP (no handler); we keep
      // the guests' logs and locks instead and say so.
      log?.warn('ignoring SIGHUP: virtlogd and virtlockd reload on SIGUSR1');
      return;
    }
    if (!this.driversReady || this.reloading) {
      log?.warn('ignoring SIGHUP: drivers not yet initialized or a reload is in progress');
      return;
    }
    this.reloading = true;
    this.notifier.reloading();
    log?.info('reloading drivers on SIGHUP');
    Promise.resolve(this.module?.reload?.())
      .catch((e) => log?.error({ err: e }, 'driver reload failed'))
      .finally(() => {
        this.reloading = false;
        this.notifier.ready(this.statusLine());
      });
  }

  /** Starts the graceful quit once; later calls share it. */
  private quit(reason: string): void {
    if (!this.resolveRun) {
      // Still starting: finish the current stage, then stop (checkQuit).
      this.quitRequested ??= reason;
      return;
    }
    this.quitting ??= this.shutdown(reason).then((code) => {
      this.resolveRun?.(code);
      return code;
    });
  }

  private checkQuit(): void {
    if (this.quitRequested && this.resolveRun === undefined) {
      // Make quit() take the shutdown path as soon as the run promise exists.
      queueMicrotask(() => { if (this.quitRequested) this.quit(this.quitRequested); });
    }
  }

  private async shutdown(reason: string): Promise<number> {
    const log = this.log;
    log?.info(`shutting down: ${reason}`);
    this.notifier.stopping('Shutting down');
    this.health.stopServing();
    this.autoShutdown?.stop();
    const watchdog = new Promise<number>((resolve) => {
      setTimeout(() => {
        log?.error('forceful shutdown: graceful stop did not finish within 30 s');
        resolve(EXIT.FAILURE);
      }, SHUTDOWN_WATCHDOG_MS).unref();
    });
    const graceful = (async (): Promise<number> => {
      await Promise.all([...this.servers.values()].map((s) => s.close(5000)));
      // libvirt cleans up only drivers that finished initialising.
      if (this.driversReady) await this.module?.cleanup?.();
      return EXIT.OK;
    })();
    const code = await Promise.race([graceful, watchdog]);
    this.pidFile?.release();
    log?.info('stopped');
    return code;
  }

  private failed(e: unknown): number {
    const err = e instanceof StartupError ? e : new StartupError('init', e);
    const msg = `${err.summary} (stage ${err.stage}): ${err.message}`;
    if (this.log) this.log.error(msg);
    else stderrLine(50, 'daemon', msg);
    for (const s of this.servers.values()) void s.close();
    this.pidFile?.release();
    this.daemonChild?.report(err.exitCode);
    return err.exitCode;
  }

  private statusTimer: NodeJS.Timeout | undefined;

  private scheduleStatus(): void {
    if (!this.notifier.active || this.statusTimer || !this.resolveRun) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.notifier.status(this.statusLine());
    }, 1000);
    this.statusTimer.unref();
  }

  private statusLine(): string {
    const n = this.totalClients();
    const t = this.autoShutdown?.timeout;
    return `Running: ${n} client${n === 1 ? '' : 's'}${t ? `, exits after ${t} s without clients` : ''}`;
  }

  /** Flushes and closes log outputs before the process ends. */
  closeLogs(): void {
    this.logs?.close();
  }
}

function daemonPathsSafe(d: DaemonDescriptor, host: HostContext): DaemonPaths {
  try {
    return daemonPaths(d, host);
  } catch {
    return daemonPaths(d, { ...host, env: { ...host.env, HOME: host.env.HOME ?? '/' } });
  }
}

function safeTls(host: HostContext): ReturnType<typeof defaultTlsFiles> {
  try { return defaultTlsFiles(host); } catch { return defaultTlsFiles({ ...host, env: { ...host.env, HOME: '$HOME' } }); }
}

const serviceName = (p: Program): string => {
  const first = Object.values(p.service)[0];
  return first ? first.path.split('/')[1]! : p.name;
};

/**
 * Runs a daemon described by `d` and ends the process with its exit status.
 * The only place (with bin/) that exits the process.
 */
export function runDaemon(d: DaemonDescriptor, argv: readonly string[] = process.argv.slice(2)): void {
  const daemon = new Daemon(d, argv, process.env);
  daemon.main().then(
    (code) => { daemon.closeLogs(); process.exit(code); },
    (e) => {
      stderrLine(60, 'daemon', `unexpected failure: ${e instanceof Error ? e.stack : String(e)}`);
      process.exit(EXIT.FAILURE);
    },
  );
}
