// How a remote replica's reliability events (breaker, retries, limiter) become
// metrics: one MetricsActor message per event, labelled by deployment.

import type { ActorRef, MetricsMsg } from '@inference/actors';
import { BREAKER_STATES, type RemoteEngineEvent } from '@inference/engine-remote';

export function remoteEventMetrics(metrics: ActorRef<MetricsMsg>): (deployment: string, e: RemoteEngineEvent) => void {
  return (deployment, e) => {
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
}
