// The coordination contract over the IPC store (ipcKv.ts): coordinations in
// "workers" whose store is a MemoryStore served by a "primary" across message
// channels that copy every message (structured clone, as process IPC does).

import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { IpcCoordination } from './coordination.js';
import { coordinationContract, memoryStoreEnv } from './coordination.suite.js';
import { IpcKvClient, type KvChannel, serveKv } from './ipcKv.js';
import { MemoryStore } from './memoryKv.js';
import { UnavailableError } from './types.js';

/** Two ends of a channel; `cut()` makes both ends' sends throw, as a dead worker's IPC does. */
function channelPair(): { primary: KvChannel; worker: KvChannel; cut: () => void } {
  const toPrimary = new EventEmitter();
  const toWorker = new EventEmitter();
  let open = true;
  const end = (inbox: EventEmitter, outbox: EventEmitter): KvChannel => ({
    send: (m) => {
      if (!open) throw new Error('channel closed');
      const copy = structuredClone(m);
      setImmediate(() => outbox.emit('m', copy));
    },
    onMessage: (l) => {
      inbox.on('m', l);
      return () => { inbox.off('m', l); };
    },
  });
  return { primary: end(toPrimary, toWorker), worker: end(toWorker, toPrimary), cut: () => { open = false; } };
}

describe('IpcCoordination', () => {
  coordinationContract(() => memoryStoreEnv('ipc', (store) => {
    const ch = channelPair();
    const release = serveKv(store.backend(), ch.primary);
    return { coordination: new IpcCoordination(ch.worker), release };
  }));

  it('a call on a channel that is gone rejects with UnavailableError, not a hang', async () => {
    const store = new MemoryStore();
    const ch = channelPair();
    serveKv(store.backend(), ch.primary);
    const kv = new IpcKvClient(ch.worker);
    expect(await kv.grantLease(5)).toMatch(/^\d+$/);
    ch.cut();
    await expect(kv.range('/')).rejects.toBeInstanceOf(UnavailableError);
    await kv.close();
    await expect(kv.get('/x')).rejects.toBeInstanceOf(UnavailableError);
    store.close();
  });

  it('an error of the store crosses the channel with its message', async () => {
    const store = new MemoryStore();
    const ch = channelPair();
    serveKv(store.backend(), ch.primary);
    const kv = new IpcKvClient(ch.worker);
    store.setReachable(false);
    await expect(kv.range('/')).rejects.toBeInstanceOf(UnavailableError);
    store.setReachable(true);
    const lease = await kv.grantLease(5);
    const { succeeded } = await kv.txn([{ key: '/a', createRevision: 0 }], [{ type: 'put', key: '/a', value: '1', lease }]);
    expect(succeeded).toBe(true);
    expect((await kv.get('/a'))?.value).toBe('1');
    expect(await kv.get('/missing')).toBeUndefined();
    await kv.close();
    store.close();
  });
});
