// The manager singleton: every node campaigns for the `manager` role; the
// leader owns the desired catalog (`catalog/<deployment>`) and the placement
// (`placement/<deployment>`), both written only through its fenced leadership,
// so a deposed leader's late write is refused by etcd itself. While leading it
// seeds deployments from its config file that the catalog lacks, applies admin
// writes, and re-plans placement (placementPlan.ts) on every catalog, member or
// placement change and every second.
// Invariants: when leadership ends (lease lost, etcd gone, resigned) it stops
// writing and campaigns again, unless closed (a node that drains or leaves
// resigns and campaigns no more); a draining member gets no replicas; a node absent from membership keeps its replicas
// for GONE_MS (a node re-writing its entries after an etcd outage is not
// "lost"), and a new leader removes nobody for one lease TTL after winning
// (it has not yet seen every member re-register).

import type { Leadership, Member, Membership, PrefixWatch } from '@inference/cluster';
import { type DeploymentSpec, InferenceError } from '@inference/core';
import { MANAGER_ROLE, catalogKey, nameOf, placementKey } from './clusterKeys.js';
import { type NodeCounts, countsOf, inventoryOf, planPlacement, sameCounts } from './placementPlan.js';
import { type SharedOp, SharedWrites } from './sharedState.js';

/** A node absent this long (while the leader leads) loses its replicas. */
export const GONE_MS = 1000;
const REPLAN_MS = 1000;
const COUNTER_SWEEP_MS = 10_000;
const CAMPAIGN_RETRY_MS = 500;

export type AdminOp =
  | { readonly op: 'apply'; readonly spec: DeploymentSpec }
  | { readonly op: 'remove'; readonly name: string }
  | { readonly op: 'scale'; readonly name: string; readonly replicas: number }
  | SharedOp;

export interface LeaderDeps {
  readonly membership: Membership;
  readonly catalog: PrefixWatch;
  readonly placement: PrefixWatch;
  /** The catalog's specs, validated. */
  readonly specs: () => DeploymentSpec[];
  /** Deployments from this node's config file, seeded when the catalog lacks them. */
  readonly seed: readonly DeploymentSpec[];
  readonly ttlSeconds: number;
  readonly onError: (e: unknown) => void;
  readonly onLeading?: (leading: boolean) => void;
  /** The watched shared prefixes (keys, audit, budget resets), for their conditional writes. */
  readonly shared?: (prefix: string) => PrefixWatch | undefined;
}

export class ManagerLeader {
  private readonly stop = new AbortController();
  private leadership: Leadership | undefined;
  private leadingSince = 0;
  private readonly absentSince = new Map<string, number>();
  private loop: Promise<void>;
  private planning: Promise<void> = Promise.resolve();
  private readonly sharedWrites: SharedWrites;

  constructor(private readonly deps: LeaderDeps) {
    this.sharedWrites = new SharedWrites((prefix) => deps.shared?.(prefix));
    this.loop = this.run();
  }

