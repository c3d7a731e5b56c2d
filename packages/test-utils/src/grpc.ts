// Talking to a daemon from a test: typed clients from the client library,
// and raw calls by method path for walking every method of every service.
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import { Connection, unixTarget, type Target } from '@virtd/client';
import type { VirtError } from '@virtd/errors';
import type { KeyPair } from './pki.js';

export const connectUnix = (socket: string): Connection => new Connection(unixTarget(socket));

export function tlsTarget(host: string, port: number, ca: string, client?: KeyPair): Target {
  return {
    address: `${host}:${port}`,
    description: `${host}:${port}`,
    credentials: grpc.credentials.createSsl(
      fs.readFileSync(ca),
      client ? fs.readFileSync(client.key) : null,
      client ? fs.readFileSync(client.cert) : null,
    ),
    serverName: 'localhost',
  };
}

export const tcpTarget = (host: string, port: number): Target => ({
  address: `${host}:${port}`, description: `${host}:${port}`, credentials: grpc.credentials.createInsecure(),
});

export interface RawResult {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata: Record<string, string>;
}

const identity = (b: Buffer): Buffer => b;

/**
 * Calls any method by path with raw protobuf bytes (empty = an all-default
 * request) and reports the final status. Streams are ended or cancelled
 * after the first message.
 */
export function rawCall(target: Target, methodPath: string, kind: { requestStream: boolean; responseStream: boolean }, payload = Buffer.alloc(0)): Promise<RawResult> {
  const client = new grpc.Client(target.address, target.credentials, target.serverName ? { 'grpc.ssl_target_name_override': target.serverName } : {});
  const meta = (m?: grpc.Metadata): Record<string, string> =>
    Object.fromEntries(Object.entries(m?.getMap() ?? {}).map(([k, v]) => [k, String(v)]));
  return new Promise<RawResult>((resolve) => {
    const done = (s: { code: grpc.status; details: string; metadata?: grpc.Metadata }): void => {
      client.close();
      resolve({ code: s.code, details: s.details, metadata: meta(s.metadata) });
    };
    const opts = { deadline: Date.now() + 10_000 };
    if (!kind.requestStream && !kind.responseStream) {
      client.makeUnaryRequest(methodPath, identity, identity, payload, new grpc.Metadata(), opts,
        (err) => done(err ? { code: err.code, details: err.details, metadata: err.metadata } : { code: grpc.status.OK, details: '' }));
      return;
    }
    let call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>;
    if (!kind.requestStream) {
      call = client.makeServerStreamRequest(methodPath, identity, identity, payload, new grpc.Metadata(), opts);
    } else {
      const duplex = client.makeBidiStreamRequest(methodPath, identity, identity, new grpc.Metadata(), opts);
      duplex.write(payload);
      duplex.end();
      call = duplex;
    }
    // One message is proof enough that the call was served.
    call.on('data', () => call.cancel());
    call.on('error', () => { /* reported through 'status' */ });
    call.on('status', (s) => done({ code: s.code === grpc.status.CANCELLED ? grpc.status.OK : s.code, details: s.details, metadata: s.metadata }));
  });
}

export type { VirtError };
