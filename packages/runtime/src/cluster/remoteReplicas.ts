// Other nodes' replicas in this node's routing table. Watches `replicas/` (every
// node publishes its own, lease-bound) and `members/` (their advertise
// addresses), and keeps one ForwardingRunner per remote replica registered with
// the DpCoordinatorActor under the id `<node>/<replica id>`, its state following
// the owner's. This node's own entries are skipped (its replicas are registered
// locally by the DeploymentManagerActor).
// Invariants: while the store is unreachable the table stays as it is (stale);
// a deleted entry is unregistered after a short grace (a longer one just after an
// outage), so the delete-then-put of
// a node re-establishing its lease after an etcd outage does not empty the
// table; a node that is really gone fails fast meanwhile and is skipped as
// unhealthy (forwardClient.ts); the replicas of a node marked draining are held
// in the table as 'draining' (no new requests; those in flight finish).

import type { ActorRef, CoordinatorMsg, ReplicaState } from '@inference/actors';
import type { Entry, Member, Membership, PrefixWatch, WatchUpdate } from '@inference/cluster';
import type { ReplicaLoad } from '@inference/core';
import { ForwardingRunner, type PeerPool } from './forwardClient.js';
import { remoteReplicaId } from './clusterKeys.js';

/** What a node publishes about each of its replicas (`replicas/<node>/<id>`). */
export interface PublishedReplica {
  readonly id: string;
  readonly deployment: string;
  readonly state: ReplicaState;
  readonly load: ReplicaLoad;
  readonly revision: number;
  readonly restarts: number;
  readonly since: string;
}

const STATES: ReadonlySet<string> = new Set(['pending', 'loading', 'serving', 'draining', 'failed']);

/** A published entry, validated (another node wrote it); undefined when malformed. */
export function publishedOf(v: unknown): PublishedReplica | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const l = o.load;
  if (typeof o.id !== 'string' || typeof o.deployment !== 'string' || typeof o.state !== 'string' || !STATES.has(o.state)) return undefined;
  const load = typeof l === 'object' && l !== null ? (l as Record<string, unknown>) : {};
  const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  return {
    id: o.id, deployment: o.deployment, state: o.state as ReplicaState,
    load: { outstanding: num(load.outstanding), queued: num(load.queued), capacity: num(load.capacity) },
    revision: num(o.revision), restarts: num(o.restarts), since: typeof o.since === 'string' ? o.since : new Date(0).toISOString(),
  };
}

/** Unregister a deleted entry after this long unless it comes back. */
export const DELETE_GRACE_MS = 1000;

/**
 * The grace for deletes seen soon after the store came back from an outage
 * (the watch still stale, or live again for less than RECOVERY_WINDOW_MS). Nodes take about
 * 1.5-2 s to re-establish their sessions and republish once etcd returns, more on
 * a loaded machine, and the entries of their old leases are deleted meanwhile: 1 s
 * let a replica drop out of the table in between. Outside recovery, a delete is
 * a replica stopped or a node gone, and the short grace keeps the table current.
 */
export const RECOVERY_GRACE_MS = 5000;
export const RECOVERY_WINDOW_MS = 10_000;

interface Held {
  readonly node: string;
  readonly info: PublishedReplica;
  readonly runner: ForwardingRunner;
  removal?: ReturnType<typeof setTimeout>;
}

export class RemoteReplicas {
  private readonly held = new Map<string, Held>();
  private readonly unsubscribe: (() => void)[] = [];
  private addresses = new Map<string, string>();
  /** Nodes marked draining in their membership entry: their replicas take nothing new (docs/cluster.md "Draining"). */
  private draining = new Set<string>();
  /** When the watch last came back from stale (ms, Date.now()). */
  private recoveredAt = Number.NEGATIVE_INFINITY;
  private stale = false;

  constructor(
    private readonly self: string,
    private readonly coordinator: ActorRef<CoordinatorMsg>,
    private readonly membership: Membership,
    private readonly watch: PrefixWatch,
    private readonly peers: PeerPool,
    /** Route to another node's replica only when this node's are a full capacity busier (serve --workers). */
    private readonly preferLocal = false,
  ) {
    this.onMembers(membership.members());
    this.unsubscribe.push(membership.onMembers((m) => { this.onMembers(m); }));
    this.unsubscribe.push(watch.subscribe((u) => { this.onUpdate(u); }));
  }

