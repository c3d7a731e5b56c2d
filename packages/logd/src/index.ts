export * from './rotating-file.js';
export * from './handler.js';
export { logProgram } from './program.js';
export { logdModule } from './module.js';
