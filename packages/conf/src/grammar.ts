// libvirt's configuration grammar (the virconf format shared by every daemon
// and driver config file): a pure parser to a frozen tree that keeps comments,
// and the serializer libvirt's own tests use to normalise a file.
import { ConfError } from './errors.js';

export type ConfValue =
  | { readonly kind: 'string'; readonly value: string; readonly line: number; readonly column: number }
  | {
    readonly kind: 'integer';
    readonly value: bigint;
    /** True when written with a leading `-`: libvirt then types it signed, which the unsigned getters refuse. */
    readonly signed: boolean;
    readonly line: number;
    readonly column: number;
  }
  | { readonly kind: 'list'; readonly items: readonly ConfValue[]; readonly line: number; readonly column: number };

export interface ConfSetting {
  readonly kind: 'setting';
  readonly name: string;
  readonly value: ConfValue;
  /** Position of the name. */
  readonly line: number;
  readonly column: number;
  /** Text after the `#` of a comment following the value on the same line. */
  readonly comment?: string;
}

/** A line whose first non-blank character is `#`; `text` is what follows the `#`. */
export interface ConfComment {
  readonly kind: 'comment';
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

export type ConfEntry = ConfSetting | ConfComment;

export interface ConfFile {
  readonly filename: string;
  /** Every assignment in file order, duplicates included. */
  readonly settings: readonly ConfSetting[];
  /** Settings and comment lines in file order (blank lines are not kept, as in libvirt). */
  readonly entries: readonly ConfEntry[];
  /** The first setting of that exact name: libvirt lets the first occurrence win. */
  lookup(name: string): ConfSetting | undefined;
}

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';
const isEol = (c: string | undefined): boolean => c === '\n' || c === '\r';
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string | undefined): boolean =>
  c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
const isNameChar = (c: string | undefined): boolean => isAlpha(c) || isDigit(c) || c === '_';

/** Maps string offsets to 1-based line and column. */
class Positions {
  private readonly starts: number[] = [0];

  constructor(private readonly text: string) {
    // libvirt counts only `\n`; we also count a lone `\r` (it ends a statement
    // too), so files with old Mac line ends get useful line numbers.
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) this.starts.push(i + 1);
    }
  }

  at(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    // Columns count code points, as an editor shows them.
    return { line: lo + 1, column: [...this.text.slice(this.starts[lo], offset)].length + 1 };
  }
}

class Parser {
  private pos = 0;
  private readonly positions: Positions;
  readonly entries: ConfEntry[] = [];

  constructor(private readonly text: string, private readonly filename: string) {
    this.positions = new Positions(text);
  }

  // A method, not a getter: TypeScript would narrow a getter across position changes.
  private peek(): string | undefined { return this.text[this.pos]; }
  private get eof(): boolean { return this.pos >= this.text.length; }

  private fail(reason: string, offset = this.pos): never {
    const { line, column } = this.positions.at(offset);
    throw new ConfError({ file: this.filename, line, column, reason });
  }

  private skipBlanks(): void {
    while (isBlank(this.peek())) this.pos++;
  }

  private skipBlanksAndEols(): void {
    while (isBlank(this.peek()) || isEol(this.peek())) this.pos++;
  }

