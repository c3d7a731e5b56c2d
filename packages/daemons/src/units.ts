// What each daemon's systemd units say, as data: libvirt 9.0's units (facts
// §5.2/§5.3) with the improvements newer upstream made (§5.6), each marked
// where it is taken. scripts/ renders the unit files from this table and the
// descriptors; nothing is written by hand.

export type SocketKind = 'main' | 'ro' | 'admin' | 'tcp' | 'tls';

export interface UnitFacts {
  /** The service's Description=. */
  readonly description: string;
  /** Prefix of the sockets' descriptions ("Libvirt qemu" → "Libvirt qemu local socket"). */
  readonly socketTitle: string;
  /** Type=notify for the remote family; virtlogd/virtlockd are simple. */
  readonly notify: boolean;
  readonly sockets: readonly SocketKind[];
  /** [Unit] lines of the service, in order (Requires=, Wants=, After=, …). */
  readonly serviceUnit: readonly string[];
  /** Extra [Unit] lines for every socket of the daemon. */
  readonly socketUnit: readonly string[];
  /** Environment=NAME_ARGS=… default; undefined writes no Environment= line. */
  readonly defaultArgs?: string;
  readonly reloadSignal: 'HUP' | 'USR1';
  /** Further [Service] lines (KillMode=, Restart=, Limit*=, …). */
  readonly service: readonly string[];
  /** [Install] lines of the service. */
  readonly install: readonly string[];
  /** Lines for the commented env file (/etc/default/NAME). */
  readonly envFileHints: readonly string[];
}

const MODULAR_SOCKETS: readonly SocketKind[] = ['main', 'ro', 'admin'];
const IP_SOCKETS: readonly SocketKind[] = ['main', 'ro', 'admin', 'tcp', 'tls'];
const LIBVIRTD_SOCKETS = ['libvirtd.socket', 'libvirtd-ro.socket', 'libvirtd-admin.socket', 'libvirtd-tcp.socket', 'libvirtd-tls.socket'];

const TIMEOUT_HINT = [
  'Like libvirt\'s, the unit starts the daemon with --timeout 120: it exits',
  'after two idle minutes and systemd starts it again on the next connection.',
];

/** libvirtd, 9.0's unit as Debian ships it. */
export const libvirtdUnit: UnitFacts = {
  description: 'Virtualization daemon',
  socketTitle: 'Libvirt',
  notify: true,
  sockets: IP_SOCKETS,
  serviceUnit: [
    'Requires=virtlogd.socket',
    // Newer upstream: Wants= so a masked virtlockd.socket does not stop libvirtd.
    'Wants=virtlockd.socket',
    'Wants=libvirtd.socket',
    'Wants=libvirtd-ro.socket',
    'Wants=libvirtd-admin.socket',
    'Wants=systemd-machined.service',
    'After=network.target',
    'After=firewalld.service',
    'After=iptables.service',
    'After=ip6tables.service',
    'After=dbus.service',
    'After=iscsid.service',
    'After=apparmor.service',
    'After=local-fs.target',
    'After=remote-fs.target',
    'After=systemd-logind.service',
    'After=systemd-machined.service',
    'After=xencommons.service',
    'Conflicts=xendomains.service',
  ],
  socketUnit: [],
  defaultArgs: '--timeout 120',
  reloadSignal: 'HUP',
  service: ['KillMode=process', 'Restart=on-failure', 'LimitNOFILE=8192', 'TasksMax=32768', 'LimitMEMLOCK=64M'],
  install: ['WantedBy=multi-user.target', 'Also=virtlockd.socket', 'Also=virtlogd.socket', 'Also=libvirtd.socket', 'Also=libvirtd-ro.socket'],
  envFileHints: [...TIMEOUT_HINT, '#LIBVIRTD_ARGS="--timeout 120"', '',
    'Without socket activation, --listen makes libvirtd open the TCP/TLS', 'sockets configured in libvirtd.conf:', '#LIBVIRTD_ARGS="--listen"'],
};

/** virtproxyd: libvirtd's socket paths, so its sockets conflict with libvirtd's. */
export const virtproxydUnit: UnitFacts = {
  description: 'Virtualization daemon proxy',
  socketTitle: 'Libvirt proxy',
  notify: true,
  sockets: IP_SOCKETS,
  serviceUnit: [
    // Newer upstream: bound to its main socket, wanting the others.
    'BindsTo=virtproxyd.socket',
    'Wants=virtproxyd-ro.socket',
    'Wants=virtproxyd-admin.socket',
    'After=virtproxyd.socket',
    'After=network.target',
    'After=dbus.service',
    'After=apparmor.service',
    'After=local-fs.target',
    'Conflicts=libvirtd.service',
    'After=libvirtd.service',
  ],
  socketUnit: [`Conflicts=${LIBVIRTD_SOCKETS.join(' ')}`, `After=${LIBVIRTD_SOCKETS.join(' ')}`],
  defaultArgs: '--timeout 120',
  reloadSignal: 'HUP',
  service: ['Restart=on-failure'],
  install: ['WantedBy=multi-user.target', 'Also=virtproxyd.socket', 'Also=virtproxyd-ro.socket', 'Also=virtproxyd-admin.socket'],
  envFileHints: TIMEOUT_HINT,
};

