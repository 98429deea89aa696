// Placement decisions, as pure functions of a node inventory and the
// reservations already made on it. A replica asks for N GPUs with M MiB free
// each, and CPU threads; it gets specific GPU ids or a reason it cannot be placed.
//
// Policy:
// - GPU memory is reserved: a GPU's free memory (as reported when the inventory
//   was taken) minus the reservations of replicas placed on it must cover M.
// - binpack picks, among GPUs that fit, those with the least memory left (fills one
//   GPU before the next); spread picks those with the fewest replicas, then the
//   most memory left. Ties go to the lower id, so decisions are deterministic.
// - CPU threads are accounted but never block: oversubscribing cores slows a
//   replica down, it does not break it. The placement carries a warning instead.
// - A replica that needs no GPU (gpus: 0, remote runtimes) always places.

import { availableParallelism, hostname, totalmem } from 'node:os';
import type { PlacementStrategy } from '@inference/core';

export interface GpuInfo {
  readonly id: number;
  readonly name: string;
  readonly totalMiB: number;
  readonly freeMiB: number;
  /** "8.9" for CUDA devices; null where unknown. */
  readonly computeCapability: string | null;
}

export interface NodeInventory {
  readonly node: string;
  readonly cpuThreads: number;
  readonly ramMiB: number;
  readonly gpus: readonly GpuInfo[];
  /** Where the GPU list came from: the addon's device inventory, or why there is none. */
  readonly source: string;
}

export interface PlacementRequest {
  readonly gpus: number;
  /** Per GPU. */
  readonly gpuMemoryMiB: number;
  readonly threads: number;
  readonly strategy: PlacementStrategy;
}

export interface Placement {
  readonly node: string;
  readonly gpus: readonly number[];
  readonly gpuMemoryMiB: number;
  readonly threads: number;
  readonly warning?: string;
}

export type PlaceResult = { readonly ok: true; readonly placement: Placement } | { readonly ok: false; readonly reason: string };

/** Free memory and replica count per GPU, after the given reservations. */
export function gpuUsage(inv: NodeInventory, reserved: Iterable<Placement>): Map<number, { freeMiB: number; replicas: number }> {
  const usage = new Map<number, { freeMiB: number; replicas: number }>();
  for (const g of inv.gpus) usage.set(g.id, { freeMiB: g.freeMiB, replicas: 0 });
  for (const p of reserved) {
    for (const id of p.gpus) {
      const u = usage.get(id);
      if (u === undefined) continue;
      u.freeMiB -= p.gpuMemoryMiB;
      u.replicas++;
    }
  }
  return usage;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function place(inv: NodeInventory, reserved: readonly Placement[], req: PlacementRequest): PlaceResult {
  const threadsUsed = reserved.reduce((n, p) => n + p.threads, 0) + req.threads;
  const warning = threadsUsed > inv.cpuThreads ? `CPU oversubscribed: ${threadsUsed} threads reserved on ${plural(inv.cpuThreads, 'core')}` : undefined;
  const done = (gpus: number[]): PlaceResult => ({
    ok: true,
    placement: {
      node: inv.node,
      gpus,
      gpuMemoryMiB: req.gpus === 0 ? 0 : req.gpuMemoryMiB,
      threads: req.threads,
      ...(warning === undefined ? {} : { warning }),
    },
  });
  if (req.gpus === 0) return done([]);
  const usage = gpuUsage(inv, reserved);
  const fits = inv.gpus.filter((g) => (usage.get(g.id)?.freeMiB ?? 0) >= req.gpuMemoryMiB);
  if (fits.length < req.gpus) {
    const need = `needs ${plural(req.gpus, 'GPU')}${req.gpuMemoryMiB > 0 ? ` with ${req.gpuMemoryMiB} MiB free` : ''}`;
    if (inv.gpus.length === 0) return { ok: false, reason: `${need}, node ${inv.node} has 0 GPUs (${inv.source})` };
    const free = inv.gpus.map((g) => `GPU ${g.id}: ${Math.max(0, usage.get(g.id)?.freeMiB ?? 0)} MiB`).join(', ');
    return { ok: false, reason: `${need}, node ${inv.node} has ${fits.length} such (free after reservations: ${free})` };
  }
  const key = (id: number): { freeMiB: number; replicas: number } => usage.get(id) ?? { freeMiB: 0, replicas: 0 };
  const ordered = [...fits].sort((a, b) => {
    const ua = key(a.id);
    const ub = key(b.id);
    const d = req.strategy === 'binpack'
      ? ua.freeMiB - ub.freeMiB
      : ua.replicas - ub.replicas || ub.freeMiB - ua.freeMiB;
    return d !== 0 ? d : a.id - b.id;
  });
  return done(ordered.slice(0, req.gpus).map((g) => g.id).sort((a, b) => a - b));
}

/** The engine host's environment for a placement: only its GPUs are visible (none for CPU replicas). */
export function placementEnv(p: Placement): Record<string, string> {
  return { CUDA_VISIBLE_DEVICES: p.gpus.join(',') };
}

/** This machine's CPU and RAM, with the given GPUs (none when the addon is absent). */
export function localInventory(gpus: readonly GpuInfo[], source: string): NodeInventory {
  return { node: hostname(), cpuThreads: availableParallelism(), ramMiB: Math.floor(totalmem() / 1048576), gpus, source };
}
