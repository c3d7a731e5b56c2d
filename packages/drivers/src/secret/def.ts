// A secret's definition as libvirt's XML describes it:
//   <secret ephemeral='no' private='yes'>
//     <uuid>…</uuid><description>…</description>
//     <usage type='volume'><volume>/path</volume></usage>
//   </secret>
// Parsed strictly (libvirt's error wording), formatted in libvirt's layout.
import crypto from 'node:crypto';
import { VirtError } from '@virtd/errors';
import { parseXml, childText, attr, child, escapeText, escapeAttr } from '../xml.js';

export const USAGE_TYPES = ['none', 'volume', 'ceph', 'iscsi', 'tls', 'vtpm'] as const;
export type UsageType = (typeof USAGE_TYPES)[number];

/** The element under <usage> carrying the usage id, by usage type. */
const USAGE_ELEMENT: Record<Exclude<UsageType, 'none'>, { element: string; label: string; what: string }> = {
  volume: { element: 'volume', label: 'volume', what: 'volume path' },
  ceph: { element: 'name', label: 'Ceph', what: 'name' },
  iscsi: { element: 'target', label: 'iSCSI', what: 'target' },
  tls: { element: 'name', label: 'TLS', what: 'name' },
  vtpm: { element: 'name', label: 'vTPM', what: 'name' },
};

export interface SecretDef {
  readonly uuid: string;
  readonly ephemeral: boolean;
  readonly private: boolean;
  readonly description?: string;
  readonly usageType: UsageType;
  /** The volume path, name or target; '' for usage none. */
  readonly usageId: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** libvirt accepts UUIDs with or without dashes; we store the dashed lower-case form. */
export function normalizeUuid(text: string): string | undefined {
  const hex = text.trim().toLowerCase().replace(/[-\s]/g, '');
  if (!/^[0-9a-f]{32}$/.test(hex)) return undefined;
  const u = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return UUID_RE.test(u) ? u : undefined;
}

function yesNo(v: string | undefined, name: string): boolean {
  if (v === undefined || v === 'no') return false;
  if (v === 'yes') return true;
  throw new VirtError('XML_ERROR', 'SECRET', `invalid value of '${name}'`);
}

export function parseSecretXml(text: string): SecretDef {
  const doc = parseXml(text, 'secret_definition', 'SECRET');
  const rootName = Object.keys(doc).find((k) => !k.startsWith('?') && !k.startsWith('#'));
  if (rootName !== 'secret') {
    throw new VirtError('XML_ERROR', 'SECRET', `unexpected root element <${rootName ?? ''}>, expecting <secret>`);
  }
  const root = child(doc, 'secret') ?? {};
  const uuidText = childText(root, 'uuid');
  let uuid: string;
  if (uuidText === undefined) {
    uuid = crypto.randomUUID();
  } else {
    const u = normalizeUuid(uuidText);
    if (!u) throw new VirtError('XML_ERROR', 'SECRET', 'malformed uuid element');
    uuid = u;
  }
  const usage = child(root, 'usage');
  let usageType: UsageType = 'none';
  let usageId = '';
  if (usage) {
    const t = attr(usage, 'type');
    if (t === undefined) throw new VirtError('XML_ERROR', 'SECRET', 'unknown secret usage type');
    if (!(t in USAGE_ELEMENT)) throw new VirtError('CONFIG_UNSUPPORTED', 'SECRET', `unknown secret usage type ${t}`);
    usageType = t as UsageType;
    const spec = USAGE_ELEMENT[t as Exclude<UsageType, 'none'>];
    const id = childText(usage, spec.element);
    if (!id) throw new VirtError('XML_ERROR', 'SECRET', `${spec.label} usage specified, but ${spec.what} is missing`);
    usageId = id;
  }
  const description = childText(root, 'description');
  return {
    uuid,
    ephemeral: yesNo(attr(root, 'ephemeral'), 'ephemeral'),
    private: yesNo(attr(root, 'private'), 'private'),
    ...(description !== undefined ? { description } : {}),
    usageType,
    usageId,
  };
}

export function formatSecretXml(def: SecretDef): string {
  const lines = [`<secret ephemeral='${def.ephemeral ? 'yes' : 'no'}' private='${def.private ? 'yes' : 'no'}'>`];
  lines.push(`  <uuid>${def.uuid}</uuid>`);
  if (def.description !== undefined) lines.push(`  <description>${escapeText(def.description)}</description>`);
  if (def.usageType !== 'none') {
    const el = USAGE_ELEMENT[def.usageType].element;
    lines.push(`  <usage type='${escapeAttr(def.usageType)}'>`, `    <${el}>${escapeText(def.usageId)}</${el}>`, '  </usage>');
  }
  lines.push('</secret>');
  return lines.join('\n') + '\n';
}
