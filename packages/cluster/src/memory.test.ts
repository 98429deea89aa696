// The coordination contract against the in-process store.

import { describe } from 'vitest';
import { InMemoryCoordination } from './coordination.js';
import { coordinationContract } from './coordination.suite.js';
import { MemoryStore } from './memoryKv.js';

describe('InMemoryCoordination', () => {
  coordinationContract(() => {
    const store = new MemoryStore();
    const coords: InMemoryCoordination[] = [];
    return Promise.resolve({
      name: 'memory',
      node: () => {
        const c = new InMemoryCoordination(store);
        coords.push(c);
        return c;
      },
      outage: () => {
        store.setReachable(false);
        return Promise.resolve();
      },
      restore: () => {
        store.setReachable(true);
        return Promise.resolve();
      },
      deleteRaw: async (key) => {
        await store.backend().txn([], [{ type: 'delete', key }]);
      },
      rawKeys: async (prefix) => (await store.backend().range(prefix)).records.map((r) => r.key),
      teardown: async () => {
        store.setReachable(true);
        await Promise.all(coords.map((c) => c.close()));
        store.close();
      },
    });
  });
});
