import t from 'tap';
import {
  ConfReader, getBool, getInt, getSizeT, getString, getStringList, getUInt, parseConf,
} from '../src/index.js';

const file = parseConf(`
flag_on = 1
flag_off = 0
u = 4294967295
neg = -7
big = 9007199254740991
s = "text"
l = [ "a", 'b' ]
empty = []
`, 'g.conf');

t.test('getters read each type', async (t) => {
  t.equal(getBool(file, 'flag_on'), true);
  t.equal(getBool(file, 'flag_off'), false);
  t.equal(getUInt(file, 'u'), 4294967295);
  t.equal(getInt(file, 'neg'), -7);
  t.equal(getInt(file, 'flag_on'), 1, 'an unsigned literal is a fine int');
  t.equal(getSizeT(file, 'big'), Number.MAX_SAFE_INTEGER);
  t.equal(getString(file, 's'), 'text');
  t.same(getStringList(file, 'l'), ['a', 'b']);
  t.same(getStringList(file, 'empty'), []);
  for (const get of [getBool, getUInt, getInt, getSizeT, getString, getStringList]) {
    t.equal(get(file, 'absent'), undefined, `${get.name} of a missing key`);
  }
});

t.test('getters refuse other types with libvirt wording', async (t) => {
  t.throws(() => getBool(file, 's'), { message: "g.conf:7:5: expected a bool for 's' parameter" });
  t.throws(() => getBool(file, 'u'), { message: /'u' parameter must be 0 or 1/ });
  t.throws(() => getUInt(file, 'neg'), { message: /expected an unsigned integer for 'neg'/ });
  t.throws(() => getInt(file, 'u'), { message: /'u' parameter must be in range -2147483648:2147483647/ });
  t.throws(() => getString(file, 'l'), { message: /expected a string for 'l'/ });
  t.throws(() => getStringList(file, 's'), { message: /expected a string list for 's'/ });
});

t.test('a reader reports what nobody read', async (t) => {
  const r = new ConfReader(parseConf('b = 1\nz = 2\na = 3\nold = 1\nz = 9\n', 'r.conf'));
  r.bool('b');
  r.uint('never_set');
  r.ignore('old');
  t.same(r.readKeys(), ['b', 'never_set']);
  t.same(r.unknownKeys(), ['z', 'a']);
  t.throws(() => r.fail('z', 'bad z'), { message: 'r.conf:2:5: bad z', key: 'z' });
  const none = new ConfReader(undefined);
  t.equal(none.string('x'), undefined);
  t.same(none.unknownKeys(), []);
});
