// An in-process store with etcd's semantics: one global revision, create/mod
// revisions per key, leases that expire on a timer and take their keys along,
// one-compare transactions, and prefix watches that replay from a revision.
// Several coordinations sharing one MemoryStore form an in-process cluster.
// `setReachable(false)` simulates a partition from the store: calls reject with
// UnavailableError, watches go stale, leases keep expiring as the store sees
// them; on return watches replay what they missed.

import type { KvBackend, KvCompare, KvEvent, KvOp, KvRecord, KvWatch, KvWatchHandler } from './kv.js';
import { UnavailableError } from './types.js';

/** Events kept for replay; a watch resuming from before them is told to re-snapshot. */
const HISTORY_LIMIT = 10_000;

interface LeaseSlot {
  readonly ttlMs: number;
  timer: NodeJS.Timeout;
  readonly keys: Set<string>;
}

interface WatchSlot {
  readonly prefix: string;
  readonly handler: KvWatchHandler;
  /** Next revision this watch must deliver. */
  next: number;
  live: boolean;
  closed: boolean;
}

export class MemoryStore {
  private revision = 1;
  private readonly data = new Map<string, KvRecord>();
  private readonly leases = new Map<string, LeaseSlot>();
  private readonly history: { revision: number; event: KvEvent }[] = [];
  private readonly watches = new Set<WatchSlot>();
  private nextLease = 0x1000n;
  private reachable = true;
  private closed = false;

  setReachable(reachable: boolean): void {
    this.reachable = reachable;
    for (const w of this.watches) this.schedule(w);
  }

  isReachable(): boolean {
    return this.reachable;
  }

  /** Stop every lease timer; watches end. */
  close(): void {
    this.closed = true;
    for (const l of this.leases.values()) clearTimeout(l.timer);
    this.leases.clear();
    this.watches.clear();
  }

  backend(): KvBackend {
    return new MemoryBackend(this);
  }

  /** @internal */
  check(): void {
    if (this.closed) throw new UnavailableError('store closed');
    if (!this.reachable) throw new UnavailableError('store unreachable');
  }

  /** @internal */
  grant(ttlSeconds: number): string {
    this.check();
    const id = (this.nextLease++).toString();
    const ttlMs = ttlSeconds * 1000;
    this.leases.set(id, { ttlMs, keys: new Set(), timer: setTimeout(() => {
        this.expire(id);
      }, ttlMs) });
    return id;
  }

  /** @internal */
  renew(id: string): number {
    this.check();
    const l = this.leases.get(id);
    if (l === undefined) return -1;
    clearTimeout(l.timer);
    l.timer = setTimeout(() => {
      this.expire(id);
    }, l.ttlMs);
    return l.ttlMs / 1000;
  }

