// Cluster-wide counters (spend, tokens, requests per window): each node keeps
// its own running total per scope and writes it to `counters/<scope>/<node>`
// every sync interval; every node sums its own exact total and the others'
// last synced totals. A scope names its window (e.g. `spend:team-a:2025-06-01`),
// so a new window is a new scope, and each scope carries the time it stops
// counting (`expiresAt`, the end of its window).
// Bound: a node sees another node's count late by at most the sync interval
// plus the watch delivery delay, so with N nodes each admitting at rate R the
// cluster can overshoot a limit by at most syncInterval x R x (N - 1); while
// the store is unreachable the others' totals freeze and the bound grows with
// the outage (each node still enforces its own share exactly).
// Expiry (nothing grows with uptime; docs/cluster.md "Counters"):
// - an entry is written under a lease that ends EXPIRY_GRACE_MS after its scope
//   expires (one lease per EXPIRY_BUCKET_MS of expiry times), so the store drops
//   it even when its writer is dead;
// - the writer deletes its own entry and forgets the scope once it expired;
// - `sweep()` (run by the manager leader) deletes any entry past its expiry
//   plus the grace: entries whose lease could not be used (windows longer than
//   MAX_LEASE_S) or was lost; and entries of the older format (a bare total, no
//   expiry, no lease) once left unchanged for LEGACY_IDLE_MS: their writer is
//   gone or upgraded, or writes them again (an absolute total) at its next change.
// Cost: `sum` reads a per-scope index fed by the watch, O(nodes), whatever the
// uptime; expired entries never count.
// Invariants: totals written are absolute (a repeated write is harmless);
// a node only writes its own entries; a restarted node continues its totals.

import { PREFIX, checkSegment, counterKey } from './keys.js';
import type { KvBackend } from './kv.js';
import type { KvPrefixWatch } from './prefixWatch.js';
import type { Counters, Entry, Json } from './types.js';

/** Entries live this long past their expiry: clocks of nodes differ a little. */
export const EXPIRY_GRACE_MS = 10_000;
/** Expiry times are grouped into leases of this granularity. */
const EXPIRY_BUCKET_MS = 10_000;
/** Longer lived scopes (monthly budgets) are left to the writer and the sweep. */
const MAX_LEASE_S = 20 * 24 * 3600;
/**
 * An entry of the older format (a bare number, written by a version without
 * expiry) is swept once unchanged this long: longer than a rate bucket lives
 * (two minutes), and than a rolling upgrade leaves an old node idle, mostly.
 */
export const LEGACY_IDLE_MS = 5 * 60_000;

interface Own {
  total: number;
  synced: number;
  readonly expiresAt: number;
  /** An entry of this scope and node is (or may be) in the store. */
  stored: boolean;
}

interface Seen {
  readonly total: number;
  readonly expiresAt: number;
  readonly createRevision: number;
}

/** The stored value: `{ total, expiresAt }`; a bare number (an older writer) never expires. */
function parseValue(v: Json): { total: number; expiresAt: number } | undefined {
  if (typeof v === 'number') return { total: v, expiresAt: Number.POSITIVE_INFINITY };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, Json>;
  const total = o.total;
  const expiresAt = o.expiresAt;
  return typeof total === 'number' && typeof expiresAt === 'number' ? { total, expiresAt } : undefined;
}

/** `<scope>/<node>` (relative to the counters prefix) -> its parts. */
function splitKey(key: string): { scope: string; node: string } | undefined {
  const i = key.lastIndexOf('/');
  return i <= 0 ? undefined : { scope: key.slice(0, i), node: key.slice(i + 1) };
}

