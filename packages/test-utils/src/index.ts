export { sleep, waitFor } from './wait.js';
export { tempDir } from './tmp.js';
export { ensureUser, runtimeDirFor, userEnv, isRoot, type TestUser } from './users.js';
export { startDaemon, DaemonHandle, binPath, repoRoot, canConnect, childPids, freePort, type DaemonOptions, type Exit } from './daemon.js';
export { run, type RunResult, type RunOptions } from './run.js';
export { makePki, type Pki, type KeyPair } from './pki.js';
export { connectUnix, tlsTarget, tcpTarget, rawCall, type RawResult } from './grpc.js';
/** A script that health-checks a socket and prints the outcome as JSON (run it as another user). */
export const probeScript = require.resolve('./probe.js');
export { SystemdNamespace, type SystemdOptions } from './systemd.js';
