// The public contract of the coordination layer: what a node of the cluster can
// ask of it, whichever store is behind it (in-memory or etcd). Invariants every
// implementation keeps:
// - a node's membership entry and its replica entries are bound to the node's
//   lease: they vanish when the node stops renewing it;
// - a replica entry is written only by the node that owns it (the key names it);
// - a fenced write succeeds only while the writer's election key still exists
//   with the revision it was won at (the fencing token);
// - a watched prefix delivers one consistent snapshot, then every later change
//   in revision order, each exactly once; after a compaction it re-snapshots.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What a node announces about itself when it joins. */
export interface NodeSpec {
  /** Unique within the cluster; part of every key the node owns. */
  readonly name: string;
  /** host:port other nodes forward requests to. */
  readonly advertise: string;
  /** What placement needs to know (GPUs, memory, runtimes); opaque here. */
  readonly inventory: Json;
}

/** One stored key under a watched prefix. */
export interface Entry {
  /** The key relative to the watched prefix. */
  readonly key: string;
  readonly value: Json;
  readonly createRevision: number;
  readonly modRevision: number;
}

export type WatchUpdate =
  /** Replace everything you hold with these entries (first delivery, or after a compaction). */
  | { readonly type: 'snapshot'; readonly entries: readonly Entry[]; readonly revision: number }
  | { readonly type: 'put'; readonly entry: Entry; readonly revision: number }
  | { readonly type: 'delete'; readonly key: string; readonly revision: number }
  /** The store is unreachable: what you hold is the last known state. */
  | { readonly type: 'stale' }
  /** Reachable again; changes missed meanwhile follow (or a new snapshot). */
  | { readonly type: 'live' };

export type Unsubscribe = () => void;

/** A live, current copy of every key under one prefix. */
export interface PrefixWatch {
  readonly prefix: string;
  /** Resolves once the first snapshot is held. */
  readonly ready: Promise<void>;
  /** The current copy, keyed by key relative to the prefix. */
  entries(): ReadonlyMap<string, Entry>;
  /** The store revision the copy reflects (0 before the first snapshot). */
  revision(): number;
  /** True while the store is unreachable and the copy may be behind. */
  stale(): boolean;
  /** A new subscriber first gets a snapshot of the current copy (once ready). */
  subscribe(listener: (update: WatchUpdate) => void): Unsubscribe;
  close(): void;
}

/**
 * live: the lease is being renewed. suspect: renewals fail but the lease cannot
 * have expired yet. lost: the lease may have expired; everything bound to it
 * (membership, replica entries, leadership) is gone and is being re-established.
 * closed: left the cluster.
 */
export type SessionState = 'live' | 'suspect' | 'lost' | 'closed';

export interface Member {
  readonly name: string;
  readonly advertise: string;
  readonly inventory: Json;
  /** Revision at which this membership (this lease) began. */
  readonly since: number;
  /** The node is shutting down: it finishes its work in flight, and nothing new is placed or routed on it. */
  readonly draining: boolean;
}

export type LossReason = 'resigned' | 'session-lost' | 'key-deleted' | 'closed';

/** A won election. Every catalog write goes through it. */
export interface Leadership {
  readonly role: string;
  readonly node: string;
  /**
   * The revision at which leadership was won (the election key's create
   * revision). Strictly increasing from one leader of a role to the next.
   */
  readonly fencingToken: number;
  /** Aborted (with a LossReason) when leadership is lost; final. */
  readonly signal: AbortSignal;
  readonly lost: Promise<LossReason>;
  /** Write a key under a leader-owned prefix, only if still leader (else FencedError). */
  put(key: string, value: Json): Promise<number>;
  delete(key: string): Promise<number>;
  resign(): Promise<void>;
}

/** Cluster-wide counters: per-node totals, summed by every reader. */
export interface Counters {
  /**
   * Count locally at once; written to the store at the next sync. The scope
   * stops counting at `expiresAt` (ms since the epoch; the end of its window),
   * and its entries are removed after it. An add to an expired scope is ignored.
   */
  add(scope: string, n: number, expiresAt: number): void;
  /** This node's own total (exact) plus every other node's last synced total; 0 once expired. O(nodes). */
  sum(scope: string): number;
  /** Write pending totals now (and delete this node's expired entries). */
  flush(): Promise<void>;
  /** Delete every node's entries past their expiry (the manager leader runs it); how many were deleted. */
  sweep(): Promise<number>;
  readonly syncIntervalMs: number;
}

export interface Membership {
  readonly node: NodeSpec;
  state(): SessionState;
  onState(listener: (state: SessionState) => void): Unsubscribe;
  /** The current members (this node included once its entry is stored). */
  members(): readonly Member[];
  onMembers(listener: (members: readonly Member[]) => void): Unsubscribe;
  /** Replace this node's inventory in its membership entry. */
  setInventory(inventory: Json): Promise<void>;
  /** Write this node's own replica entry (lease-bound; re-written after a rejoin). */
  putReplica(replicaId: string, value: Json): Promise<void>;
  deleteReplica(replicaId: string): Promise<void>;
  /** Wait until this node leads `role`; rejects with AbortError on `signal`. */
  campaign(role: string, signal?: AbortSignal): Promise<Leadership>;
  readonly counters: Counters;
  /**
   * Mark this node draining in its membership entry (for good): it stays a member,
   * its lease and entries held, while leaders place nothing on it and peers route
   * nothing new to it (docs/cluster.md "Draining").
   */
  setDraining(): Promise<void>;
  /** Revoke the lease: membership, replicas and leadership go at once. */
  leave(): Promise<void>;
}

export interface JoinOptions {
  /** Lease TTL in seconds (etcd's unit); default 10. */
  readonly ttlSeconds?: number;
  /** Counter sync interval; default 1000 ms. */
  readonly counterSyncMs?: number;
}

/** Records by key, readable from every node, each dropped by the store after its time. */
export interface TtlRecords {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  /** True when a record was there. */
  delete(key: string): Promise<boolean>;
}

export interface Coordination {
  readonly kind: 'memory' | 'etcd' | 'ipc';
  /**
   * Records under a prefix relative to the cluster root (e.g. PREFIX.responses), each kept about
   * `ttlSeconds`; absent where the coordination does not share them.
   */
  records?(prefix: string, ttlSeconds: number): TtlRecords;
  join(node: NodeSpec, options?: JoinOptions): Promise<Membership>;
  /** Watch a prefix relative to the cluster root, e.g. PREFIX.catalog. */
  watchPrefix(prefix: string): PrefixWatch;
  /** Close every watch and membership this instance opened. */
  close(): Promise<void>;
}

/** A write refused because the writer is no longer the leader it was. */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(
    readonly role: string,
    readonly fencingToken: number,
  ) {
    super(`leadership of '${role}' won at revision ${fencingToken} is no longer held; write refused`);
  }
}

/** The store could not be reached. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}
