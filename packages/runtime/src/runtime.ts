// The canonical wiring of the actor topology, as a library: `createRuntime`
// builds coordinator, metrics, deployment manager and the replica factories from
// a config object; `serve` adds the HTTP edge (ApiGatewayActor) and listens. The
// CLI and the tests use exactly these two functions.

import {
  type ActorRef, ActorSystem, type CoordinatorMsg, type CreatedReplica, DeploymentManagerActor, DeploymentPlacementActor, type DeploymentStatus,
  DpCoordinatorActor, type Placement, type PlacementMsg, localInventory, placementEnv, type ManagerMsg, MetricsActor, type MetricsMsg, type ReplicaEntry, type ReplicaEvents, type ReplicaFactory, type ReplicaSample,
} from '@inference/actors';
import { type DeploymentSpec, InferenceError } from '@inference/core';
import {
  BREAKER_STATES, type CredentialSource, ReliabilityRegistry, RemoteEngineCoreActor, type RemoteEngineEvent, RemoteReplica, type SessionOptions,
} from '@inference/engine-remote';
import { Catalog, type Store, openStore } from '@inference/storage';
import { ActorBudgetGate, BudgetActor, type BudgetGate, type BudgetMsg, type BudgetShare } from '@inference/actors';
import { estimateTokens } from './budgetEstimate.js';
import { type RuntimeConfig, envCredentials } from './config.js';
import { probeGpuInventory } from '@inference/engine-local';
import { type LoadProgress, createLocalReplica } from './localReplica.js';

export interface RuntimeOptions {
  /** Where remote credentials come from (default: the environment). */
  readonly credentials?: CredentialSource;
  /** TLS options for remote sessions (e.g. a private CA). */
  readonly session?: SessionOptions;
  /** Seconds a removed replica may take to finish its in-flight work. */
  readonly drainTimeoutMs?: number;
  /** Model-load progress of local replicas (the CLI prints it). */
  readonly onLoadProgress?: LoadProgress;
  /**
   * Cluster mode: the catalog lives in the cluster (cluster/), so this runtime
   * neither seeds from config/storage nor persists admin writes; budgets count
   * the other nodes' spend through `budgetShare`.
   */
  readonly clusterManaged?: { readonly budgetShare: BudgetShare };
}

/** What /ready and /admin/cluster show of the node's cluster membership. */
export interface ClusterStatus {
  readonly node: string;
  readonly session: string;
  readonly leader: string | undefined;
  readonly leading: boolean;
  readonly members: readonly { readonly name: string; readonly advertise: string }[];
  /** True while etcd is unreachable and the tables may be behind. */
  readonly stale: boolean;
}

export interface Runtime {
  readonly config: RuntimeConfig;
  readonly system: ActorSystem;
  readonly coordinator: ActorRef<CoordinatorMsg>;
  readonly metrics: ActorRef<MetricsMsg>;
  readonly manager: ActorRef<ManagerMsg>;
  /** Node inventory and GPU/thread reservations of replicas. */
  readonly placement: ActorRef<PlacementMsg>;
  /** Remote limiters and breakers, shared by replicas with the same upstream and key. */
  readonly reliability: ReliabilityRegistry;
  /** The catalog and spend (a SQLite file with `storage.path`, else memory). */
  readonly store: Store;
  /** Budget ledgers and spend (BudgetActor), and the request path's gate to them. */
  readonly budget: ActorRef<BudgetMsg>;
  readonly budgetGate: BudgetGate;
  /** The last applied spec of a deployment (synchronous, for the request path). */
  spec(name: string): DeploymentSpec | undefined;
  apply(spec: DeploymentSpec): Promise<DeploymentStatus>;
  remove(name: string): Promise<void>;
  /** Sets a deployment's desired replica count (the spec otherwise unchanged). */
  scale(name: string, replicas: number): Promise<DeploymentStatus>;
  get(name: string): Promise<DeploymentStatus>;
  list(): Promise<DeploymentStatus[]>;
  /** Resolves when every replica of every deployment has left loading. */
  settled(timeoutMs?: number): Promise<DeploymentStatus[]>;
  /** Present in cluster mode. */
  readonly cluster?: () => ClusterStatus;
  close(): Promise<void>;
}

let systems = 0;

