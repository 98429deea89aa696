// One node of a cluster: joins etcd (membership with its inventory, lease-bound),
// opens the node-to-node listener, and wires the parts: the manager leader
// campaign (leader.ts), the local share of the catalog (localApplier.ts), this
// node's replicas published (replicaPublisher.ts), the other nodes' replicas in
// the routing table (remoteReplicas.ts), cluster budgets (clusterBudget.ts),
// rate limits (clusterRate.ts) and the cluster-wide admin view (clusterAdmin.ts).
// docs/cluster.md describes the whole; docs/architecture.md places it.
// Start order: listener first (peers can reach a node as soon as it is a member),
// then join, then watches. Close order is the reverse; leaving revokes the lease,
// so this node's entries vanish at once and the leader re-places its replicas.

import type { ActorRef, NodeInventory, Placement, PlacementMsg, ReplicaEntry } from '@inference/actors';
import { type Coordination, EtcdCoordination, type Membership, PREFIX, type PrefixWatch, electionPrefix, leaderOf } from '@inference/cluster';
import type { DeploymentSpec } from '@inference/core';
import type { ClusterStatus, Runtime } from '../runtime.js';
import { ClusterAdmin, parseAdminOp } from './clusterAdmin.js';
import type { ClusterBudgetShare } from './clusterBudget.js';
import type { ClusterRateShare } from './clusterRate.js';
import type { ClusterConfig } from './clusterConfig.js';
import { MANAGER_ROLE } from './clusterKeys.js';
import { ForwardingRunner, PeerPool } from './forwardClient.js';
import { ForwardServer } from './forwardServer.js';
import { ManagerLeader } from './leader.js';
import { LocalApplier } from './localApplier.js';
import { parseHostPort } from './clusterConfig.js';
import { RemoteReplicas } from './remoteReplicas.js';
import { ReplicaPublisher } from './replicaPublisher.js';

export interface ClusterNodeOptions {
  readonly config: ClusterConfig;
  /** The node's own runtime, started with `clusterManaged`. */
  readonly base: Runtime;
  readonly budgetShare: ClusterBudgetShare;
  readonly rateShare: ClusterRateShare;
  /** Deployments from this node's config file (seeded by whichever node leads). */
  readonly seed: readonly DeploymentSpec[];
  readonly bodyLimitBytes: number;
  readonly secret: string | undefined;
  /** Where cluster errors are reported (never with request content or secrets). */
  readonly log: (message: string) => void;
  /**
   * The store the node coordinates through, instead of etcd at `config.etcd`: the
   * workers of `serve --workers N` share their primary's store (docs/cluster.md).
   */
  readonly coordination?: Coordination;
  /** Prefer this node's own replicas: forward only when they are a full capacity busier (serve --workers). */
  readonly preferLocal?: boolean;
}

export interface ClusterNode {
  /** The runtime the gateway serves: cluster-wide admin, local request path. */
  readonly runtime: Runtime;
  close(): Promise<void>;
}

async function inventoryOf(placement: ActorRef<PlacementMsg>): Promise<{ gpus: number; cpuThreads: number; ramMiB: number }> {
  type Inventory = { inventory: NodeInventory; reservations: Record<string, Placement> };
  const inv = await placement.ask<Inventory>((reply) => ({ type: 'inventory', reply }));
  return { gpus: inv.inventory.gpus.length, cpuThreads: inv.inventory.cpuThreads, ramMiB: inv.inventory.ramMiB };
}

/** The node-to-node listener: forwarded requests run on this node's own replicas; admin writes go to the leader. */
function listen(o: ClusterNodeOptions, leader: () => ManagerLeader | undefined): Promise<ForwardServer> {
  // Only this node's own, non-forwarding replicas may serve a forwarded request.
  const localReplica = async (id: string): Promise<ReplicaEntry | undefined> => {
    const table = await o.base.coordinator.ask<ReplicaEntry[]>((reply) => ({ type: 'table', reply }), 5000);
    return table.find((r) => r.id === id && !(r.runner instanceof ForwardingRunner));
  };
  return ForwardServer.listen({
    host: o.config.listenHost,
    port: parseHostPort(o.config.advertise, '--advertise').port,
    bodyLimitBytes: o.bodyLimitBytes,
    secret: o.secret,
    localReplica,
    admin: async (body) => {
      const op = parseAdminOp(body, o.base.runtimes);
      const l = leader();
      if (l === undefined) throw new Error('not started');
      return { revision: await l.admin(op) };
    },
  });
}

interface Joined {
  readonly membership: Membership;
  readonly catalog: PrefixWatch;
  readonly placement: PrefixWatch;
  readonly replicas: PrefixWatch;
  readonly election: PrefixWatch;
}

