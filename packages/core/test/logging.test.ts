import t from 'tap';
import {
  parseFilters, parseOutputs, formatFilters, formatOutputs, categoryPriority, parsePriority,
} from '../src/logging/settings.js';
import { formatText } from '../src/logging/format.js';
import { defaultOutputs } from '../src/logging/log.js';

t.test('filters: libvirt syntax, plain names stored as *name*, first match wins', async (t) => {
  const f = parseFilters('1:rpc  +3:util.pidfile 4:rpc.server');
  t.equal(formatFilters(f), '1:*rpc* 3:*util.pidfile* 4:*rpc.server*');
  t.equal(categoryPriority(f, 'rpc.server', 3), 1, 'first matching filter wins');
  t.equal(categoryPriority(f, 'util.pidfile', 2), 3);
  t.equal(categoryPriority(f, 'daemon', 2), 2, 'no match: the default');
  t.equal(categoryPriority(parseFilters('2:rpc.*'), 'xrpc.server', 4), 4, 'explicit globs are anchored');
  t.same(parseFilters(''), []);
  t.throws(() => parseFilters('9:rpc'), /Invalid log priority '9' for log filter '9:rpc'/);
  t.throws(() => parseFilters('rpc'), /Malformed format for log filter 'rpc'/);
});

t.test('outputs: every destination, and errors naming the item', async (t) => {
  const o = parseOutputs('1:stderr 2:file:/var/log/x.log 3:syslog:virtqemud 4:journald');
  t.same(o.map((x) => x.kind), ['stderr', 'file', 'syslog', 'journald']);
  t.equal(formatOutputs(o), '1:stderr 2:file:/var/log/x.log 3:syslog:virtqemud 4:journald');
  t.throws(() => parseOutputs('9:foo'), /Invalid log priority '9' for log output '9:foo'/);
  t.throws(() => parseOutputs('1:nowhere'), /Invalid destination 'nowhere'/);
  t.throws(() => parseOutputs('1:file:relative'), /absolute path/);
  t.throws(() => parseOutputs('1:syslog'), /identity/);
  t.equal(parsePriority(' 2 '), 2);
  t.throws(() => parsePriority('0'));
});

t.test('default outputs follow libvirt (journald, file under --daemon, else stderr)', async (t) => {
  const base = { logFile: '/var/log/libvirt/x.log', priority: 1 as const };
  t.same(defaultOutputs({ ...base, daemonize: false, stdinIsTTY: true, journald: true }), [{ priority: 1, kind: 'stderr' }]);
  t.same(defaultOutputs({ ...base, daemonize: false, stdinIsTTY: false, journald: true }), [{ priority: 2, kind: 'journald' }],
    'journald never gets debug');
  t.same(defaultOutputs({ ...base, daemonize: true, stdinIsTTY: true, journald: false }), [{ priority: 1, kind: 'file', arg: '/var/log/libvirt/x.log' }]);
  t.same(defaultOutputs({ ...base, daemonize: false, stdinIsTTY: false, journald: false }), [{ priority: 1, kind: 'stderr' }]);
});

t.test('text lines look like libvirt\'s', async (t) => {
  const line = formatText({ level: 50, time: Date.UTC(2026, 10, 26, 3, 13, 1, 677), pid: 42, module: 'rpc.server', msg: 'boom', client: 3 });
  t.equal(line, '2026-11-26 03:13:01.677+0000: 42: error : rpc.server : boom client=3\n');
});

t.test('a newline from a peer cannot forge a second log line', async (t) => {
  const line = formatText({ level: 40, time: 0, pid: 7, module: 'rpc.server', msg: 'refused: CN=x\n1970-01-01 00:00:00.000+0000: 7: error : forged', peer: 'a\r\u0007b' });
  t.equal(line.split('\n').length, 2, 'one line, one terminating newline');
  t.match(line, 'refused: CN=x\\n1970-01-01');
  t.match(line, 'peer=a\\r\\x07b');
});
