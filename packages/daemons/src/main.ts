// Entry point of every daemon binary: pick the descriptor, hand it to the core.
import { runDaemon } from '@virtd/core/daemon';
import { descriptor } from './descriptors.js';

export function main(name: string): void {
  runDaemon(descriptor(name));
}