interface ModularExtra {
  readonly requires?: readonly string[];
  readonly wants?: readonly string[];
  readonly after?: readonly string[];
  readonly conflicts?: readonly string[];
  readonly condition?: string;
  readonly service?: readonly string[];
}

const HYPERVISOR_LIMITS = ['KillMode=process', 'LimitNOFILE=8192', 'TasksMax=32768', 'LimitMEMLOCK=64M'];

const MODULAR_EXTRA: Record<string, ModularExtra> = {
  // Newer upstream: virtlockd is wanted, not required.
  qemu: {
    requires: ['virtlogd.socket'], wants: ['virtlockd.socket', 'systemd-machined.service'],
    after: ['remote-fs.target', 'systemd-logind.service', 'systemd-machined.service'], service: HYPERVISOR_LIMITS,
  },
  lxc: { wants: ['systemd-machined.service'], after: ['remote-fs.target', 'systemd-logind.service', 'systemd-machined.service'], service: HYPERVISOR_LIMITS },
  xen: {
    wants: ['virtlockd.socket'], after: ['xencommons.service'], conflicts: ['xendomains.service'],
    condition: 'ConditionPathExists=/proc/xen/capabilities', service: ['KillMode=process'],
  },
  network: { after: ['firewalld.service', 'iptables.service', 'ip6tables.service'] },
  storage: { after: ['iscsid.service', 'remote-fs.target'] },
};

export function modularUnit(driver: string, name: string): UnitFacts {
  const x = MODULAR_EXTRA[driver] ?? {};
  return {
    description: `Virtualization ${driver} daemon`,
    socketTitle: `Libvirt ${driver}`,
    notify: true,
    sockets: MODULAR_SOCKETS,
    serviceUnit: [
      // Newer upstream: bound to the main socket, wanting ro/admin, so an
      // administrator can mask one of those and the daemon still starts.
      `BindsTo=${name}.socket`,
      `Wants=${name}-ro.socket`,
      `Wants=${name}-admin.socket`,
      ...(x.requires ?? []).map((u) => `Requires=${u}`),
      ...(x.wants ?? []).map((u) => `Wants=${u}`),
      `After=${name}.socket`,
      'After=network.target',
      'After=dbus.service',
      'After=apparmor.service',
      'After=local-fs.target',
      ...(x.after ?? []).map((u) => `After=${u}`),
      'Conflicts=libvirtd.service',
      'After=libvirtd.service',
      ...(x.conflicts ?? []).map((u) => `Conflicts=${u}`),
      ...(x.condition ? [x.condition] : []),
    ],
    // Newer upstream: the modular sockets conflict with libvirtd's, so the
    // two modes never run at once.
    socketUnit: [
      ...(x.condition ? [x.condition] : []),
      `Conflicts=${LIBVIRTD_SOCKETS.join(' ')}`,
      `After=${LIBVIRTD_SOCKETS.join(' ')}`,
    ],
    defaultArgs: '--timeout 120',
    reloadSignal: 'HUP',
    service: ['Restart=on-failure', ...(x.service ?? [])],
    install: ['WantedBy=multi-user.target', `Also=${name}.socket`, `Also=${name}-ro.socket`, `Also=${name}-admin.socket`],
    envFileHints: TIMEOUT_HINT,
  };
}

const HELPER_HINTS = ['Arguments for the daemon; it has no --timeout by default since', 'guests\' logs and locks depend on it.'];

export const virtlogdUnit: UnitFacts = {
  description: 'Virtual machine log manager',
  socketTitle: 'Virtual machine log manager',
  notify: false,
  sockets: ['main', 'admin'],
  serviceUnit: ['Requires=virtlogd.socket', 'Requires=virtlogd-admin.socket', 'Before=libvirtd.service'],
  socketUnit: ['Before=libvirtd.service'],
  // Newer upstream defines the variable empty, so $VIRTLOGD_ARGS is always set.
  defaultArgs: '',
  reloadSignal: 'USR1',
  service: ['OOMScoreAdjust=-900', 'LimitNOFILE=16384'],
  install: ['Also=virtlogd.socket', 'Also=virtlogd-admin.socket'],
  envFileHints: [...HELPER_HINTS, '#VIRTLOGD_ARGS=""'],
};

export const virtlockdUnit: UnitFacts = {
  description: 'Virtual machine lock manager',
  socketTitle: 'Virtual machine lock manager',
  notify: false,
  sockets: ['main', 'admin'],
  serviceUnit: ['Requires=virtlockd.socket', 'Requires=virtlockd-admin.socket', 'Before=libvirtd.service'],
  socketUnit: ['Before=libvirtd.service'],
  defaultArgs: '',
  reloadSignal: 'USR1',
  service: ['OOMScoreAdjust=-900', 'LimitNOFILE=40960'],
  install: ['Also=virtlockd.socket', 'Also=virtlockd-admin.socket'],
  envFileHints: [...HELPER_HINTS, '#VIRTLOCKD_ARGS=""'],
};
