// libvirt's connection URIs: driver[+transport]://[user@][host][:port]/path[?query]
// e.g. qemu:///system, secret:///session, qemu+unix:///system?socket=PATH,
// qemu+tls://host/system, virtqemud:///system (admin).
import { VirtError } from '@virtd/errors';

export interface ParsedUri {
  /** The text as given. */
  readonly text: string;
  /** Driver (or admin daemon) name: qemu, secret, virtqemud, libvirtd… */
  readonly scheme: string;
  /** unix, tcp, tls, ssh… when given after '+'. */
  readonly transport?: string;
  readonly user?: string;
  /** Empty for local URIs. */
  readonly host: string;
  readonly port?: number;
  /** /system, /session, … */
  readonly path: string;
  readonly params: ReadonlyMap<string, string>;
}

export function parseUri(text: string): ParsedUri {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new VirtError('INVALID_ARG', 'URI', `Unable to parse URI ${text}`);
  }
  const proto = url.protocol.replace(/:$/, '');
  const [scheme, transport] = proto.split('+', 2) as [string, string | undefined];
  if (!scheme) throw new VirtError('INVALID_ARG', 'URI', `Unable to parse URI ${text}`);
  if (!url.pathname && !url.host) throw new VirtError('INVALID_ARG', 'URI', `Unable to parse URI ${text}`);
  const params = new Map<string, string>();
  url.searchParams.forEach((v, k) => params.set(k, v));
  return {
    text,
    scheme,
    ...(transport ? { transport } : {}),
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
    host: url.hostname.replace(/^\[|\]$/g, ''),
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname || '/',
    params,
  };
}

/** scheme[+transport]://[host]/path, without query: what GetURI reports. */
export function canonicalUri(u: ParsedUri): string {
  return `${u.scheme}://${u.host}${u.path}`;
}
