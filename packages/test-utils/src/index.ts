export { sleep, waitFor } from './wait.js';
export { inspectorOpenIn, INSPECTOR_STARTED } from './inspector.js';
export { tempDir } from './tmp.js';
export { ensureUser, runtimeDirFor, userEnv, isRoot, type TestUser } from './users.js';
export { startDaemon, DaemonHandle, binPath, repoRoot, canConnect, childPids, freePort, type DaemonOptions, type Exit } from './daemon.js';
export { run, type RunResult, type RunOptions } from './run.js';
export { makePki, type Pki, type KeyPair } from './pki.js';
export { connectUnix, tlsTarget, tcpTarget, rawCall, type RawResult } from './grpc.js';
/** A script that health-checks a socket and prints the outcome as JSON (run it as another user). */
export const probeScript = require.resolve('./probe.js');
export { SystemdNamespace, namespaceScratch, type SystemdOptions } from './systemd.js';
export { probeMethods, probeMethodsAs, callOn, callOnce, listServices, classify, readOnlyDenial, accessProbeScript, tlsAttempt, plainAttempt, tlsKeyPair, issueServerCert, pkiPath, type MethodShape, type Outcome, type Probe, type ProbeOptions, type ProbeJob, type Attempt } from './security.js';
export { CrashRig, seededRandom, LogWriter, logLine, type CrashRigOptions, type Leftovers, type LogWriterOptions } from './crash.js';
export { sessionProbeScript, type SessionProbeSpec, type SessionProbeResult } from './session-probe.js';
export { Prng, RawH2Client, fuzzSeed, fuzzCount, runFuzzBatch, FUZZ_CASES, DEFAULT_CASE_WEIGHTS, H2, H2_PREFACE, h2Frame, h2Start, settingsPayload, hpackBlock, grpcRequestHeaders, grpcMessage, randomProtobuf, undecodableProtobuf, vmRssKiB, openFds, cpuTicks, processAlive, unixAcceptQueue, type FuzzTarget, type FuzzCaseKind, type BatchReport, type CaseOutcome } from './hostile.js';
