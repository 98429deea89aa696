// DeploymentPlacementActor: owns the node inventory and the reservations made
// on it. A replica is placed (GPU ids, memory, threads reserved) or refused with a
// reason; a reservation is released when its replica stops. One node today; the
// cluster adds one inventory per node.
// The CPU part of the inventory is known at once; the GPU list comes from an
// injected probe (the native addon in a short-lived child process, so neither
// this package nor the gateway loads native code), run once, on the first
// request that needs a GPU: remote-only and CPU-only setups never pay for it.
// Invariants: a replica id holds at most one reservation; GPU requests that
// arrive while the probe runs wait (bounded) and are answered in order.

import { InferenceError } from '@inference/core';
import { Actor, type Reply } from './kernel.js';
import { type GpuInfo, type NodeInventory, type PlaceResult, type Placement, type PlacementRequest, place } from './placement.js';

export interface GpuProbe {
  readonly gpus: readonly GpuInfo[];
  /** Where the list came from, or why it is empty (shown in refusals). */
  readonly source: string;
}

export type PlacementMsg =
  | { type: 'place'; replicaId: string; request: PlacementRequest; reply: Reply<PlaceResult> }
  | { type: 'release'; replicaId: string }
  | { type: 'inventory'; reply: Reply<{ inventory: NodeInventory; reservations: Record<string, Placement> }> }
  | { type: 'gpus'; probe: GpuProbe };

type PlaceMsg = Extract<PlacementMsg, { type: 'place' }>;

const MAX_WAITING = 1024;

export class DeploymentPlacementActor extends Actor<PlacementMsg> {
  private inventory: NodeInventory;
  private gpuState: 'unknown' | 'probing' | 'known';
  private readonly waiting: PlaceMsg[] = [];
  private readonly reservations = new Map<string, Placement>();

  /** `probeGpus` absent: the inventory's GPU list is final. */
  constructor(inventory: NodeInventory, private readonly probeGpus?: () => Promise<GpuProbe>) {
    super();
    this.inventory = inventory;
    this.gpuState = probeGpus === undefined ? 'known' : 'unknown';
  }

  receive(m: PlacementMsg): void {
    switch (m.type) {
      case 'place':
        if (m.request.gpus === 0 || this.gpuState === 'known') {
          this.answer(m);
          return;
        }
        if (this.waiting.length >= MAX_WAITING) {
          m.reply.reject(new InferenceError('overloaded', 'too many placements waiting for the GPU inventory', { retryAfterMs: 1000 }));
          return;
        }
        this.waiting.push(m);
        this.startProbe();
        return;
      case 'gpus':
        this.inventory = { ...this.inventory, gpus: m.probe.gpus, source: m.probe.source };
        this.gpuState = 'known';
        for (const w of this.waiting.splice(0)) this.answer(w);
        return;
      case 'release':
        this.reservations.delete(m.replicaId);
        return;
      case 'inventory':
        m.reply.resolve({ inventory: this.inventory, reservations: Object.fromEntries(this.reservations) });
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private answer(m: PlaceMsg): void {
    const existing = this.reservations.get(m.replicaId);
    if (existing !== undefined) {
      m.reply.resolve({ ok: true, placement: existing });
      return;
    }
    const result = place(this.inventory, [...this.reservations.values()], m.request);
    if (result.ok) this.reservations.set(m.replicaId, result.placement);
    // An asker that gave up (timed out) will never release what this answer reserved.
    if (!m.reply.resolve(result) && result.ok) this.reservations.delete(m.replicaId);
  }

  private startProbe(): void {
    const probe = this.probeGpus;
    if (this.gpuState !== 'unknown' || probe === undefined) return;
    this.gpuState = 'probing';
    const self = this.context.self;
    probe().then(
      (p) => self.tell({ type: 'gpus', probe: p }),
      (e: unknown) => self.tell({ type: 'gpus', probe: { gpus: [], source: `GPU inventory failed: ${e instanceof Error ? e.message : String(e)}` } }),
    );
  }
}
