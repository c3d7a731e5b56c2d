// Runs before any codec loads. 64-bit fields (client ids, versions,
// timestamps) are plain numbers in our API: they never reach 2^53 in
// practice, and Long objects would leak into every handler. protobufjs
// decodes to numbers once long.js support is switched off.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const protobuf = require('protobufjs/minimal') as { util: { Long: unknown }; configure(): void };
protobuf.util.Long = undefined;
protobuf.configure();
export {};
