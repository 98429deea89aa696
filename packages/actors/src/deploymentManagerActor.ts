// DeploymentManagerActor: the catalog (desired state: each deployment's spec,
// its replica count and a spec revision) and its replicas (actual state). It
// reconciles the two with the pure plan of reconcile.ts on every apply, scale and
// replica event. A replica goes pending (asks placement for GPUs/threads) ->
// loading (created by the factory, registered with the coordinator) -> serving,
// and ends draining (no new requests; stopped once its in-flight work finished or
// the drain timeout passed) or failed (with the reason).
// Invariants: state changes happen only in `receive` (async work reports back by
// message); a replica is routable only while serving; nothing in flight is dropped
// by a scale-down, a roll or a removal. Table changes, state reports and
// placement releases travel by `deliver` (kernel.ts): a burst of requests filling
// a mailbox cannot make the table or the reservations drift.

import { type DeploymentSpec, InferenceError, type ModelDetails, type ModelRunner, type ReplicaLoad } from '@inference/core';
import type { PlacementMsg } from './deploymentPlacementActor.js';
import type { CoordinatorMsg } from './dpCoordinatorActor.js';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import type { MetricsMsg } from './metricsActor.js';
import { type PlaceResult, type Placement, type PlacementRequest, place } from './placement.js';
import { type DeploymentState, type ReplicaView, blockingFailure, deploymentState, plan } from './reconcile.js';
import type { ReplicaEntry, ReplicaState } from './routing.js';
import { SpecTable } from './specTable.js';

export interface ReplicaEvents {
  /** The replica's context restarted (e.g. engine host respawned). */
  restarted(reason: string): void;
  /** The replica cannot serve any more (restart budget spent, unrecoverable). */
  failed(reason: string): void;
}

export interface CreatedReplica {
  readonly runner: ModelRunner;
  /** Resolves when the replica can serve (model loaded); rejects if it cannot. */
  readonly ready: Promise<void>;
}

/** Creates a replica on the resources placement gave it (GPU ids for the engine host). */
export type ReplicaFactory = (spec: DeploymentSpec, replicaId: string, events: ReplicaEvents, placement: Placement) => CreatedReplica;

export interface ReplicaStatus {
  id: string;
  state: ReplicaState;
  reason?: string;
  restarts: number;
  load: ReplicaLoad;
  details?: ModelDetails;
  /** Spec revision the replica runs (the deployment's `revision` when up to date). */
  revision: number;
  placement?: Placement;
  /** When the replica entered its state (ISO 8601). */
  since: string;
}

export interface DeploymentStatus {
  spec: DeploymentSpec;
  replicas: ReplicaStatus[];
  /** Derived from the replicas (reconcile.ts, deploymentState). */
  state: DeploymentState;
  reason?: string;
  desired: number;
  /** Replicas serving now, of any revision. */
  serving: number;
  /** Bumped by every apply that changes the spec other than `replicas`. */
  revision: number;
}

export type ManagerMsg =
  | { type: 'apply'; spec: DeploymentSpec; reply: Reply<DeploymentStatus> }
  | { type: 'scale'; name: string; replicas: number; reply: Reply<DeploymentStatus> }
  | { type: 'remove'; name: string; reply: Reply<void> }
  | { type: 'get'; name: string; reply: Reply<DeploymentStatus> }
  | { type: 'list'; reply: Reply<DeploymentStatus[]> }
  | { type: 'replicaState'; id: string; state: ReplicaState; reason?: string; restarted?: boolean }
  | { type: 'placed'; id: string; result: PlaceResult }
  | { type: 'drained'; id: string }
  | { type: 'retryPending' };

interface Replica {
  readonly id: string;
  readonly deployment: string;
  readonly spec: DeploymentSpec;
  readonly revision: number;
  readonly seq: number;
  state: ReplicaState;
  since: number;
  reason?: string;
  restarts: number;
  servedOnce: boolean;
  /** A placement request is in flight. */
  placing: boolean;
  placement?: Placement;
  /** Set once the factory created it (loading onwards). */
  entry?: ReplicaEntry;
}

interface Deployment {
  spec: DeploymentSpec;
  revision: number;
  replicas: Replica[];
}

const DRAIN_POLL_MS = 25;
const PENDING_RETRY_MS = 5000;
export const MAX_REPLICAS = 1024;

function notFound(name: string): InferenceError {
  return new InferenceError('not_found', `deployment '${name}' does not exist`, { param: 'name' });
}

