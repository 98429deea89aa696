// Where virtual key records live and how a node's KeyRegistry follows them:
// - StoreKeyBackend (one process): the catalog storage (SQLite file or memory);
//   a write goes to the store, then to the registry, synchronously;
// - ClusterKeyBackend: `keys/<name>` in etcd, written through the manager leader
//   (cluster/sharedState.ts) and watched by every node, whose registry follows
//   the watch. A revoke therefore reaches every node within the watch delivery
//   delay (docs/keys.md gives the measured bound).
// A write names the record it replaces (undefined: the name is new) and fails
// with a clear error if that record changed meanwhile.

import { InferenceError } from '@inference/core';
import type { Store } from '@inference/storage';
import type { Json, PrefixWatch } from '@inference/cluster';
import { SHARED_PREFIX, type SharedState } from '@inference/runtime';
import type { KeyRegistry } from './keyRegistry.js';
import { type VirtualKey, parseStoredKey } from './virtualKey.js';

export interface KeyBackend {
  write(record: VirtualKey, previous: VirtualKey | undefined): Promise<void>;
}

function conflict(name: string): InferenceError {
  return new InferenceError('invalid_request', `key '${name}' changed while this change was made; read it again and retry`, { param: 'name' });
}

export class StoreKeyBackend implements KeyBackend {
  constructor(private readonly store: Store, private readonly registry: KeyRegistry, onInvalid: (e: unknown) => void) {
    const keys: VirtualKey[] = [];
    for (const row of store.keys()) {
      try {
        keys.push(parseStoredKey(row.record));
      } catch (e) {
        onInvalid(new Error(`stored key '${row.name}' is not valid and is ignored: ${e instanceof Error ? e.message : String(e)}`));
      }
    }
    registry.replaceAll(keys);
  }

  write(record: VirtualKey, previous: VirtualKey | undefined): Promise<void> {
    if (this.registry.get(record.name)?.version !== previous?.version) return Promise.reject(conflict(record.name));
    this.store.putKey({ name: record.name, record, updatedAt: record.updatedAt });
    this.registry.upsert(record);
    return Promise.resolve();
  }
}

export class ClusterKeyBackend implements KeyBackend {
  private readonly watch: PrefixWatch;
  private readonly unsubscribe: () => void;

  constructor(private readonly shared: SharedState, private readonly registry: KeyRegistry, private readonly onInvalid: (e: unknown) => void) {
    this.watch = shared.watch(SHARED_PREFIX.keys);
    this.unsubscribe = this.watch.subscribe((u) => {
      if (u.type !== 'stale' && u.type !== 'live') this.sync();
    });
  }

  private sync(): void {
    const keys: VirtualKey[] = [];
    for (const e of this.watch.entries().values()) {
      try {
        keys.push(parseStoredKey(e.value));
      } catch (err) {
        this.onInvalid(new Error(`key entry '${e.key}' is not valid and is ignored: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
    this.registry.replaceAll(keys);
  }

  async write(record: VirtualKey, previous: VirtualKey | undefined): Promise<void> {
    const entry = this.watch.entries().get(record.name);
    const held = entry === undefined ? undefined : parseStoredKey(entry.value);
    if (held?.version !== previous?.version) throw conflict(record.name);
    await this.shared.put(SHARED_PREFIX.keys + record.name, JSON.parse(JSON.stringify(record)) as Json, entry?.modRevision ?? 0);
    // The watch has delivered the write by now (put waits for it); sync in case it raced the subscriber.
    this.sync();
  }

  close(): void {
    this.unsubscribe();
  }
}
