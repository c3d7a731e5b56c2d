// grpc.health.v1 on every socket role, so monitoring and grpcurl work out of
// the box. Reports SERVING for the whole daemon ('') and for each service of
// the server the call arrived on, NOT_SERVING once shutdown begins.
import { HealthService, HealthMethods, healthCodecs } from '@virtd/protocol/health';
import type * as grpc from '@grpc/grpc-js';
import { VirtError } from '@virtd/errors';
import type { Program, CallContext } from '../program.js';

const Status = healthCodecs.grpc.health.v1.HealthCheckResponse.ServingStatus;

export class HealthState {
  private serving = true;
  private readonly watchers = new Set<(serving: boolean) => void>();

  get isServing(): boolean { return this.serving; }

  /** Called once shutdown starts: every watcher hears NOT_SERVING. */
  stopServing(): void {
    this.serving = false;
    for (const w of this.watchers) w(false);
  }

  watch(fn: (serving: boolean) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }
}

export function healthProgram(state: HealthState, services: () => readonly string[]): Program {
  const statusOf = (service: string | null | undefined): number => {
    if (service && !services().includes(service)) return Status.SERVICE_UNKNOWN;
    return state.isServing ? Status.SERVING : Status.NOT_SERVING;
  };
  return {
    name: 'health',
    service: HealthService,
    methods: HealthMethods,
    handlers: {
      Check: ({ request }: CallContext<{ service?: string | null }>) => {
        const status = statusOf(request.service);
        if (status === Status.SERVICE_UNKNOWN) {
          throw new VirtError('NO_SUPPORT', 'RPC', `unknown service '${request.service}'`);
        }
        return { status };
      },
      Watch: ({ request, call, signal }: CallContext<{ service?: string | null }>) => new Promise<void>((resolve) => {
        const stream = call as grpc.ServerWritableStream<unknown, unknown>;
        stream.write({ status: statusOf(request.service) });
        const stop = state.watch(() => stream.write({ status: statusOf(request.service) }));
        signal.addEventListener('abort', () => { stop(); resolve(); });
      }),
    },
  };
}