function placementRequest(spec: DeploymentSpec): PlacementRequest {
  if (spec.runtime !== 'llama') return { gpus: 0, gpuMemoryMiB: 0, threads: 0, strategy: 'binpack' };
  return { gpus: spec.engine.gpus, gpuMemoryMiB: spec.engine.gpuMemoryMiB, threads: spec.engine.threads, strategy: spec.engine.placement };
}

/** Placement without a placement actor: everything fits (unit tests of routing). */
const unplaced = { node: 'local', cpuThreads: Number.MAX_SAFE_INTEGER, ramMiB: 0, gpus: [], source: 'no placement actor' };

export class DeploymentManagerActor extends Actor<ManagerMsg> {
  private readonly deployments = new Map<string, Deployment>();
  /** Replicas draining after their deployment was removed. */
  private readonly orphans = new Map<string, Replica>();
  private readonly draining = new Set<Promise<void>>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;

  constructor(
    private readonly coordinator: ActorRef<CoordinatorMsg>,
    private readonly metrics: ActorRef<MetricsMsg>,
    private readonly factory: ReplicaFactory,
    private readonly drainTimeoutMs = 10 * 60_000,
    private readonly placement?: ActorRef<PlacementMsg>,
    /** Where the desired specs are published for synchronous readers (specTable.ts). */
    private readonly specs: SpecTable = new SpecTable(),
  ) {
    super();
  }

