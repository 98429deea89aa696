// Elections for cluster singletons, on the store alone (etcd's recipe): every
// candidate writes `election/<role>/<lease>` bound to its session lease; the
// candidate whose key has the lowest create revision leads. That revision is
// the fencing token: a leader's writes are transactions that hold only while
// its key still exists with that create revision, so a deposed leader (its
// lease expired, its key deleted) cannot write, whatever it believes.
// Invariants: tokens increase from one leader of a role to the next (a later
// leader's key was created after the earlier one's); loss is final for a handle:
// a node that wants to lead again campaigns again and gets a new token.

import { candidateKey, checkLeaderKey, electionPrefix } from './keys.js';
import type { KvBackend, KvWatch } from './kv.js';
import { sleep } from './listeners.js';
import type { Session } from './session.js';
import { type Entry, FencedError, type Json, type Leadership, type LossReason, UnavailableError } from './types.js';

/** Re-check the candidates at least this often even if no change arrives. */
const RECHECK_MS = 2_000;
const RETRY_MS = 250;

export async function campaign(kv: KvBackend, session: Session, node: string, role: string, signal?: AbortSignal): Promise<Leadership> {
  const prefix = electionPrefix(role);
  for (;;) {
    signal?.throwIfAborted();
    const { lease, generation } = await session.whenLive(signal);
    const key = candidateKey(role, lease);
    try {
      await kv.txn([{ key, createRevision: 0 }], [{ type: 'put', key, value: JSON.stringify({ node }), lease }]);
      for (;;) {
        signal?.throwIfAborted();
        if (session.generation() !== generation || session.live() === undefined) break;
        const { records, revision } = await kv.range(prefix);
        const mine = records.find((r) => r.key === key);
        if (mine === undefined) break;
        const first = records.reduce((a, b) => (b.createRevision < a.createRevision ? b : a));
        if (first.key === key) return new KvLeadership(kv, session, node, role, key, mine.createRevision, generation);
        await nextChange(kv, session, prefix, revision + 1, generation, signal);
      }
    } catch (e) {
      if (signal?.aborted === true) {
        await kv.txn([], [{ type: 'delete', key }]).catch(() => undefined);
        throw signal.reason;
      }
      if (!(e instanceof UnavailableError)) throw e;
      await sleep(RETRY_MS, signal);
    }
  }
}

/** Resolves on any change under the prefix, a new session generation, abort, or a periodic re-check. */
function nextChange(kv: KvBackend, session: Session, prefix: string, from: number, generation: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, RECHECK_MS);
    const off = session.changes.add(() => {
      if (session.generation() !== generation || session.live() === undefined) done();
    });
    signal?.addEventListener('abort', done, { once: true });
    const w: KvWatch = kv.watch(prefix, from, { onEvents: done, onConnection: () => undefined, onBroken: done });
    function done(): void {
      clearTimeout(timer);
      off();
      signal?.removeEventListener('abort', done);
      w.close();
      resolve();
    }
  });
}

class KvLeadership implements Leadership {
  readonly signal: AbortSignal;
  readonly lost: Promise<LossReason>;
  private readonly controller = new AbortController();
  private resolveLost!: (r: LossReason) => void;
  private readonly offSession: () => void;
  private readonly own: KvWatch;

  constructor(
    private readonly kv: KvBackend,
    session: Session,
    readonly node: string,
    readonly role: string,
    private readonly key: string,
    readonly fencingToken: number,
    generation: number,
  ) {
    this.signal = this.controller.signal;
    this.lost = new Promise((resolve) => {
      this.resolveLost = resolve;
    });
    this.offSession = session.changes.add((state) => {
      if (state === 'closed') this.lose('closed');
      else if (state === 'lost' || session.generation() !== generation) this.lose('session-lost');
    });
    this.own = kv.watch(key, fencingToken + 1, {
      onEvents: (events) => {
        if (events.some((e) => e.type === 'delete' && e.key === key)) this.lose('key-deleted');
      },
      onConnection: () => undefined,
      onBroken: () => {
        void this.verify();
      },
    });
  }

  async put(key: string, value: Json): Promise<number> {
    return this.fenced({ type: 'put', key: checkLeaderKey(key), value: JSON.stringify(value) });
  }

  async delete(key: string): Promise<number> {
    return this.fenced({ type: 'delete', key: checkLeaderKey(key) });
  }

  async resign(): Promise<void> {
    if (this.signal.aborted) return;
    this.lose('resigned');
    await this.kv.txn([{ key: this.key, createRevision: this.fencingToken }], [{ type: 'delete', key: this.key }]);
  }

  private async fenced(op: { type: 'put'; key: string; value: string } | { type: 'delete'; key: string }): Promise<number> {
    if (this.signal.aborted) throw new FencedError(this.role, this.fencingToken);
    const res = await this.kv.txn([{ key: this.key, createRevision: this.fencingToken }], [op]);
    if (!res.succeeded) {
      this.lose('key-deleted');
      throw new FencedError(this.role, this.fencingToken);
    }
    return res.revision;
  }

  private async verify(): Promise<void> {
    const r = await this.kv.get(this.key).catch(() => null);
    if (r === undefined || (r !== null && r.createRevision !== this.fencingToken)) this.lose('key-deleted');
  }

  private lose(reason: LossReason): void {
    if (this.signal.aborted) return;
    this.offSession();
    this.own.close();
    this.controller.abort(reason);
    this.resolveLost(reason);
  }
}

/**
 * Who leads `role`, from a watch of `electionPrefix(role)` (its entries: one
 * per candidate): the candidate with the lowest create revision. For routing
 * a write to the leader (e.g. forwarding an admin request), not for deciding
 * whether to write: only a Leadership's fenced write is safe for that.
 */
export function leaderOf(candidates: Iterable<Entry>): { node: string; fencingToken: number } | undefined {
  let best: Entry | undefined;
  for (const e of candidates) if (best === undefined || e.createRevision < best.createRevision) best = e;
  if (best === undefined) return undefined;
  const v = best.value;
  const node = v !== null && typeof v === 'object' && !Array.isArray(v) ? v.node : undefined;
  return typeof node === 'string' ? { node, fencingToken: best.createRevision } : undefined;
}