  leading(): boolean {
    return this.leadership !== undefined && !this.leadership.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stop.signal.aborted) {
      let l: Leadership;
      try {
        l = await this.deps.membership.campaign(MANAGER_ROLE, this.stop.signal);
      } catch (e) {
        if (this.stop.signal.aborted) return;
        this.deps.onError(e);
        await new Promise((r) => setTimeout(r, CAMPAIGN_RETRY_MS));
        continue;
      }
      await this.lead(l);
    }
  }

  private async lead(l: Leadership): Promise<void> {
    this.leadership = l;
    this.leadingSince = Date.now();
    this.absentSince.clear();
    this.deps.onLeading?.(true);
    const replan = (): void => { this.replan(); };
    const unsub = [
      this.deps.catalog.subscribe((u) => { if (u.type !== 'stale' && u.type !== 'live') replan(); }),
      this.deps.placement.subscribe((u) => { if (u.type !== 'stale' && u.type !== 'live') replan(); }),
      this.deps.membership.onMembers(replan),
    ];
    const timer = setInterval(replan, REPLAN_MS);
    // Counter entries past their window that no lease removed (a dead writer's, leaseless ones): docs/cluster.md "Counters".
    let sweeping = false;
    const sweeper = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      this.deps.membership.counters.sweep().catch(this.deps.onError).finally(() => { sweeping = false; });
    }, COUNTER_SWEEP_MS);
    try {
      await Promise.all([this.deps.catalog.ready, this.deps.placement.ready]);
      const have = new Set(this.deps.specs().map((s) => s.name));
      for (const spec of this.deps.seed) if (!have.has(spec.name)) await l.put(catalogKey(spec.name), toJson(spec));
      replan();
      await Promise.race([l.lost, new Promise((r) => { this.stop.signal.addEventListener('abort', r, { once: true }); })]);
    } catch (e) {
      this.deps.onError(e);
    } finally {
      clearInterval(timer);
      clearInterval(sweeper);
      for (const u of unsub) u();
      this.leadership = undefined;
      this.deps.onLeading?.(false);
      await this.planning;
      // Stopped (a drain or a close): hand the role over now rather than when the lease ends.
      if (this.stop.signal.aborted) await l.resign().catch(this.deps.onError);
    }
  }

  /** Applies an admin write to the catalog; resolves with the store revision it was written at. */
  async admin(op: AdminOp): Promise<number> {
    const l = this.leadership;
    if (l === undefined || l.signal.aborted) {
      throw new InferenceError('engine_unavailable', 'this node no longer leads the cluster; try again', { retryAfterMs: 1000 });
    }
    switch (op.op) {
      case 'apply':
        return l.put(catalogKey(op.spec.name), toJson(op.spec));
      case 'remove': {
        if (this.spec(op.name) === undefined) throw notFound(op.name);
        const rev = await l.delete(catalogKey(op.name));
        await l.delete(placementKey(op.name));
        return rev;
      }
      case 'scale': {
        const spec = this.spec(op.name);
        if (spec === undefined) throw notFound(op.name);
        return l.put(catalogKey(op.name), toJson({ ...spec, replicas: op.replicas }));
      }
      case 'put':
      case 'delete':
        return this.sharedWrites.write(l, op);
      default: {
        const never: never = op;
        throw new Error(`unknown admin op ${JSON.stringify(never)}`);
      }
    }
  }

  private spec(name: string): DeploymentSpec | undefined {
    return this.deps.specs().find((s) => s.name === name);
  }

  private replan(): void {
    this.planning = this.planning.then(() => this.place()).catch(this.deps.onError);
  }

  private async place(): Promise<void> {
    const l = this.leadership;
    if (l === undefined || l.signal.aborted || this.deps.catalog.stale()) return;
    const now = Date.now();
    const all = this.deps.membership.members();
    const present = new Set(all.map((m: Member) => m.name));
    // A draining node is present (not "briefly absent") but gets nothing: its replicas are placed elsewhere at once.
    const members = all.filter((m) => !m.draining);
    const current = new Map<string, NodeCounts>();
    for (const e of this.deps.placement.entries().values()) current.set(nameOf(e.key), countsOf(e.value));
    const holding = new Set<string>();
    const placedOn = new Set([...current.values()].flatMap((c) => Object.keys(c)));
    for (const node of placedOn) {
      if (present.has(node)) {
        this.absentSince.delete(node);
        continue;
      }
      const since = this.absentSince.get(node) ?? now;
      this.absentSince.set(node, since);
      const gone = now - since >= GONE_MS && now - this.leadingSince >= this.deps.ttlSeconds * 1000;
      if (!gone) holding.add(node);
    }
    const specs = this.deps.specs();
    const plan = planPlacement(specs, members.map((m) => ({ name: m.name, inventory: inventoryOf(m.inventory) })), current, holding);
    for (const [name, counts] of plan) {
      if (sameCounts(current.get(name), counts) && current.has(name)) continue;
      await l.put(placementKey(name), { nodes: { ...counts } });
    }
    const names = new Set(specs.map((s) => s.name));
    for (const name of current.keys()) if (!names.has(name)) await l.delete(placementKey(name));
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }
}

function notFound(name: string): InferenceError {
  return new InferenceError('not_found', `deployment '${name}' does not exist`, { param: 'name' });
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A spec as stored JSON (specs are plain data). */
function toJson(spec: DeploymentSpec): JsonValue {
  return JSON.parse(JSON.stringify(spec)) as JsonValue;
}
