export * from './lockspace.js';
export { LockManager, type Owner, type HeldResource, type ClientPrivate } from './manager.js';
export { lockProgram } from './program.js';
export { lockdModule } from './module.js';
