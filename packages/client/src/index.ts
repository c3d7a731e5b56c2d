export { parseUri, type ParsedUri } from '@virtd/protocol/uri';
export { socketDir, configDir, type Env } from './paths.js';
export { adminTarget, defaultAdminUri, type AdminTarget } from './admin-uri.js';
export { Connection, unixTarget, connectionError, type Target } from './connection.js';
export {
  AdminClient, TRANSPORT_NAMES, type ThreadpoolInfo, type ClientLimitsInfo, type ClientSummary, type ClientDetails,
} from './admin.js';
export { resolve as resolveUri, defaultUri, DEFAULT_PROBE, type Resolved } from './transport.js';
export { autostart, findDaemon, canConnect, AUTOSTART_TIMEOUT_SECONDS } from './autostart.js';
export {
  VirtConnection, USAGE_TYPES, SECRET_LIST, CONNECT_RO, type UsageType, type SecretRef, type NodeInfo, type SecretEventInfo, type OpenOptions,
} from './virt.js';
export { receiveFds } from './fd-handoff.js';
export {
  LogManagerClient, LockClient, helperSocket, LOCK_ACQUIRE,
  type Domain, type LogFilePosition, type OpenLogFile, type LockOwner, type HeldResource,
} from './helpers.js';
