// `#key = value` → `key = value`, only for lines that look like a setting:
// `#` directly followed by a name, `=`, and the start of a value. Prose
// comments ("# text", "#   audit_level == 0 -> …") are left alone.
export const uncommentSettings = (text: string): string =>
  text.replace(/^#(?=[A-Za-z][A-Za-z0-9_]*[ \t]*=[ \t]*["'[+\-0-9])/gm, '');

/** Comment out again the line(s) setting `key`. */
export const recomment = (text: string, key: string): string =>
  text.replace(new RegExp(`^(?=${key}[ \\t]*=)`, 'gm'), '#');

/** Names of the `#key = value` lines of a sample. */
export const commentedKeys = (text: string): string[] =>
  [...text.matchAll(/^#([A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*["'[+\-0-9]/gm)].map((m) => m[1]!);
