// Services are imported by subpath (@virtd/protocol/admin, …) so a daemon
// loads only the codecs its roles serve.
export type { MethodInfo } from './method-info.js';
