// XML in and out. Parsing uses fast-xml-parser (well kept, no native code)
// with its validator first, so a malformed document gets a precise error
// instead of a partial parse; output is written by hand so the layout
// matches libvirt's (two-space indent, single-quoted attributes).
import type { XMLParser } from 'fast-xml-parser';
import { VirtError, type DomainName } from '@virtd/errors';

export type XmlNode = Record<string, unknown>;

type Fxp = typeof import('fast-xml-parser');
let fxp: { validate: Fxp['XMLValidator']['validate']; parser: XMLParser } | undefined;

/**
 * The parser, loaded on the first document: most daemons and most calls
 * only write XML, and loading it cost libvirtd ~12 ms of start-up.
 */
function xmlParser(): NonNullable<typeof fxp> {
  if (fxp) return fxp;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { XMLParser, XMLValidator } = require('fast-xml-parser') as Fxp;
  fxp = {
    validate: (text, opts) => XMLValidator.validate(text, opts),
    parser: new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@',
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: true,
      processEntities: true,
    }),
  };
  return fxp;
}

/** Parses a document; the error names line and column like libvirt's XML errors. */
export function parseXml(text: string, what: string, domain: DomainName): XmlNode {
  const { validate, parser } = xmlParser();
  const valid = validate(text);
  if (valid !== true) {
    const e = valid.err;
    throw new VirtError('XML_ERROR', domain, `(${what}):${e.line}:${e.col}: ${e.msg}`);
  }
  return parser.parse(text) as XmlNode;
}

export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttr(s: string): string {
  return escapeText(s).replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** Text content of a child element (string or {#text}); undefined when absent. */
export function childText(node: XmlNode | undefined, name: string): string | undefined {
  const v = node?.[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && '#text' in v) return String((v as XmlNode)['#text']);
  if (typeof v === 'object') return '';
  return String(v);
}

export function attr(node: XmlNode | undefined, name: string): string | undefined {
  const v = node?.[`@${name}`];
  return v === undefined ? undefined : String(v);
}

export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  const v = node?.[name];
  if (v === undefined || v === null) return undefined;
  return typeof v === 'object' ? (v as XmlNode) : {};
}
