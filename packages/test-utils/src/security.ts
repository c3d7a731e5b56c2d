// Helpers of the security tests (access matrix, hostile TLS clients),
// gathered so the package index names them in one place.
export {
  probeMethods, probeMethodsAs, callOn, callOnce, listServices, classify, readOnlyDenial, accessProbeScript,
  type MethodShape, type Outcome, type Probe, type ProbeOptions, type ProbeJob,
} from './access.js';
export { tlsAttempt, plainAttempt, tlsKeyPair, issueServerCert, pkiPath, type Attempt } from './tls-probe.js';
