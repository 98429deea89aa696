// The canonical wiring of the actor topology, as a library: `createRuntime`
// builds coordinator, metrics, deployment manager and the replica factories from
// a config object; `serve` adds the HTTP edge (ApiGatewayActor) and listens. The
// CLI and the tests use exactly these two functions.

import {
  type ActorRef, ActorSystem, type CoordinatorMsg, type CreatedReplica, DeploymentManagerActor, type DeploymentStatus,
  DpCoordinatorActor, type ManagerMsg, MetricsActor, type MetricsMsg, type ReplicaEvents, type ReplicaFactory,
} from '@inference/actors';
import { type DeploymentSpec, InferenceError } from '@inference/core';
import { type CredentialSource, RemoteEngineCoreActor, RemoteReplica, type SessionOptions } from '@inference/engine-remote';
import { type RuntimeConfig, envCredentials } from './config.js';
import { createLocalReplica } from './localReplica.js';

export interface RuntimeOptions {
  /** Where remote credentials come from (default: the environment). */
  readonly credentials?: CredentialSource;
  /** TLS options for remote sessions (e.g. a private CA). */
  readonly session?: SessionOptions;
  /** Seconds a removed replica may take to finish its in-flight work. */
  readonly drainTimeoutMs?: number;
}

export interface Runtime {
  readonly config: RuntimeConfig;
  readonly system: ActorSystem;
  readonly coordinator: ActorRef<CoordinatorMsg>;
  readonly metrics: ActorRef<MetricsMsg>;
  readonly manager: ActorRef<ManagerMsg>;
  apply(spec: DeploymentSpec): Promise<DeploymentStatus>;
  remove(name: string): Promise<void>;
  get(name: string): Promise<DeploymentStatus>;
  list(): Promise<DeploymentStatus[]>;
  /** Resolves when every replica of every deployment has left loading. */
  settled(timeoutMs?: number): Promise<DeploymentStatus[]>;
  close(): Promise<void>;
}

let systems = 0;

export async function createRuntime(config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  const system = new ActorSystem(`inference-${++systems}`);
  const coordinator = system.spawn('coordinator', () => new DpCoordinatorActor(), { mailbox: 65536 });
  const metrics = system.spawn('metrics', () => new MetricsActor(), { mailbox: 65536 });
  const credentials = options.credentials ?? envCredentials();
  let replicaSeq = 0;

  const factory: ReplicaFactory = (spec: DeploymentSpec, id: string, events: ReplicaEvents): CreatedReplica => {
    switch (spec.runtime) {
      case 'openai': {
        const engineOpts = {
          credentials,
          onRestart: (reason: string) => { events.restarted(reason); },
          onFailed: (reason: string) => { events.failed(reason); },
          ...(options.session === undefined ? {} : { session: options.session }),
        };
        const core = new RemoteEngineCoreActor(spec, engineOpts);
        const ref = system.spawn(`replica-${++replicaSeq}`, () => core, { mailbox: 65536 });
        return { runner: new RemoteReplica(id, spec.name, ref, core), ready: ref.started() };
      }
      case 'llama':
        return createLocalReplica(system, `replica-${++replicaSeq}`, spec, id, events, metrics);
      case 'anthropic':
        throw new InferenceError('invalid_request', "runtime 'anthropic' is not available in this build", { param: 'runtime' });
      default: {
        const never: never = spec.runtime;
        throw new InferenceError('invalid_request', `unknown runtime ${String(never)}`, { param: 'runtime' });
      }
    }
  };

  const manager = system.spawn('manager', () => new DeploymentManagerActor(coordinator, metrics, factory, options.drainTimeoutMs), { mailbox: 1024 });
  const apply = (spec: DeploymentSpec): Promise<DeploymentStatus> => manager.ask((reply) => ({ type: 'apply', spec, reply }));
  const list = (): Promise<DeploymentStatus[]> => manager.ask((reply) => ({ type: 'list', reply }));

  for (const spec of config.deployments) await apply(spec);

  return {
    config,
    system,
    coordinator,
    metrics,
    manager,
    apply,
    remove: (name) => manager.ask((reply) => ({ type: 'remove', name, reply })),
    get: (name) => manager.ask((reply) => ({ type: 'get', name, reply })),
    list,
    async settled(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await list();
        const loading = all.some((d) => d.replicas.some((r) => r.state === 'loading' || r.state === 'pending'));
        if (!loading || Date.now() > deadline) return all;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => system.stop(),
  };
}
