// DpCoordinatorActor: the routing table. Replicas register and change state
// through its mailbox; requests ask it for a replica of a deployment. The table is
// the only writer of replica state seen by routing. Deployments are declared
// apart from their replicas, so one with no replica serving (pending placement,
// scaled to 0) answers engine_unavailable rather than not_found.
//
// Each deployment routes under its policy (prefixRouting.ts): a deployment declared
// without one, or not declared (replicas registered alone), routes least-load. The
// prefix index forgets a replica as soon as it stops serving.

import { type GenerateRequest, InferenceError, type RoutingPolicy, type RoutingSpec } from '@inference/core';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import { type DeploymentRouting, type PrefixIndexOptions, type RouteOutcome, prefixKey, route, routingState } from './prefixRouting.js';
import { type ReplicaEntry, type ReplicaState, unassign } from './routing.js';

export type CoordinatorMsg =
  | { type: 'register'; replica: ReplicaEntry }
  /** `routing` absent: least-load. */
  | { type: 'deployment'; name: string; present: boolean; routing?: RoutingSpec }
  | { type: 'unregister'; replicaId: string }
  | { type: 'setState'; replicaId: string; state: ReplicaState }
  /** `request`: the generate request being routed, for prefix affinity (absent: no key). */
  /**
   * Counts the answer in the entry's `assigned`; the asker hands it back with
   * `unassign(entry)` (routing.ts) when its work there ends.
   */
  | { type: 'pick'; deployment: string; exclude?: ReadonlySet<string>; request?: GenerateRequest; reply: Reply<ReplicaEntry> }
  | { type: 'table'; reply: Reply<ReplicaEntry[]> };

/** One routing decision, for the metrics (labels: deployment, policy, outcome). */
export interface RoutingDecision {
  readonly deployment: string;
  readonly policy: RoutingPolicy;
  readonly outcome: RouteOutcome;
}

export interface CoordinatorOptions {
  /** Called once per successful pick. */
  readonly onDecision?: (d: RoutingDecision) => void;
  readonly prefixIndex?: PrefixIndexOptions;
  /** Epoch-ms clock for the prefix index's expiry (tests). */
  readonly now?: () => number;
}

const LEAST_LOAD: RoutingSpec = { policy: 'least_load', prefixLoadSlack: 0, prefixFreeSlot: false };

export class DpCoordinatorActor extends Actor<CoordinatorMsg> {
  private readonly byDeployment = new Map<string, ReplicaEntry[]>();
  private readonly byId = new Map<string, ReplicaEntry>();
  private readonly declared = new Set<string>();
  private readonly routing = new Map<string, DeploymentRouting>();

  constructor(private readonly random: () => number = Math.random, private readonly options: CoordinatorOptions = {}) {
    super();
  }

  private routingOf(deployment: string): DeploymentRouting {
    let st = this.routing.get(deployment);
    if (st === undefined) {
      st = routingState(LEAST_LOAD);
      this.routing.set(deployment, st);
    }
    return st;
  }

  private forgetCache(replicaId: string, deployment: string): void {
    this.routing.get(deployment)?.index?.forget(replicaId);
  }

  /**
   * Picks a replica of `deployment` and counts it in the entry's `assigned`; the
   * caller hands it back with `unassign(entry)` (routing.ts) when its work there
   * ends. Throws not_found or engine_unavailable. Synchronous: the 'pick' message
   * and a Router (below) both come here.
   */
  pick(deployment: string, exclude: ReadonlySet<string> | undefined, request: GenerateRequest | undefined): ReplicaEntry {
    const list = this.byDeployment.get(deployment);
    if (!this.declared.has(deployment) && (list === undefined || list.every((r) => r.state === 'draining'))) {
      throw new InferenceError('not_found', `The model '${deployment}' does not exist`, { param: 'model' });
    }
    const st = this.routingOf(deployment);
    const key = request === undefined ? undefined : () => prefixKey(request);
    const choice = list === undefined ? undefined : route(st, list, key, (this.options.now ?? Date.now)(), this.random, exclude);
    if (choice === undefined) throw new InferenceError('engine_unavailable', `no replica of '${deployment}' is available`, { retryAfterMs: 1000 });
    const r = choice.replica;
    r.assigned = (r.assigned ?? 0) + 1;
    this.options.onDecision?.({ deployment, policy: st.spec.policy, outcome: choice.outcome });
    return r;
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
        if (m.present) {
          this.declared.add(m.name);
          this.routing.set(m.name, routingState(m.routing ?? LEAST_LOAD, this.routing.get(m.name), this.options.prefixIndex));
        } else {
          this.declared.delete(m.name);
          this.routing.delete(m.name);
        }
        return;
      case 'unregister': {
        const r = this.byId.get(m.replicaId);
        if (r === undefined) return;
        this.byId.delete(m.replicaId);
        this.forgetCache(r.id, r.deployment);
        const list = (this.byDeployment.get(r.deployment) ?? []).filter((x) => x.id !== m.replicaId);
        if (list.length === 0) this.byDeployment.delete(r.deployment);
        else this.byDeployment.set(r.deployment, list);
        return;
      }
      case 'setState': {
        const r = this.byId.get(m.replicaId);
        if (r === undefined) return;
        r.state = m.state;
        if (m.state !== 'serving') this.forgetCache(r.id, r.deployment);
        return;
      }
      case 'pick': {
        let r: ReplicaEntry;
        try {
          r = this.pick(m.deployment, m.exclude, m.request);
        } catch (e) {
          m.reply.reject(e);
          return;
        }
        // The asker timed out: nobody would ever hand this pick back.
        if (!m.reply.resolve(r)) unassign(r);
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

/** Picks a replica for the request path (DpCoordinatorActor.pick); the pick is counted and handed back by `unassign`. */
export interface Router {
  pick(deployment: string, exclude: ReadonlySet<string> | undefined, request: GenerateRequest | undefined): ReplicaEntry;
}

/**
 * The routing table read in place, without a mailbox hop and a promise per pick.
 * Sound because the table is local (a cluster node holds its own copy) and every
 * handler of the coordinator is synchronous: its mailbox is empty between turns
 * of the event loop, so a direct pick sees exactly what an ask would. Nothing
 * can time out, so a pick is always taken by its caller, who hands it back once.
 */
export function localRouter(ref: ActorRef<CoordinatorMsg>, table: DpCoordinatorActor): Router {
  return {
    pick: (deployment, exclude, request) => {
      if (!ref.alive) throw new InferenceError('engine_unavailable', 'service is shutting down', { diagnostic: `${ref.path} is stopped` });
      return table.pick(deployment, exclude, request);
    },
  };
}
