// The Secret program: the secret APIs over gRPC, served by whichever secret
// driver this daemon carries (virtsecretd's, or libvirtd's in-process one),
// for any open connection.
import type * as grpc from '@grpc/grpc-js';
import { SecretService, SecretMethods } from '@virtd/protocol/secret';
import { VirtError } from '@virtd/errors';
import type { CallContext, Program } from '@virtd/core';
import type { DriverRegistry } from '../registry.js';
import { USAGE_TYPES, type SecretDef, type UsageType } from './def.js';
import type { SecretDriver, SecretEvent } from './driver.js';

type Ctx<T> = CallContext<T>;

const ref = (d: SecretDef): { uuid: string; usageType: number; usageId: string } =>
  ({ uuid: d.uuid, usageType: USAGE_TYPES.indexOf(d.usageType), usageId: d.usageId });

const usageName = (n: number | null | undefined): UsageType => {
  const t = USAGE_TYPES[n ?? 0];
  if (!t) throw new VirtError('INVALID_ARG', 'SECRET', `unknown usage type ${n}`);
  return t;
};

export function secretProgram(registry: DriverRegistry): Program {
  const driver = (ctx: CallContext<unknown>, api: string): SecretDriver =>
    registry.secondary(ctx.client, 'secret', api) as unknown as SecretDriver;
  return {
    name: 'secret',
    service: SecretService,
    methods: SecretMethods,
    handlers: {
      DefineXML: (c: Ctx<{ xml?: string | null }>) => ref(driver(c, 'virSecretDefineXML').define(c.request.xml ?? '')),
      Undefine: (c: Ctx<{ uuid?: string | null }>) => { driver(c, 'virSecretUndefine').undefine(c.request.uuid ?? ''); return {}; },
      LookupByUUID: (c: Ctx<{ uuid?: string | null }>) => ref(driver(c, 'virSecretLookupByUUID').lookup(c.request.uuid ?? '').def),
      LookupByUsage: (c: Ctx<{ usageType?: number | null; usageId?: string | null }>) =>
        ref(driver(c, 'virSecretLookupByUsage').lookupByUsage(usageName(c.request.usageType), c.request.usageId ?? '').def),
      ListAll: (c: Ctx<{ flags?: number | null }>) => ({ secrets: driver(c, 'virConnectListAllSecrets').list(c.request.flags ?? 0).map(ref) }),
      GetXMLDesc: (c: Ctx<{ uuid?: string | null }>) => ({ xml: driver(c, 'virSecretGetXMLDesc').xml(c.request.uuid ?? '') }),
      SetValue: (c: Ctx<{ uuid?: string | null; value?: Uint8Array | null }>) => {
        driver(c, 'virSecretSetValue').setValue(c.request.uuid ?? '', Buffer.from(c.request.value ?? new Uint8Array()));
        return {};
      },
      GetValue: (c: Ctx<{ uuid?: string | null }>) => ({ value: driver(c, 'virSecretGetValue').value(c.request.uuid ?? '') }),
      Events: (c: Ctx<{ uuid?: string | null; kind?: number | null }>) => new Promise<void>((resolve) => {
        const d = driver(c, 'virConnectSecretEventRegisterAny');
        const stream = c.call as grpc.ServerWritableStream<unknown, unknown>;
        const want = c.request.uuid ? c.request.uuid.toLowerCase() : undefined;
        const kind = c.request.kind;
        const onEvent = (e: SecretEvent): void => {
          if (want && e.def.uuid !== want) return;
          const k = e.kind === 'lifecycle' ? 0 : 1;
          if (kind !== null && kind !== undefined && kind !== k) return;
          stream.write({
            secret: ref(e.def), kind: k, lifecycle: e.kind === 'lifecycle' && e.lifecycle === 'undefined' ? 1 : 0,
            timestamp: e.timestamp,
          });
        };
        d.events.on('event', onEvent);
        c.signal.addEventListener('abort', () => { d.events.off('event', onEvent); resolve(); });
      }),
    },
  };
}

