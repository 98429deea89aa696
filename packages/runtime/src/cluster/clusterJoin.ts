// Coordination of one node: the store it coordinates through (etcd at
// cluster.etcd with its TLS and auth, or a store handed in), the lease-bound
// membership entry carrying the node's inventory, and the watched prefixes every
// other part of the node reads. The watches are ready (hold the store's current
// copy) before anything reads them.

import type { ActorRef, NodeInventory, Placement, PlacementMsg } from '@inference/actors';
import {
  type Coordination, EtcdCoordination, type EtcdCoordinationOptions, type Membership, PREFIX, type PrefixWatch, electionPrefix, leaderOf,
} from '@inference/cluster';
import { readTlsFile } from '../tlsFiles.js';
import type { ClusterConfig } from './clusterConfig.js';
import { MANAGER_ROLE } from './clusterKeys.js';
import { SHARED_PREFIX } from './sharedState.js';

/** The prefixes a node watches, each holding a current copy of the store's entries. */
export interface ClusterWatches {
  readonly catalog: PrefixWatch;
  readonly placement: PrefixWatch;
  readonly replicas: PrefixWatch;
  /** The manager election: who leads. */
  readonly election: PrefixWatch;
  /** One watch per shared prefix (sharedState.ts). */
  readonly shared: ReadonlyMap<string, PrefixWatch>;
}

function etcdTls(cfg: ClusterConfig): EtcdCoordinationOptions['tls'] {
  const t = cfg.etcdTls;
  if (t === undefined) return undefined;
  return {
    ca: readTlsFile(t.caFile, 'cluster.etcdTls.caFile'),
    cert: t.certFile === undefined ? undefined : readTlsFile(t.certFile, 'cluster.etcdTls.certFile'),
    key: t.keyFile === undefined ? undefined : readTlsFile(t.keyFile, 'cluster.etcdTls.keyFile'),
  };
}

function etcdAuth(cfg: ClusterConfig, password: string | undefined): EtcdCoordinationOptions['auth'] {
  if (cfg.etcdAuth === undefined || password === undefined) return undefined;
  return { username: cfg.etcdAuth.username, password };
}

/** The given store, or a client of the configured etcd. */
export function openCoordination(cfg: ClusterConfig, etcdPassword: string | undefined, given: Coordination | undefined): Coordination {
  return given ?? new EtcdCoordination({ hosts: cfg.etcd, cluster: cfg.name, tls: etcdTls(cfg), auth: etcdAuth(cfg, etcdPassword) });
}

async function inventoryOf(placement: ActorRef<PlacementMsg>): Promise<{ gpus: number; cpuThreads: number; ramMiB: number }> {
  const inv = await placement.ask<{ inventory: NodeInventory; reservations: Record<string, Placement> }>((reply) => ({ type: 'inventory', reply }));
  return { gpus: inv.inventory.gpus.length, cpuThreads: inv.inventory.cpuThreads, ramMiB: inv.inventory.ramMiB };
}

/** This node's membership, with the inventory its placement actor reports. */
export async function joinCluster(coordination: Coordination, cfg: ClusterConfig, placement: ActorRef<PlacementMsg>): Promise<Membership> {
  return coordination.join(
    { name: cfg.nodeName, advertise: cfg.advertise, inventory: await inventoryOf(placement) },
    { ttlSeconds: cfg.leaseTtlSeconds, counterSyncMs: cfg.counterSyncMs },
  );
}

/** Opens every watch the node reads and waits until each holds the store's current copy. */
export async function watchCluster(coordination: Coordination): Promise<ClusterWatches> {
  const catalog = coordination.watchPrefix(PREFIX.catalog);
  const placement = coordination.watchPrefix(PREFIX.placement);
  const replicas = coordination.watchPrefix(PREFIX.replicas);
  const election = coordination.watchPrefix(electionPrefix(MANAGER_ROLE));
  const shared = new Map<string, PrefixWatch>(Object.values(SHARED_PREFIX).map((p) => [p, coordination.watchPrefix(p)]));
  await Promise.all([catalog.ready, placement.ready, replicas.ready, election.ready, ...[...shared.values()].map((w) => w.ready)]);
  return { catalog, placement, replicas, election, shared };
}

/** The name of the node leading the manager role, if any. */
export function leaderName(w: ClusterWatches): string | undefined {
  return leaderOf(w.election.entries().values())?.node;
}
