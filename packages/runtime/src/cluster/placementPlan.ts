// Cluster placement as a pure function: given the catalog (each deployment's
// spec and replica count), the live members with their inventories and the
// current placement, how many replicas each node runs of each deployment.
// Invariants (placementPlan.test.ts):
// - a deployment's counts sum to its replica count when enough nodes can run it
//   (remote runtimes run anywhere; llama needs the GPUs it asks for on one node);
// - replicas already placed on a live node stay there (no churn on re-plan);
//   only nodes that left lose theirs, and only surplus is trimmed;
// - a node in `holding` (briefly absent, maybe re-joining) keeps what it has
//   but gets nothing new;
// - new replicas go to the eligible node running the fewest replicas overall,
//   then of this deployment, then by name, so replicas spread across nodes.

import type { DeploymentSpec } from '@inference/core';

/** What a node announces in its membership entry. */
export interface NodeInventory {
  readonly gpus: number;
  readonly cpuThreads: number;
  readonly ramMiB: number;
}

export interface PlacementMember {
  readonly name: string;
  readonly inventory: NodeInventory;
}

/** node name -> replica count (nodes with 0 are left out). */
export type NodeCounts = Readonly<Record<string, number>>;

export type ClusterPlacement = ReadonlyMap<string, NodeCounts>;

function gpusNeeded(spec: DeploymentSpec): number {
  return spec.runtime === 'llama' ? spec.engine.gpus : 0;
}

/** Nodes whose inventory can hold one replica of `spec` at all. */
function eligible(spec: DeploymentSpec, m: PlacementMember, gpusUsed: number): boolean {
  const need = gpusNeeded(spec);
  return need === 0 || m.inventory.gpus - gpusUsed >= need;
}

export function planPlacement(catalog: readonly DeploymentSpec[], members: readonly PlacementMember[], current: ClusterPlacement, holding: ReadonlySet<string> = new Set()): Map<string, NodeCounts> {
  const live = new Map(members.map((m) => [m.name, m]));
  const held: PlacementMember = { name: '', inventory: { gpus: Number.MAX_SAFE_INTEGER, cpuThreads: 0, ramMiB: 0 } };
  const total = new Map<string, number>(members.map((m) => [m.name, 0]));
  const gpus = new Map<string, number>(members.map((m) => [m.name, 0]));
  const counts = new Map<string, Map<string, number>>();
  const specs = [...catalog].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Keep what is placed on live nodes, up to the replica count.
  for (const spec of specs) {
    const mine = new Map<string, number>();
    let left = spec.replicas;
    const prev = Object.entries(current.get(spec.name) ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [node, n] of prev) {
      const m = live.get(node) ?? (holding.has(node) ? held : undefined);
      if (m === undefined || left <= 0) continue;
      let keep = 0;
      while (keep < Math.min(n, left) && eligible(spec, m, gpus.get(node) ?? 0)) {
        keep++;
        gpus.set(node, (gpus.get(node) ?? 0) + gpusNeeded(spec));
      }
      if (keep === 0) continue;
      mine.set(node, keep);
      total.set(node, (total.get(node) ?? 0) + keep);
      left -= keep;
    }
    counts.set(spec.name, mine);
  }
  // Place the rest on the least loaded eligible node.
  for (const spec of specs) {
    const mine = counts.get(spec.name) ?? new Map<string, number>();
    let placed = [...mine.values()].reduce((a, b) => a + b, 0);
    while (placed < spec.replicas) {
      let best: PlacementMember | undefined;
      for (const m of members) {
        if (!eligible(spec, m, gpus.get(m.name) ?? 0)) continue;
        if (best === undefined || better(m.name, best.name, total, mine)) best = m;
      }
      if (best === undefined) break;
      mine.set(best.name, (mine.get(best.name) ?? 0) + 1);
      total.set(best.name, (total.get(best.name) ?? 0) + 1);
      gpus.set(best.name, (gpus.get(best.name) ?? 0) + gpusNeeded(spec));
      placed++;
    }
    counts.set(spec.name, mine);
  }
  const out = new Map<string, NodeCounts>();
  for (const [name, mine] of counts) out.set(name, Object.fromEntries([...mine].filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  return out;
}

function better(a: string, b: string, total: ReadonlyMap<string, number>, mine: ReadonlyMap<string, number>): boolean {
  const ta = total.get(a) ?? 0;
  const tb = total.get(b) ?? 0;
  if (ta !== tb) return ta < tb;
  const ma = mine.get(a) ?? 0;
  const mb = mine.get(b) ?? 0;
  if (ma !== mb) return ma < mb;
  return a < b;
}

export function sameCounts(a: NodeCounts | undefined, b: NodeCounts | undefined): boolean {
  const ea = Object.entries(a ?? {}).filter(([, n]) => n > 0);
  const eb = Object.entries(b ?? {}).filter(([, n]) => n > 0);
  return ea.length === eb.length && ea.every(([k, n]) => (b ?? {})[k] === n);
}

/** Reads a node's inventory from its membership entry; missing fields count as 0. */
export function inventoryOf(v: unknown): NodeInventory {
  const o = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const num = (k: string): number => {
    const x = o[k];
    return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : 0;
  };
  return { gpus: num('gpus'), cpuThreads: num('cpuThreads'), ramMiB: num('ramMiB') };
}

/** Reads a stored placement value (`{nodes: {name: count}}`); anything malformed is empty. */
export function countsOf(v: unknown): NodeCounts {
  const o = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>).nodes : undefined;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return {};
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(o as Record<string, unknown>)) if (typeof n === 'number' && Number.isInteger(n) && n > 0) out[k] = n;
  return out;
}
