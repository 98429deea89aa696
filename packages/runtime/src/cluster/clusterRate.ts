// Rate limits across the cluster: every node's limiter counts its admissions per
// (limiter key, window bucket) in the per-node counters in etcd
// (`counters/rpm:<key hash>:<bucket start>/<node>`, synced every counterSyncMs),
// and adds the other nodes' counts before admitting. A bucket is one rate window
// long (a minute, or the deployment's `remote.rateWindowMs`; a limiter key with
// another window hashes apart, so its buckets never mix). The others' part of the
// sliding window is estimated from the current bucket plus the previous bucket
// weighted by how much of it is still inside the window. Overspend bound: the
// others' counts arrive late by at most the sync interval plus the watch delay, so
// N nodes each admitting R requests per second overshoot `rpm` by at most
// counterSyncMs x R x (N - 1) (docs/cluster.md). Before the node has joined,
// limits hold per node only.
// Expiry: a bucket's scope expires when it can no longer be the previous bucket
// (two windows after its start), so it leaves etcd then; this node forgets its own
// count of it then, and a limiter key unused for two windows (its hash) too, so the
// memory held is bounded by the keys in use (docs/cluster.md "Counters").

import { createHash } from 'node:crypto';
import type { Counters } from '@inference/cluster';
import type { RateShare } from '@inference/engine-remote';

function scopeOf(keyHash: string, bucket: number): string {
  return `rpm:${keyHash}:${String(bucket)}`;
}

interface KeyState {
  readonly hash: string;
  /** The end of the last window this key was used in, plus one window: past it nothing of the key counts. */
  until: number;
}

/** How often expired entries are dropped, at most (a sweep is O(keys + scopes)). */
const PRUNE_EVERY_MS = 1_000;

export class ClusterRateShare implements RateShare {
  private counters: Counters | undefined;
  private readonly keys = new Map<string, KeyState>();
  /** This node's own count per scope, so `sum - own` is the other nodes' part; only the live buckets are kept. */
  private readonly own = new Map<string, { n: number; expiresAt: number }>();
  private nextPrune = 0;

  attach(counters: Counters): void {
    this.counters = counters;
  }

  /** Limiter keys and own scopes held (both bounded by the keys used in the last two windows). */
  sizes(): { keys: number; scopes: number } {
    return { keys: this.keys.size, scopes: this.own.size };
  }

  private hash(key: string, bucket: number, windowMs: number): string {
    let k = this.keys.get(key);
    if (k === undefined) {
      k = { hash: createHash('sha256').update(key).digest('hex').slice(0, 24), until: 0 };
      this.keys.set(key, k);
    }
    k.until = Math.max(k.until, bucket + 2 * windowMs);
    return k.hash;
  }

  private others(scope: string): number {
    const c = this.counters;
    if (c === undefined) return 0;
    return Math.max(0, c.sum(scope) - (this.own.get(scope)?.n ?? 0));
  }

  elsewhere(key: string, now: number, windowMs: number): number {
    if (this.counters === undefined) return 0;
    this.prune(now);
    const bucket = Math.floor(now / windowMs) * windowMs;
    const h = this.hash(key, bucket, windowMs);
    const current = this.others(scopeOf(h, bucket));
    const previous = this.others(scopeOf(h, bucket - windowMs));
    const stillInside = Math.max(0, Math.min(1, (bucket - (now - windowMs)) / windowMs));
    return current + Math.ceil(previous * stillInside);
  }

  admitted(key: string, now: number, windowMs: number): void {
    const c = this.counters;
    if (c === undefined) return;
    this.prune(now);
    const bucket = Math.floor(now / windowMs) * windowMs;
    const scope = scopeOf(this.hash(key, bucket, windowMs), bucket);
    const expiresAt = bucket + 2 * windowMs;
    c.add(scope, 1, expiresAt);
    const prev = this.own.get(scope);
    this.own.set(scope, { n: (prev?.n ?? 0) + 1, expiresAt });
  }

  /** Buckets that can no longer be the previous one, and keys none of whose buckets count any more, go. */
  private prune(now: number): void {
    if (now < this.nextPrune) return;
    this.nextPrune = now + PRUNE_EVERY_MS;
    for (const [s, o] of this.own) if (o.expiresAt <= now) this.own.delete(s);
    for (const [k, st] of this.keys) if (st.until <= now) this.keys.delete(k);
  }
}
