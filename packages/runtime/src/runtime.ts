// The canonical wiring of the actor topology, as a library: `createRuntime`
// builds coordinator, metrics, placement, deployment manager, budgets and the
// replica factories (built-in and registered runtimes) from a config object;
// `serve` (@inference/gateway) adds the HTTP edge and listens. The CLI and the
// tests use exactly these two functions. docs/architecture.md draws the topology.

import { StreamBuffers } from './streamBuffers.js';
import {
  type ActorRef, ActorSystem, type BudgetGate, type BudgetMsg, type BudgetShare, type CoordinatorMsg, DeploymentManagerActor, DeploymentPlacementActor,
  type DeploymentStatus, DpCoordinatorActor, type ManagerMsg, MetricsActor, type MetricsMsg, type PlacementMsg, type ReplicaEntry, type ReplicaSample,
  type MetricsRecorder, type Router, SpecTable, localInventory, localRecorder, localRouter,
} from '@inference/actors';
import { BUILTIN_RUNTIMES, type BudgetSpec, type DeploymentSpec, invalid, join } from '@inference/core';
import { type CredentialSource, ReliabilityRegistry, type SessionOptions } from '@inference/engine-remote';
import { probeGpuInventory } from '@inference/engine-local';
import { Catalog, type RecordStore, type Store, openStore } from '@inference/storage';
import { startBudgets } from './budgets.js';
import { type RuntimeConfig, envCredentials, secretPolicy } from './config.js';
import type { LoadProgress } from './localReplica.js';
import { MAILBOX } from './mailboxes.js';
import { remoteEventMetrics } from './remoteMetrics.js';
import { type RuntimeFactory, builtinFactories, checkRuntimeNames, dispatchFactory } from './replicaFactories.js';

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
  /**
   * Runtimes of one's own, by name: a deployment whose `runtime` names one is
   * served by the ModelRunners its factory builds, with the built-in runtimes'
   * routing, supervision, budgets, metrics and status (docs/architecture.md).
   * Parse configs with the same names (`parseConfig(doc, { runtimes })`).
   */
  readonly runtimes?: Readonly<Record<string, RuntimeFactory>>;
}

/** What /ready and /admin/cluster show of the node's cluster membership. */
export interface ClusterStatus {
  readonly node: string;
  readonly session: string;
  readonly leader: string | undefined;
  readonly leading: boolean;
  readonly members: readonly { readonly name: string; readonly advertise: string; readonly draining: boolean }[];
  /** True while etcd is unreachable and the tables may be behind. */
  readonly stale: boolean;
}

export interface Runtime {
  readonly config: RuntimeConfig;
  readonly system: ActorSystem;
  readonly coordinator: ActorRef<CoordinatorMsg>;
  readonly metrics: ActorRef<MetricsMsg>;
  /** The routing table read in place by the request path (localRouter). */
  readonly router: Router;
  /** The request path's metrics taken in place (localRecorder). */
  readonly recorder: MetricsRecorder;
  readonly manager: ActorRef<ManagerMsg>;
  /** Node inventory and GPU/thread reservations of replicas. */
  readonly placement: ActorRef<PlacementMsg>;
  /** What this process's streamed responses hold (gateway streams, forwarded runs; docs/flow-control.md). */
  readonly streams: StreamBuffers;
  /** Remote limiters and breakers, shared by replicas with the same upstream and key. */
  readonly reliability: ReliabilityRegistry;
  /** The catalog and spend (a SQLite file with `storage.path`, else memory). */
  readonly store: Store;
  /** Budget ledgers and spend (BudgetActor), and the request path's gate to them. */
  readonly budget: ActorRef<BudgetMsg>;
  readonly budgetGate: BudgetGate;
  /** Budgets by API key name: the config file's, and virtual keys' as they change (keys/). */
  readonly keyBudgets: Map<string, BudgetSpec>;
  /** The runtime names a deployment may use: the built-in ones and those registered. */
  readonly runtimes: readonly string[];
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
  /** Where stored Responses API objects live; absent: in `store` (cluster mode keeps them in etcd). */
  readonly records?: RecordStore;
  /**
   * Cluster mode: what this node still waits for before it can serve the
   * catalog (empty when nothing); /ready is 503 until then. See docs/cluster.md.
   */
  readonly clusterWaiting?: () => string[];
  close(): Promise<void>;
}

let systems = 0;


/** Refuses config deployments that name a runtime this runtime does not have. */
function checkRuntime(spec: DeploymentSpec, known: readonly string[], path: string): void {
  if (!known.includes(spec.runtime)) invalid(join(path, 'runtime'), `unknown runtime '${spec.runtime}' (${known.join(' | ')})`);
}

