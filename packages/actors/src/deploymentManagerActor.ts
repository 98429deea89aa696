// DeploymentManagerActor: the catalog (desired state) and its replicas (actual
// state). Applying a deployment creates its replicas and registers them with the
// coordinator, so it serves at once; removing one takes it out of routing first
// (new requests get not_found) and drains: replicas stop only when their last
// in-flight request has finished. Nothing in flight is ever dropped.

import { type DeploymentSpec, InferenceError, type ModelDetails, type ModelRunner, type ReplicaLoad } from '@inference/core';
import type { CoordinatorMsg } from './dpCoordinatorActor.js';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import type { MetricsMsg } from './metricsActor.js';
import type { ReplicaEntry, ReplicaState } from './routing.js';

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

export type ReplicaFactory = (spec: DeploymentSpec, replicaId: string, events: ReplicaEvents) => CreatedReplica;

export interface ReplicaStatus {
  id: string;
  state: ReplicaState;
  reason?: string;
  restarts: number;
  load: ReplicaLoad;
  details?: ModelDetails;
}

export interface DeploymentStatus {
  spec: DeploymentSpec;
  replicas: ReplicaStatus[];
}

export type ManagerMsg =
  | { type: 'apply'; spec: DeploymentSpec; reply: Reply<DeploymentStatus> }
  | { type: 'remove'; name: string; reply: Reply<void> }
  | { type: 'get'; name: string; reply: Reply<DeploymentStatus> }
  | { type: 'list'; reply: Reply<DeploymentStatus[]> }
  | { type: 'replicaState'; id: string; state: ReplicaState; reason?: string; restarted?: boolean };

interface Replica {
  entry: ReplicaEntry;
  /** Settles when the replica serves or failed to load. */
  ready: Promise<void>;
  reason?: string;
  restarts: number;
}

const DRAIN_POLL_MS = 25;

export class DeploymentManagerActor extends Actor<ManagerMsg> {
  private readonly specs = new Map<string, DeploymentSpec>();
  private readonly replicas = new Map<string, Replica[]>();
  private readonly draining = new Set<Promise<void>>();
  private seq = 0;

  constructor(
    private readonly coordinator: ActorRef<CoordinatorMsg>,
    private readonly metrics: ActorRef<MetricsMsg>,
    private readonly factory: ReplicaFactory,
    private readonly drainTimeoutMs = 10 * 60_000,
  ) {
    super();
  }