/** Joins (membership with the node's inventory), attaches the shared counters and opens the watches. */
async function join(o: ClusterNodeOptions, coordination: Coordination): Promise<Joined> {
  const cfg = o.config;
  const membership = await coordination.join(
    { name: cfg.nodeName, advertise: cfg.advertise, inventory: await inventoryOf(o.base.placement) },
    { ttlSeconds: cfg.leaseTtlSeconds, counterSyncMs: cfg.counterSyncMs },
  );
  o.budgetShare.attach(membership.counters);
  o.rateShare.attach(membership.counters);
  const catalog = coordination.watchPrefix(PREFIX.catalog);
  const placement = coordination.watchPrefix(PREFIX.placement);
  const replicas = coordination.watchPrefix(PREFIX.replicas);
  const election = coordination.watchPrefix(electionPrefix(MANAGER_ROLE));
  await Promise.all([catalog.ready, placement.ready, replicas.ready, election.ready]);
  return { membership, catalog, placement, replicas, election };
}

/**
 * Ready means the deployments serve here: a leader exists, the leading node's config
 * deployments have reached the catalog (latched: a later admin removal does not unready it),
 * and the local runtime holds what the catalog and placement ask of this node.
 */
function readiness(o: ClusterNodeOptions, mgr: ManagerLeader, applier: LocalApplier, leaderName: () => string | undefined): () => string[] {
  let seedSeen = false;
  return () => {
    const out: string[] = [];
    if (leaderName() === undefined) out.push('cluster leader');
    if (!seedSeen && mgr.leading()) {
      const names = new Set(applier.specs().map((s) => s.name));
      seedSeen = o.seed.every((s) => names.has(s.name));
    }
    if (!seedSeen && mgr.leading()) out.push('config deployments in the catalog');
    if (!applier.current()) out.push('catalog applied on this node');
    return out;
  };
}

/** The parts that run on the joined node, and the runtime the gateway serves. */
function wire(
  o: ClusterNodeOptions, j: Joined, server: ForwardServer, coordination: Coordination, onError: (e: unknown) => void,
): { node: ClusterNode; leader: ManagerLeader } {
  const self = o.config.nodeName;
  const { membership, catalog, placement, replicas, election } = j;
  const peers = new PeerPool(o.secret);
  const remote = new RemoteReplicas(self, o.base.coordinator, membership, replicas, peers, o.preferLocal === true);
  const applier = new LocalApplier(self, o.base, catalog, placement, onError);
  const publisher = new ReplicaPublisher(o.base, membership, onError);
  const mgr = new ManagerLeader({
    membership, catalog, placement, specs: () => applier.specs(), seed: o.seed, ttlSeconds: o.config.leaseTtlSeconds, onError,
    onLeading: (leading) => { o.log(`cluster: node ${self} ${leading ? 'leads' : 'no longer leads'} the cluster`); },
  });
  const leaderName = (): string | undefined => leaderOf(election.entries().values())?.node;
  const admin = new ClusterAdmin({
    self, base: o.base, leader: mgr, catalog, specs: () => applier.specs(), remote, peers, applied: () => applier.settled(),
    leaderAddress: () => {
      const name = leaderName();
      return membership.members().find((m) => m.name === name)?.advertise;
    },
  });
  const status = (): ClusterStatus => ({
    node: self,
    session: membership.state(),
    leader: leaderName(),
    leading: mgr.leading(),
    members: membership.members().map((m) => ({ name: m.name, advertise: m.advertise })),
    stale: catalog.stale() || replicas.stale(),
  });
  const runtime: Runtime = { ...admin.runtime(), cluster: status, clusterWaiting: readiness(o, mgr, applier, leaderName) };
  const close = async (): Promise<void> => {
    await mgr.close();
    await publisher.close();
    applier.close();
    remote.close();
    peers.close();
    await server.close();
    await coordination.close();
  };
  return { node: { runtime, close }, leader: mgr };
}

export async function startClusterNode(o: ClusterNodeOptions): Promise<ClusterNode> {
  const onError = (e: unknown): void => { o.log(`cluster: ${e instanceof Error ? e.message : String(e)}`); };
  let leader: ManagerLeader | undefined;
  const server = await listen(o, () => leader);
  const coordination = o.coordination ?? new EtcdCoordination({ hosts: o.config.etcd, cluster: o.config.name });
  try {
    const wired = wire(o, await join(o, coordination), server, coordination, onError);
    leader = wired.leader;
    return wired.node;
  } catch (e) {
    await server.close();
    await coordination.close();
    throw e;
  }
}
