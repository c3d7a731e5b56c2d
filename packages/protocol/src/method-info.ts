/** What the generator records about each RPC method from its options. */
export interface MethodInfo {
  /** Fully qualified service name, e.g. virtd.admin.v1.Admin. */
  readonly service: string;
  readonly method: string;
  /** 'read' methods are served on read-only sockets; 'write' ones are refused there. */
  readonly access: 'read' | 'write';
  /** Runs on the priority worker pool, like libvirt's high-priority procedures. */
  readonly priority: boolean;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** The libvirt API it stands for, when there is one (virSecretDefineXML). */
  readonly api?: string;
}
