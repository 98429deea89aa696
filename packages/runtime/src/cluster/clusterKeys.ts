// The gateway's keys under the cluster root (packages/cluster owns the root and
// the reserved prefixes): `catalog/<deployment>` (the spec) and
// `placement/<deployment>` ({nodes: {node: count}}), both written only by the
// manager leader, and the replica ids nodes publish under `replicas/<node>/`.
// Deployment names may hold '/', which a key segment may not; '@' may not appear
// in a deployment name, so '/' <-> '@' is reversible.

import { PREFIX } from '@inference/cluster';

/** The election role whose leader owns the catalog and the placement. */
export const MANAGER_ROLE = 'manager';

export function segmentOf(name: string): string {
  return name.replaceAll('/', '@');
}

export function nameOf(segment: string): string {
  return segment.replaceAll('@', '/');
}

export function catalogKey(deployment: string): string {
  return PREFIX.catalog + segmentOf(deployment);
}

export function placementKey(deployment: string): string {
  return PREFIX.placement + segmentOf(deployment);
}

/** A remote replica's id in this node's routing table: `<node>/<replica id>`. */
export function remoteReplicaId(node: string, replicaId: string): string {
  return `${node}/${replicaId}`;
}
