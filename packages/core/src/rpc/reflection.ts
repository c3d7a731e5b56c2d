// gRPC server reflection (v1, and v1alpha which grpcurl asks first). The
// descriptors are decoded only when a reflection call arrives.
import type * as grpc from '@grpc/grpc-js';
import { ServerReflectionService, ServerReflectionMethods, type ReflectionMessages } from '@virtd/protocol/reflection';
import type { MethodInfo } from '@virtd/protocol';
import type { Program, CallContext } from '../program.js';

type Req = ReflectionMessages.grpc.reflection.v1.IServerReflectionRequest;
type Res = ReflectionMessages.grpc.reflection.v1.IServerReflectionResponse;

interface Index {
  files: Map<string, Buffer>;
  /** Fully qualified symbol (package.Message, package.Service, package.Service.Method) → file. */
  symbols: Map<string, string>;
}

let index: Index | undefined;

function buildIndex(): Index {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { fileDescriptors } = require('@virtd/protocol/descriptors') as { fileDescriptors: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const desc = require('protobufjs/ext/descriptor') as {
    FileDescriptorProto: { decode(b: Uint8Array): { package?: string; messageType?: Named[]; enumType?: Named[]; service?: (Named & { method?: Named[] })[] } };
  };
  interface Named { name?: string; nestedType?: Named[]; enumType?: Named[] }
  const files = new Map<string, Buffer>();
  const symbols = new Map<string, string>();
  for (const [name, b64] of Object.entries(fileDescriptors)) {
    const buf = Buffer.from(b64, 'base64');
    files.set(name, buf);
    const fd = desc.FileDescriptorProto.decode(buf);
    const pkg = fd.package ? `${fd.package}.` : '';
    const addMessages = (prefix: string, list: Named[] | undefined): void => {
      for (const m of list ?? []) {
        symbols.set(prefix + m.name, name);
        addMessages(`${prefix}${m.name}.`, m.nestedType);
        for (const e of m.enumType ?? []) symbols.set(`${prefix}${m.name}.${e.name}`, name);
      }
    };
    addMessages(pkg, fd.messageType);
    for (const e of fd.enumType ?? []) symbols.set(pkg + e.name, name);
    for (const s of fd.service ?? []) {
      symbols.set(pkg + s.name, name);
      for (const m of s.method ?? []) symbols.set(`${pkg}${s.name}.${m.name}`, name);
    }
  }
  return { files, symbols };
}

const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

function answer(req: Req, services: readonly string[]): Res {
  index ??= buildIndex();
  const base: Res = { validHost: req.host ?? '', originalRequest: req };
  const notFound = (what: string): Res => ({ ...base, errorResponse: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } });
  if (req.listServices != null) {
    return { ...base, listServicesResponse: { service: services.map((name) => ({ name })) } };
  }
  if (req.fileByFilename != null) {
    const f = index.files.get(req.fileByFilename);
    return f ? { ...base, fileDescriptorResponse: { fileDescriptorProto: [f] } } : notFound(`file ${req.fileByFilename}`);
  }
  if (req.fileContainingSymbol != null) {
    const file = index.symbols.get(req.fileContainingSymbol.replace(/^\./, ''));
    return file
      ? { ...base, fileDescriptorResponse: { fileDescriptorProto: [index.files.get(file)!] } }
      : notFound(`symbol ${req.fileContainingSymbol}`);
  }
  if (req.allExtensionNumbersOfType != null) {
    return { ...base, allExtensionNumbersResponse: { baseTypeName: req.allExtensionNumbersOfType, extensionNumber: [] } };
  }
  return { ...base, errorResponse: { errorCode: UNIMPLEMENTED, errorMessage: 'request not supported' } };
}

/** The v1alpha twin: same messages, another path. */
const V1ALPHA = '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo';

function program(service: grpc.ServiceDefinition, methods: Record<string, MethodInfo>, name: string, services: () => readonly string[]): Program {
  return {
    name,
    service,
    methods,
    handlers: {
      ServerReflectionInfo: ({ call }: CallContext) => new Promise<void>((resolve) => {
        const stream = call as grpc.ServerDuplexStream<Req, Res>;
        stream.on('data', (req: Req) => stream.write(answer(req, services())));
        stream.on('end', () => { stream.end(); resolve(); });
        stream.on('error', () => resolve());
        stream.on('cancelled', () => resolve());
      }),
    },
  };
}

/** Reflection programs (v1 and v1alpha) listing the given services. */
export function reflectionPrograms(services: () => readonly string[]): Program[] {
  const v1Path = ServerReflectionService.ServerReflectionInfo.path;
  const info = ServerReflectionMethods[v1Path]!;
  const alpha = { ServerReflectionInfo: { ...ServerReflectionService.ServerReflectionInfo, path: V1ALPHA } };
  return [
    program(ServerReflectionService, ServerReflectionMethods, 'reflection', services),
    program(alpha, { [V1ALPHA]: { ...info, service: 'grpc.reflection.v1alpha.ServerReflection' } }, 'reflection-v1alpha', services),
  ];
}