export async function createRuntime(config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  // Storage first: a bad file stops startup with a clear error before anything runs.
  const store = openStore(config.storage);
  const catalog = new Catalog(store);
  let initial: DeploymentSpec[];
  try {
    initial = options.clusterManaged === undefined ? catalog.seed(config.deployments) : [];
  } catch (e) {
    store.close();
    throw e;
  }
  const system = new ActorSystem(`inference-${++systems}`);
  // Routing decisions feed the metrics (declared below; picks start after both exist).
  const coordinator = system.spawn('coordinator', () => new DpCoordinatorActor(Math.random, {
    onDecision: (d) => { metrics.tell({ type: 'routed', ...d }); },
  }), { mailbox: 65536 });
  // A scrape samples every replica's load from the routing table.
  const sample = async (): Promise<ReplicaSample[]> =>
    (await coordinator.ask<ReplicaEntry[]>((reply) => ({ type: 'table', reply }), 5000)).map((r) => ({ deployment: r.deployment, replica: r.id, load: r.runner.load() }));
  const metrics = system.spawn('metrics', () => new MetricsActor({ sample }), { mailbox: 65536 });
  const credentials = options.credentials ?? envCredentials();
  const reliability = new ReliabilityRegistry();
  const specs = new Map<string, DeploymentSpec>();
  let replicaSeq = 0;

  const remoteEvent = (deployment: string, e: RemoteEngineEvent): void => {
    switch (e.type) {
      case 'breaker':
        metrics.tell({ type: 'breakerState', deployment, state: e.state, states: BREAKER_STATES });
        return;
      case 'retry':
        metrics.tell({ type: 'remote', deployment, event: 'retry', label: e.kind });
        return;
      case 'limited':
        metrics.tell({ type: 'remote', deployment, event: 'limited', label: e.reason });
        return;
      case 'upstreamRateLimited':
      case 'breakerRejected':
        metrics.tell({ type: 'remote', deployment, event: e.type });
        return;
      default: {
        const never: never = e;
        throw new Error(`unknown remote event ${JSON.stringify(never)}`);
      }
    }
  };

  const factory: ReplicaFactory = (spec: DeploymentSpec, id: string, events: ReplicaEvents, placement: Placement): CreatedReplica => {
    switch (spec.runtime) {
      case 'openai':
      case 'anthropic': {
        const engineOpts = {
          credentials,
          onRestart: (reason: string) => { events.restarted(reason); },
          onFailed: (reason: string) => { events.failed(reason); },
          registry: reliability,
          onEvent: (e: RemoteEngineEvent) => { remoteEvent(spec.name, e); },
          ...(options.session === undefined ? {} : { session: options.session }),
        };
        const core = new RemoteEngineCoreActor(spec, engineOpts);
        const ref = system.spawn(`replica-${++replicaSeq}`, () => core, { mailbox: 65536 });
        return { runner: new RemoteReplica(id, spec.name, ref, core), ready: ref.started() };
      }
      case 'llama':
        // The engine host sees only the GPUs placement gave it (none for a CPU replica).
        return createLocalReplica(system, `replica-${++replicaSeq}`, spec, id, events, metrics, options.onLoadProgress, placementEnv(placement));
      default: {
        const never: never = spec.runtime;
        throw new InferenceError('invalid_request', `unknown runtime ${String(never)}`, { param: 'runtime' });
      }
    }
  };

  // CPU and RAM now; the GPU list from the addon (in a probe process) on the first replica that asks for a GPU.
  const placement = system.spawn('placement', () => new DeploymentPlacementActor(localInventory([], 'not probed'), () => probeGpuInventory()), { mailbox: 4096 });
  const manager = system.spawn('manager', () => new DeploymentManagerActor(coordinator, metrics, factory, options.drainTimeoutMs, placement), { mailbox: 1024 });
  const apply = async (spec: DeploymentSpec): Promise<DeploymentStatus> => {
    const status = await manager.ask<DeploymentStatus>((reply) => ({ type: 'apply', spec, reply }));
    specs.set(spec.name, spec);
    return status;
  };
  const list = (): Promise<DeploymentStatus[]> => manager.ask((reply) => ({ type: 'list', reply }));

  const keyBudgets = new Map(config.auth.apiKeys.flatMap((k) => (k.budget === undefined ? [] : [[k.name, k.budget] as const])));
  const share = options.clusterManaged?.budgetShare;
  const budget = system.spawn('budget', () => new BudgetActor({ store, deployment: (name) => specs.get(name), keys: keyBudgets, share }), { mailbox: 65536 });
  const budgetGate = new ActorBudgetGate(budget, estimateTokens, (d, key) => specs.get(d)?.budget !== undefined || (key !== undefined && keyBudgets.has(key)));

  try {
    for (const spec of initial) await apply(spec);
  } catch (e) {
    await system.stop();
    store.close();
    throw e;
  }

  return {
    config,
    system,
    coordinator,
    metrics,
    manager,
    placement,
    reliability,
    store,
    budget,
    budgetGate,
    spec: (name) => specs.get(name),
    // Through the runtime (the admin API) changes are persisted and win on restart.
    apply: async (spec) => {
      const status = await apply(spec);
      if (options.clusterManaged === undefined) catalog.applied(status.spec);
      return status;
    },
    remove: async (name) => {
      await manager.ask<void>((reply) => ({ type: 'remove', name, reply }));
      specs.delete(name);
      metrics.tell({ type: 'removed', deployment: name });
      if (options.clusterManaged === undefined) catalog.removed(name);
    },
    scale: async (name, replicas) => {
      const status = await manager.ask<DeploymentStatus>((reply) => ({ type: 'scale', name, replicas, reply }));
      specs.set(name, status.spec);
      if (options.clusterManaged === undefined) catalog.applied(status.spec);
      return status;
    },
    get: (name) => manager.ask((reply) => ({ type: 'get', name, reply })),
    list,
    async settled(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await list();
        // A pending replica with a reason cannot be placed: it will not settle by waiting.
        const loading = all.some((d) => d.replicas.some((r) => r.state === 'loading' || (r.state === 'pending' && r.reason === undefined)));
        if (!loading || Date.now() > deadline) return all;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: async () => {
      await system.stop();
      store.close();
    },
  };
}
