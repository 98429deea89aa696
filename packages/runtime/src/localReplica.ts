// Local replicas: the native engine (packages/engine-local) in engine host
// processes. The addon is only loaded inside those processes, so a remote-only
// install runs without it.

import type { ActorRef, ActorSystem, CreatedReplica, MetricsMsg, ReplicaEvents } from '@inference/actors';
import type { DeploymentSpec } from '@inference/core';
import { createLocalReplica as create } from '@inference/engine-local';

/** Model-load progress of one replica: fraction 0..1. */
export type LoadProgress = (deployment: string, replica: string, model: string, fraction: number) => void;

export function createLocalReplica(
  system: ActorSystem, name: string, spec: DeploymentSpec, id: string, events: ReplicaEvents, metrics: ActorRef<MetricsMsg>,
  progress?: LoadProgress, env?: Record<string, string>,
): CreatedReplica {
  const replica = create(system, name, spec, id, {
    restarted: (reason) => { events.restarted(reason); },
    failed: (reason) => { events.failed(reason); },
    stats: (s) => metrics.tell({
      type: 'engineStats', deployment: spec.name, replica: id, active: s.activeSequences, lastStepSequences: s.lastStepSequences,
      maxStepSequences: s.maxStepSequences, kvCellsUsed: s.kvCellsUsed, maxSequences: spec.engine.maxSequences,
    }),
    hostExited: (exit) => metrics.tell({ type: 'hostExit', deployment: spec.name, reason: exit.reason }),
  }, {
    statsIntervalMs: 250,
    label: `${spec.name}/${id}`,
    ...(env === undefined ? {} : { env }),
    ...(progress === undefined ? {} : { onProgress: (f: number) => { progress(spec.name, id, spec.model ?? '', f); } }),
  });
  return { runner: replica, ready: replica.ready };
}
