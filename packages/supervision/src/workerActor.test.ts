import { describe, expect, it } from 'vitest';
import { ActorSystem } from '@inference/actors';
import { InferenceError } from '@inference/core';
import { localEngineDecider, remoteSessionDecider } from './strategy.js';
import { WorkerActor, WorkerHandle, type WorkerMsg } from './workerActor.js';

interface Res { gen: number; closed: boolean }

function setup(decider = localEngineDecider, failOpen = () => false) {
  const sys = new ActorSystem(`w${Math.random()}`);
  const opened: Res[] = [];
  const events: string[] = [];
  const worker = new WorkerActor<Res>(
    {
      open: (gen) => {
        if (failOpen()) return Promise.reject(new InferenceError('engine_unavailable', 'bad model', { fault: 'Unrecoverable' }));
        const r = { gen, closed: false };
        opened.push(r);
        return Promise.resolve(r);
      },
      close: (r) => {
        r.closed = true;
        return Promise.resolve();
      },
    },
    decider,
    { maxRestarts: 3, windowMs: 60_000 },
    { onRestart: (_e, n) => events.push(`restart ${n}`), onFailed: (_e, why) => events.push(`failed: ${why}`) },
  );
  const ref = sys.spawn<WorkerMsg<Res>>('worker', () => worker);
  return { sys, worker, handle: new WorkerHandle(ref, decider), opened, events };
}

const poisoned = () => new InferenceError('engine_unavailable', 'gpu fault', { fault: 'ContextPoisoned' });

describe('WorkerActor', () => {
  it('restarts a poisoned context and retries the work once on the new one', async () => {
    const { sys, handle, opened, events } = setup();
    const seen: number[] = [];
    const out = await handle.withContext((r) => {
      seen.push(r.gen);
      if (r.gen === 1) return Promise.reject(poisoned());
      return Promise.resolve('ok');
    });
    expect(out).toBe('ok');
    expect(seen).toEqual([1, 2]);
    expect(opened[0]?.closed).toBe(true);
    expect(events).toEqual(['restart 1']);
    await sys.stop();
  });

  it('with a context already known, restarts a poisoned one and retries once, a thrown failure counted as a rejected one', async () => {
    const { sys, handle, opened, events } = setup();
    expect(await handle.withContext((r) => Promise.resolve(r.gen))).toBe(1);
    const seen: number[] = [];
    const out = await handle.withContext((r) => {
      seen.push(r.gen);
      if (r.gen === 1) throw poisoned();
      return Promise.resolve('ok');
    });
    expect(out).toBe('ok');
    expect(seen).toEqual([1, 2]);
    expect(opened[0]?.closed).toBe(true);
    expect(events).toEqual(['restart 1']);
    // Not retried when the caller says so (something reached the client), nor a request's own failure.
    await expect(handle.withContext(() => Promise.reject(poisoned()), () => false)).rejects.toMatchObject({ fault: 'ContextPoisoned' });
    const bad = new InferenceError('invalid_request', 'bad');
    let calls = 0;
    await expect(handle.withContext(() => { calls++; return Promise.reject(bad); })).rejects.toBe(bad);
    expect(calls).toBe(1);
    await sys.stop();
  });

  it('keeps the context on OutOfMemory (resume)', async () => {
    const { sys, handle, opened } = setup();
    const oom = new InferenceError('overloaded', 'oom', { fault: 'OutOfMemory' });
    await expect(handle.withContext(() => Promise.reject(oom))).rejects.toBe(oom);
    const { resource } = await handle.context();
    expect(resource.gen).toBe(1);
    expect(opened).toHaveLength(1);
    await sys.stop();
  });

  it('fails the worker after the 4th poisoning within the window', async () => {
    const { sys, worker, handle, events } = setup();
    for (let i = 0; i < 4; i++) {
      const { generation } = await handle.context();
      handle.report(poisoned(), generation);
    }
    await expect(handle.context()).rejects.toMatchObject({ kind: 'engine_unavailable' });
    expect(worker.state).toBe('failed');
    expect(events.at(-1)).toMatch(/^failed: restart budget spent/);
    expect(events.filter((e) => e.startsWith('restart'))).toHaveLength(3);
    await sys.stop();
  });

  it('ignores a late fault from an older generation', async () => {
    const { sys, handle, events } = setup();
    const { generation } = await handle.context();
    handle.report(poisoned(), generation);
    handle.report(poisoned(), generation);
    const second = await handle.context();
    expect(second.generation).toBe(2);
    expect(events).toEqual(['restart 1']);
    await sys.stop();
  });

  it('stops on an unrecoverable fault and when the context cannot open', async () => {
    const a = setup();
    const { generation } = await a.handle.context();
    a.handle.report(new InferenceError('internal', 'x', { fault: 'Unrecoverable' }), generation);
    await expect(a.handle.context()).rejects.toMatchObject({ kind: 'engine_unavailable' });
    expect(a.worker.state).toBe('failed');
    await a.sys.stop();

    const b = setup(localEngineDecider, () => true);
    // The caller gets the reason the context could not open, not a generic one.
    await expect(b.handle.context()).rejects.toMatchObject({ kind: 'engine_unavailable', message: 'bad model' });
    await new Promise((r) => setTimeout(r, 5));
    expect(b.worker.state).toBe('failed');
    expect(b.events).toEqual(['failed: failed to open: bad model']);
    await b.sys.stop();
  });

  it('rebuilds a remote session on 401 and retries once', async () => {
    const { sys, handle } = setup(remoteSessionDecider);
    let calls = 0;
    const out = await handle.withContext((r) => {
      calls++;
      if (r.gen === 1) return Promise.reject(new InferenceError('unauthorized', 'bad key'));
      return Promise.resolve(r.gen);
    });
    expect(out).toBe(2);
    expect(calls).toBe(2);
    await sys.stop();
  });
});

describe('WorkerHandle', () => {
  it('does not treat a request failure without a fault as a context failure', async () => {
    const { sys, handle, worker, opened } = setup();
    const cancelled = new InferenceError('internal', 'client went away');
    await expect(handle.withContext(() => Promise.reject(cancelled))).rejects.toBe(cancelled);
    await expect(handle.withContext(() => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
    const { resource } = await handle.context();
    expect(resource.gen).toBe(1);
    expect(worker.state).toBe('serving');
    expect(opened).toHaveLength(1);
    await sys.stop();
  });
});
