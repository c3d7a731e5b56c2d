// libvirt's public error numbering (include/libvirt/virterror.h) and the
// wording each code gives a message, so a client can map our errors one to
// one onto libvirt's. Only the codes the daemons raise are listed; the
// numbers are part of libvirt's stable ABI.

/** virErrorDomain: which part of the daemon raised an error. */
export const Domain = {
  NONE: 0,
  RPC: 7,
  CONF: 9,
  QEMU: 10,
  REMOTE: 13,
  LXC: 17,
  STORAGE: 18,
  NETWORK: 19,
  NODEDEV: 22,
  VBOX: 25,
  INTERFACE: 26,
  SECRET: 30,
  NWFILTER: 33,
  LIBXL: 41,
  LOCKING: 42,
  URI: 45,
  AUTH: 46,
  LOCKSPACE: 51,
  SYSTEMD: 56,
  BHYVE: 57,
  ADMIN: 62,
  LOGGING: 63,
} as const;
export type DomainName = keyof typeof Domain;

interface CodeInfo {
  /** virErrorNumber. */
  readonly number: number;
  /** The message when there is no detail. */
  readonly bare: string;
  /** How a detail is framed; '%s' marks the detail. */
  readonly framed: string;
}

const code = (number: number, bare: string, framed: string): CodeInfo => ({ number, bare, framed });

/** virErrorNumber with libvirt's wording, keyed by the name without VIR_ERR_. */
export const Code = {
  INTERNAL_ERROR: code(1, 'internal error', 'internal error: %s'),
  NO_SUPPORT: code(3, 'this function is not supported by the connection driver', 'this function is not supported by the connection driver: %s'),
  NO_CONNECT: code(5, 'no connection driver available', 'no connection driver available for %s'),
  INVALID_CONN: code(6, 'invalid connection pointer in', 'invalid connection pointer in %s'),
  INVALID_ARG: code(8, 'invalid argument', 'invalid argument: %s'),
  OPERATION_FAILED: code(9, 'operation failed', 'operation failed: %s'),
  XML_ERROR: code(27, 'XML description is invalid or not well formed', 'XML error: %s'),
  OPERATION_DENIED: code(29, 'operation forbidden for read only access', 'operation forbidden: %s'),
  OPEN_FAILED: code(30, 'failed to open configuration file', 'failed to open configuration file %s'),
  READ_FAILED: code(31, 'failed to read configuration file', 'failed to read configuration file %s'),
  CONF_SYNTAX: code(33, 'configuration file syntax error', 'configuration file syntax error: %s'),
  WRITE_FAILED: code(34, 'failed to write configuration file', 'failed to write configuration file: %s'),
  SYSTEM_ERROR: code(38, 'system call error', '%s'),
  RPC: code(39, 'RPC error', '%s'),
  AUTH_FAILED: code(45, 'authentication failed', 'authentication failed: %s'),
  OPERATION_INVALID: code(55, 'Requested operation is not valid', 'Requested operation is not valid: %s'),
  INVALID_SECRET: code(65, 'Invalid secret', 'Invalid secret: %s'),
  NO_SECRET: code(66, 'Secret not found', 'Secret not found: %s'),
  CONFIG_UNSUPPORTED: code(67, 'unsupported configuration', 'unsupported configuration: %s'),
  OPERATION_TIMEOUT: code(68, 'Timed out during operation', 'Timed out during operation: %s'),
  ARGUMENT_UNSUPPORTED: code(74, 'argument unsupported', 'argument unsupported: %s'),
  OVERFLOW: code(82, 'numerical overflow', 'numerical overflow: %s'),
  OPERATION_UNSUPPORTED: code(84, 'Operation not supported', 'Operation not supported: %s'),
  RESOURCE_BUSY: code(87, 'resource busy', 'resource busy: %s'),
  ACCESS_DENIED: code(88, 'access denied', 'access denied: %s'),
  AUTH_UNAVAILABLE: code(94, 'authentication unavailable', 'authentication unavailable: %s'),
  NO_SERVER: code(95, 'Server not found', 'Server not found: %s'),
  NO_CLIENT: code(96, 'Client not found', 'Client not found: %s'),
} as const;
export type CodeName = keyof typeof Code;

const byNumber = new Map<number, CodeName>(
  (Object.entries(Code) as [CodeName, CodeInfo][]).map(([name, info]) => [info.number, name]),
);

/** The catalogue name of a libvirt error number, if we know it. */
export const codeName = (n: number): CodeName | undefined => byNumber.get(n);

/** libvirt's wording: the code's framing around a detail, or its bare text. */
export function formatMessage(name: CodeName, detail?: string): string {
  const info = Code[name];
  return detail ? info.framed.replace('%s', detail) : info.bare;
}
