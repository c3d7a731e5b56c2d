// libvirt's auto-shutdown (--timeout, admin daemon-timeout): the timer runs
// only while no client is connected to any server, admin clients included;
// when it fires the daemon quits unless something inhibits shutdown (a
// running guest, an open session log, driver initialisation), in which case
// it simply fires again one period later.
export class AutoShutdown {
  /** Seconds; 0 disables. Set from --timeout and the admin API. */
  private timeoutSec = 0;
  /** Clients connected across every server, kept current by the servers. */
  private clients = 0;
  private inhibitions = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onExpire: () => void;

  constructor(onExpire: () => void) {
    this.onExpire = onExpire;
  }

  get timeout(): number { return this.timeoutSec; }
  get inhibited(): number { return this.inhibitions; }
  get armed(): boolean { return this.timer !== undefined; }

  setTimeout(seconds: number): void {
    this.timeoutSec = seconds;
    this.rearm();
  }

  setClientCount(n: number): void {
    const was = this.clients;
    this.clients = n;
    // Any client disarms; the last one leaving re-arms from zero.
    if ((was === 0) !== (n === 0)) this.rearm();
  }

  /** Holds shutdown off until the returned function is called (once). */
  inhibit(): () => void {
    this.inhibitions++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inhibitions--;
    };
  }

  /** Runs again after stop() (a re-exec that did not happen). */
  restart(): void {
    this.rearm();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private rearm(): void {
    this.stop();
    if (this.timeoutSec > 0 && this.clients === 0) {
      this.timer = setTimeout(() => this.fire(), this.timeoutSec * 1000);
      // The timer alone must not keep the process alive.
      this.timer.unref();
    }
  }

  private fire(): void {
    this.timer = undefined;
    if (this.inhibitions === 0) {
      this.onExpire();
      return;
    }
    this.rearm();
  }
}
