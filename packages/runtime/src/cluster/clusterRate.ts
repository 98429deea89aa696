// Rate limits across the cluster: every node's limiter counts its admissions per
// (limiter key, minute bucket) in the per-node counters in etcd
// (`counters/rpm:<key hash>:<bucket start>/<node>`, synced every counterSyncMs),
// and adds the other nodes' counts before admitting. The others' part of a sliding
// minute is estimated from the current bucket plus the previous bucket weighted by
// how much of it is still inside the window. Overspend bound: the others' counts
// arrive late by at most the sync interval plus the watch delay, so N nodes each
// admitting R requests per second overshoot `rpm` by at most
// counterSyncMs x R x (N - 1) (docs/cluster.md). Before the node has joined,
// limits hold per node only. A bucket's scope expires when it can no longer be
// the previous bucket (two buckets after its start), so it leaves etcd then.

import { createHash } from 'node:crypto';
import type { Counters } from '@inference/cluster';
import type { RateShare } from '@inference/engine-remote';

const BUCKET_MS = 60_000;

function scopeOf(keyHash: string, bucket: number): string {
  return `rpm:${keyHash}:${String(bucket)}`;
}

export class ClusterRateShare implements RateShare {
  private counters: Counters | undefined;
  private readonly hashes = new Map<string, string>();
  /** This node's own count per scope, so `sum - own` is the other nodes' part; only the live buckets are kept. */
  private readonly own = new Map<string, number>();

  attach(counters: Counters): void {
    this.counters = counters;
  }

  private hash(key: string): string {
    let h = this.hashes.get(key);
    if (h === undefined) {
      h = createHash('sha256').update(key).digest('hex').slice(0, 24);
      this.hashes.set(key, h);
    }
    return h;
  }

  private others(scope: string): number {
    const c = this.counters;
    if (c === undefined) return 0;
    return Math.max(0, c.sum(scope) - (this.own.get(scope) ?? 0));
  }

  elsewhere(key: string, now: number, windowMs: number): number {
    if (this.counters === undefined) return 0;
    const h = this.hash(key);
    const bucket = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const current = this.others(scopeOf(h, bucket));
    const previous = this.others(scopeOf(h, bucket - BUCKET_MS));
    const stillInside = Math.max(0, Math.min(1, (bucket - (now - windowMs)) / BUCKET_MS));
    return current + Math.ceil(previous * stillInside);
  }

  admitted(key: string, now: number): void {
    const c = this.counters;
    if (c === undefined) return;
    const bucket = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const scope = scopeOf(this.hash(key), bucket);
    c.add(scope, 1, bucket + 2 * BUCKET_MS);
    this.own.set(scope, (this.own.get(scope) ?? 0) + 1);
    // Buckets older than the previous one no longer count.
    if (this.own.size > 2 * this.hashes.size) {
      for (const s of this.own.keys()) {
        const start = Number(s.slice(s.lastIndexOf(':') + 1));
        if (start < bucket - BUCKET_MS) this.own.delete(s);
      }
    }
  }
}