  receive(m: ManagerMsg): void {
    switch (m.type) {
      case 'apply':
        this.apply(m.spec);
        m.reply.resolve(this.status(m.spec.name));
        return;
      case 'scale': {
        const d = this.deployments.get(m.name);
        if (d === undefined) {
          m.reply.reject(notFound(m.name));
          return;
        }
        if (!Number.isInteger(m.replicas) || m.replicas < 0 || m.replicas > MAX_REPLICAS) {
          m.reply.reject(new InferenceError('invalid_request', `replicas: expected an integer 0..${MAX_REPLICAS}`, { param: 'replicas' }));
          return;
        }
        d.spec = { ...d.spec, replicas: m.replicas };
        this.specs.set(d.spec);
        this.forgetFailed(d);
        this.reconcile(m.name);
        m.reply.resolve(this.status(m.name));
        return;
      }
      case 'remove': {
        const d = this.deployments.get(m.name);
        if (d === undefined) {
          m.reply.reject(notFound(m.name));
          return;
        }
        this.deployments.delete(m.name);
        this.specs.delete(m.name);
        this.coordinator.deliver({ type: 'deployment', name: m.name, present: false });
        for (const r of d.replicas) {
          if (r.state === 'failed') {
            this.forget(r); // already stopped
            continue;
          }
          this.orphans.set(r.id, r);
          if (r.state !== 'draining') this.drain(r);
        }
        m.reply.resolve();
        return;
      }
      case 'get':
        if (!this.deployments.has(m.name)) m.reply.reject(notFound(m.name));
        else m.reply.resolve(this.status(m.name));
        return;
      case 'list':
        m.reply.resolve([...this.deployments.keys()].map((n) => this.status(n)));
        return;
      case 'replicaState':
        this.onReplicaState(m.id, m.state, m.reason, m.restarted === true);
        return;
      case 'placed':
        this.onPlaced(m.id, m.result);
        return;
      case 'drained':
        this.onDrained(m.id);
        return;
      case 'retryPending':
        this.retryTimer = undefined;
        for (const d of this.deployments.values()) for (const r of d.replicas) if (r.state === 'pending') this.requestPlacement(r);
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private status(name: string): DeploymentStatus {
    const d = this.deployments.get(name);
    if (d === undefined) throw notFound(name);
    const desired = { replicas: d.spec.replicas, revision: d.revision };
    const views = d.replicas.map(view);
    const state = deploymentState(desired, views);
    const out: DeploymentStatus = {
      spec: d.spec,
      state,
      desired: d.spec.replicas,
      serving: d.replicas.filter((r) => r.state === 'serving').length,
      revision: d.revision,
      replicas: d.replicas.map((r) => {
        const s: ReplicaStatus = {
          id: r.id, state: r.state, restarts: r.restarts, revision: r.revision, since: new Date(r.since).toISOString(),
          load: r.entry?.runner.load() ?? { outstanding: 0, queued: 0, capacity: 0 },
        };
        if (r.reason !== undefined) s.reason = r.reason;
        if (r.placement !== undefined) s.placement = r.placement;
        const details = r.entry?.runner.details?.();
        if (details !== undefined) s.details = details;
        return s;
      }),
    };
    const blocker = blockingFailure(desired, views);
    const waiting = d.replicas.find((r) => r.state === 'pending' && r.reason !== undefined);
    if (state === 'failed' && blocker !== undefined) {
      const why = d.replicas.find((r) => r.id === blocker.id)?.reason ?? 'unknown';
      out.reason = `replica ${blocker.id} failed to load (${why}); reconciling stopped until the next apply or scale`;
    } else if (state === 'pending' && waiting !== undefined) {
      out.reason = `replica ${waiting.id} cannot be placed: ${waiting.reason ?? ''}`;
    }
    return out;
  }

  private apply(spec: DeploymentSpec): void {
    const prev = this.deployments.get(spec.name);
    this.specs.set(spec);
    if (prev === undefined) {
      this.deployments.set(spec.name, { spec, revision: 1, replicas: [] });
      this.coordinator.deliver({ type: 'deployment', name: spec.name, present: true, routing: spec.routing });
    } else {
      if (!sameExceptReplicas(prev.spec, spec)) prev.revision++;
      this.coordinator.deliver({ type: 'deployment', name: spec.name, present: true, routing: spec.routing });
      prev.spec = spec;
      // Applying again retries what failed.
      this.forgetFailed(prev);
    }
    this.reconcile(spec.name);
  }

  private forgetFailed(d: Deployment): void {
    for (const r of d.replicas) if (r.state === 'failed') this.forget(r);
    d.replicas = d.replicas.filter((r) => r.state !== 'failed');
  }

  private reconcile(name: string): void {
    const d = this.deployments.get(name);
    if (d === undefined) return;
    for (const a of plan({ replicas: d.spec.replicas, revision: d.revision }, d.replicas.map(view))) {
      switch (a.type) {
        case 'start':
          this.startReplica(d);
          break;
        case 'drain': {
          const r = d.replicas.find((x) => x.id === a.id);
          if (r !== undefined) this.drain(r);
          break;
        }
        case 'discard': {
          const r = d.replicas.find((x) => x.id === a.id);
          if (r !== undefined) this.forget(r);
          d.replicas = d.replicas.filter((x) => x.id !== a.id);
          break;
        }
        default: {
          const never: never = a;
          throw new Error(`unknown action ${JSON.stringify(never)}`);
        }
      }
    }
  }

  private startReplica(d: Deployment): void {
    const id = `${d.spec.name}#${++this.seq}`;
    const r: Replica = {
      id,
      deployment: d.spec.name,
      spec: d.spec,
      revision: d.revision,
      seq: this.seq,
      state: 'pending',
      since: Date.now(),
      restarts: 0,
      servedOnce: false,
      placing: false,
    };
    d.replicas.push(r);
    this.metrics.deliver({ type: 'replicaState', deployment: r.deployment, replica: id, state: 'pending', on: true });
    this.requestPlacement(r);
  }

  private requestPlacement(r: Replica): void {
    if (r.placing || r.state !== 'pending') return;
    const request = placementRequest(r.spec);
    const self = this.context.self;
    if (this.placement === undefined) {
      this.onPlaced(r.id, place(unplaced, [], request));
      return;
    }
    r.placing = true;
    this.placement
      .ask<PlaceResult>((reply) => ({ type: 'place', replicaId: r.id, request, reply }))
      .then(
        (result) => self.deliver({ type: 'placed', id: r.id, result }),
        (e: unknown) =>
          self.deliver({ type: 'placed', id: r.id, result: { ok: false, reason: `placement failed: ${e instanceof Error ? e.message : String(e)}` } }),
      );
  }

  private onPlaced(id: string, result: PlaceResult): void {
    const r = this.find(id);
    if (r === undefined || r.state !== 'pending') {
      if (result.ok) this.placement?.deliver({ type: 'release', replicaId: id });
      return;
    }
    r.placing = false;
    if (!result.ok) {
      r.reason = result.reason;
      this.retryTimer ??= setTimeout(() => this.context.self.tell({ type: 'retryPending' }), PENDING_RETRY_MS);
      return;
    }
    r.placement = result.placement;
    delete r.reason;
    const self = this.context.self;
    let created: CreatedReplica;
    try {
      created = this.factory(r.spec, id, {
        restarted: (reason) => self.deliver({ type: 'replicaState', id, state: 'serving', reason, restarted: true }),
        failed: (reason) => self.deliver({ type: 'replicaState', id, state: 'failed', reason }),
      }, result.placement);
    } catch (e) {
      this.setState(r, 'failed', e instanceof Error ? e.message : String(e));
      this.reconcile(r.deployment);
      return;
    }
    r.entry = { id, deployment: r.deployment, runner: created.runner, state: 'loading' };
    this.coordinator.deliver({ type: 'register', replica: r.entry });
    this.setState(r, 'loading');
    created.ready.then(
      () => self.deliver({ type: 'replicaState', id, state: 'serving' }),
      (e: unknown) => self.deliver({ type: 'replicaState', id, state: 'failed', reason: e instanceof Error ? e.message : String(e) }),
    );
  }

  private find(id: string): Replica | undefined {
    for (const d of this.deployments.values()) {
      const r = d.replicas.find((x) => x.id === id);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private setState(r: Replica, state: ReplicaState, reason?: string): void {
    if (reason !== undefined) r.reason = reason;
    if (r.state === state) return;
    this.metrics.deliver({ type: 'replicaState', deployment: r.deployment, replica: r.id, state: r.state, on: false });
    this.metrics.deliver({ type: 'replicaState', deployment: r.deployment, replica: r.id, state, on: true });
    r.state = state;
    r.since = Date.now();
    if (state === 'serving') r.servedOnce = true;
    if (r.entry !== undefined) this.coordinator.deliver({ type: 'setState', replicaId: r.id, state });
  }

  private onReplicaState(id: string, state: ReplicaState, reason: string | undefined, restarted: boolean): void {
    const r = this.find(id);
    if (r === undefined || r.state === 'draining' || r.state === 'failed') return;
    if (restarted) {
      r.restarts++;
      this.metrics.tell({ type: 'restart', deployment: r.deployment, replica: id });
    }
    this.setState(r, state, reason);
    if (state === 'failed') this.release(r);
    this.reconcile(r.deployment);
  }

  /**
   * Stops a failed replica and frees its resources. Its record (and its routing
   * entry, marked failed so it is never picked) stays until forgotten, so status
   * and metrics show the failure.
   */
  private release(r: Replica): void {
    this.placement?.deliver({ type: 'release', replicaId: r.id });
    if (r.entry !== undefined) this.track(r.entry.runner.stop());
  }

  /** Drops a failed replica's routing entry and state gauge. */
  private forget(r: Replica): void {
    if (r.entry !== undefined) this.coordinator.deliver({ type: 'unregister', replicaId: r.id });
    this.metrics.deliver({ type: 'replicaState', deployment: r.deployment, replica: r.id, state: r.state, on: false });
  }

  private drain(r: Replica): void {
    this.setState(r, 'draining');
    const entry = r.entry;
    const self = this.context.self;
    const deadline = Date.now() + this.drainTimeoutMs;
    this.track((async () => {
      if (entry !== undefined) {
        // `assigned` covers requests routed here that have not reached the runner yet.
        while ((entry.assigned ?? 0) + entry.runner.load().outstanding > 0 && Date.now() < deadline) {
          await new Promise((res) => setTimeout(res, DRAIN_POLL_MS));
        }
        this.coordinator.deliver({ type: 'unregister', replicaId: entry.id });
        await entry.runner.stop();
      }
      self.deliver({ type: 'drained', id: r.id });
    })());
  }

  private track(p: Promise<void>): void {
    const done = p.catch(() => undefined);
    this.draining.add(done);
    void done.finally(() => this.draining.delete(done));
  }

  private onDrained(id: string): void {
    this.placement?.deliver({ type: 'release', replicaId: id });
    const r = this.find(id) ?? this.orphans.get(id);
    if (r !== undefined) this.metrics.deliver({ type: 'replicaState', deployment: r.deployment, replica: id, state: r.state, on: false });
    this.orphans.delete(id);
    for (const [name, d] of this.deployments) {
      const before = d.replicas.length;
      d.replicas = d.replicas.filter((x) => x.id !== id);
      if (d.replicas.length !== before) this.reconcile(name);
    }
    // Freed resources may let a pending replica place.
    for (const d of this.deployments.values()) for (const x of d.replicas) if (x.state === 'pending') this.requestPlacement(x);
  }

  override async postStop(): Promise<void> {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    for (const d of this.deployments.values()) for (const r of d.replicas) if (r.state !== 'draining') this.drain(r);
    this.deployments.clear();
    while (this.draining.size > 0) await Promise.allSettled([...this.draining]);
  }
}

function view(r: Replica): ReplicaView {
  const load = r.entry === undefined ? 0 : r.entry.runner.load().outstanding + r.entry.runner.load().queued;
  return { id: r.id, revision: r.revision, state: r.state, load, seq: r.seq, servedOnce: r.servedOnce };
}

/** Whether replicas can keep running: the replica count and routing are not theirs. */
function sameExceptReplicas(a: DeploymentSpec, b: DeploymentSpec): boolean {
  return JSON.stringify({ ...a, replicas: 0, routing: null }) === JSON.stringify({ ...b, replicas: 0, routing: null });
}
