import t from 'tap';
import { envVarName, parseSysconfig } from '../src/index.js';

t.test('shell assignments as a unit file reads them', async (t) => {
  const text = [
    '# Customizations for the daemon',
    '',
    'LIBVIRTD_ARGS="--timeout 120"',
    '#LIBVIRTD_ARGS="--listen"',
    'export KRB5_KTNAME=/etc/libvirt/libvirt.keytab',
    "SINGLE='1.50'",
    `KEEPS_QUOTES='"x"'`,
    'ESCAPES="a \\"b\\" \\$HOME \\\\"',
    'QUOTED_COMMENT="x y" # trailing comment',
    'PLAIN=word # trailing comment',
    'WORDY=true',
    'EMPTY=',
    'EMPTY_QUOTED=""',
    'BARE_WORD',
    '[not-a-section]',
    'AFTER=still top level',
    'DUP=first',
    'DUP=second',
  ].join('\r\n');
  t.same(parseSysconfig(text), {
    LIBVIRTD_ARGS: '--timeout 120',
    KRB5_KTNAME: '/etc/libvirt/libvirt.keytab',
    SINGLE: '1.50',
    KEEPS_QUOTES: '"x"',
    ESCAPES: 'a "b" $HOME \\',
    QUOTED_COMMENT: 'x y',
    PLAIN: 'word',
    WORDY: 'true',
    EMPTY: '',
    EMPTY_QUOTED: '',
    AFTER: 'still top level',
    DUP: 'second',
  });
  t.same(parseSysconfig('#VIRTLOGD_ARGS=""\n'), {});
  t.same(parseSysconfig(''), {});
});

t.test('variable names follow the unit files', async (t) => {
  t.equal(envVarName('libvirtd'), 'LIBVIRTD_ARGS');
  t.equal(envVarName('virtqemud'), 'VIRTQEMUD_ARGS');
  t.equal(envVarName('virtlogd'), 'VIRTLOGD_ARGS');
  t.equal(envVarName('virtproxyd'), 'VIRTPROXYD_ARGS');
});
