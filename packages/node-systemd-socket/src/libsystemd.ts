// libsystemd through koffi, loaded on first use: sd_notify for readiness and
// sd_journal_sendv for native journal entries. Chosen over the `sd-notify`
// npm package, which compiles a native addon against libsystemd-dev at
// install time; koffi is already our FFI and libsystemd0 is on every host
// that runs systemd, so this needs no compiler and no headers.
import type * as KoffiModule from 'koffi' with { 'resolution-mode': 'import' };

type Koffi = typeof KoffiModule.default;
type Fn = ReturnType<KoffiModule.LibraryHandle['func']>;

interface Lib { koffi: Koffi; sdNotify: Fn; journalSendv: Fn }
let lib: Lib | null | undefined;

export function libsystemd(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const koffi = require('koffi') as Koffi;
    const h = koffi.load('libsystemd.so.0');
    lib = {
      koffi,
      sdNotify: h.func('int sd_notify(int unset_environment, const char *state)'),
      journalSendv: h.func('int sd_journal_sendv(void *iov, int n)'),
    };
  } catch {
    lib = null;
  }
  return lib;
}
