export * from './descriptors.js';
export * from './units.js';
