export { parseUri, type ParsedUri } from '@virtd/protocol/uri';
export { socketDir, configDir, type Env } from './paths.js';
export { adminTarget, defaultAdminUri, type AdminTarget } from './admin-uri.js';
export { Connection, unixTarget, connectionError, type Target } from './connection.js';
export {
  AdminClient, TRANSPORT_NAMES, type ThreadpoolInfo, type ClientLimitsInfo, type ClientSummary, type ClientDetails,
} from './admin.js';
