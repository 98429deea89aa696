// The admin API's view of the cluster, as a Runtime the gateway serves:
// - writes (apply, remove, scale) go to the manager leader: applied directly
//   when this node leads, else sent to the leader's forwarding listener. They
//   answer once the leader has written the catalog AND this node's own watch has
//   seen that revision and applied it, so a GET right after shows the change;
// - reads (get, list) are cluster-wide: the catalog's spec (the cluster replica
//   count) with this node's replicas and every other node's published ones,
//   each carrying its node.
// The request path (spec, coordinator, budgets) stays the node's own runtime.

import type { DeploymentState, DeploymentStatus, ReplicaStatus } from '@inference/actors';
import type { PrefixWatch } from '@inference/cluster';
import { type DeploymentSpec, InferenceError, asObject, noUnknownKeys, optNumber, parseDeployment, reqString } from '@inference/core';
import { MAX_REPLICAS } from '@inference/actors';
import type { Runtime } from '../runtime.js';
import { decodeFrame, frameError } from './forwardCodec.js';
import { ADMIN_PATH, SECRET_HEADER } from './forwardServer.js';
import type { PeerPool } from './forwardClient.js';
import type { AdminOp, ManagerLeader } from './leader.js';
import type { RemoteReplicas } from './remoteReplicas.js';
import { remoteReplicaId } from './clusterKeys.js';

/** How long a write waits for this node to see and apply it. */
const APPLY_WAIT_MS = 10_000;
const ADMIN_TIMEOUT_MS = 10_000;

export type ClusterReplicaStatus = ReplicaStatus & { readonly node: string };

export interface ClusterAdminDeps {
  readonly self: string;
  readonly base: Runtime;
  readonly leader: ManagerLeader;
  /** The leader's advertise address, if one is known. */
  readonly leaderAddress: () => string | undefined;
  readonly catalog: PrefixWatch;
  readonly specs: () => DeploymentSpec[];
  readonly remote: RemoteReplicas;
  readonly peers: PeerPool;
  /** Resolves when this node has applied every catalog change it has seen. */
  readonly applied: () => Promise<void>;
}

/** An admin op from a peer's body, validated. */
export function parseAdminOp(text: string, runtimes: readonly string[] = []): AdminOp {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new InferenceError('invalid_request', 'admin body is not valid JSON');
  }
  const o = asObject(doc, '');
  switch (o.op) {
    case 'apply':
      noUnknownKeys(o, ['op', 'spec'], '');
      return { op: 'apply', spec: parseDeployment(o.spec, 'spec', runtimes) };
    case 'remove':
      noUnknownKeys(o, ['op', 'name'], '');
      return { op: 'remove', name: reqString(o, 'name', '', { nonEmpty: true }) };
    case 'scale': {
      noUnknownKeys(o, ['op', 'name', 'replicas'], '');
      const replicas = optNumber(o, 'replicas', '', { min: 0, max: MAX_REPLICAS, integer: true });
      if (replicas === undefined) throw new InferenceError('invalid_request', 'replicas: is required', { param: 'replicas' });
      return { op: 'scale', name: reqString(o, 'name', '', { nonEmpty: true }), replicas };
    }
    default:
      throw new InferenceError('invalid_request', "op: expected 'apply', 'remove' or 'scale'", { param: 'op' });
  }
}

export class ClusterAdmin {
  constructor(private readonly deps: ClusterAdminDeps) {}

  /** The runtime the gateway serves: the node's own, with cluster-wide admin. */
  runtime(): Runtime {
    const base = this.deps.base;
    return {
      ...base,
      apply: async (spec) => {
        await this.write({ op: 'apply', spec });
        return this.get(spec.name);
      },
      remove: async (name) => {
        await this.write({ op: 'remove', name });
      },
      scale: async (name, replicas) => {
        await this.write({ op: 'scale', name, replicas });
        return this.get(name);
      },
      get: (name) => this.get(name),
      list: () => this.list(),
    };
  }