export class KvCounters implements Counters {
  private readonly own = new Map<string, Own>();
  /** Every node's stored entry per scope, from the watch (this node's included). */
  private readonly index = new Map<string, Map<string, Seen>>();
  /** Lease per expiry bucket (bucket end in ms). */
  private readonly leases = new Map<number, Promise<string>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Older-format entries the sweep has seen, by key: the revision seen and since when (bounded by those in the store). */
  private readonly legacy = new Map<string, { modRevision: number; since: number }>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly kv: KvBackend,
    private readonly node: string,
    /** A watch of PREFIX.counters, held by the membership. */
    private readonly all: KvPrefixWatch,
    readonly syncIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.unsubscribe = all.subscribe((u) => {
      switch (u.type) {
        case 'snapshot':
          this.index.clear();
          for (const e of u.entries) this.indexPut(e);
          return;
        case 'put':
          this.indexPut(u.entry);
          return;
        case 'delete':
          this.indexDelete(u.key);
          return;
        case 'stale':
        case 'live':
          return;
        default: {
          const never: never = u;
          throw new Error(`unknown watch update ${JSON.stringify(never)}`);
        }
      }
    });
    this.timer = setInterval(() => {
      this.flushing = this.flush().catch(() => undefined);
    }, syncIntervalMs);
  }

  add(scope: string, n: number, expiresAt: number): void {
    if (!Number.isFinite(n)) throw new RangeError(`counter increment must be finite, got ${n}`);
    if (expiresAt <= this.now()) return;
    this.slot(scope, expiresAt).total += n;
  }

  sum(scope: string): number {
    checkSegment('counter scope', scope);
    const now = this.now();
    const mine = this.own.get(scope);
    let total = mine !== undefined && mine.expiresAt > now ? mine.total : 0;
    const seen = this.index.get(scope);
    if (seen === undefined) return total;
    for (const [node, s] of seen) {
      if (node === this.node && mine !== undefined) continue;
      if (s.expiresAt > now) total += s.total;
    }
    return total;
  }

  /** Scopes this node holds in memory (bounded by the live windows). */
  ownScopes(): number {
    return this.own.size;
  }

  async flush(): Promise<void> {
    const now = this.now();
    for (const [scope, own] of [...this.own]) {
      if (own.expiresAt <= now) {
        // Expired: forget it, and delete this node's entry (the lease would too, a little later).
        this.own.delete(scope);
        if (own.stored) await this.kv.txn([], [{ type: 'delete', key: counterKey(scope, this.node) }]);
        continue;
      }
      if (own.total === own.synced) continue;
      const total = own.total;
      const lease = await this.leaseFor(own.expiresAt, now);
      const value = JSON.stringify({ total, expiresAt: own.expiresAt });
      try {
        await this.kv.txn([], [{ type: 'put', key: counterKey(scope, this.node), value, ...(lease === undefined ? {} : { lease }) }]);
      } catch (e) {
        // A lease the store no longer knows (it restarted, or the lease expired early): grant a new one next time.
        this.leases.delete(this.bucketOf(own.expiresAt));
        throw e;
      }
      own.stored = true;
      own.synced = total;
    }
    for (const b of this.leases.keys()) if (b + EXPIRY_GRACE_MS < now) this.leases.delete(b);
  }

  /**
   * Deletes every entry, of any node, past its expiry plus the grace; returns how
   * many. Reads the watched copy (no store scan); each delete is guarded by the
   * entry's create revision, so a newer entry under the same key is left alone.
   */
  async sweep(): Promise<number> {
    const now = this.now();
    const limit = now - EXPIRY_GRACE_MS;
    let deleted = 0;
    const entries = [...this.all.entries().values()];
    const present = new Set(entries.map((e) => e.key));
    for (const k of this.legacy.keys()) if (!present.has(k)) this.legacy.delete(k);
    for (const e of entries) {
      const v = parseValue(e.value);
      if (v !== undefined && typeof e.value === 'number') {
        // The older format: no expiry of its own; it goes once its writer has left it alone long enough.
        const seen = this.legacy.get(e.key);
        if (seen === undefined || seen.modRevision !== e.modRevision) {
          this.legacy.set(e.key, { modRevision: e.modRevision, since: now });
          continue;
        }
        if (now - seen.since < LEGACY_IDLE_MS) continue;
      } else if (v !== undefined && v.expiresAt > limit) continue;
      const r = await this.kv.txn([{ key: PREFIX.counters + e.key, createRevision: e.createRevision }], [{ type: 'delete', key: PREFIX.counters + e.key }]);
      if (r.succeeded) deleted++;
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe();
    await this.flushing;
    await this.flush().catch(() => undefined);
  }

  private bucketOf(expiresAt: number): number {
    return Math.ceil(expiresAt / EXPIRY_BUCKET_MS) * EXPIRY_BUCKET_MS;
  }

  /** The lease entries expiring at `expiresAt` are written under (none past MAX_LEASE_S). */
  private async leaseFor(expiresAt: number, now: number): Promise<string | undefined> {
    const bucket = this.bucketOf(expiresAt);
    const ttl = Math.ceil((bucket + EXPIRY_GRACE_MS - now) / 1000);
    if (ttl > MAX_LEASE_S) return undefined;
    let lease = this.leases.get(bucket);
    if (lease === undefined) {
      lease = this.kv.grantLease(ttl);
      this.leases.set(bucket, lease);
      lease.catch(() => { this.leases.delete(bucket); });
    }
    return lease;
  }

  private indexPut(e: Entry): void {
    const k = splitKey(e.key);
    const v = parseValue(e.value);
    if (k === undefined || v === undefined) return;
    let m = this.index.get(k.scope);
    if (m === undefined) {
      m = new Map();
      this.index.set(k.scope, m);
    }
    m.set(k.node, { total: v.total, expiresAt: v.expiresAt, createRevision: e.createRevision });
  }

  private indexDelete(key: string): void {
    const k = splitKey(key);
    if (k === undefined) return;
    const m = this.index.get(k.scope);
    if (m === undefined) return;
    m.delete(k.node);
    if (m.size === 0) this.index.delete(k.scope);
  }

  /** A scope seen for the first time starts from this node's stored total, if any. */
  private slot(scope: string, expiresAt: number): Own {
    let s = this.own.get(scope);
    if (s === undefined) {
      checkSegment('counter scope', scope);
      const stored = this.index.get(scope)?.get(this.node);
      const base = stored?.total ?? 0;
      s = { total: base, synced: base, expiresAt, stored: stored !== undefined };
      this.own.set(scope, s);
    }
    return s;
  }
}
