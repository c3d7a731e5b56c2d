import t from 'tap';
import { VirtError } from '@virtd/errors';
import { ConfError, parseConf, serializeConf, serializeValue } from '../src/index.js';
import { cases, expectGolden, readCase } from './golden.js';

// One loop over test/data/grammar: <case>.conf parses to <case>.json (every
// entry with positions, plus what lookup() returns) or fails with <case>.err.
t.test('grammar golden files', async (t) => {
  for (const name of cases('grammar')) {
    expectGolden(t, 'grammar', name, () => {
      const file = parseConf(readCase('grammar', name), `${name}.conf`);
      const names = [...new Set(file.settings.map((s) => s.name))];
      return {
        entries: file.entries,
        lookup: Object.fromEntries(names.map((n) => [n, serializeValue(file.lookup(n)!.value)])),
      };
    });
  }
});

// libvirt's virconftest: parse, serialise, compare with <case>.out; the
// output must itself be a fixed point.
t.test('serializer round trip', async (t) => {
  for (const name of cases('roundtrip')) {
    const out = serializeConf(parseConf(readCase('roundtrip', name), `${name}.conf`));
    t.equal(out, readCase('roundtrip', name, 'out'), name);
    t.equal(serializeConf(parseConf(out, `${name}.out`)), out, `${name} is stable`);
  }
});

t.test('errors are VirtErrors with a position', async (t) => {
  const e = t.throws(() => parseConf('ok = 1\nbad = yes\n', 'x.conf')) as ConfError;
  t.ok(e instanceof ConfError && e instanceof VirtError);
  t.match(e, { code: 'CONF_SYNTAX', domain: 'CONF', file: 'x.conf', line: 2, column: 7, reason: 'expecting a value' });
  t.equal(e.number, 33);
  t.equal(e.message, 'x.conf:2:7: expecting a value');
});

t.test('the parse result is frozen and lookup is exact-case', async (t) => {
  const f = parseConf('Name = [ 1 ]\nname = 2\n', 'f');
  t.ok(Object.isFrozen(f) && Object.isFrozen(f.settings) && Object.isFrozen(f.entries));
  const s = f.lookup('Name')!;
  t.ok(Object.isFrozen(s) && Object.isFrozen(s.value));
  t.ok(s.value.kind === 'list' && Object.isFrozen(s.value.items));
  t.equal(f.lookup('name')?.line, 2);
  t.equal(f.lookup('NAME'), undefined);
});

t.test('strings are re-quoted with the lightest quotes that round-trip', async (t) => {
  const str = (value: string) => serializeValue({ kind: 'string', value, line: 1, column: 1 });
  t.equal(str('a'), '"a"');
  t.equal(str('a"b'), `'a"b'`);
  t.equal(str(`a"b'c`), `"""a"b'c"""`);
  t.equal(str('a\nb'), '"""a\nb"""');
  // libvirt would write this in "…", which does not read back.
  t.equal(str('a\rb'), '"""a\rb"""');
});
