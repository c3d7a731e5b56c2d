import { VirtError, type CodeName } from '@virtd/errors';

export interface ConfErrorInit {
  /** The file name as the caller names it (a path, or a label for in-memory text). */
  file: string;
  /** 1-based position of the offending text; absent for whole-file problems (open, read). */
  line?: number;
  column?: number;
  /** libvirt-style reason, e.g. `expecting a value`. */
  reason: string;
  /** The setting the problem is about, when there is one. */
  key?: string;
  /** Catalogue code; grammar errors are CONF_SYNTAX, others follow libvirt's choice per check. */
  code?: CodeName;
  cause?: unknown;
}

/**
 * Every configuration problem: grammar, type, range, cross-field and file
 * access. The message is `<file>:<line>:<column>: <reason>` (or
 * `<file>: <reason>` without a position) so a log line points at the text to fix.
 */
export class ConfError extends VirtError {
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly reason: string;
  readonly key: string | undefined;

  constructor(init: ConfErrorInit) {
    const where = init.line === undefined ? init.file : `${init.file}:${init.line}:${init.column ?? 1}`;
    super(init.code ?? 'CONF_SYNTAX', 'CONF', undefined, { message: `${where}: ${init.reason}`, cause: init.cause });
    this.name = 'ConfError';
    this.file = init.file;
    this.line = init.line;
    this.column = init.line === undefined ? undefined : (init.column ?? 1);
    this.reason = init.reason;
    this.key = init.key;
  }
}

export const isConfError = (e: unknown): e is ConfError => e instanceof ConfError;
