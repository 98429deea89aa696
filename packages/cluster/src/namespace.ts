// A store view confined to one root (e.g. `/inference/<cluster>/`): callers use
// keys relative to the root, and the backend sees full keys. Two clusters, or
// two test runs, on one etcd never see each other's keys.

import type { KvBackend, KvCompare, KvEvent, KvOp, KvRecord, KvWatch, KvWatchHandler } from './kv.js';

export function namespaced(kv: KvBackend, root: string): KvBackend {
  const strip = (r: KvRecord): KvRecord => ({ ...r, key: r.key.slice(root.length) });
  const stripEvent = (e: KvEvent): KvEvent => (e.type === 'put' ? { type: 'put', record: strip(e.record) } : { ...e, key: e.key.slice(root.length) });
  return {
    grantLease: (ttl) => kv.grantLease(ttl),
    keepAlive: (lease) => kv.keepAlive(lease),
    revokeLease: (lease) => kv.revokeLease(lease),
    range: async (prefix) => {
      const res = await kv.range(root + prefix);
      return { records: res.records.map(strip), revision: res.revision };
    },
    get: async (key) => {
      const r = await kv.get(root + key);
      return r === undefined ? undefined : strip(r);
    },
    txn: (compares: readonly KvCompare[], ops: readonly KvOp[]) =>
      kv.txn(
        compares.map((c) => ({ ...c, key: root + c.key })),
        ops.map((o) => ({ ...o, key: root + o.key })),
      ),
    watch: (prefix: string, from: number, handler: KvWatchHandler): KvWatch =>
      kv.watch(root + prefix, from, {
        onEvents: (events) => {
          handler.onEvents(events.map(stripEvent));
        },
        onConnection: (live) => {
          handler.onConnection(live);
        },
        onBroken: (reason) => {
          handler.onBroken(reason);
        },
      }),
    close: () => kv.close(),
  };
}
