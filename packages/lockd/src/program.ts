// The LockSpace program: virtlockd's eight LOCK procedures over gRPC, plus
// a listing of held resources for administrators.
import { LockSpaceService, LockSpaceMethods } from '@virtd/protocol/lockd';
import type { CallContext, Program } from '@virtd/core';
import type { LockManager } from './manager.js';

type Ctx<T> = CallContext<T>;
interface ResourceMsg { path?: string | null; name?: string | null; flags?: number | null }
interface OwnerMsg { uuid?: string | null; name?: string | null; id?: number | null; pid?: number | null }

export function lockProgram(m: LockManager): Program {
  const done = {};
  return {
    name: 'lock',
    service: LockSpaceService,
    methods: LockSpaceMethods,
    handlers: {
      Register: (c: Ctx<{ owner?: OwnerMsg | null; flags?: number | null }>) => {
        const o = c.request.owner;
        m.register(c.client, { uuid: o?.uuid ?? '', name: o?.name ?? '', id: o?.id ?? 0, pid: o?.pid ?? 0 }, c.request.flags ?? 0);
        return done;
      },
      Restrict: (c: Ctx<{ flags?: number | null }>) => { m.restrict(c.client, c.request.flags ?? 0); return done; },
      New: (c: Ctx<{ path?: string | null; flags?: number | null }>) => {
        m.newLockSpace(c.client, c.request.path ?? '', c.request.flags ?? 0);
        return done;
      },
      CreateResource: (c: Ctx<ResourceMsg>) => { m.createResource(c.client, c.request.path ?? '', c.request.name ?? '', c.request.flags ?? 0); return done; },
      DeleteResource: (c: Ctx<ResourceMsg>) => { m.deleteResource(c.client, c.request.path ?? '', c.request.name ?? '', c.request.flags ?? 0); return done; },
      AcquireResource: (c: Ctx<ResourceMsg>) => { m.acquire(c.client, c.request.path ?? '', c.request.name ?? '', c.request.flags ?? 0); return done; },
      ReleaseResource: (c: Ctx<ResourceMsg>) => { m.release(c.client, c.request.path ?? '', c.request.name ?? '', c.request.flags ?? 0); return done; },
      CreateLockSpace: (c: Ctx<{ path?: string | null }>) => { m.createLockSpace(c.client, c.request.path ?? ''); return done; },
      List: (c: Ctx<unknown>) => ({ resources: m.list(c.client) }),
    },
  };
}
