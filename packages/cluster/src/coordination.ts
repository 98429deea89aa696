// The two Coordination implementations. Both are the same logic (membership,
// elections, watched prefixes, counters) over a store: InMemoryCoordination
// over a MemoryStore (one process; several instances sharing one store form an
// in-process cluster), EtcdCoordination over etcd. Closing an instance closes
// every membership and watch it opened and clears every timer.

import { EtcdKv, type EtcdKvOptions } from './etcdKv.js';
import { IpcKvClient, type KvChannel } from './ipcKv.js';
import type { KvBackend } from './kv.js';
import { MemoryStore } from './memoryKv.js';
import { KvMembership } from './membership.js';
import { namespaced } from './namespace.js';
import { KvPrefixWatch } from './prefixWatch.js';
import { KvTtlRecords } from './records.js';
import type { Coordination, JoinOptions, Membership, NodeSpec, PrefixWatch, TtlRecords } from './types.js';

export interface CloseOptions {
  /** Revoke the lease (default). False leaves it to expire, as a crashed node would. */
  readonly leave?: boolean;
}

abstract class KvCoordination implements Coordination {
  abstract readonly kind: 'memory' | 'etcd' | 'ipc';
  private readonly memberships = new Set<KvMembership>();
  private readonly watches = new Set<KvPrefixWatch>();
  private closed = false;

  constructor(protected readonly kv: KvBackend) {}

  async join(node: NodeSpec, options?: JoinOptions): Promise<Membership> {
    if (this.closed) throw new Error('coordination is closed');
    const m = await KvMembership.join(this.kv, node, options);
    this.memberships.add(m);
    return m;
  }

  watchPrefix(prefix: string): PrefixWatch {
    if (this.closed) throw new Error('coordination is closed');
    const w = new KvPrefixWatch(this.kv, prefix);
    this.watches.add(w);
    return w;
  }

  records(prefix: string, ttlSeconds: number): TtlRecords {
    return new KvTtlRecords(this.kv, prefix, ttlSeconds);
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.close();
    this.watches.clear();
    await Promise.all([...this.memberships].map((m) => m.close(options.leave ?? true)));
    this.memberships.clear();
    await this.kv.close();
  }
}

export class InMemoryCoordination extends KvCoordination {
  readonly kind = 'memory' as const;

  /** Pass one store to several instances to form an in-process cluster. */
  constructor(readonly store: MemoryStore = new MemoryStore()) {
    super(store.backend());
  }
}

export interface EtcdCoordinationOptions extends EtcdKvOptions {
  /** The cluster's name: every key lives under `/inference/<cluster>/`. */
  readonly cluster: string;
}

export class EtcdCoordination extends KvCoordination {
  readonly kind = 'etcd' as const;

  constructor(options: EtcdCoordinationOptions) {
    super(namespaced(new EtcdKv(options), rootOf(options.cluster)));
  }
}

/** The workers of one machine over their primary's store (ipcKv.ts). */
export class IpcCoordination extends KvCoordination {
  readonly kind = 'ipc' as const;

  constructor(channel: KvChannel) {
    super(new IpcKvClient(channel));
  }
}

export function rootOf(cluster: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(cluster)) throw new RangeError(`cluster name '${cluster}' may only contain letters, digits and . _ -`);
  return `/inference/${cluster}/`;
}

/** `etcd://host:port[,host:port...]` (the --cluster flag) to host:port list. */
export function parseClusterUrl(url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url);
  const body = m?.[1];
  if (body === undefined) throw new RangeError(`cluster URL '${url}' must look like etcd://HOST:PORT[,HOST:PORT]`);
  const hosts = body.replace(/\/+$/, '').split(',');
  for (const h of hosts) if (!/^[^\s/:]+:\d+$/.test(h)) throw new RangeError(`cluster URL '${url}': '${h}' is not HOST:PORT`);
  return hosts;
}
