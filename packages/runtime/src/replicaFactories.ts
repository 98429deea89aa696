// The replica factories: what a deployment's `runtime` names becomes a running
// replica. The built-in runtimes (llama: the native engine in engine host
// processes; openai / anthropic: a supervised remote engine core) and the ones a
// user registers with `createRuntime({ runtimes })` share this one contract, so
// routing, supervision, budgets, metrics and the status page treat them alike
// (docs/architecture.md, "Pluggable runtimes").

import { MAILBOX } from './mailboxes.js';
import {
  type ActorRef, type ActorSystem, type CreatedReplica, type MetricsMsg, type Placement, type ReplicaEvents, type ReplicaFactory,
  placementEnv,
} from '@inference/actors';
import { BUILTIN_RUNTIMES, type BuiltinRuntime, type DeploymentSpec, InferenceError } from '@inference/core';
import {
  type CredentialSource, type ReliabilityRegistry, RemoteEngineCoreActor, type RemoteEngineEvent, RemoteReplica, type SessionOptions,
} from '@inference/engine-remote';
import { type LoadProgress, createLocalReplica } from './localReplica.js';

/** What a runtime factory gets to build one replica of a deployment. */
export interface ReplicaRequest {
  readonly spec: DeploymentSpec;
  /** The replica's id (`<deployment>#<n>`), unique in the runtime. */
  readonly replicaId: string;
  /**
   * Supervision: `restarted` when the replica replaced its failed context (counted,
   * shown on the status page); `failed` when it cannot serve any more (the
   * manager marks it failed, stops routing to it and places a new one).
   */
  readonly events: ReplicaEvents;
  /** The resources placement reserved (GPU ids, threads). */
  readonly placement: Placement;
  /** The actor system, to run the replica's own actors under supervision. */
  readonly system: ActorSystem;
  /** A unique actor name for the replica's actor, if it spawns one. */
  readonly actorName: string;
  readonly metrics: ActorRef<MetricsMsg>;
}

/**
 * Builds one replica: a ModelRunner and a promise that resolves when it can
 * serve (rejects when it cannot; the deployment then shows the reason).
 */
export type RuntimeFactory = (r: ReplicaRequest) => CreatedReplica;

export interface BuiltinDeps {
  readonly system: ActorSystem;
  readonly metrics: ActorRef<MetricsMsg>;
  readonly credentials: CredentialSource;
  readonly reliability: ReliabilityRegistry;
  readonly session?: SessionOptions;
  readonly onLoadProgress?: LoadProgress;
  readonly remoteEvent: (deployment: string, e: RemoteEngineEvent) => void;
}

function remoteFactory(d: BuiltinDeps): RuntimeFactory {
  return ({ spec, replicaId, events, system, actorName }) => {
    const core = new RemoteEngineCoreActor(spec, {
      credentials: d.credentials,
      onRestart: (reason: string) => { events.restarted(reason); },
      onFailed: (reason: string) => { events.failed(reason); },
      registry: d.reliability,
      onEvent: (e: RemoteEngineEvent) => { d.remoteEvent(spec.name, e); },
      ...(d.session === undefined ? {} : { session: d.session }),
    });
    const ref = system.spawn(actorName, () => core, { mailbox: MAILBOX.remoteReplica });
    return { runner: new RemoteReplica(replicaId, spec.name, ref, core), ready: ref.started() };
  };
}

function localFactory(d: BuiltinDeps): RuntimeFactory {
  // The engine host sees only the GPUs placement gave it (none for a CPU replica).
  return ({ spec, replicaId, events, placement, system, actorName, metrics }) =>
    createLocalReplica(system, actorName, spec, replicaId, events, metrics, d.onLoadProgress, placementEnv(placement));
}

export function builtinFactories(d: BuiltinDeps): Record<BuiltinRuntime, RuntimeFactory> {
  const remote = remoteFactory(d);
  return { llama: localFactory(d), openai: remote, anthropic: remote };
}

/** Refuses a registered name that is empty, malformed or taken by a built-in runtime. */
export function checkRuntimeNames(names: readonly string[]): void {
  for (const name of names) {
    if ((BUILTIN_RUNTIMES as readonly string[]).includes(name)) {
      throw new InferenceError('invalid_request', `runtimes: '${name}' is a built-in runtime and cannot be replaced`, { param: 'runtimes' });
    }
    if (!/^[A-Za-z][A-Za-z0-9._-]{0,63}$/.test(name)) {
      throw new InferenceError('invalid_request', `runtimes: '${name}' is not a valid runtime name (letters, digits, . _ -)`, { param: 'runtimes' });
    }
  }
}

/** The manager's one factory: dispatches on the spec's runtime. */
export function dispatchFactory(
  all: Readonly<Record<string, RuntimeFactory>>, system: ActorSystem, metrics: ActorRef<MetricsMsg>,
): ReplicaFactory {
  let seq = 0;
  return (spec, replicaId, events, placement) => {
    const make = Object.hasOwn(all, spec.runtime) ? all[spec.runtime] : undefined;
    if (make === undefined) throw new InferenceError('invalid_request', `unknown runtime ${spec.runtime}`, { param: 'runtime' });
    return make({ spec, replicaId, events, placement, system, actorName: `replica-${++seq}`, metrics });
  };
}
