// Socket activation, claimed by name. systemd passes listening sockets as
// fds 3…3+N-1 with LISTEN_FDNAMES naming each (the socket unit's name unless
// the unit sets FileDescriptorName=). A daemon claims each service's fds by
// that name; anything left unclaimed means the units and the daemon disagree,
// which must stop start-up rather than leave a socket nobody serves.
import { VirtError } from '@virtd/errors';
import { setCloexec } from '@virtd/posix';

export const SD_LISTEN_FDS_START = 3;

export type Env = Record<string, string | undefined>;

export class Activation {
  /** fds by name, in the order systemd passed them; emptied as they are claimed. */
  private readonly byName = new Map<string, number[]>();

  private constructor(names: string[]) {
    names.forEach((name, i) => {
      const list = this.byName.get(name) ?? [];
      list.push(SD_LISTEN_FDS_START + i);
      this.byName.set(name, list);
    });
  }

  /**
   * Reads LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES. Undefined when this process
   * was not activated (variables absent or meant for another pid), as
   * libvirt does. Unlike libvirt 9.0, missing or miscounted names are an
   * error, not a silent fallback to binding our own sockets.
   */
  static fromEnv(env: Env, pid: number): Activation | undefined {
    const listenPid = parseUnsigned(env.LISTEN_PID);
    const nfds = parseUnsigned(env.LISTEN_FDS);
    if (listenPid === undefined || listenPid !== pid || nfds === undefined || nfds === 0) return undefined;
    const namesVar = env.LISTEN_FDNAMES;
    if (namesVar === undefined || namesVar === '') {
      throw new VirtError('INVALID_ARG', 'SYSTEMD',
        `systemd passed ${nfds} socket(s) without LISTEN_FDNAMES; every socket unit must be named`);
    }
    const names = namesVar.split(':');
    if (names.length !== nfds) {
      throw new VirtError('INVALID_ARG', 'SYSTEMD',
        `LISTEN_FDS=${nfds} but LISTEN_FDNAMES has ${names.length} name(s): '${namesVar}'`);
    }
    // Keep them from leaking into children (e.g. a session daemon we autostart).
    for (let i = 0; i < nfds; i++) setCloexec(SD_LISTEN_FDS_START + i, true);
    return new Activation(names);
  }

  /** Takes every fd passed under `name`; an empty list when none was. */
  claim(name: string): number[] {
    const fds = this.byName.get(name) ?? [];
    this.byName.delete(name);
    return fds;
  }

  /** Names with fds nobody claimed. */
  unclaimed(): string[] {
    return [...this.byName.keys()];
  }

  /** Fails when any passed fd was not claimed by a service. */
  complete(): void {
    const left = this.unclaimed();
    if (left.length) {
      throw new VirtError('INVALID_ARG', 'SYSTEMD',
        `Some activation file descriptors are unclaimed: ${left.join(', ')}`);
    }
  }
}

function parseUnsigned(s: string | undefined): number | undefined {
  if (s === undefined || !/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Removes the activation variables so children and re-execs never see them. */
export function stripListenEnv(env: Env): void {
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
}
