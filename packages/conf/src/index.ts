export { ConfError, isConfError, type ConfErrorInit } from './errors.js';
export {
  parseConf, serializeConf, serializeValue,
  type ConfValue, type ConfSetting, type ConfComment, type ConfEntry, type ConfFile,
} from './grammar.js';
export {
  ConfReader, getBool, getUInt, getSizeT, getInt, getString, getStringList, failAt, type LoadedConfig,
} from './reader.js';
export { readConfFile, MAX_CONF_FILE_BYTES } from './file.js';
export { clientLimitsProblem } from './limits.js';
export {
  remoteDaemonConfig, remoteDaemonKeys, parseUuid, BUILD_FEATURES, AUTH_SCHEMES, HOST_UUID_SOURCES, MIN_TCP_SSF,
  type RemoteDaemonConfig, type RemoteIpConfig, type RemoteDaemonContext, type AuthScheme, type HostUuidSource,
} from './remote-config.js';
export {
  logdConfig, lockdConfig, logdKeys, lockdKeys, MAX_LOG_BACKUPS, type LogdConfig, type LockdConfig,
} from './logd-lockd-config.js';
export { parseSysconfig, envVarName } from './sysconfig.js';
export { renderSampleConf, type SampleFamily, type SampleContext } from './samples.js';
