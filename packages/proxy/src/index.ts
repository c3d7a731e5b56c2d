// virtproxyd's module: the forwarding programs; no drivers of its own.
import type { DaemonModule, DaemonRuntime } from '@virtd/core';
import { Forwarder } from './forward.js';

export function proxyModule(rt: DaemonRuntime): DaemonModule {
  return { programs: new Forwarder({ rt, log: rt.log('proxy') }).programs() };
}

export { Forwarder };
