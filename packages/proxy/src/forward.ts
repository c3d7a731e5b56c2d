// virtproxyd: every call of a client connection goes to the modular daemon
// serving the URI the client opened (secret:///system → virtsecretd-sock;
// a read-only client → the target's -sock-ro), as raw bytes, so a service
// added later is forwarded with no change here: the method table the
// generator emits lists every method of every service.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ALL_METHODS } from '@virtd/protocol/methods';
import { ConnectService } from '@virtd/protocol/connect';
import { RelayedStatus } from '@virtd/protocol/status';
import { parseUri, type ParsedUri } from '@virtd/protocol/uri';
import { VirtError } from '@virtd/errors';
import { Connection, unixTarget, autostart, socketDir } from '@virtd/client';
import type { CallContext, Program, Client, DaemonRuntime } from '@virtd/core';
import type { MethodInfo } from '@virtd/protocol';

// Served by virtproxyd itself, never forwarded. virtlogd's and virtlockd's
// programs are not hypervisor APIs: libvirt's proxy never carries them either.
const LOCAL_SERVICES = new Set([
  'virtd.admin.v1.Admin', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection',
  'virtd.logd.v1.LogManager', 'virtd.lockd.v1.LockSpace',
]);
const OPEN_PATH = ConnectService.Open.path;
const CLOSE_PATH = ConnectService.Close.path;

/** libvirt's probe order for an empty URI: the first hypervisor daemon whose socket exists. */
const PROBE = ['xen', 'qemu', 'lxc', 'vbox', 'bhyve'];

const identity = (b: Buffer): Buffer => b;


const UPSTREAM = Symbol('virtd.proxy.upstream');

export interface ProxyOptions {
  readonly rt: DaemonRuntime;
  readonly log: Logger;
}

export class Forwarder {
  private readonly rt: DaemonRuntime;
  private readonly log: Logger;

  constructor(o: ProxyOptions) {
    this.rt = o.rt;
    this.log = o.log;
  }

  /** One forwarding program per service in the method table. */
  programs(): Program[] {
    const byService = new Map<string, [string, MethodInfo][]>();
    for (const [p, m] of Object.entries(ALL_METHODS)) {
      if (LOCAL_SERVICES.has(m.service)) continue;
      byService.set(m.service, [...(byService.get(m.service) ?? []), [p, m]]);
    }
    return [...byService.entries()].map(([service, methods]) => this.program(service, methods));
  }

  private program(service: string, methods: [string, MethodInfo][]): Program {
    const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const handlers: Record<string, (ctx: CallContext<never>) => unknown> = {};
    for (const [p, m] of methods) {
      def[m.method] = {
        path: p, requestStream: m.requestStream, responseStream: m.responseStream,
        requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
      };
      handlers[m.method] = ((ctx: CallContext<Buffer>) => this.forward(p, m, ctx)) as (ctx: CallContext<never>) => unknown;
    }
    return { name: `proxy:${service}`, service: def as grpc.ServiceDefinition, methods: Object.fromEntries(methods), handlers };
  }

  private async forward(p: string, m: MethodInfo, ctx: CallContext<Buffer>): Promise<unknown> {
    if (p === OPEN_PATH) return this.open(ctx);
    const up = ctx.client.data.get(UPSTREAM) as Connection | undefined;
    if (!up) throw new VirtError('INTERNAL_ERROR', 'REMOTE', 'hypervisor connection not open');
    if (!m.requestStream && !m.responseStream) {
      const reply = await unary(up, p, ctx.request);
      if (p === CLOSE_PATH) this.drop(ctx.client);
      return reply;
    }
    return this.stream(up.raw(), p, m, ctx);
  }

  /** Open: pick the daemon from the URI, connect (starting it in session mode), forward. */
  private async open(ctx: CallContext<Buffer>): Promise<Buffer> {
    if (ctx.client.data.has(UPSTREAM)) throw new VirtError('OPERATION_INVALID', 'REMOTE', 'connection already open');
    let req: ReturnType<typeof ConnectService.Open.requestDeserialize>;
    try {
      req = ConnectService.Open.requestDeserialize(ctx.request);
    } catch (e) {
      // The client's fault, as any request that does not decode.
      throw new VirtError('RPC', 'RPC', `cannot decode the open request: ${(e as Error).message}`);
    }
    const mode = this.rt.paths.mode;
    const socket = this.targetSocket(req.uri ?? '', ctx.client.readonly, mode);
    if (mode === 'session') {
      const daemon = socket.split('/').pop()!.replace(/-sock(-ro)?$/, '');
      await autostart(daemon, socket, this.rt.host.env);
    }
    const conn = new Connection(unixTarget(socket));
    try {
      const reply = await unary(conn, OPEN_PATH, ctx.request);
      ctx.client.data.set(UPSTREAM, conn);
      ctx.client.socket.once('close', () => this.drop(ctx.client));
      this.log.debug({ client: ctx.client.id, upstream: socket }, 'connection forwarded');
      return reply;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  private targetSocket(uriText: string, readonly: boolean, mode: 'system' | 'session'): string {
    const dir = socketDir(mode, this.rt.host.env);
    const suffix = readonly && mode === 'system' ? 'sock-ro' : 'sock';
    const path = (scheme: string): string => `${dir}/virt${scheme}d-${suffix}`;
    if (!uriText) {
      const found = PROBE.find((s) => fs.existsSync(path(s)));
      if (!found) throw new VirtError('NO_CONNECT', 'NONE', 'the default URI');
      return path(found);
    }
    const u: ParsedUri = parseUri(uriText);
    if (u.transport || u.host) throw new VirtError('NO_CONNECT', 'NONE', uriText);
    return path(u.scheme);
  }

  private drop(client: Client): void {
    const up = client.data.get(UPSTREAM) as Connection | undefined;
    if (!up) return;
    client.data.delete(UPSTREAM);
    up.close();
  }

  private stream(up: grpc.Client, p: string, m: MethodInfo, ctx: CallContext<Buffer>): Promise<void> {
    return new Promise((resolve, reject) => {
      const down = ctx.call as grpc.ServerWritableStream<Buffer, Buffer> & grpc.ServerDuplexStream<Buffer, Buffer>;
      const call = m.requestStream
        ? up.makeBidiStreamRequest(p, identity, identity, new grpc.Metadata())
        : up.makeServerStreamRequest(p, identity, identity, ctx.request, new grpc.Metadata());
      if (m.requestStream) {
        const duplex = call as grpc.ClientDuplexStream<Buffer, Buffer>;
        down.on('data', (b: Buffer) => duplex.write(b));
        down.on('end', () => duplex.end());
      }
      call.on('data', (b: Buffer) => down.write(b));
      call.on('error', (e: grpc.ServiceError) => {
        if (e.code === grpc.status.CANCELLED) resolve();
        else reject(new RelayedStatus(e));
      });
      call.on('end', () => resolve());
      ctx.signal.addEventListener('abort', () => call.cancel());
    });
  }
}

/**
 * A raw unary call upstream. Errors the daemon raised are relayed as they
 * are; failing to reach it becomes libvirt's connection error.
 */
function unary(up: Connection, p: string, req: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    up.raw().makeUnaryRequest(p, identity, identity, req, (err, res) => {
      if (!err) resolve(res!);
      else if (err.metadata?.get('virt-error-code').length || err.code !== grpc.status.UNAVAILABLE) reject(new RelayedStatus(err));
      else reject(up.error(err));
    });
  });
}
