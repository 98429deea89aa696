// The coordination contract against the in-process store, and the store-side
// fencing rule with a leader that cannot hear of its own loss.

import { describe, expect, it } from 'vitest';
import { InMemoryCoordination } from './coordination.js';
import { coordinationContract, memoryStoreEnv } from './coordination.suite.js';
import { PREFIX, electionPrefix } from './keys.js';
import type { KvBackend } from './kv.js';
import { KvMembership } from './membership.js';
import { MemoryStore } from './memoryKv.js';
import { FencedError } from './types.js';

describe('InMemoryCoordination', () => {
  coordinationContract(() => memoryStoreEnv('memory', (store) => ({ coordination: new InMemoryCoordination(store) })));
});

describe('fencing at the store', () => {
  it('refuses a write of a leader that has not yet heard it was deposed', async () => {
    const store = new MemoryStore();
    const kv = store.backend();
    // Election watches never deliver: the leader cannot learn of its loss locally.
    const deaf: KvBackend = {
      grantLease: (ttl) => kv.grantLease(ttl),
      keepAlive: (lease) => kv.keepAlive(lease),
      revokeLease: (lease) => kv.revokeLease(lease),
      range: (prefix) => kv.range(prefix),
      get: (key) => kv.get(key),
      txn: (compares, ops) => kv.txn(compares, ops),
      close: () => kv.close(),
      watch: (prefix, from, handler) => (prefix.startsWith(PREFIX.election) ? { close: () => undefined } : kv.watch(prefix, from, handler)),
    };
    const a = await KvMembership.join(deaf, { name: 'a', advertise: '127.0.0.1:1', inventory: null }, { ttlSeconds: 5 });
    try {
      const leader = await a.campaign('manager');
      await leader.put('catalog/x', 1);
      const [candidate] = (await kv.range(electionPrefix('manager'))).records;
      await kv.txn([], [{ type: 'delete', key: candidate!.key }]);
      expect(leader.signal.aborted).toBe(false);
      await expect(leader.put('catalog/x', 2)).rejects.toBeInstanceOf(FencedError);
      expect(leader.signal.aborted).toBe(true);
      expect(await leader.lost).toBe('key-deleted');
      expect((await kv.get('catalog/x'))?.value).toBe('1');
    } finally {
      await a.close(true);
      store.close();
    }
  });
});