export async function createRuntime(config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  const custom = options.runtimes ?? {};
  checkRuntimeNames(Object.keys(custom));
  const runtimes: readonly string[] = [...BUILTIN_RUNTIMES, ...Object.keys(custom)];
  config.deployments.forEach((spec, i) => { checkRuntime(spec, runtimes, join('deployments', i)); });
  // Storage first: a bad file stops startup with a clear error before anything runs.
  const store = openStore(config.storage);
  const catalog = new Catalog(store, Date.now, Object.keys(custom));
  let initial: DeploymentSpec[];
  try {
    initial = options.clusterManaged === undefined ? catalog.seed(config.deployments) : [];
  } catch (e) {
    store.close();
    throw e;
  }
  const system = new ActorSystem(`inference-${++systems}`);
  // Routing decisions feed the metrics (declared below; picks start after both exist).
  const table = new DpCoordinatorActor(Math.random, {
    onDecision: (d) => { recorder.record({ type: 'routed', ...d }); },
  });
  const coordinator = system.spawn('coordinator', () => table, { mailbox: MAILBOX.coordinator });
  // A scrape samples every replica's load from the routing table.
  const sample = async (): Promise<ReplicaSample[]> =>
    (await coordinator.ask<ReplicaEntry[]>((reply) => ({ type: 'table', reply }), 5000))
      .map((r) => ({ deployment: r.deployment, replica: r.id, load: r.runner.load() }));
  const meters = new MetricsActor({ sample });
  const metrics = system.spawn('metrics', () => meters, { mailbox: MAILBOX.metrics });
  // The request path reads the table and records its metrics in place (no message per request).
  const router = localRouter(coordinator, table);
  const recorder = localRecorder(metrics, meters);
  const reliability = new ReliabilityRegistry();
  const credentials = options.credentials ?? envCredentials(process.env, secretPolicy(config));
  const builtin = builtinFactories({
    system, metrics, reliability,
    credentials,
    remoteEvent: remoteEventMetrics(metrics),
    ...(options.session === undefined ? {} : { session: options.session }),
    ...(options.onLoadProgress === undefined ? {} : { onLoadProgress: options.onLoadProgress }),
  });
  const factories: Record<string, RuntimeFactory> = { ...custom, ...builtin };
  const specs = new SpecTable();

  // CPU and RAM now; the GPU list from the addon (in a probe process) on the first replica that asks for a GPU.
  const placement = system.spawn('placement', () => new DeploymentPlacementActor(localInventory([], 'not probed'), () => probeGpuInventory()), {
    mailbox: 4096,
  });
  const factory = dispatchFactory(factories, system, metrics);
  const manager = system.spawn('manager', () => new DeploymentManagerActor(coordinator, metrics, factory, options.drainTimeoutMs, placement, specs), {
    mailbox: 1024,
  });
  const apply = async (spec: DeploymentSpec): Promise<DeploymentStatus> => {
    checkRuntime(spec, runtimes, '');
    const status = await manager.ask<DeploymentStatus>((reply) => ({ type: 'apply', spec, reply }));
    retainReliability();
    return status;
  };
  const list = (): Promise<DeploymentStatus[]> => manager.ask((reply) => ({ type: 'list', reply }));
  // Limiters and breakers live while a remote deployment uses them (docs/metrics.md "Cardinality").
  const retainReliability = (): void => {
    const keyOf = (s: DeploymentSpec): string | undefined => {
      try {
        return credentials(s).apiKey;
      } catch {
        return undefined;
      }
    };
    const remote = specs.names().map((n) => specs.get(n))
      .filter((s): s is DeploymentSpec => s !== undefined && (s.runtime === 'openai' || s.runtime === 'anthropic'));
    reliability.retain(remote.map((s) => ({ spec: s, apiKey: keyOf(s) })));
  };
  const { budget, budgetGate, keyBudgets } = startBudgets(system, store, config, specs, options.clusterManaged?.budgetShare);

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
    router,
    recorder,
    manager,
    placement,
    streams: new StreamBuffers(),
    reliability,
    store,
    budget,
    budgetGate,
    keyBudgets,
    runtimes,
    spec: (name) => specs.get(name),
    // Through the runtime (the admin API) changes are persisted and win on restart.
    apply: async (spec) => {
      const status = await apply(spec);
      if (options.clusterManaged === undefined) catalog.applied(status.spec);
      return status;
    },
    remove: async (name) => {
      await manager.ask<void>((reply) => ({ type: 'remove', name, reply }));
      // Its series and its limiters go with it: /metrics and the registry hold what exists.
      metrics.tell({ type: 'deploymentRemoved', deployment: name });
      retainReliability();
      if (options.clusterManaged === undefined) catalog.removed(name);
    },
    scale: async (name, replicas) => {
      const status = await manager.ask<DeploymentStatus>((reply) => ({ type: 'scale', name, replicas, reply }));
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
