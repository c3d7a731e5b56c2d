import t from 'tap';
import { parseCommandLine, UsageError } from '../src/cli.js';
import type { DaemonDescriptor } from '../src/descriptor.js';

const remote = { name: 'libvirtd', family: 'remote', listenFlag: true } as unknown as DaemonDescriptor;
const logd = { name: 'virtlogd', family: 'logd', listenFlag: false } as unknown as DaemonDescriptor;

t.test('getopt_long forms', async (t) => {
  t.match(parseCommandLine(remote, ['-vdl', '-t5', '--config=/x', '-p', '/y']),
    { verbose: true, daemon: true, listen: true, timeout: 5, configFile: '/x', pidFile: '/y' });
  t.match(parseCommandLine(remote, ['--time', '7']), { timeout: 7 }, 'unambiguous prefixes');
  t.match(parseCommandLine(remote, ['--timeout', '0']), { timeout: 0 });
  t.match(parseCommandLine(remote, ['-t', '2147483']), { timeout: 2147483 });
  t.match(parseCommandLine(remote, ['--pid-file=']), { pidFile: '' });
  t.match(parseCommandLine(logd, ['extra', '-v']), { verbose: true }, 'logd ignores operands, options after them still count');
});

t.test('errors', async (t) => {
  t.throws(() => parseCommandLine(remote, ['-t', '2147484']), new UsageError('Invalid value for timeout'));
  t.throws(() => parseCommandLine(remote, ['-x']), /invalid option -- 'x'/);
  t.throws(() => parseCommandLine(remote, ['--verbose=1']), /doesn't allow an argument/);
  t.throws(() => parseCommandLine(remote, ['extra']), /unexpected, non-option/);
  t.throws(() => parseCommandLine(logd, ['--listen']), /unrecognized option '--listen'/);
  t.throws(() => parseCommandLine(remote, ['--config']), /requires an argument/);
});
