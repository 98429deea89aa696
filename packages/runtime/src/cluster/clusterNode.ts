// One node of a cluster: joins the coordination store (clusterJoin.ts: membership
// with its inventory, lease-bound, and the watched prefixes), opens the
// node-to-node listener (forwardServer.ts), and wires the parts: the manager
// leader campaign (leader.ts), the local share of the catalog (localApplier.ts),
// this node's replicas published (replicaPublisher.ts), the other nodes' replicas
// in the routing table (remoteReplicas.ts), cluster budgets (clusterBudget.ts),
// rate limits (clusterRate.ts), the cluster-wide admin view (clusterAdmin.ts),
// the shared state (sharedState.ts) and readiness (clusterReadiness.ts).
// Start order: listener first (peers can reach a node as soon as it is a member),
// then join, then watches. Close order is the reverse; leaving revokes the lease,
// so this node's entries vanish at once and the leader re-places its replicas.
// A shutdown drains first (drain()): the node stays a member, marked draining, so
// its replicas are re-placed and routed around while its work in flight finishes.

import type { ReplicaEntry } from '@inference/actors';
import { type Coordination, type Membership, PREFIX, type TtlRecords } from '@inference/cluster';
import { MAX_RECORD_BYTES, type RecordStore } from '@inference/storage';
import type { DeploymentSpec, Tracing } from '@inference/core';
import type { Runtime } from '../runtime.js';
import { secretPolicy } from '../config.js';
import { TlsReloader } from '../tlsFiles.js';
import { ClusterAdmin, parseAdminOp } from './clusterAdmin.js';
import type { ClusterBudgetShare } from './clusterBudget.js';
import { type ClusterConfig, parseHostPort } from './clusterConfig.js';
import { type ClusterWatches, joinCluster, leaderName, openCoordination, watchCluster } from './clusterJoin.js';
import { clusterStatus, clusterWaiting } from './clusterReadiness.js';
import type { ClusterRateShare } from './clusterRate.js';
import { ForwardingRunner, PeerPool } from './forwardClient.js';
import { ForwardServer } from './forwardServer.js';
import { ManagerLeader } from './leader.js';
import { LocalApplier } from './localApplier.js';
import { RemoteReplicas } from './remoteReplicas.js';
import { ReplicaPublisher } from './replicaPublisher.js';
import { type SharedState, nodeSharedState } from './sharedState.js';