  private restOfLine(): string {
    const start = this.pos;
    while (!this.eof && !isEol(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  // A file of blanks and line ends only is accepted: libvirt says "expecting
  // a name" there, an accident of its loop that nothing relies on.
  parse(): void {
    for (;;) {
      this.skipBlanksAndEols();
      if (this.eof) return;
      if (this.peek() === '#') {
        const at = this.positions.at(this.pos);
        this.pos++;
        this.entries.push(Object.freeze({ kind: 'comment', text: this.restOfLine(), ...at }));
      } else {
        this.entries.push(this.assignment());
      }
      this.separator();
    }
  }

  private assignment(): ConfSetting {
    const start = this.pos;
    if (!isAlpha(this.peek())) this.fail('expecting a name');
    while (isNameChar(this.peek())) this.pos++;
    const name = this.text.slice(start, this.pos);
    this.skipBlanks();
    if (this.peek() !== '=') this.fail('expecting an assignment');
    this.pos++;
    const value = this.value();
    this.skipBlanks();
    let comment: string | undefined;
    if (this.peek() === '#') {
      this.pos++;
      comment = this.restOfLine();
    }
    const at = this.positions.at(start);
    return Object.freeze(comment === undefined
      ? { kind: 'setting', name, value, ...at }
      : { kind: 'setting', name, value, ...at, comment });
  }

  /** End of line(s) or `;`, or the end of the text. */
  private separator(): void {
    this.skipBlanks();
    if (this.eof) return;
    if (this.peek() === ';') this.pos++;
    else if (!isEol(this.peek())) this.fail('expecting a separator');
    this.skipBlanksAndEols();
  }

  private value(): ConfValue {
    this.skipBlanks();
    const start = this.pos;
    const at = this.positions.at(start);
    const c = this.peek();
    if (c === '"' || c === "'") return Object.freeze({ kind: 'string', value: this.string(), ...at });
    if (c === '[') return Object.freeze({ kind: 'list', items: this.list(), ...at });
    if (isDigit(c) || c === '+' || c === '-') {
      const signed = c === '-';
      if (!isDigit(c)) this.pos++;
      if (!isDigit(this.peek())) this.fail('unterminated number');
      const digitsAt = this.pos;
      while (isDigit(this.peek())) this.pos++;
      // Exact value, no overflow: range belongs to the typed getters.
      const magnitude = BigInt(this.text.slice(digitsAt, this.pos));
      return Object.freeze({ kind: 'integer', value: signed ? -magnitude : magnitude, signed, ...at });
    }
    // Covers the end of text, a line end, bare words (`true`, `yes`) and a `#` inside a list.
    return this.fail('expecting a value');
  }

  // Unterminated strings are reported at their opening quote: that is what
  // needs fixing, and for `"""` libvirt would name the last line of the file.
  private string(): string {
    const open = this.pos;
    if (this.text.startsWith('"""', open)) {
      const close = this.text.indexOf('"""', open + 3);
      if (close < 0) this.fail('unterminated string', open);
      this.pos = close + 3;
      return this.text.slice(open + 3, close);
    }
    const quote = this.peek();
    this.pos++;
    while (!this.eof && this.peek() !== quote && !isEol(this.peek())) this.pos++;
    if (this.peek() !== quote) this.fail('unterminated string', open);
    this.pos++;
    return this.text.slice(open + 1, this.pos - 1);
  }

  private list(): readonly ConfValue[] {
    const open = this.pos;
    const items: ConfValue[] = [];
    this.pos++;
    this.skipBlanksAndEols();
    if (!this.eof && this.peek() !== ']') {
      items.push(this.value());
      this.skipBlanksAndEols();
    }
    while (!this.eof && this.peek() !== ']') {
      if (this.peek() !== ',') this.fail('expecting a separator in list');
      this.pos++;
      this.skipBlanksAndEols();
      if (this.peek() === ']') break; // trailing comma
      items.push(this.value());
      this.skipBlanksAndEols();
    }
    if (this.peek() !== ']') this.fail('list is not closed with ]', open);
    this.pos++;
    return Object.freeze(items);
  }
}

/**
 * Parse libvirt configuration text. Pure; `filename` only labels errors.
 * Throws ConfError (CONF_SYNTAX) with libvirt's reason tokens.
 */
export function parseConf(text: string, filename: string): ConfFile {
  const parser = new Parser(text, filename);
  parser.parse();
  const entries = Object.freeze(parser.entries);
  const settings = Object.freeze(entries.filter((e): e is ConfSetting => e.kind === 'setting'));
  const first = new Map<string, ConfSetting>();
  for (const s of settings) if (!first.has(s.name)) first.set(s.name, s);
  return Object.freeze({
    filename,
    settings,
    entries,
    lookup: (name: string) => first.get(name),
  });
}

/** A value in libvirt's normalised spelling. */
export function serializeValue(value: ConfValue): string {
  switch (value.kind) {
    case 'integer':
      return value.value.toString();
    case 'list':
      // libvirt writes an empty list as `[  ]`; kept for byte-identical output.
      return `[ ${value.items.map(serializeValue).join(', ')} ]`;
    case 'string': {
      const s = value.value;
      // libvirt tests only for `\n`; `\r` also ends a one-line string when read back.
      if (/[\r\n]/.test(s)) return `"""${s}"""`;
      if (!s.includes('"')) return `"${s}"`;
      if (!s.includes("'")) return `'${s}'`;
      return `"""${s}"""`;
    }
  }
}

/** The file as libvirt writes it back: `k = v`, one entry a line, comments kept, blank lines dropped. */
export function serializeConf(file: Pick<ConfFile, 'entries'>): string {
  return file.entries.map((e) => {
    if (e.kind === 'comment') return `#${e.text}\n`;
    return `${e.name} = ${serializeValue(e.value)}${e.comment === undefined ? '' : ` #${e.comment}`}\n`;
  }).join('');
}
