// The LogManager program: virtlogd's four LOG procedures over gRPC, plus a
// listing for administrators. OpenLogFile's pipe write end leaves through
// the core's fd hand-over: the reply carries the ticket.
import { LogManagerService, LogManagerMethods } from '@virtd/protocol/logd';
import { VirtError } from '@virtd/errors';
import type { CallContext, Program, FdHandoff } from '@virtd/core';
import type { LogHandler, Domain } from './handler.js';

type Ctx<T> = CallContext<T>;

interface DomainMsg { uuid?: string | null; name?: string | null }
interface PosMsg { inode?: number | null; offset?: number | null }

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function domain(d: DomainMsg | null | undefined): Domain {
  const uuid = d?.uuid ?? '';
  if (!UUID.test(uuid)) throw new VirtError('INVALID_ARG', 'LOGGING', `malformed domain UUID '${uuid}'`);
  const name = d?.name ?? '';
  if (!name) throw new VirtError('INVALID_ARG', 'LOGGING', 'domain name must not be empty');
  return { uuid: uuid.toLowerCase(), name };
}

export function logProgram(handler: LogHandler, handoff: FdHandoff): Program {
  return {
    name: 'log',
    service: LogManagerService,
    methods: LogManagerMethods,
    handlers: {
      OpenLogFile: async (c: Ctx<{ driver?: string | null; dom?: DomainMsg | null; path?: string | null; flags?: number | null }>) => {
        const r = c.request;
        const { pos, writeFd } = await handler.open(r.driver ?? '', domain(r.dom), r.path ?? '', r.flags ?? 0);
        return { pos, fdTicket: handoff.offer([writeFd], c.client.identity.uid) };
      },
      GetLogFilePosition: (c: Ctx<{ path?: string | null; flags?: number | null }>) =>
        handler.position(c.request.path ?? '', c.request.flags ?? 0),
      ReadLogFile: async (c: Ctx<{ path?: string | null; pos?: PosMsg | null; maxlen?: number | null; flags?: number | null }>) => {
        const r = c.request;
        const pos = { inode: r.pos?.inode ?? 0, offset: r.pos?.offset ?? 0 };
        return { data: await handler.read(r.path ?? '', pos, r.maxlen ?? 0, r.flags ?? 0) };
      },
      AppendLogFile: async (c: Ctx<{ driver?: string | null; dom?: DomainMsg | null; path?: string | null; message?: string | null; flags?: number | null }>) => {
        const r = c.request;
        domain(r.dom);
        await handler.append(r.path ?? '', r.message ?? '', r.flags ?? 0);
        return { ret: 0 };
      },
      ListLogFiles: () => ({ files: handler.list() }),
    },
  };
}
