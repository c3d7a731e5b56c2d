// Everything a daemon needs only once it starts serving: gRPC, pino, koffi
// and the protocol codecs. daemon.ts requires this module after the command
// line and config are accepted, so --help, --version and a bad config file
// never pay for loading them.
export { Activation, stripListenEnv, createNotifier, journalAvailable } from 'node-systemd-socket';
export { LogManager, defaultOutputs } from './logging/log.js';
export { Server } from './server.js';
export { bindUnix, bindTcp, fromActivation } from './listener.js';
export { TlsEndpoint } from './tls.js';
export { adminProgram } from './admin/service.js';
export { healthProgram, HealthState } from './rpc/health.js';
export { reflectionPrograms } from './rpc/reflection.js';
export { PidFile } from './pidfile.js';
export { FdHandoff } from './fd-handoff.js';
export { takeStateFile, writeStateFile, StateFileError } from './exec-state.js';
export { quiesceAll, unquiesceAll, buildState, restoreAll, reapInherited } from './reexec.js';
export { execSelf } from './exec-self.js';
