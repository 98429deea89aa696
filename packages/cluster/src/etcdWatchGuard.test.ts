import { describe, expect, it } from 'vitest';
import { WatchManager } from 'etcd3/lib/watch.js';
import './etcdKv.js';

interface Internals {
  watchers: { id: string | null }[];
  handleResponse(res: unknown): void;
  handleCreatedResponse(res: unknown): void;
}

function manager(watchers: { id: string | null }[]): Internals {
  return Object.assign(Object.create(WatchManager.prototype) as Internals, { watchers });
}

describe('etcd3 watch answers for a watcher already dropped', () => {
  it('are dropped instead of thrown (a throw there is an unhandled rejection)', () => {
    expect(() => { manager([{ id: '1' }]).handleResponse({ watch_id: '7', canceled: false, events: [] }); }).not.toThrow();
    expect(() => { manager([{ id: '1' }]).handleCreatedResponse({ watch_id: '7', created: true, canceled: true }); }).not.toThrow();
  });
});
