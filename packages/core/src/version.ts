// Our version, reported by --version and the admin API.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../package.json') as { version: string };

export const VERSION: string = pkg.version;
export const PRODUCT = 'virtd-node';

/** libvirt's integer form: major * 1000000 + minor * 1000 + micro. */
export function versionNumber(v = VERSION): number {
  const [major = 0, minor = 0, micro = 0] = v.split('.').map((x) => parseInt(x, 10) || 0);
  return major * 1_000_000 + minor * 1000 + micro;
}
