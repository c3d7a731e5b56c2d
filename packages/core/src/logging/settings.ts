// libvirt's logging settings: priorities 1 (debug) … 4 (error), filters
// "level:match" choosing a priority per category, outputs "level:dest".
// The same syntax arrives from the config file, the environment and the
// admin API, so it is parsed in one place.
import { VirtError } from '@virtd/errors';

export type Priority = 1 | 2 | 3 | 4;
export const DEFAULT_PRIORITY: Priority = 3;

export interface LogFilter {
  readonly priority: Priority;
  /** Glob matched against the whole category (module) name; plain names are stored as *name*. */
  readonly match: string;
}

export type OutputKind = 'stderr' | 'file' | 'syslog' | 'journald';

export interface LogOutput {
  readonly priority: Priority;
  readonly kind: OutputKind;
  /** The file path (file) or identity (syslog). */
  readonly arg?: string;
}

function priority(text: string, what: string, item: string): Priority {
  if (!/^[1-4]$/.test(text)) {
    throw new VirtError('INVALID_ARG', 'NONE', `Invalid log priority '${text}' for log ${what} '${item}'`);
  }
  return Number(text) as Priority;
}

export function parsePriority(text: string): Priority {
  const t = text.trim();
  if (!/^[1-4]$/.test(t)) throw new VirtError('INVALID_ARG', 'NONE', `Invalid log priority '${t}': must be 1 to 4`);
  return Number(t) as Priority;
}

export function parseFilters(text: string): LogFilter[] {
  return text.split(/\s+/).filter(Boolean).map((item) => {
    // A leading '+' asked libvirt for stack traces; we accept and ignore it.
    const m = /^\+?(\d+):(.+)$/.exec(item);
    if (!m) throw new VirtError('INVALID_ARG', 'NONE', `Malformed format for log filter '${item}'`);
    // A plain name matches anywhere in the category: libvirt stores it as *name*.
    const match = m[2]!.includes('*') ? m[2]! : `*${m[2]!}*`;
    return { priority: priority(m[1]!, 'filter', item), match };
  });
}

export function parseOutputs(text: string): LogOutput[] {
  return text.split(/\s+/).filter(Boolean).map((item) => {
    const m = /^(\d+):([a-z]+)(?::(.*))?$/.exec(item);
    if (!m) throw new VirtError('INVALID_ARG', 'NONE', `Malformed format for log output '${item}'`);
    const p = priority(m[1]!, 'output', item);
    const kind = m[2]!;
    const arg = m[3];
    switch (kind) {
      case 'stderr':
      case 'journald':
        if (arg !== undefined) throw new VirtError('INVALID_ARG', 'NONE', `invalid log output '${item}': ${kind} takes no argument`);
        return { priority: p, kind };
      case 'file':
        if (!arg || !arg.startsWith('/')) throw new VirtError('INVALID_ARG', 'NONE', `invalid log output '${item}': file needs an absolute path`);
        return { priority: p, kind, arg };
      case 'syslog':
        if (!arg) throw new VirtError('INVALID_ARG', 'NONE', `invalid log output '${item}': syslog needs an identity`);
        return { priority: p, kind, arg };
      default:
        throw new VirtError('INVALID_ARG', 'NONE', `Invalid destination '${kind}' for log output '${item}'`);
    }
  });
}

export const formatFilters = (filters: readonly LogFilter[]): string =>
  filters.map((f) => `${f.priority}:${f.match}`).join(' ');

export const formatOutputs = (outputs: readonly LogOutput[]): string =>
  outputs.map((o) => `${o.priority}:${o.kind}${o.arg !== undefined ? `:${o.arg}` : ''}`).join(' ');

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

const compiled = new WeakMap<LogFilter, RegExp>();

/** The priority for a category: the first matching filter's, else the default. */
export function categoryPriority(filters: readonly LogFilter[], category: string, fallback: Priority): Priority {
  for (const f of filters) {
    let re = compiled.get(f);
    if (!re) compiled.set(f, (re = globToRegExp(f.match)));
    if (re.test(category)) return f.priority;
  }
  return fallback;
}