  receive(m: ManagerMsg): void {
    switch (m.type) {
      case 'apply':
        try {
          this.apply(m.spec);
          m.reply.resolve(this.status(m.spec.name));
        } catch (e) {
          m.reply.reject(e);
        }
        return;
      case 'remove': {
        const spec = this.specs.get(m.name);
        if (spec === undefined) {
          m.reply.reject(new InferenceError('not_found', `deployment '${m.name}' does not exist`, { param: 'name' }));
          return;
        }
        this.specs.delete(m.name);
        const old = this.replicas.get(m.name) ?? [];
        this.replicas.delete(m.name);
        for (const r of old) this.drain(r);
        m.reply.resolve();
        return;
      }
      case 'get':
        if (!this.specs.has(m.name)) m.reply.reject(new InferenceError('not_found', `deployment '${m.name}' does not exist`, { param: 'name' }));
        else m.reply.resolve(this.status(m.name));
        return;
      case 'list':
        m.reply.resolve([...this.specs.keys()].map((n) => this.status(n)));
        return;
      case 'replicaState':
        this.onReplicaState(m.id, m.state, m.reason, m.restarted === true);
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private status(name: string): DeploymentStatus {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new InferenceError('not_found', `deployment '${name}' does not exist`, { param: 'name' });
    return {
      spec,
      replicas: (this.replicas.get(name) ?? []).map((r) => {
        const s: ReplicaStatus = { id: r.entry.id, state: r.entry.state, restarts: r.restarts, load: r.entry.runner.load() };
        if (r.reason !== undefined) s.reason = r.reason;
        const details = r.entry.runner.details?.();
        if (details !== undefined) s.details = details;
        return s;
      }),
    };
  }

  private apply(spec: DeploymentSpec): void {
    const prev = this.specs.get(spec.name);
    this.specs.set(spec.name, spec);
    const current = this.replicas.get(spec.name) ?? [];
    if (prev !== undefined && sameExceptReplicas(prev, spec)) {
      // Scale: add the missing replicas, drain the surplus (newest first).
      const keep = current.slice(0, spec.replicas);
      for (const r of current.slice(spec.replicas)) this.drain(r);
      while (keep.length < spec.replicas) keep.push(this.startReplica(spec));
      this.replicas.set(spec.name, keep);
      return;
    }
    // New or changed: start the new replicas, and drain the old ones once the
    // new ones serve (or failed), so the deployment never has a gap.
    const fresh: Replica[] = [];
    for (let i = 0; i < spec.replicas; i++) fresh.push(this.startReplica(spec));
    this.replicas.set(spec.name, fresh);
    if (current.length > 0) {
      const settled = fresh.map((r) => r.ready.catch(() => undefined));
      void Promise.all(settled).then(() => {
        for (const r of current) this.drain(r);
      });
    }
  }

  private startReplica(spec: DeploymentSpec): Replica {
    const id = `${spec.name}#${++this.seq}`;
    const self = this.context.self;
    const created = this.factory(spec, id, {
      restarted: (reason) => self.tell({ type: 'replicaState', id, state: 'serving', reason, restarted: true }),
      failed: (reason) => self.tell({ type: 'replicaState', id, state: 'failed', reason }),
    });
    const entry: ReplicaEntry = { id, deployment: spec.name, runner: created.runner, state: 'loading' };
    const replica: Replica = { entry, restarts: 0, ready: created.ready };
    this.coordinator.tell({ type: 'register', replica: entry });
    this.metrics.tell({ type: 'replicaState', deployment: spec.name, replica: id, state: 'loading', on: true });
    created.ready.then(
      () => self.tell({ type: 'replicaState', id, state: 'serving' }),
      (e: unknown) => self.tell({ type: 'replicaState', id, state: 'failed', reason: e instanceof Error ? e.message : String(e) }),
    );
    return replica;
  }

  private find(id: string): Replica | undefined {
    for (const list of this.replicas.values()) {
      const r = list.find((x) => x.entry.id === id);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private onReplicaState(id: string, state: ReplicaState, reason: string | undefined, restarted: boolean): void {
    const r = this.find(id);
    if (r === undefined || r.entry.state === 'draining') return;
    if (restarted) {
      r.restarts++;
      this.metrics.tell({ type: 'restart', deployment: r.entry.deployment, replica: id });
    }
    if (r.entry.state === 'failed' && state !== 'failed') return;
    const before = r.entry.state;
    if (reason !== undefined) r.reason = reason;
    if (before === state) return;
    this.coordinator.tell({ type: 'setState', replicaId: id, state });
    r.entry.state = state;
    this.metrics.tell({ type: 'replicaState', deployment: r.entry.deployment, replica: id, state: before, on: false });
    this.metrics.tell({ type: 'replicaState', deployment: r.entry.deployment, replica: id, state, on: true });
  }

  private drain(r: Replica): void {
    const { entry } = r;
    this.coordinator.tell({ type: 'setState', replicaId: entry.id, state: 'draining' });
    entry.state = 'draining';
    const deadline = Date.now() + this.drainTimeoutMs;
    const done = (async () => {
      while (entry.runner.load().outstanding > 0 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, DRAIN_POLL_MS));
      }
      this.coordinator.tell({ type: 'unregister', replicaId: entry.id });
      await entry.runner.stop();
    })();
    this.draining.add(done);
    void done.finally(() => this.draining.delete(done));
  }

  override async postStop(): Promise<void> {
    for (const list of this.replicas.values()) for (const r of list) this.drain(r);
    this.replicas.clear();
    await Promise.allSettled([...this.draining]);
  }
}

function sameExceptReplicas(a: DeploymentSpec, b: DeploymentSpec): boolean {
  return JSON.stringify({ ...a, replicas: 0 }) === JSON.stringify({ ...b, replicas: 0 });
}
