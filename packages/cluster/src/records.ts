// Records any node may write and any node may read by key, each kept for a bounded
// time: the cluster's store of Responses API objects (see docs/responses.md). Every
// record is bound to a lease, so etcd itself drops it when its time is up. Leases are
// shared per time bucket (one grant per bucket, not per write), so a record lives
// between `ttlSeconds` and `ttlSeconds + bucket` after it was written.

import type { KvBackend } from './kv.js';
import { checkSegment } from './keys.js';
import type { TtlRecords } from './types.js';

export class KvTtlRecords implements TtlRecords {
  private lease: { id: string; until: number } | undefined;
  private granting: Promise<string> | undefined;
  private readonly bucketMs: number;

  constructor(
    private readonly kv: KvBackend,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.bucketMs = Math.min(60, ttlSeconds) * 1000;
  }

  private async currentLease(): Promise<string> {
    const at = this.now();
    if (this.lease !== undefined && at < this.lease.until) return this.lease.id;
    this.granting ??= this.kv.grantLease(this.ttlSeconds + this.bucketMs / 1000).then((id) => {
      this.lease = { id, until: at + this.bucketMs };
      return id;
    }).finally(() => {
      this.granting = undefined;
    });
    return this.granting;
  }

  private key(key: string): string {
    return this.prefix + checkSegment('record key', key);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.kv.get(this.key(key)))?.value;
  }

  async put(key: string, value: string): Promise<void> {
    const lease = await this.currentLease();
    await this.kv.txn([], [{ type: 'put', key: this.key(key), value, lease }]);
  }

  async delete(key: string): Promise<boolean> {
    const k = this.key(key);
    if ((await this.kv.get(k)) === undefined) return false;
    await this.kv.txn([], [{ type: 'delete', key: k }]);
    return true;
  }
}
