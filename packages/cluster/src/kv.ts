// The small store interface the coordination logic is written against: keys
// with create/mod revisions, leases, one-compare transactions and prefix
// watches from a revision. Two backends implement it (memoryKv, etcdKv); the
// logic above it is shared, so both behave alike by construction.
// Invariants a backend keeps: revisions are global and strictly increasing;
// a watch from revision r delivers every change with revision >= r in order;
// a failed call rejects with UnavailableError when the store is unreachable.

export interface KvRecord {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  /** '0' when not lease-bound. */
  readonly lease: string;
}

export type KvEvent =
  | { readonly type: 'put'; readonly record: KvRecord }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

export interface KvWatchHandler {
  /** Events of one store revision or more, in order. */
  onEvents(events: readonly KvEvent[]): void;
  /** The connection dropped (stale) or came back (live); the watch resumes by itself. */
  onConnection(live: boolean): void;
  /** The watch ended and cannot resume (compacted start revision): re-snapshot. */
  onBroken(reason: string): void;
}

export interface KvWatch {
  close(): void;
}

/** Compare: the key's create revision equals `createRevision` (0 = the key is absent). */
export interface KvCompare {
  readonly key: string;
  readonly createRevision: number;
}

export type KvOp =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly type: 'delete'; readonly key: string };

export interface KvBackend {
  grantLease(ttlSeconds: number): Promise<string>;
  /** Renew once; the remaining TTL in seconds, <= 0 when the lease is gone. */
  keepAlive(lease: string): Promise<number>;
  revokeLease(lease: string): Promise<void>;
  range(prefix: string): Promise<{ records: KvRecord[]; revision: number }>;
  get(key: string): Promise<KvRecord | undefined>;
  /** All compares hold -> apply ops atomically. Returns the store revision after. */
  txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<{ succeeded: boolean; revision: number }>;
  watch(prefix: string, fromRevision: number, handler: KvWatchHandler): KvWatch;
  close(): Promise<void>;
}
