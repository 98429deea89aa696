// The coordination contract against a real etcd started for this file, plus
// what only a real etcd shows: a watch that resumes from a compacted revision
// re-snapshots instead of losing changes, and the URL of --cluster.

import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCoordination, parseClusterUrl, rootOf } from './coordination.js';
import { coordinationContract, waitFor } from './coordination.suite.js';
import { EtcdServer } from '../testing/etcdServer.js';
import type { WatchUpdate } from './types.js';

let server: EtcdServer;
let run = 0;

beforeAll(async () => {
  server = await EtcdServer.start();
});

afterAll(async () => {
  await server.destroy();
  expect(server.running()).toBe(false);
});

describe('EtcdCoordination', () => {
  coordinationContract(() => {
    if (!server.running()) throw new Error('etcd is not running');
    const cluster = `contract-${process.pid}-${++run}`;
    const root = rootOf(cluster);
    const raw = new Etcd3({ hosts: `http://${server.endpoint}` });
    const coords: EtcdCoordination[] = [];
    return Promise.resolve({
      name: 'etcd',
      node: () => {
        const c = new EtcdCoordination({ hosts: [server.endpoint], cluster, callTimeoutMs: 1000, watchRetryMs: 200 });
        coords.push(c);
        return c;
      },
      outage: () => server.stop(),
      restore: () => server.start(),
      deleteRaw: async (key) => {
        await raw.delete().key(root + key);
      },
      rawKeys: async (prefix) => (await raw.getAll().prefix(root + prefix).keys()).map((k) => k.slice(root.length)),
      teardown: async () => {
        if (!server.running()) await server.start();
        await Promise.all(coords.map((c) => c.close()));
        raw.close();
      },
    });
  });

  it('a watch that must resume from a compacted revision re-snapshots and ends current', async () => {
    const cluster = `compact-${process.pid}`;
    const root = rootOf(cluster);
    const raw = new Etcd3({ hosts: `http://${server.endpoint}` });
    const writer = new EtcdCoordination({ hosts: [server.endpoint], cluster, callTimeoutMs: 1000, watchRetryMs: 200 });
    // The reader's watch reconnects only 8 s after a drop: long enough for etcd
    // to restart and compact past the revision it would resume from.
    const reader = new EtcdCoordination({ hosts: [server.endpoint], cluster, callTimeoutMs: 1000, watchRetryMs: 8000 });
    try {
      const m = await writer.join({ name: 'w', advertise: '127.0.0.1:1', inventory: null }, { ttlSeconds: 2 });
      const leader = await m.campaign('manager');
      await leader.put('catalog/x', 0);
      const w = reader.watchPrefix('catalog/');
      const updates: WatchUpdate[] = [];
      w.subscribe((u) => updates.push(u));
      await w.ready;
      await server.stop();
      await waitFor(() => w.stale(), 10_000, 'stale');
      await server.start();
      // Write and compact past the watch's resume point before it reconnects.
      let last = 0;
      for (let i = 1; i <= 5; i++) last = Number((await raw.put(root + 'catalog/x').value(String(i)).exec()).header.revision);
      await raw.put(root + 'catalog/y').value('"new"');
      const top = Number((await raw.put(root + 'catalog/y').value('"newer"').exec()).header.revision);
      await raw.kv.compact({ revision: top, physical: true });
      await waitFor(() => w.revision() >= top && !w.stale(), 30_000, 'the watch to catch up');
      expect(w.entries().get('x')?.value).toBe(5);
      expect(w.entries().get('y')?.value).toBe('newer');
      expect(last).toBeLessThan(top);
      const kinds = updates.map((u) => u.type);
      expect(kinds[0]).toBe('snapshot');
      expect(kinds).toContain('stale');
      // The changes in between are gone from etcd: the watch was told so and
      // took a new snapshot instead of silently skipping them.
      const snapshots = updates.filter((u) => u.type === 'snapshot');
      expect(snapshots).toHaveLength(2);
      const second = snapshots[1];
      expect(second?.type === 'snapshot' ? second.revision : 0).toBeGreaterThanOrEqual(top);
      expect(updates.some((u) => u.type === 'put')).toBe(false);
    } finally {
      await Promise.all([writer.close(), reader.close()]);
      raw.close();
    }
  });

  it('reads --cluster URLs', () => {
    expect(parseClusterUrl('etcd://127.0.0.1:2379')).toEqual(['127.0.0.1:2379']);
    expect(parseClusterUrl('etcd://a:1,b:2/')).toEqual(['a:1', 'b:2']);
    expect(() => parseClusterUrl('http://a:1')).toThrow(/etcd:\/\//);
    expect(() => parseClusterUrl('etcd://a')).toThrow(/HOST:PORT/);
  });
});
