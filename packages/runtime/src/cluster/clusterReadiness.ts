// What a node says about itself: its cluster status (session, leader, members,
// whether its copy is stale) and readiness. Ready means the deployments serve
// here: a leader exists, the leading node's config deployments have reached the
// catalog (latched: a later admin removal does not unready it), and the local
// runtime holds what the catalog and placement ask of this node.

import type { Membership } from '@inference/cluster';
import type { DeploymentSpec } from '@inference/core';
import type { ClusterStatus } from '../runtime.js';
import { type ClusterWatches, leaderName } from './clusterJoin.js';
import type { ManagerLeader } from './leader.js';
import type { LocalApplier } from './localApplier.js';

export interface ReadinessDeps {
  readonly self: string;
  readonly membership: Membership;
  readonly watches: ClusterWatches;
  readonly leader: ManagerLeader;
  readonly applier: LocalApplier;
  /** Deployments from this node's config file. */
  readonly seed: readonly DeploymentSpec[];
}

export function clusterStatus(d: ReadinessDeps): () => ClusterStatus {
  return () => ({
    node: d.self,
    session: d.membership.state(),
    leader: leaderName(d.watches),
    leading: d.leader.leading(),
    members: d.membership.members().map((m) => ({ name: m.name, advertise: m.advertise, draining: m.draining })),
    stale: d.watches.catalog.stale() || d.watches.replicas.stale(),
  });
}

/** What the node still waits for before it is ready (empty: ready). */
export function clusterWaiting(d: ReadinessDeps): () => string[] {
  let seedSeen = false;
  return () => {
    const out: string[] = [];
    if (leaderName(d.watches) === undefined) out.push('cluster leader');
    if (!seedSeen && d.leader.leading()) {
      const names = new Set(d.applier.specs().map((s) => s.name));
      seedSeen = d.seed.every((s) => names.has(s.name));
    }
    if (!seedSeen && d.leader.leading()) out.push('config deployments in the catalog');
    if (!d.applier.current()) out.push('catalog applied on this node');
    return out;
  };
}
