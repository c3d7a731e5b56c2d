import t from 'tap';
import { parseSecretXml, formatSecretXml } from '../src/secret/def.js';

t.test('parse and format round trip, in libvirt\'s layout', async (t) => {
  const xml = `<secret ephemeral='no' private='yes'>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <description>a &amp; b</description>
  <usage type='volume'>
    <volume>/var/lib/libvirt/images/a b.img</volume>
  </usage>
</secret>
`;
  const d = parseSecretXml(xml);
  t.same(d, {
    uuid: '11111111-2222-3333-4444-555555555555', ephemeral: false, private: true, description: 'a & b',
    usageType: 'volume', usageId: '/var/lib/libvirt/images/a b.img',
  });
  t.equal(formatSecretXml(d), xml);
});

t.test('each usage type and its id element', async (t) => {
  for (const [type, el] of [['ceph', 'name'], ['iscsi', 'target'], ['tls', 'name'], ['vtpm', 'name']]) {
    const d = parseSecretXml(`<secret><usage type='${type}'><${el}>x${type}</${el}></usage></secret>`);
    t.same([d.usageType, d.usageId, d.ephemeral, d.private], [type, `x${type}`, false, false]);
    t.match(d.uuid, /^[0-9a-f-]{36}$/, 'a uuid is generated when none is given');
  }
  t.equal(parseSecretXml('<secret/>').usageType, 'none', 'usage is optional');
  t.equal(parseSecretXml('<secret><uuid>11111111222233334444555555555555</uuid></secret>').uuid,
    '11111111-2222-3333-4444-555555555555', 'undashed uuids are accepted');
});

t.test('errors in libvirt\'s words', async (t) => {
  const bad: [string, RegExp][] = [
    ['<secret><usage></secret>', /XML error: \(secret_definition\):1:/],
    ['<domain/>', /unexpected root element <domain>, expecting <secret>/],
    ["<secret ephemeral='maybe'/>", /invalid value of 'ephemeral'/],
    ['<secret><uuid>nope</uuid></secret>', /malformed uuid element/],
    ["<secret><usage type='disk'/></secret>", /unknown secret usage type disk/],
    ["<secret><usage type='volume'/></secret>", /volume usage specified, but volume path is missing/],
    ["<secret><usage type='ceph'/></secret>", /Ceph usage specified, but name is missing/],
    ["<secret><usage type='iscsi'/></secret>", /iSCSI usage specified, but target is missing/],
  ];
  for (const [xml, re] of bad) t.throws(() => parseSecretXml(xml), re, xml);
});