  /** Remote replicas as last published, with their node (for the cluster status view). */
  list(): { node: string; info: PublishedReplica }[] {
    return [...this.held.values()].map((h) => ({ node: h.node, info: { ...h.info, state: this.stateOf(h.node, h.info) } }));
  }

  private onMembers(members: readonly Member[]): void {
    const before = this.addresses;
    this.addresses = new Map(members.map((m) => [m.name, m.advertise]));
    for (const [name, addr] of before) if (this.addresses.get(name) !== addr) this.peers.forget(addr);
    const wasDraining = this.draining;
    this.draining = new Set(members.filter((m) => m.draining).map((m) => m.name));
    for (const h of this.held.values()) {
      if (wasDraining.has(h.node) === this.draining.has(h.node)) continue;
      this.coordinator.deliver({ type: 'setState', replicaId: h.runner.id, state: this.stateOf(h.node, h.info) });
    }
    // Entries whose node's address was unknown can register now.
    for (const e of this.watch.entries().values()) this.upsert(e);
  }

  private onUpdate(u: WatchUpdate): void {
    switch (u.type) {
      case 'snapshot': {
        const keys = new Set(u.entries.map((e) => e.key));
        for (const key of this.held.keys()) if (!keys.has(key)) this.scheduleRemoval(key);
        for (const e of u.entries) this.upsert(e);
        return;
      }
      case 'put':
        this.upsert(u.entry);
        return;
      case 'delete':
        this.scheduleRemoval(u.key);
        return;
      case 'stale':
        this.stale = true;
        return;
      case 'live':
        if (this.stale) this.recoveredAt = Date.now();
        this.stale = false;
        return;
      default: {
        const never: never = u;
        throw new Error(`unknown update ${JSON.stringify(never)}`);
      }
    }
  }

  private upsert(e: Entry): void {
    const slash = e.key.indexOf('/');
    const node = e.key.slice(0, slash);
    if (slash <= 0 || node === this.self) return;
    const info = publishedOf(e.value);
    const address = this.addresses.get(node);
    if (info === undefined || address === undefined) return;
    const have = this.held.get(e.key);
    if (have !== undefined) {
      if (have.removal !== undefined) clearTimeout(have.removal);
      have.runner.update(address, info.load);
      this.held.set(e.key, { node, info, runner: have.runner });
      if (have.info.state !== info.state) this.coordinator.deliver({ type: 'setState', replicaId: have.runner.id, state: this.stateOf(node, info) });
      return;
    }
    const runner = new ForwardingRunner(remoteReplicaId(node, info.id), info.deployment, node, info.id, address, this.peers, info.load);
    this.held.set(e.key, { node, info, runner });
    const bias = this.preferLocal ? { remoteBias: Math.max(1, info.load.capacity) } : {};
    this.coordinator.deliver({ type: 'register', replica: { id: runner.id, deployment: info.deployment, runner, state: this.stateOf(node, info), ...bias } });
  }

  /** A draining node's replicas finish what they run and take nothing new, whatever they publish. */
  private stateOf(node: string, info: PublishedReplica): ReplicaState {
    return this.draining.has(node) ? 'draining' : info.state;
  }

  private scheduleRemoval(key: string): void {
    const h = this.held.get(key);
    if (h === undefined || h.removal !== undefined) return;
    h.removal = setTimeout(() => {
      if (this.held.get(key) !== h) return;
      this.held.delete(key);
      this.coordinator.deliver({ type: 'unregister', replicaId: h.runner.id });
    }, this.recovering() ? RECOVERY_GRACE_MS : DELETE_GRACE_MS);
  }

  /** Still stale (the first events after an outage arrive before the watch says live), or live again only just. */
  private recovering(): boolean {
    return this.stale || Date.now() - this.recoveredAt < RECOVERY_WINDOW_MS;
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    for (const h of this.held.values()) {
      if (h.removal !== undefined) clearTimeout(h.removal);
      this.coordinator.deliver({ type: 'unregister', replicaId: h.runner.id });
    }
    this.held.clear();
  }
}
