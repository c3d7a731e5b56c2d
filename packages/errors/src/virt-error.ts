import { Code, Domain, formatMessage, type CodeName, type DomainName } from './catalogue.js';

/** virErrorLevel */
export const Level = { NONE: 0, WARNING: 1, ERROR: 2 } as const;

/**
 * The error every layer raises and every client sees: libvirt's code and
 * domain, and the message worded as libvirt words it.
 */
export class VirtError extends Error {
  readonly code: CodeName;
  readonly domain: DomainName;
  readonly level: number;
  /**
   * What libvirt logs as warnings on the way to this error (why a server
   * certificate failed, say); clients print them before the error, as
   * libvirt's default client logging does.
   */
  readonly warnings: readonly string[];

  constructor(code: CodeName, domain: DomainName, detail?: string, opts?: { cause?: unknown; message?: string; warnings?: readonly string[] }) {
    super(opts?.message ?? formatMessage(code, detail), opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VirtError';
    this.code = code;
    this.domain = domain;
    this.level = Level.ERROR;
    this.warnings = opts?.warnings ?? [];
  }

  /** libvirt's virErrorNumber. */
  get number(): number { return Code[this.code].number; }
  /** libvirt's virErrorDomain. */
  get domainNumber(): number { return Domain[this.domain]; }

  /** A VirtError carrying a message already worded (e.g. relayed from another daemon). */
  static raw(code: CodeName, domain: DomainName, message: string): VirtError {
    return new VirtError(code, domain, undefined, { message });
  }
}

export const isVirtError = (e: unknown): e is VirtError => e instanceof VirtError;
