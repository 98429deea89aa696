// One node of a cluster: joins etcd (membership with its inventory, lease-bound),
// opens the node-to-node listener, and wires the parts: the manager leader
// campaign (leader.ts), the local share of the catalog (localApplier.ts), this
// node's replicas published (replicaPublisher.ts), the other nodes' replicas in
// the routing table (remoteReplicas.ts), cluster budgets (clusterBudget.ts), rate limits (clusterRate.ts) and
// the cluster-wide admin view (clusterAdmin.ts).
// Start order: listener first (peers can reach a node as soon as it is a member),
// then join, then watches. Close order is the reverse; leaving revokes the lease,
// so this node's entries vanish at once and the leader re-places its replicas.

import type { ActorRef, NodeInventory, Placement, ReplicaEntry } from '@inference/actors';
import { type Coordination, EtcdCoordination, type EtcdCoordinationOptions, PREFIX, type PrefixWatch, type TtlRecords, electionPrefix, leaderOf } from '@inference/cluster';
import { MAX_RECORD_BYTES, type RecordStore } from '@inference/storage';
import type { DeploymentSpec, Tracing } from '@inference/core';
import type { ClusterStatus, Runtime } from '../runtime.js';
import { secretPolicy } from '../config.js';
import { ClusterAdmin, parseAdminOp } from './clusterAdmin.js';
import type { ClusterBudgetShare } from './clusterBudget.js';
import type { ClusterRateShare } from './clusterRate.js';
import type { ClusterConfig } from './clusterConfig.js';
import { MANAGER_ROLE } from './clusterKeys.js';
import { ForwardingRunner, PeerPool } from './forwardClient.js';
import { ForwardServer } from './forwardServer.js';
import { TlsReloader, readTlsFile } from '../tlsFiles.js';
import { ManagerLeader } from './leader.js';
import { LocalApplier } from './localApplier.js';
import { parseHostPort } from './clusterConfig.js';
import { RemoteReplicas } from './remoteReplicas.js';
import { ReplicaPublisher } from './replicaPublisher.js';
import { SHARED_PREFIX, type SharedPrefix, type SharedState } from './sharedState.js';

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

/** Stored Responses API objects live this long in etcd (bounded: every node writes them). */
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
  close(): Promise<void>;
}

function prefixOfShared(key: string): SharedPrefix {
  const p = Object.values(SHARED_PREFIX).find((x) => key.startsWith(x));
  if (p === undefined) throw new Error(`'${key}' is not under a shared prefix`);
  return p;
}

async function inventoryOf(placement: ActorRef<import('@inference/actors').PlacementMsg>): Promise<{ gpus: number; cpuThreads: number; ramMiB: number }> {
  const inv = await placement.ask<{ inventory: NodeInventory; reservations: Record<string, Placement> }>((reply) => ({ type: 'inventory', reply }));
  return { gpus: inv.inventory.gpus.length, cpuThreads: inv.inventory.cpuThreads, ramMiB: inv.inventory.ramMiB };
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

export async function startClusterNode(o: ClusterNodeOptions): Promise<ClusterNode> {
  const cfg = o.config;
  const self = cfg.nodeName;
  const onError = (e: unknown): void => { o.log(`cluster: ${e instanceof Error ? e.message : String(e)}`); };
  let leader: ManagerLeader | undefined;
  // An apply from a peer is checked against this node's own allow-list too (the leader's word counts).
  const secrets = secretPolicy(o.base.config);
  // Only this node's own, non-forwarding replicas may serve a forwarded request.
  const localReplica = async (id: string): Promise<ReplicaEntry | undefined> => {
    const table = await o.base.coordinator.ask<ReplicaEntry[]>((reply) => ({ type: 'table', reply }), 5000);
    return table.find((r) => r.id === id && !(r.runner instanceof ForwardingRunner));
  };
  // Files are read and checked before the listener opens: a bad certificate stops start-up naming its key.
  const tls = cfg.tls === undefined ? undefined : new TlsReloader(cfg.tls, 'cluster.tls', o.log);
  const server = await ForwardServer.listen({
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
      if (leader === undefined) throw new Error('not started');
      return { revision: await leader.admin(op) };
    },
  });
  const coordination = o.coordination ?? new EtcdCoordination({ hosts: cfg.etcd, cluster: cfg.name, tls: etcdTls(cfg), auth: etcdAuth(cfg, o.etcdPassword) });
  try {
    const membership = await coordination.join(
      { name: self, advertise: cfg.advertise, inventory: await inventoryOf(o.base.placement) },
      { ttlSeconds: cfg.leaseTtlSeconds, counterSyncMs: cfg.counterSyncMs },
    );
    o.budgetShare.attach(membership.counters);
    o.rateShare.attach(membership.counters);
    const catalog = coordination.watchPrefix(PREFIX.catalog);
    const placement = coordination.watchPrefix(PREFIX.placement);
    const replicas = coordination.watchPrefix(PREFIX.replicas);
    const election = coordination.watchPrefix(electionPrefix(MANAGER_ROLE));
    const sharedWatches = new Map<string, PrefixWatch>(Object.values(SHARED_PREFIX).map((p) => [p, coordination.watchPrefix(p)]));
    await Promise.all([catalog.ready, placement.ready, replicas.ready, election.ready, ...[...sharedWatches.values()].map((w) => w.ready)]);
    const peers = new PeerPool(o.secret, tls);
    tls?.watch();
    const remote = new RemoteReplicas(self, o.base.coordinator, membership, replicas, peers, o.preferLocal === true);
    const applier = new LocalApplier(self, o.base, catalog, placement, onError);
    const publisher = new ReplicaPublisher(o.base, membership, onError);
    const mgr = new ManagerLeader({
      membership, catalog, placement, specs: () => applier.specs(), seed: o.seed, ttlSeconds: cfg.leaseTtlSeconds, onError, shared: (p) => sharedWatches.get(p),
      onLeading: (leading) => { o.log(`cluster: node ${self} ${leading ? 'leads' : 'no longer leads'} the cluster`); },
    });
    leader = mgr;
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
    // Ready means the deployments serve here: a leader exists, the leading node's config
    // deployments have reached the catalog (latched: a later admin removal does not unready it),
    // and the local runtime holds what the catalog and placement ask of this node.
    let seedSeen = false;
    const waiting = (): string[] => {
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
    const shared = coordination.records?.(PREFIX.responses, RESPONSES_TTL_SECONDS);
    const runtime: Runtime = { ...admin.runtime(), cluster: status, clusterWaiting: waiting, ...(shared !== undefined ? { records: clusterRecords(shared) } : {}) };
    const watchOf = (p: SharedPrefix): PrefixWatch => {
      const w = sharedWatches.get(p);
      if (w === undefined) throw new Error(`no watch of ${p}`);
      return w;
    };
    const sharedState: SharedState = {
      node: self,
      counters: membership.counters,
      watch: watchOf,
      put: (key, value, expect) => admin.shared({ op: 'put', key, value, expect }, watchOf(prefixOfShared(key))),
      delete: (key) => admin.shared({ op: 'delete', key }, watchOf(prefixOfShared(key))),
    };
    return {
      runtime,
      shared: sharedState,
      reloadTls: () => tls?.reload() ?? false,
      close: async () => {
        tls?.close();
        await mgr.close();
        await publisher.close();
        applier.close();
        remote.close();
        peers.close();
        await server.close();
        await coordination.close();
      },
    };
  } catch (e) {
    tls?.close();
    await server.close();
    await coordination.close();
    throw e;
  }
}