export interface ClusterNodeOptions {
  readonly config: ClusterConfig;
  /** The node's own runtime, started with `clusterManaged`. */
  readonly base: Runtime;
  readonly budgetShare: ClusterBudgetShare;
  readonly rateShare: ClusterRateShare;
  /** Deployments from this node's config file (seeded by whichever node leads). */
  readonly seed: readonly DeploymentSpec[];
  readonly bodyLimitBytes: number;
  /** How long a stored response is kept in etcd (config `responses.ttlSeconds`); absent: RESPONSES_TTL_SECONDS. */
  readonly responsesTtlSeconds?: number;
  readonly secret: string | undefined;
  /** The etcd password (cluster.etcdAuth; the config module reads it from the environment). */
  readonly etcdPassword?: string | undefined;
  /** Tracing, when on (forwarded runs continue the caller's trace). */
  readonly tracing?: Tracing | undefined;
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

/** Stored Responses API objects live this long in etcd unless the config says otherwise (bounded: every node writes them). */
export const RESPONSES_TTL_SECONDS = 24 * 3600;

/** Stored responses in etcd, readable from every node, each at most MAX_RECORD_BYTES. */
function clusterRecords(ttl: TtlRecords): RecordStore {
  return {
    get: (key) => ttl.get(key),
    put: async (key, value) => {
      if (Buffer.byteLength(value) > MAX_RECORD_BYTES) return false;
      await ttl.put(key, value);
      return true;
    },
    delete: (key) => ttl.delete(key),
  };
}

export interface ClusterNode {
  /** The runtime the gateway serves: cluster-wide admin, local request path. */
  readonly runtime: Runtime;
  /** Keys, audit records and budget resets shared by every node (sharedState.ts). */
  readonly shared: SharedState;
  /** Re-reads cluster.tls files; true when new ones are in use. */
  reloadTls(): boolean;
  /**
   * The start of a shutdown: the node resigns and campaigns no more, marks itself
   * draining (the leader places its replicas elsewhere, peers send it nothing new)
   * and stops applying the catalog, so its replicas keep serving what is in flight
   * until `close()` (docs/cluster.md "Draining").
   */
  drain(): Promise<void>;
  /** Requests from peers this node is serving now (a drain waits for them too). */
  forwarded(): number;
  close(): Promise<void>;
}

/** The parts a started node runs, closed in the reverse order of their start. */
interface NodeParts {
  readonly tls: TlsReloader | undefined;
  readonly server: ForwardServer;
  readonly coordination: Coordination;
  readonly peers: PeerPool;
  readonly remote: RemoteReplicas;
  readonly applier: LocalApplier;
  readonly publisher: ReplicaPublisher;
  readonly leader: ManagerLeader;
  readonly admin: ClusterAdmin;
}

export async function startClusterNode(o: ClusterNodeOptions): Promise<ClusterNode> {
  const cfg = o.config;
  // Files are read and checked before the listener opens: a bad certificate stops start-up naming its key.
  const tls = cfg.tls === undefined ? undefined : new TlsReloader(cfg.tls, 'cluster.tls', o.log);
  const leading: { leader?: ManagerLeader } = {};
  const server = await listenForPeers(o, tls, () => leading.leader);
  const coordination = openCoordination(cfg, o.etcdPassword, o.coordination);
  try {
    const membership = await joinCluster(coordination, cfg, o.base.placement);
    o.budgetShare.attach(membership.counters);
    o.rateShare.attach(membership.counters);
    const watches = await watchCluster(coordination);
    const peers = new PeerPool(o.secret, tls);
    tls?.watch();
    const parts = startRoles(o, membership, watches, { tls, server, coordination, peers });
    leading.leader = parts.leader;
    return nodeOf(o, parts, membership, watches);
  } catch (e) {
    await abandonStart(tls, server, coordination);
    throw e;
  }
}

// --- Forwarding server ---

/**
 * The node-to-node listener: forwarded runs on this node's own replicas, and
 * admin writes from peers, passed to the leader once it is started.
 */
function listenForPeers(o: ClusterNodeOptions, tls: TlsReloader | undefined, leader: () => ManagerLeader | undefined): Promise<ForwardServer> {
  const cfg = o.config;
  // An apply from a peer is checked against this node's own allow-list too (the leader's word counts).
  const secrets = secretPolicy(o.base.config);
  // Only this node's own, non-forwarding replicas may serve a forwarded request.
  const localReplica = async (id: string): Promise<ReplicaEntry | undefined> => {
    const table = await o.base.coordinator.ask<ReplicaEntry[]>((reply) => ({ type: 'table', reply }), 5000);
    return table.find((r) => r.id === id && !(r.runner instanceof ForwardingRunner));
  };
  return ForwardServer.listen({
    tls,
    host: cfg.listenHost,
    port: parseHostPort(cfg.advertise, '--advertise').port,
    bodyLimitBytes: o.bodyLimitBytes,
    secret: o.secret,
    tracing: o.tracing,
    streams: o.base.streams,
    localReplica,
    admin: async (body) => {
      const op = parseAdminOp(body, o.base.runtimes);
      if (op.op === 'apply') secrets.check(op.spec);
      const l = leader();
      if (l === undefined) throw new Error('not started');
      return { revision: await l.admin(op) };
    },
  });
}

// --- Coordination roles: the other nodes' replicas, the local catalog share, publishing, the leader, admin ---

function startRoles(
  o: ClusterNodeOptions, membership: Membership, watches: ClusterWatches,
  started: Pick<NodeParts, 'tls' | 'server' | 'coordination' | 'peers'>,
): NodeParts {
  const self = o.config.nodeName;
  const onError = (e: unknown): void => { o.log(`cluster: ${e instanceof Error ? e.message : String(e)}`); };
  const { catalog, placement, replicas } = watches;
  const remote = new RemoteReplicas(self, o.base.coordinator, membership, replicas, started.peers, o.preferLocal === true);
  const applier = new LocalApplier(self, o.base, catalog, placement, onError);
  const publisher = new ReplicaPublisher(o.base, membership, onError);
  const leader = new ManagerLeader({
    membership, catalog, placement, specs: () => applier.specs(), seed: o.seed, ttlSeconds: o.config.leaseTtlSeconds, onError,
    shared: (p) => watches.shared.get(p),
    onLeading: (leads) => { o.log(`cluster: node ${self} ${leads ? 'leads' : 'no longer leads'} the cluster`); },
  });
  const admin = new ClusterAdmin({
    self, base: o.base, leader, catalog, specs: () => applier.specs(), remote, peers: started.peers, applied: () => applier.settled(),
    leaderAddress: () => {
      const name = leaderName(watches);
      return membership.members().find((m) => m.name === name)?.advertise;
    },
  });
  return { ...started, remote, applier, publisher, leader, admin };
}

// --- The node as the gateway sees it: runtime, status and readiness, shared state ---

function nodeOf(o: ClusterNodeOptions, parts: NodeParts, membership: Membership, watches: ClusterWatches): ClusterNode {
  const self = o.config.nodeName;
  const readiness = { self, membership, watches, leader: parts.leader, applier: parts.applier, seed: o.seed };
  const records = parts.coordination.records?.(PREFIX.responses, o.responsesTtlSeconds ?? RESPONSES_TTL_SECONDS);
  const onError = (e: unknown): void => { o.log(`cluster: ${e instanceof Error ? e.message : String(e)}`); };
  let draining: Promise<void> | undefined;
  const runtime: Runtime = {
    ...parts.admin.runtime(),
    cluster: clusterStatus(readiness),
    clusterWaiting: clusterWaiting(readiness),
    ...(records !== undefined ? { records: clusterRecords(records) } : {}),
  };
  return {
    runtime,
    shared: nodeSharedState(self, membership.counters, watches.shared, (op, watch) => parts.admin.shared(op, watch)),
    reloadTls: () => parts.tls?.reload() ?? false,
    drain: () => {
      draining ??= drainNode(parts, membership);
      return draining;
    },
    forwarded: () => parts.server.active(),
    close: async () => {
      await draining?.catch(onError);
      await closeNode(parts);
    },
  };
}

// --- Shutdown ---

/**
 * The start of a shutdown: stop applying the catalog, resign and campaign no more,
 * then mark this node draining in its membership entry (docs/cluster.md "Draining").
 */
async function drainNode(p: NodeParts, membership: Membership): Promise<void> {
  p.applier.close();
  await p.leader.close();
  await membership.setDraining();
}

/** Stops the parts in the reverse order of their start; leaving the store last revokes the lease. */
async function closeNode(p: NodeParts): Promise<void> {
  p.tls?.close();
  await p.leader.close();
  await p.publisher.close();
  p.applier.close();
  p.remote.close();
  p.peers.close();
  await p.server.close();
  await p.coordination.close();
}

/** A start that failed after the listener opened: closes what it opened. */
async function abandonStart(tls: TlsReloader | undefined, server: ForwardServer, coordination: Coordination): Promise<void> {
  tls?.close();
  await server.close();
  await coordination.close();
}
