// The commented sample files we ship as etc/libvirt/<daemon>.conf. Defaults
// shown are taken from the loaders themselves, so text and code cannot
// disagree; settings that are unset by default show a marked example.
import { lockdConfig, logdConfig, MAX_LOG_BACKUPS } from './logd-lockd-config.js';
import { MIN_TCP_SSF, remoteDaemonConfig } from './remote-config.js';

export type SampleFamily = 'remote' | 'logd' | 'lockd';

export interface SampleContext {
  readonly daemon: string;
  readonly withIP: boolean;
}

const WIDTH = 76;
const EXAMPLE = 'The value shown is an example.';

const str = (s: string): string => `"${s}"`;
const flag = (b: boolean): string => (b ? '1' : '0');
const mode = (m: number): string => str(`0${m.toString(8).padStart(3, '0')}`);
const list = (l: readonly string[]): string => `[ ${l.map(str).join(', ')} ]`;

/** `\n\n` separates paragraphs, `\n` forces a line break; everything else is wrapped. */
function comment(text: string): string[] {
  const out: string[] = [];
  text.split('\n\n').forEach((para, i) => {
    if (i > 0) out.push('#');
    for (const forced of para.split('\n')) {
      // An indented line is a list item: its continuation lines hang under its text.
      let indent = /^\s*/.exec(forced)![0];
      let line = '';
      for (const word of forced.trim().split(/\s+/)) {
        if (line && `# ${indent}${line} ${word}`.length > WIDTH) {
          out.push(`# ${indent}${line}`);
          if (indent) indent = `${indent}  `;
          line = word;
        } else {
          line = line ? `${line} ${word}` : word;
        }
      }
      out.push(`# ${indent}${line}`.trimEnd());
    }
  });
  return out;
}

class Sample {
  private readonly lines: string[] = [];

  prose(text: string): this {
    this.lines.push(...comment(text));
    return this;
  }

  section(title: string, intro?: string): this {
    this.lines.push('', '#'.repeat(WIDTH), '#', `# ${title}`, '#');
    if (intro) this.lines.push(...comment(intro));
    return this;
  }