  private async write(op: AdminOp): Promise<void> {
    const revision = this.deps.leader.leading() ? await this.deps.leader.admin(op) : await this.toLeader(op);
    const deadline = Date.now() + APPLY_WAIT_MS;
    while (this.deps.catalog.revision() < revision && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.deps.applied();
  }

  private toLeader(op: AdminOp): Promise<number> {
    const address = this.deps.leaderAddress();
    if (address === undefined) return Promise.reject(new InferenceError('engine_unavailable', 'the cluster has no leader now; try again', { retryAfterMs: 1000 }));
    return new Promise<number>((resolve, reject) => {
      const headers: Record<string, string> = { ':method': 'POST', ':path': ADMIN_PATH, 'content-type': 'application/json' };
      if (this.deps.peers.secret !== undefined) headers[SECRET_HEADER] = this.deps.peers.secret;
      const unreachable = (why: string): InferenceError => new InferenceError('engine_unavailable', 'the cluster leader could not be reached; try again', { diagnostic: why, retryAfterMs: 1000 });
      let stream;
      try {
        stream = this.deps.peers.session(address).request(headers);
      } catch (e) {
        reject(unreachable(e instanceof Error ? e.message : String(e)));
        return;
      }
      stream.setTimeout(ADMIN_TIMEOUT_MS, () => { stream.close(); });
      let status = 0;
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.on('data', (d: string) => { text += d; });
      stream.on('error', (e: Error) => { reject(unreachable(e.message)); });
      stream.on('close', () => {
        if (status === 200) {
          const o = safeJson(text);
          const rev = typeof o === 'object' && o !== null && 'revision' in o ? o.revision : undefined;
          if (typeof rev === 'number') resolve(rev);
          else reject(unreachable('leader answered without a revision'));
          return;
        }
        try {
          const f = decodeFrame(text.trim());
          reject('error' in f ? frameError(f.error) : unreachable('unexpected answer'));
        } catch (e) {
          reject(e instanceof InferenceError ? e : unreachable(String(e)));
        }
      });
      stream.end(JSON.stringify(op));
    });
  }

  async get(name: string): Promise<DeploymentStatus> {
    const found = (await this.list()).find((d) => d.spec.name === name);
    if (found === undefined) throw new InferenceError('not_found', `deployment '${name}' does not exist`, { param: 'name' });
    return found;
  }

  async list(): Promise<DeploymentStatus[]> {
    const local = new Map((await this.deps.base.list()).map((d) => [d.spec.name, d]));
    const remote = this.deps.remote.list();
    return this.deps.specs().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((spec) => {
      const mine = local.get(spec.name);
      const replicas: ClusterReplicaStatus[] = (mine?.replicas ?? []).map((r) => ({ ...r, node: this.deps.self }));
      for (const { node, info } of remote) {
        if (info.deployment !== spec.name) continue;
        replicas.push({ id: remoteReplicaId(node, info.id), state: info.state, restarts: info.restarts, load: info.load, revision: info.revision, since: info.since, node });
      }
      const serving = replicas.filter((r) => r.state === 'serving').length;
      const out: DeploymentStatus = { spec, replicas, state: clusterState(spec.replicas, replicas), desired: spec.replicas, serving, revision: mine?.revision ?? 1 };
      if (mine?.reason !== undefined) out.reason = mine.reason;
      return out;
    });
  }
}

/** A deployment's state from all its replicas across the cluster. */
function clusterState(desired: number, replicas: readonly ReplicaStatus[]): DeploymentState {
  const serving = replicas.filter((r) => r.state === 'serving').length;
  if (serving >= desired && replicas.every((r) => r.state === 'serving')) return 'serving';
  if (replicas.some((r) => r.state === 'loading' || r.state === 'pending')) return replicas.some((r) => r.state === 'loading') ? 'loading' : 'pending';
  if (replicas.some((r) => r.state === 'draining')) return 'draining';
  if (replicas.some((r) => r.state === 'failed')) return 'failed';
  return serving >= desired ? 'serving' : 'pending';
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
