// Stored Responses API objects and items, by key, each kept for a bounded time.
// `RecordStore` is async so that a cluster can keep them in etcd (see
// apps/gateway/src/cluster) while one process keeps them in the catalog's
// Store (memory or the SQLite file). Values are JSON text, at most
// MAX_RECORD_BYTES each; see docs/responses.md.

import type { Store } from './store.js';

/** Larger records are not stored (etcd's own limit on a value is 1.5 MiB). */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** How long a stored response stays readable unless the config says otherwise: 30 days, as OpenAI keeps them. */
export const DEFAULT_RECORD_TTL_MS = 30 * 24 * 3600 * 1000;

export interface RecordStore {
  get(key: string): Promise<string | undefined>;
  /** False when the value is over MAX_RECORD_BYTES and was not stored. */
  put(key: string, value: string): Promise<boolean>;
  /** True when a record was there. */
  delete(key: string): Promise<boolean>;
}

/** Over the catalog Store; expired records are pruned every PRUNE_EVERY writes. */
export class LocalRecordStore implements RecordStore {
  private writes = 0;
  private static readonly PRUNE_EVERY = 256;

  constructor(
    private readonly store: Store,
    private readonly ttlMs = DEFAULT_RECORD_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.store.getRecord(key, this.now()));
  }

  put(key: string, value: string): Promise<boolean> {
    if (Buffer.byteLength(value) > MAX_RECORD_BYTES) return Promise.resolve(false);
    const now = this.now();
    if (++this.writes % LocalRecordStore.PRUNE_EVERY === 0) this.store.pruneRecords(now);
    this.store.putRecord(key, value, now + this.ttlMs);
    return Promise.resolve(true);
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.store.deleteRecord(key));
  }
}
