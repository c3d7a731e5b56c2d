// Environment files read by the service units (`EnvironmentFile=-/etc/sysconfig/libvirtd`,
// Debian's /etc/default/libvirtd): shell-style `NAME=value` lines whose
// `<DAEMON>_ARGS` carries extra command-line options.
import { decode } from 'ini';

// An assignment as the shell (and systemd) sees one. Anything else — comments,
// blank lines, commands, `[x]` — is dropped before ini sees it: ini would make
// `[x]` a section and a bare `FOO` the boolean true.
const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/**
 * Quoted values are turned into JSON strings before ini reads them, because
 * ini handles quotes its own way: it JSON-decodes the inside of '…' (so '1.50'
 * becomes 1.5 and '"x"' loses its quotes), does not know shell escapes in "…"
 * (`\$` makes it keep the quotes), and keeps the quotes when a comment follows.
 * Unquoted values are left to ini, which ends them at `#` or `;` and trims them.
 * Not supported at all: `$VAR` expansion, values spanning lines, and words
 * glued together from several quoted parts.
 */
function requote(raw: string): string {
  const single = /^'([^']*)'\s*(?:#.*)?$/.exec(raw);
  if (single) return JSON.stringify(single[1]);
  const double = /^"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$/.exec(raw);
  // Inside "…" a backslash escapes only $ ` " \ (POSIX shell).
  if (double) return JSON.stringify(double[1]!.replace(/\\([$`"\\])/g, '$1'));
  return raw;
}

/** `NAME=value` pairs of a sysconfig / default file; a later assignment wins, as in the shell. */
export function parseSysconfig(text: string): Record<string, string> {
  const lines: string[] = [];
  for (const line of text.split(/\r\n|\n|\r/)) {
    const m = ASSIGNMENT.exec(line);
    if (m) lines.push(`${m[1]}=${requote(m[2]!)}`);
  }
  // ini turns unquoted true/false/null into JS values; we want the text back.
  return Object.fromEntries(Object.entries(decode(lines.join('\n'))).map(([k, v]) => [k, String(v)]));
}

/** The variable a daemon's unit passes on its command line: `virtqemud` → `VIRTQEMUD_ARGS`. */
export function envVarName(daemonName: string): string {
  return `${daemonName.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_ARGS`;
}
