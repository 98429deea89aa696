// DpCoordinatorActor: the routing table. Replicas register and change state
// through its mailbox; requests ask it for a replica of a deployment. The table is
// the only writer of replica state seen by routing. Deployments are declared
// apart from their replicas, so one with no replica serving (pending placement,
// scaled to 0) answers engine_unavailable rather than not_found.

import { InferenceError } from '@inference/core';
import { Actor, type Reply } from './kernel.js';
import { type ReplicaEntry, type ReplicaState, pickReplica } from './routing.js';

export type CoordinatorMsg =
  | { type: 'register'; replica: ReplicaEntry }
  | { type: 'deployment'; name: string; present: boolean }
  | { type: 'unregister'; replicaId: string }
  | { type: 'setState'; replicaId: string; state: ReplicaState }
  | { type: 'pick'; deployment: string; exclude?: ReadonlySet<string>; reply: Reply<ReplicaEntry> }
  | { type: 'release'; replicaId: string }
  | { type: 'table'; reply: Reply<ReplicaEntry[]> };

export class DpCoordinatorActor extends Actor<CoordinatorMsg> {
  private readonly byDeployment = new Map<string, ReplicaEntry[]>();
  private readonly byId = new Map<string, ReplicaEntry>();
  private readonly declared = new Set<string>();

  constructor(private readonly random: () => number = Math.random) {
    super();
  }

  receive(m: CoordinatorMsg): void {
    switch (m.type) {
      case 'register': {
        this.byId.set(m.replica.id, m.replica);
        const list = this.byDeployment.get(m.replica.deployment) ?? [];
        list.push(m.replica);
        this.byDeployment.set(m.replica.deployment, list);
        return;
      }
      case 'deployment':
        if (m.present) this.declared.add(m.name);
        else this.declared.delete(m.name);
        return;
      case 'unregister': {
        const r = this.byId.get(m.replicaId);
        if (r === undefined) return;
        this.byId.delete(m.replicaId);
        const list = (this.byDeployment.get(r.deployment) ?? []).filter((x) => x.id !== m.replicaId);
        if (list.length === 0) this.byDeployment.delete(r.deployment);
        else this.byDeployment.set(r.deployment, list);
        return;
      }
      case 'setState': {
        const r = this.byId.get(m.replicaId);
        if (r !== undefined) r.state = m.state;
        return;
      }
      case 'pick': {
        const list = this.byDeployment.get(m.deployment);
        if (!this.declared.has(m.deployment) && (list === undefined || list.every((r) => r.state === 'draining'))) {
          m.reply.reject(new InferenceError('not_found', `The model '${m.deployment}' does not exist`, { param: 'model' }));
          return;
        }
        const r = list === undefined ? undefined : pickReplica(list, this.random, m.exclude);
        if (r === undefined) {
          m.reply.reject(new InferenceError('engine_unavailable', `no replica of '${m.deployment}' is available`, { retryAfterMs: 1000 }));
          return;
        }
        r.assigned = (r.assigned ?? 0) + 1;
        m.reply.resolve(r);
        return;
      }
      case 'release': {
        const r = this.byId.get(m.replicaId);
        if (r !== undefined && (r.assigned ?? 0) > 0) r.assigned = (r.assigned ?? 0) - 1;
        return;
      }
      case 'table':
        m.reply.resolve([...this.byId.values()]);
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }
}