  /** A setting, commented out, after what it does; `note` says why the value shown is not the default. */
  key(name: string, value: string, doc: string, note: boolean | string = false): this {
    const text = note === false ? doc : `${doc} ${note === true ? EXAMPLE : note}`;
    this.lines.push('', ...comment(text), `#${name} = ${value}`);
    return this;
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

function header(s: Sample, daemon: string, extra?: string): void {
  s.prose(`Configuration file for ${daemon}.

${daemon} reads this file once, when it starts: /etc/libvirt/${daemon}.conf for the system instance, $XDG_CONFIG_HOME/libvirt/${daemon}.conf for a session (per-user) instance, or the file named with --config. Edit it and restart the daemon for a change to take effect.

Each setting reads "name = value". A value is a string in double or single quotes, a whole number, or a list in square brackets with comma-separated items. Switches are 0 (off) or 1 (on): words such as yes or true are not understood. A '#' starts a comment.

Every setting appears below commented out, showing the value used when it is absent, or an example where the text says so. Remove the leading '#' to change it.${extra ? `\n\n${extra}` : ''}`);
}

function logging(s: Sample, daemon: string, defaults: { logLevel: number }, filtersExample: string): void {
  s.section('Logging', 'Environment variables (LIBVIRT_DEBUG, LIBVIRT_LOG_FILTERS, LIBVIRT_LOG_OUTPUTS) and --verbose take precedence over these settings.')
    .key('log_level', String(defaults.logLevel),
      'Least severe messages recorded: 1 debug, 2 info, 3 warning, 4 error. 0 keeps the built-in level, which is 3.')
    .key('log_filters', str(filtersExample),
      'Levels for selected sources, as space-separated items "level:match". A message whose source name contains match is logged from that level on; the first matching item decides.', true)
    .key('log_outputs', str(`3:syslog:${daemon}`),
      'Destinations, as space-separated items "level:output" where output is stderr, syslog:<name>, file:<path> or journald. When unset, the journal is used if running under systemd, otherwise a log file or stderr.', true);
}

function remoteSample(ctx: SampleContext): string {
  const { daemon, withIP } = ctx;
  const { config: d } = remoteDaemonConfig(undefined, { daemon, withIP, privileged: true });
  const prefix = daemon === 'libvirtd' || daemon === 'virtproxyd' ? 'libvirt' : daemon;
  const s = new Sample();
  header(s, daemon);

  if (d.ip) {
    const when = daemon === 'libvirtd'
      ? 'libvirtd opens them only when started with --listen, which cannot be combined with systemd socket activation.'
      : `${daemon} opens them whenever it creates its own sockets.`;
    s.section('Network listeners',
      `TCP sockets for remote clients. ${when} Under socket activation the ${daemon}-tcp.socket and ${daemon}-tls.socket units decide instead, and the settings of this section are ignored.`)
      .key('listen_tls', flag(d.ip.listenTls),
        'Accept TLS connections on tls_port. A server certificate and CA certificate must be installed first (see "TLS certificates").')
      .key('listen_tcp', flag(d.ip.listenTcp),
        'Accept unencrypted connections on tcp_port. Unless auth_tcp requires an encrypting SASL mechanism, anyone who reaches the port controls the host: enable only on trusted networks.')
      .key('tls_port', str(d.ip.tlsPort), 'Port of the TLS listener, as a number or a service name.')
      .key('tcp_port', str(d.ip.tcpPort), 'Port of the unencrypted listener, as a number or a service name.')
      .key('listen_addr', str('192.0.2.10'),
        'Address or host name to listen on. When unset, both the IPv4 and the IPv6 wildcard addresses are used.', true);
  }

  const ro = `${prefix}-sock-ro`;
  s.section('UNIX socket access',
    `The local sockets are ${prefix}-sock (full access), ${ro} (read-only; system instance only) and ${prefix}-admin-sock (administration). Under socket activation the systemd socket units set their ownership and modes, and the settings of this section are ignored.`)
    .key('unix_sock_group', str('libvirt'),
      `Group owning the sockets: a group name, or "+" followed by a numeric group id. With group-writable modes below, members of the group can manage ${daemon} without being root.`, true)
    .key('unix_sock_ro_perms', mode(d.unixSockRoPerms), 'Mode of the read-only socket, in octal.')
    .key('unix_sock_rw_perms', mode(d.unixSockRwPerms),
      'Mode of the full-access socket, in octal. When auth_unix_rw is "polkit" the default becomes "0777", since each client is then checked. To admit one group without polkit, use "0770" together with unix_sock_group.')
    .key('unix_sock_admin_perms', mode(d.unixSockAdminPerms),
      "Mode of the administration socket, in octal. Whoever can use it controls the daemon's own settings; the daemon also refuses clients not running as its own user.")
    .key('unix_sock_dir', str('/run/libvirt'),
      'Directory of the sockets. When unset: /run/libvirt for the system instance, $XDG_RUNTIME_DIR/libvirt for a session instance.', true);

  s.section('Authentication',
    `What a client must do, once connected, before it may make calls:
  none - nothing; anyone able to connect is admitted, so rely on socket modes${withIP ? ' or TLS client certificates' : ''}.
  sasl - a SASL exchange, configured in /etc/sasl2/libvirt.conf.
  polkit - ask polkit; meaningful for the local sockets only.

This build implements neither SASL nor polkit: the values parse, but a
daemon asked to use them on a socket it opens refuses to start.`)
    .key('auth_unix_ro', str(d.authUnixRo), 'Authentication on the read-only socket.')
    .key('auth_unix_rw', str(d.authUnixRw), 'Authentication on the full-access socket.');
  if (d.ip) {
    s.key('auth_tcp', str(d.ip.authTcp),
      'Authentication on the unencrypted TCP port. Use "sasl" with an encrypting mechanism (GSSAPI, DIGEST-MD5), otherwise data and passwords cross the network in clear.')
      .key('auth_tls', str(d.ip.authTls),
        'Authentication on the TLS port, in addition to the client certificate check.')
      .key('tcp_min_ssf', String(MIN_TCP_SSF),
        `Smallest SASL security strength accepted on the TCP port. When unset, ${d.ip.tcpMinSsf} applies; a value set here must be at least ${MIN_TCP_SSF}.`,
        'The value shown is the lowest accepted.');
  }

  s.section('API access control')
    .key('access_drivers', list(d.accessDrivers),
      'Drivers deciding, call by call, whether an authenticated client may use an API. "none" allows every call; "polkit" asks polkit (not in this build).');

  if (d.ip) {
    const standard = 'The value shown is the standard location of the system instance.';
    s.section('TLS certificates',
      'Files of the TLS listener. When key_file, cert_file and ca_file are all unset, the standard locations are used (a session instance looks in $HOME/.pki/libvirt/ instead). Set all three or none.')
      .key('key_file', str('/etc/pki/libvirt/private/serverkey.pem'), 'Private key of this server.', standard)
      .key('cert_file', str('/etc/pki/libvirt/servercert.pem'), 'Certificate of this server.', standard)
      .key('ca_file', str('/etc/pki/CA/cacert.pem'), 'Certificate of the CA that signs server and client certificates.', standard)
      .key('crl_file', str('/etc/pki/CA/cacrl.pem'),
        'Revocation list checked against client certificates. When unset, the standard file is used if it exists.', standard);
  }

  s.section('Client identity checks');
  if (d.ip) {
    s.key('tls_no_sanity_certificate', flag(d.ip.tlsNoSanityCertificate),
      "1 skips the start-up checks of this server's own certificate (validity dates, key usage, CA signature). For testing only.")
      .key('tls_no_verify_certificate', flag(d.ip.tlsNoVerifyCertificate),
        '1 admits TLS clients without a valid client certificate. Certificates are the main proof of identity on the TLS port: with this set, anyone who reaches it is in.')
      .key('tls_allowed_dn_list', list(['C=GB,O=Example Ltd,CN=*']),
        'Certificate subject names (Distinguished Names) admitted on the TLS port; "*" and "?" wildcards match any text. An empty list admits nobody: leave the setting commented out to admit any valid certificate.', true)
      .key('tls_priority', str('NORMAL'),
        'GnuTLS priority string selecting protocol versions and ciphers. When unset, the build default applies.', true);
  }
  s.key('sasl_allowed_username_list', list(['admin@EXAMPLE.COM', '*@OPS.EXAMPLE.COM']),
    'SASL user names admitted; "*" and "?" wildcards match any text. An empty list admits nobody: leave the setting commented out to admit every authenticated user.', true);

  s.section('Processing controls',
    'Limits of the main server (all its sockets together) and of the administration server used by virt-admin.')
    .key('max_clients', String(d.maxClients), 'Clients connected at once; further connections wait in the listen queue.')
    .key('max_queued_clients', String(d.maxQueuedClients),
      'Connections waiting to be accepted (the listen backlog); 0 means 30.')
    .key('max_anonymous_clients', String(d.maxAnonymousClients),
      'Clients connected but not yet authenticated; 0 means no separate limit. Must not be above max_clients.')
    .key('min_workers', String(d.minWorkers), 'Worker threads kept ready to run calls.')
    .key('max_workers', String(d.maxWorkers), 'Most worker threads; at least 1.')
    .key('prio_workers', String(d.prioWorkers),
      'Extra workers reserved for quick calls, so that they never wait behind slow ones.')
    .key('max_client_requests', String(d.maxClientRequests),
      'Calls one client may have in progress; its further calls are read as earlier ones finish.')
    .key('admin_min_workers', String(d.adminMinWorkers), 'Worker threads kept ready by the administration server.')
    .key('admin_max_workers', String(d.adminMaxWorkers), 'Most worker threads of the administration server.')
    .key('admin_max_clients', String(d.adminMaxClients), 'Clients of the administration server connected at once.')
    .key('admin_max_queued_clients', String(d.adminMaxQueuedClients), 'Listen backlog of the administration socket.')
    .key('admin_max_client_requests', String(d.adminMaxClientRequests),
      'Calls one administration client may have in progress.');

  logging(s, daemon, d, '1:rpc 1:remote 4:object 4:event');

  s.section('Auditing')
    .key('audit_level', String(d.auditLevel),
      '0 never audits; 1 audits when the host supports it; 2 audits, and refuses to start when the host cannot.')
    .key('audit_logging', flag(d.auditLogging), '1 also copies each audit record into the log.');

  s.section('Host UUID')
    .key('host_uuid', str('3d8f6a2e-5c1b-4e07-9a64-0b2c7f1d9e35'),
      "UUID identifying this host. Set it when the firmware's is missing or shared by several machines; a UUID whose bytes are all equal (such as all zeros) is refused. When unset, host_uuid_source decides.", true)
    .key('host_uuid_source', str(d.hostUuidSource),
      '"smbios" takes the UUID from the firmware tables; "machine-id" takes it from /etc/machine-id.');

  s.section('Keepalive',
    'The server pings clients that support it: after keepalive_interval seconds without traffic it sends a ping, and it drops the client once keepalive_count pings in a row went unanswered.')
    .key('keepalive_interval', String(d.keepaliveInterval),
      'Seconds without traffic before a ping; -1 never pings (pings from clients are still answered).')
    .key('keepalive_count', String(d.keepaliveCount),
      'Unanswered pings tolerated; 0 drops a client after keepalive_interval seconds without traffic.')
    .key('admin_keepalive_interval', String(d.adminKeepaliveInterval), 'keepalive_interval for the administration server.')
    .key('admin_keepalive_count', String(d.adminKeepaliveCount), 'keepalive_count for the administration server.');

  s.section('Open vSwitch')
    .key('ovs_timeout', String(d.ovsTimeout), 'Seconds each ovs-vsctl command may take before it is abandoned.');
  return s.text();
}

function helperSample(family: 'logd' | 'lockd', daemon: string): string {
  const logd = family === 'logd' ? logdConfig(undefined).config : undefined;
  const d = logd ?? lockdConfig(undefined).config;
  const s = new Sample();
  const role = family === 'logd' ? 'the log files of virtual machines' : 'the locks on virtual machine disks';
  header(s, daemon, `${daemon} looks after ${role} for the hypervisor daemons. Its sockets, ${daemon}-sock and ${daemon}-admin-sock, always have mode 0700 and no settings.`);
  logging(s, daemon, d, family === 'logd' ? '1:logging 4:object 4:event' : '1:locking 4:object 4:event');
  s.section('Limits')
    .key('max_clients', String(d.maxClients),
      'Hypervisor daemons connected at once; this is also the limit on clients not yet authenticated.')
    .key('admin_max_clients', String(d.adminMaxClients), 'virt-admin clients connected at once.');
  if (logd) {
    s.section('Guest log files')
      .key('max_size', String(logd.maxSize), 'Size in bytes at which a log file is rotated; 0 never rotates.')
      .key('max_backups', String(logd.maxBackups),
        `Rotated files kept next to the live one: <name>.0 is the newest, <name>.N-1 the oldest; at most ${MAX_LOG_BACKUPS}.`);
  }
  return s.text();
}

/** The sample `etc/libvirt/<daemon>.conf` for a daemon: every key it reads, commented out. */
export function renderSampleConf(family: SampleFamily, ctx: SampleContext): string {
  return family === 'remote' ? remoteSample(ctx) : helperSample(family, ctx.daemon);
}
