import t from 'tap';
import { VirtError, Code, Domain, codeName, formatMessage } from '../src/index.js';

t.test('libvirt numbering is kept', async (t) => {
  const e = new VirtError('OPERATION_DENIED', 'REMOTE', 'read only access prevents virSecretDefineXML');
  t.equal(e.number, 29);
  t.equal(e.domainNumber, 13);
  t.equal(e.message, 'operation forbidden: read only access prevents virSecretDefineXML');
  t.equal(Code.NO_SERVER.number, 95);
  t.equal(Domain.ADMIN, 62);
  t.equal(codeName(66), 'NO_SECRET');
  t.equal(codeName(12345), undefined);
});

t.test('messages without detail use the bare wording', async (t) => {
  t.equal(formatMessage('NO_CLIENT'), 'Client not found');
  t.equal(new VirtError('RPC', 'RPC', 'unknown procedure').message, 'unknown procedure');
  t.equal(VirtError.raw('INTERNAL_ERROR', 'NONE', 'as relayed').message, 'as relayed');
});

t.test('numbers are unique', async (t) => {
  const nums = Object.values(Code).map((c) => c.number);
  t.equal(new Set(nums).size, nums.length);
});
