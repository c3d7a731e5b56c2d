export * from './lockspace.js';
