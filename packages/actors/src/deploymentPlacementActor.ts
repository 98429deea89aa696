// DeploymentPlacementActor: owns the node inventory and the reservations made
// on it. A replica is placed (GPU ids, memory, threads reserved) or refused with a
// reason; a reservation is released when its replica stops. One node today: the
// inventory is taken once at start (an injected probe, so this package never
// loads native code); the cluster adds one inventory per node.
// Invariant: a replica id holds at most one reservation.

import { InferenceError } from '@inference/core';
import { Actor, type Reply } from './kernel.js';
import { type NodeInventory, type PlaceResult, type Placement, type PlacementRequest, place } from './placement.js';

export type PlacementMsg =
  | { type: 'place'; replicaId: string; request: PlacementRequest; reply: Reply<PlaceResult> }
  | { type: 'release'; replicaId: string }
  | { type: 'inventory'; reply: Reply<{ inventory: NodeInventory; reservations: Record<string, Placement> }> };

export class DeploymentPlacementActor extends Actor<PlacementMsg> {
  private inventory: NodeInventory | undefined;
  private readonly reservations = new Map<string, Placement>();

  constructor(private readonly probe: () => Promise<NodeInventory>) {
    super();
  }

  override async preStart(): Promise<void> {
    this.inventory = await this.probe();
  }

  receive(m: PlacementMsg): void {
    const inv = this.inventory;
    switch (m.type) {
      case 'place': {
        if (inv === undefined) {
          m.reply.reject(new InferenceError('internal', 'placement has no node inventory'));
          return;
        }
        const existing = this.reservations.get(m.replicaId);
        if (existing !== undefined) {
          m.reply.resolve({ ok: true, placement: existing });
          return;
        }
        const result = place(inv, [...this.reservations.values()], m.request);
        if (result.ok) this.reservations.set(m.replicaId, result.placement);
        m.reply.resolve(result);
        return;
      }
      case 'release':
        this.reservations.delete(m.replicaId);
        return;
      case 'inventory':
        if (inv === undefined) m.reply.reject(new InferenceError('internal', 'placement has no node inventory'));
        else m.reply.resolve({ inventory: inv, reservations: Object.fromEntries(this.reservations) });
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }
}
