// Local replicas are served by the native engine (packages/engine-local), loaded
// only when a llama deployment exists, so a remote-only install never needs the
// compiled addon.

import type { ActorRef, ActorSystem, CreatedReplica, MetricsMsg, ReplicaEvents } from '@inference/actors';
import { type DeploymentSpec, InferenceError } from '@inference/core';

export function createLocalReplica(_system: ActorSystem, _name: string, _spec: DeploymentSpec, _id: string, _events: ReplicaEvents, _metrics: ActorRef<MetricsMsg>): CreatedReplica {
  throw new InferenceError('invalid_request', "runtime 'llama' needs the native engine, which is not built", { param: 'runtime' });
}
