// A node's session with the store: one lease, renewed every TTL/3, and the keys
// the node owns bound to it (its membership entry, its replica entries).
// Invariants:
// - the session reports `lost` no later than TTL after the last renewal the
//   store acknowledged was sent: before the store can have expired the lease,
//   so a node never believes it holds what others already see gone;
// - after `lost` the old lease is never used again: when the store answers, the
//   old lease is revoked (its keys vanish if they still exist), a new lease is
//   granted and every owned key is written again under it (a new generation);
// - owned keys whose write failed are retried on every tick until written.

import type { KvBackend } from './kv.js';
import { Listeners } from './listeners.js';
import { type SessionState, UnavailableError } from './types.js';

export interface LiveLease {
  readonly lease: string;
  readonly generation: number;
}

export class Session {
  private leaseId: string;
  private gen = 1;
  private current: SessionState = 'live';
  /** When the last acknowledged renewal was sent (ms since epoch). */
  private renewedAt: number;
  private readonly owned = new Map<string, string>();
  private readonly unwritten = new Set<string>();
  private readonly pendingDeletes = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  readonly changes = new Listeners<SessionState>();

  private constructor(
    private readonly kv: KvBackend,
    readonly ttlSeconds: number,
    lease: string,
    grantedAt: number,
  ) {
    this.leaseId = lease;
    this.renewedAt = grantedAt;
  }

  /** Grant the first lease; rejects (UnavailableError) when the store cannot be reached. */
  static async open(kv: KvBackend, ttlSeconds: number): Promise<Session> {
    const sent = Date.now();
    const lease = await kv.grantLease(ttlSeconds);
    const s = new Session(kv, ttlSeconds, lease, sent);
    s.schedule();
    return s;
  }

  state(): SessionState {
    return this.current;
  }

  /** The current lease while live or suspect; undefined while lost or closed. */
  live(): LiveLease | undefined {
    return this.current === 'live' || this.current === 'suspect' ? { lease: this.leaseId, generation: this.gen } : undefined;
  }

  generation(): number {
    return this.gen;
  }

  /** Resolves with the lease once the session is live (at once if it is). */
  whenLive(signal?: AbortSignal): Promise<LiveLease> {
    const now = this.live();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const off = this.changes.add(() => {
        const l = this.live();
        if (this.current === 'closed') finish(new UnavailableError('session closed'));
        else if (l !== undefined) finish(l);
      });
      const onAbort = (): void => {
        finish(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      function finish(outcome: LiveLease | Error): void {
        off();
        signal?.removeEventListener('abort', onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      }
    });
  }

  /** Write a key bound to this session's lease, now and after every re-grant. */
  async putOwned(key: string, value: string): Promise<void> {
    if (this.current === 'closed') throw new UnavailableError('session closed');
    this.owned.set(key, value);
    this.pendingDeletes.delete(key);
    this.unwritten.add(key);
    await this.writeOwned(key);
  }

  async deleteOwned(key: string): Promise<void> {
    this.owned.delete(key);
    this.unwritten.delete(key);
    this.pendingDeletes.add(key);
    await this.kv.txn([], [{ type: 'delete', key }]);
    this.pendingDeletes.delete(key);
  }

  private async writeOwned(key: string): Promise<void> {
    const value = this.owned.get(key);
    const live = this.live();
    if (value === undefined) return;
    if (live === undefined) throw new UnavailableError('session lost; the entry is written again when the store answers');
    await this.kv.txn([], [{ type: 'put', key, value, lease: live.lease }]);
    if (this.live()?.generation === live.generation) this.unwritten.delete(key);
  }

  /** Stop renewing. With `revoke`, the lease (and every owned key) goes at once. */
  async close(revoke: boolean): Promise<void> {
    if (this.current === 'closed') return;
    const wasHeld = this.current !== 'lost';
    this.setState('closed');
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking;
    if (revoke && wasHeld) await this.kv.revokeLease(this.leaseId).catch(() => undefined);
    this.changes.clear();
  }

  private schedule(): void {
    if (this.current === 'closed') return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.schedule();
      });
    }, (this.ttlSeconds * 1000) / 3);
  }

  private async tick(): Promise<void> {
    switch (this.current) {
      case 'closed':
        return;
      case 'lost':
        await this.reestablish();
        return;
      case 'live':
      case 'suspect':
        await this.renew();
        return;
      default: {
        const never: never = this.current;
        throw new Error(`unknown session state ${String(never)}`);
      }
    }
  }

  private async renew(): Promise<void> {
    const sent = Date.now();
    let ttl: number;
    try {
      ttl = await this.kv.keepAlive(this.leaseId);
    } catch {
      if (this.current === 'closed') return;
      if (Date.now() - this.renewedAt >= this.ttlSeconds * 1000) this.setState('lost');
      else this.setState('suspect');
      return;
    }
    if (this.current === 'closed') return;
    if (ttl <= 0) {
      this.setState('lost');
      await this.reestablish();
      return;
    }
    this.renewedAt = sent;
    this.setState('live');
    await this.retryPending();
  }

  private async retryPending(): Promise<void> {
    try {
      for (const key of [...this.pendingDeletes]) {
        await this.kv.txn([], [{ type: 'delete', key }]);
        this.pendingDeletes.delete(key);
      }
      for (const key of [...this.unwritten]) await this.writeOwned(key);
    } catch {
      // Still unreachable: the next tick tries again.
    }
  }

  private async reestablish(): Promise<void> {
    try {
      await this.kv.revokeLease(this.leaseId);
      const sent = Date.now();
      const lease = await this.kv.grantLease(this.ttlSeconds);
      if (this.current === 'closed') {
        await this.kv.revokeLease(lease).catch(() => undefined);
        return;
      }
      this.leaseId = lease;
      this.renewedAt = sent;
      this.gen++;
      this.pendingDeletes.clear();
      const ops = [...this.owned].map(([key, value]) => ({ type: 'put' as const, key, value, lease }));
      if (ops.length > 0) await this.kv.txn([], ops);
      this.unwritten.clear();
      this.setState('live');
    } catch {
      // Unreachable still (or the grant raced a failure): stay lost, try next tick.
    }
  }

  private setState(next: SessionState): void {
    if (this.current === next || this.current === 'closed') return;
    this.current = next;
    this.changes.emit(next);
  }
}
