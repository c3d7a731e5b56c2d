export { Code, Domain, codeName, formatMessage, type CodeName, type DomainName } from './catalogue.js';
export { VirtError, Level, isVirtError } from './virt-error.js';
export { CERT_REASON, ownCertificateError, checkSignedByCa } from './tls.js';
