// Every one of the fifteen binaries, spawned for real: --version, --help,
// bad options, --timeout validation and a broken config file.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { DAEMONS } from '@virtd/daemons';
import { run, binPath, tempDir } from '@virtd/test-utils';

const tmp = tempDir();

for (const d of DAEMONS) {
  t.test(d.name, async (t) => {
    const bin = binPath(d.name);

    // Every invocation is independent: start them all at once.
    const broken = path.join(tmp, `${d.name}-broken.conf`);
    fs.writeFileSync(broken, '# comment\nmax_clients = 10\nlog_level = yes\n');
    const typed = path.join(tmp, `${d.name}-typed.conf`);
    fs.writeFileSync(typed, 'max_clients = "ten"\n');
    // Every binary gets the basic checks; the option-parsing corners are the
    // same code for all, so they run for one daemon of each family.
    const thorough = d.name === 'libvirtd' || d.name === 'virtlogd';
    const timeouts = thorough ? ['abc', '-1', '2147484', '1.5', ''] : ['2147484'];
    const skip = { code: 0, signal: null, stdout: '', stderr: '' };
    const maybe = (args: string[]): ReturnType<typeof run> => (thorough ? run(bin, args) : Promise.resolve(skip));
    const [version, versionShort, help, bad, badShort, noArg, listen, operand, operandRemote, missing, r, r2, ...timeoutRuns] = await Promise.all([
      run(bin, ['--version']),
      maybe(['-V']),
      run(bin, ['--help']),
      run(bin, ['--bogus']),
      maybe(['-Z']),
      maybe(['-t']),
      run(bin, d.listenFlag ? ['--listen', '--bogus'] : ['--listen']),
      maybe(['--version', 'extra']),
      d.family === 'remote' ? run(bin, ['--config=/nonexistent-virtd', 'extra']) : Promise.resolve(skip),
      maybe(['-f', path.join(tmp, 'does-not-exist.conf')]),
      run(bin, ['--config', broken]),
      maybe([`--config=${typed}`]),
      ...timeouts.map((v) => run(bin, ['--timeout', v])),
    ]);
    t.equal(version.code, 0, '--version exits 0');
    t.match(version.stdout, new RegExp(`^${d.name} \\(virtd-node\\) \\d+\\.\\d+\\.\\d+\\n$`), 'version to stdout');
    t.equal(version.stderr, '');
    if (thorough) t.equal(versionShort.stdout, version.stdout, '-V is --version');

    t.equal(help.code, 0, '--help exits 0');
    t.equal(help.stdout, '', 'help goes to stderr, like libvirt');
    t.match(help.stderr, `  ${d.name} [options]`);
    t.match(help.stderr, '-t | --timeout <secs>');
    t.equal(help.stderr.includes('--listen'), d.listenFlag, '--listen only where libvirt has it');
    t.equal(help.stderr.includes('TLS:'), d.withIP, 'TLS paths only for IP daemons');

    t.equal(bad.code, 1, 'unknown option exits 1');
    t.match(bad.stderr, `${d.name}: unrecognized option '--bogus'`);
    t.match(bad.stderr, 'Usage:');
    if (thorough) {
      t.equal(badShort.code, 1, 'unknown short option exits 1');
      t.match(noArg.stderr, "option requires an argument -- 't'");
      t.equal(operand.code, 0, 'operands do not stop --version');
      t.equal(missing.code, 1, 'a named config file that is missing is fatal');
      t.match(missing.stderr, "Can't load config file");
      t.match(missing.stderr, 'does-not-exist.conf');
      t.equal(r2.code, 1, 'wrong type exits 1');
      t.match(r2.stderr, `${typed}:1:15`);
      t.match(r2.stderr, 'max_clients');
    }

    timeoutRuns.forEach((r, i) => {
      t.equal(r.code, 1, `--timeout ${JSON.stringify(timeouts[i])} rejected`);
      t.match(r.stderr, 'Invalid value for timeout');
    });

    if (d.listenFlag) t.equal(listen.code, 1);
    else t.match(listen.stderr, "unrecognized option '--listen'", '--listen is libvirtd-only');

    if (d.family === 'remote') {
      t.equal(operandRemote.code, 1, 'leftover operands rejected');
      t.match(operandRemote.stderr, 'unexpected, non-option, command line arguments');
    }

    t.equal(r.code, 1, 'broken config exits 1');
    t.match(r.stderr, `${broken}:3:13: expecting a value`, 'names file, line and column');

  });
}

// A connection that cannot be opened: the same words, lines and status as
// libvirt 9.0's own tools (installed beside ours from Debian's packages).
const REAL_TOOLS = [['vsh', '/usr/bin/virsh', 'secret:///system', 'secret-list'], ['vadmin', '/usr/bin/virt-admin', 'libvirtd:///system', 'srv-list']] as const;
for (const [ours, real, uri, verb] of REAL_TOOLS) {
  t.test(`${ours}: a failed connect reads as ${path.basename(real)}'s`, { skip: !fs.existsSync(real) && `${real} not installed` }, async (t) => {
    const args = ['-c', `${uri}?socket=${path.join(tmp, 'no-such-socket')}`, verb];
    const [a, b] = await Promise.all([run(binPath(ours), args), run(real, args)]);
    t.equal(a.code, b.code, 'exit status');
    t.equal(a.stdout, b.stdout, 'stdout');
    t.equal(a.stderr, b.stderr, 'stderr, to the blank line');
  });
}
