// Publishes this node's replicas to `replicas/<node>/<id>` (lease-bound, so they
// vanish with the node): the node is the only writer of its entries. It samples
// the DeploymentManagerActor's status every PUBLISH_MS and writes an entry when
// its state, revision or restarts change, or its load changed and LOAD_MS has
// passed since the last write (load is a routing hint, not worth a write per
// request); an entry whose replica is gone is deleted. While etcd is
// unreachable the membership remembers the writes and makes them when it returns.

import type { Membership } from '@inference/cluster';
import type { Runtime } from '../runtime.js';
import { segmentOf } from './clusterKeys.js';
import type { PublishedReplica } from './remoteReplicas.js';

const PUBLISH_MS = 200;
const LOAD_MS = 2000;

interface Written {
  readonly value: PublishedReplica;
  readonly at: number;
}

export class ReplicaPublisher {
  private readonly written = new Map<string, Written>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly membership: Membership,
    private readonly onError: (e: unknown) => void,
  ) {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().catch(this.onError).finally(() => { this.schedule(PUBLISH_MS); });
    }, ms);
  }

  /** Publishes now (after a local change the caller wants seen at once). */
  async tick(): Promise<void> {
    const now = Date.now();
    const seen = new Set<string>();
    const writes: Promise<void>[] = [];
    for (const d of await this.runtime.list()) {
      for (const r of d.replicas) {
        const key = segmentOf(r.id);
        seen.add(key);
        const value: PublishedReplica = { id: r.id, deployment: d.spec.name, state: r.state, load: r.load, revision: r.revision, restarts: r.restarts, since: r.since };
        const prev = this.written.get(key);
        if (prev !== undefined && !changed(prev, value, now)) continue;
        this.written.set(key, { value, at: now });
        writes.push(this.membership.putReplica(key, { ...value, load: { ...value.load } }));
      }
    }
    for (const key of [...this.written.keys()]) {
      if (seen.has(key)) continue;
      this.written.delete(key);
      writes.push(this.membership.deleteReplica(key));
    }
    const failed = (await Promise.allSettled(writes)).find((r) => r.status === 'rejected');
    if (failed !== undefined) this.onError(failed.reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }
}

function changed(prev: Written, v: PublishedReplica, now: number): boolean {
  const p = prev.value;
  if (p.state !== v.state || p.revision !== v.revision || p.restarts !== v.restarts || p.deployment !== v.deployment) return true;
  const loadMoved = p.load.outstanding !== v.load.outstanding || p.load.queued !== v.load.queued || p.load.capacity !== v.load.capacity;
  return loadMoved && now - prev.at >= LOAD_MS;
}