  /** @internal */
  expire(id: string): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    clearTimeout(l.timer);
    this.leases.delete(id);
    if (l.keys.size === 0) return;
    this.revision++;
    for (const k of l.keys) this.remove(k);
  }

  /** @internal */
  range(prefix: string): { records: KvRecord[]; revision: number } {
    this.check();
    const records = [...this.data.values()].filter((r) => r.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : 1));
    return { records, revision: this.revision };
  }

  /** @internal */
  get(key: string): KvRecord | undefined {
    this.check();
    return this.data.get(key);
  }

  /** @internal */
  txn(compares: readonly KvCompare[], ops: readonly KvOp[]): { succeeded: boolean; revision: number } {
    this.check();
    const holds = compares.every((c) => (this.data.get(c.key)?.createRevision ?? 0) === c.createRevision);
    if (!holds) return { succeeded: false, revision: this.revision };
    for (const op of ops) {
      if (op.type === 'put' && op.lease !== undefined && op.lease !== '0' && !this.leases.has(op.lease)) {
        throw new Error(`lease ${op.lease} not found`);
      }
    }
    const touches = ops.some((op) => op.type === 'put' || this.data.has(op.key));
    if (!touches) return { succeeded: true, revision: this.revision };
    this.revision++;
    for (const op of ops) {
      switch (op.type) {
        case 'put': {
          const prev = this.data.get(op.key);
          if (prev !== undefined && prev.lease !== '0') this.leases.get(prev.lease)?.keys.delete(op.key);
          const lease = op.lease ?? '0';
          const record: KvRecord = { key: op.key, value: op.value, createRevision: prev?.createRevision ?? this.revision, modRevision: this.revision, lease };
          this.data.set(op.key, record);
          if (lease !== '0') this.leases.get(lease)?.keys.add(op.key);
          this.record({ type: 'put', record });
          break;
        }
        case 'delete':
          this.remove(op.key);
          break;
        default: {
          const never: never = op;
          throw new Error(`unknown op ${JSON.stringify(never)}`);
        }
      }
    }
    return { succeeded: true, revision: this.revision };
  }

  private remove(key: string): void {
    const prev = this.data.get(key);
    if (prev === undefined) return;
    this.data.delete(key);
    if (prev.lease !== '0') this.leases.get(prev.lease)?.keys.delete(key);
    this.record({ type: 'delete', key, modRevision: this.revision });
  }

  private record(event: KvEvent): void {
    this.history.push({ revision: this.revision, event });
    if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
    for (const w of this.watches) this.schedule(w);
  }

  /** @internal */
  watch(prefix: string, fromRevision: number, handler: KvWatchHandler): KvWatch {
    const slot: WatchSlot = { prefix, handler, next: fromRevision, live: true, closed: false };
    this.watches.add(slot);
    this.schedule(slot);
    return {
      close: () => {
        slot.closed = true;
        this.watches.delete(slot);
      },
    };
  }

  /** Deliver asynchronously, as a real store would, in order per watch. */
  private schedule(w: WatchSlot): void {
    queueMicrotask(() => {
      this.deliver(w);
    });
  }

  private deliver(w: WatchSlot): void {
    if (w.closed) return;
    if (!this.reachable) {
      if (w.live) {
        w.live = false;
        w.handler.onConnection(false);
      }
      return;
    }
    if (!w.live) {
      w.live = true;
      w.handler.onConnection(true);
    }
    const oldest = this.history[0];
    if (oldest !== undefined && w.next < oldest.revision && this.history.length >= HISTORY_LIMIT) {
      w.closed = true;
      this.watches.delete(w);
      w.handler.onBroken(`revision ${w.next} is compacted`);
      return;
    }
    const batch: KvEvent[] = [];
    for (const h of this.history) {
      if (h.revision < w.next) continue;
      const key = h.event.type === 'put' ? h.event.record.key : h.event.key;
      if (key.startsWith(w.prefix)) batch.push(h.event);
    }
    w.next = this.revision + 1;
    if (batch.length > 0) w.handler.onEvents(batch);
  }
}

class MemoryBackend implements KvBackend {
  private readonly watches = new Set<KvWatch>();

  constructor(private readonly store: MemoryStore) {}

  grantLease(ttlSeconds: number): Promise<string> {
    return attempt(() => this.store.grant(ttlSeconds));
  }

  keepAlive(lease: string): Promise<number> {
    return attempt(() => this.store.renew(lease));
  }

  revokeLease(lease: string): Promise<void> {
    return attempt(() => {
      this.store.check();
      this.store.expire(lease);
    });
  }

  range(prefix: string): Promise<{ records: KvRecord[]; revision: number }> {
    return attempt(() => this.store.range(prefix));
  }

  get(key: string): Promise<KvRecord | undefined> {
    return attempt(() => this.store.get(key));
  }

  txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<{ succeeded: boolean; revision: number }> {
    return attempt(() => this.store.txn(compares, ops));
  }

  watch(prefix: string, fromRevision: number, handler: KvWatchHandler): KvWatch {
    const inner = this.store.watch(prefix, fromRevision, handler);
    const w: KvWatch = {
      close: () => {
        inner.close();
        this.watches.delete(w);
      },
    };
    this.watches.add(w);
    return w;
  }

  close(): Promise<void> {
    for (const w of [...this.watches]) w.close();
    return Promise.resolve();
  }
}

async function attempt<T>(fn: () => T): Promise<T> {
  await Promise.resolve();
  return fn();
}
