// Compiles the C helpers that `npm run build` ships beside the JS (today only
// core's signal shim, see packages/core/native/signal-shim.c). Without a C
// compiler the build still succeeds: execSelf() then re-execs unprotected and
// the storm test skips.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TARGETS = [
  { src: 'packages/core/native/signal-shim.c', out: 'packages/core/dist/native/signal-shim.so' },
];
const cc = process.env.CC || 'cc';

const mtime = (p) => { try { return statSync(p).mtimeMs; } catch { return -1; } };

for (const { src, out } of TARGETS) {
  const srcPath = join(root, src);
  const outPath = join(root, out);
  if (mtime(outPath) >= mtime(srcPath)) continue;
  mkdirSync(dirname(outPath), { recursive: true });
  // Build beside and rename: running daemons may have the old .so mapped.
  const tmp = `${outPath}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, srcPath, '-ldl'], { stdio: 'inherit' });
  if (r.error?.code === 'ENOENT') {
    console.warn(`build-native: no C compiler (${cc}); skipping ${out} (re-exec will not be signal-safe)`);
    continue;
  }
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    console.error(`build-native: ${cc} failed on ${src}`);
    process.exitCode = 1;
    continue;
  }
  renameSync(tmp, outPath);
}
