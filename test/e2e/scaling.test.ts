// Managed deployments under load, through the admin API and the real openai SDK:
// scaling 1 -> 3 -> 1 and a rolling spec change while streams run the whole time
// (zero failed requests), replica states observed by polling admin GET, and a
// replica that cannot be placed staying pending with the reason.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { type Status, StreamLoad, admin, sampleStates, servingIn, waitFor } from '../support/deployments.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ replicas: 1 });
  h.mock.setDefault({ chunkDelayMs: 15 });
});
afterAll(async () => {
  await h.close();
});

describe('scaling under streaming load', () => {
  it('scales 1 -> 3 -> 1 with zero failed requests', async () => {
    const load = new StreamLoad(h.client, 'gpt', 6, 8);
    const sampler = sampleStates(h.url, 'gpt');
    load.start();
    try {
      await waitFor(() => load.completed >= 12, 60_000, 'load running');
      const t0 = Date.now();
      let s = await admin<Status>(h.url, 'POST', '/admin/deployments/gpt/scale', { replicas: 3 });
      expect(s.desired).toBe(3);
      s = await waitFor(async () => {
        const x = await admin<Status>(h.url, 'GET', '/admin/deployments/gpt');
        return x.serving === 3 ? x : undefined;
      }, 60_000, '3 serving');
      const upMs = Date.now() - t0;
      expect(s.state).toBe('serving');
      const atThree = load.completed;
      // Stay at 3 until every replica has taken part of the load.
      await waitFor(async () => {
        const x = await admin<Status>(h.url, 'GET', '/admin/deployments/gpt');
        return load.completed >= atThree + 30 && x.replicas.every((r) => sampler.busy.has(r.id)) ? true : undefined;
      }, 60_000, 'all three replicas busy');
      const t1 = Date.now();
      await admin<Status>(h.url, 'POST', '/admin/deployments/gpt/scale', { replicas: 1 });
      s = await waitFor(async () => {
        const x = await admin<Status>(h.url, 'GET', '/admin/deployments/gpt');
        return x.replicas.length === 1 && x.state === 'serving' ? x : undefined;
      }, 60_000, 'back to 1');
      const downMs = Date.now() - t1;
      const atOne = load.completed;
      await waitFor(() => load.completed >= atOne + 12, 60_000, 'load after scale-down');
      await load.stop();
      sampler.stop();
      const counts = sampler.samples.map(servingIn);
      const drainingSeen = new Set(sampler.samples.flatMap((x) => x.replicas.filter((r) => r.state === 'draining').map((r) => r.id)));
      console.log(`[scaling] remote 1->3->1 under 6 concurrent streams: ${load.completed} streams completed, ${load.failures.length} failed; 1->3 all serving after ${upMs} ms, 3->1 drained after ${downMs} ms; ${sampler.samples.length} admin samples, replicas seen draining: ${[...drainingSeen].join(', ') || 'none (drained between samples)'}`);
      expect(load.failures).toEqual([]);
      expect(load.completed).toBeGreaterThan(atOne);
      expect(s.replicas).toHaveLength(1);
      expect(Math.max(...counts)).toBe(3);
      // Once three served, the count of serving replicas never fell below the desired count of that moment (3, then 1).
      const firstThree = counts.indexOf(3);
      expect(counts.slice(firstThree).every((c) => c >= 1)).toBe(true);
      expect(sampler.busy.size).toBeGreaterThanOrEqual(3);
    } finally {
      await load.stop();
      sampler.stop();
    }
  });

  it('a spec change rolls replicas one by one, never below desired serving', async () => {
    await admin(h.url, 'POST', '/admin/deployments/gpt/scale', { replicas: 3 });
    await waitFor(async () => ((await admin<Status>(h.url, 'GET', '/admin/deployments/gpt')).serving === 3 ? true : undefined), 60_000, '3 serving');
    const before = await admin<Status>(h.url, 'GET', '/admin/deployments/gpt');
    const oldIds = before.replicas.map((r) => r.id);
    const load = new StreamLoad(h.client, 'gpt', 6, 8);
    const sampler = sampleStates(h.url, 'gpt');
    load.start();
    try {
      await waitFor(() => load.completed >= 6, 60_000, 'load running');
      const t0 = Date.now();
      const applied = await admin<Status>(h.url, 'PUT', '/admin/deployments/gpt', { runtime: 'openai', endpoint: h.mock.url, model: 'gpt-4o-mini', replicas: 3, remote: { maxConcurrent: 32 } });
      expect(applied.revision).toBe(before.revision + 1);
      const done = await waitFor(async () => {
        const x = await admin<Status>(h.url, 'GET', '/admin/deployments/gpt');
        return x.state === 'serving' && x.replicas.length === 3 && x.replicas.every((r) => r.revision === applied.revision) ? x : undefined;
      }, 60_000, 'roll finished');
      const rollMs = Date.now() - t0;
      const atEnd = load.completed;
      await waitFor(() => load.completed >= atEnd + 6, 60_000, 'load after roll');
      await load.stop();
      sampler.stop();
      const rev = applied.revision;
      const timeline = sampler.samples.map((x) => ({
        serving: servingIn(x),
        newServing: x.replicas.filter((r) => r.revision === rev && r.state === 'serving').length,
        newStarting: x.replicas.filter((r) => r.revision === rev && (r.state === 'pending' || r.state === 'loading')).length,
        // Old replicas no longer serving: draining, or gone from the list.
        oldOut: oldIds.filter((id) => x.replicas.find((r) => r.id === id)?.state !== 'serving').length,
      }));
      const steps = new Set(timeline.map((t) => `${t.newServing}/${t.oldOut}`));
      console.log(`[scaling] remote roll of 3 replicas under 6 concurrent streams: ${rollMs} ms, ${load.completed} streams completed, ${load.failures.length} failed; ${sampler.samples.length} admin samples, min serving ${Math.min(...timeline.map((t) => t.serving))}; (new serving/old out) states seen: ${[...steps].join(' ')}`);
      expect(load.failures).toEqual([]);
      expect(done.replicas.map((r) => r.id).some((id) => oldIds.includes(id))).toBe(false);
      for (const t of timeline) {
        // Never fewer than desired serving; one new replica starting at a time;
        // an old replica leaves only once a new one serves in its place.
        expect(t.serving).toBeGreaterThanOrEqual(3);
        expect(t.newStarting).toBeLessThanOrEqual(1);
        expect(t.newServing).toBeGreaterThanOrEqual(t.oldOut);
      }
      expect(timeline.at(-1)).toMatchObject({ newServing: 3, oldOut: 3 });
      // (Remote replicas serve within milliseconds, so the steps in between are usually
      // too quick to sample here; scaling-local.test.ts observes them on the local engine.)
    } finally {
      await load.stop();
      sampler.stop();
    }
  });
});

describe('placement and the scale endpoint', () => {
  it('a replica that needs a GPU this node lacks stays pending with the reason; requests get 503', async () => {
    const put = await admin<Status>(h.url, 'PUT', '/admin/deployments/big', {
      runtime: 'llama', model: 'models/stories260K.gguf', replicas: 1, engine: { gpus: 1, gpuMemoryMiB: 8000 },
    });
    expect(put.desired).toBe(1);
    const s = await waitFor(async () => {
      const x = await admin<Status>(h.url, 'GET', '/admin/deployments/big');
      return x.replicas[0]?.reason !== undefined ? x : undefined;
    }, 60_000, 'placement answer');
    expect(s.state).toBe('pending');
    expect(s.replicas[0]?.state).toBe('pending');
    expect(s.replicas[0]?.reason).toMatch(/^needs 1 GPU with 8000 MiB free, node \S+ has 0 GPUs \(/);
    expect(s.reason).toMatch(/cannot be placed: needs 1 GPU/);
    await expect(h.client.chat.completions.create({ model: 'big', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 503 });
    const node = await admin<{ inventory: { cpuThreads: number; gpus: unknown[] } }>(h.url, 'GET', '/admin/node');
    expect(node.inventory.cpuThreads).toBeGreaterThan(0);
    expect(node.inventory.gpus).toEqual([]);
    expect((await admin<Status>(h.url, 'POST', '/admin/deployments/big/scale', { replicas: 0 })).desired).toBe(0);
    const zero = await waitFor(async () => {
      const x = await admin<Status>(h.url, 'GET', '/admin/deployments/big');
      return x.replicas.length === 0 ? x : undefined;
    }, 60_000, 'pending replica gone');
    expect(zero.state).toBe('serving');
    await admin(h.url, 'DELETE', '/admin/deployments/big');
  });

  it('bad scale calls get taxonomy errors', async () => {
    const call = (path: string, body: string) => fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const cases: [string, string, number, string | null][] = [
      ['/admin/deployments/gpt/scale', '{"replicas":-1}', 400, 'replicas'],
      ['/admin/deployments/gpt/scale', '{"replicas":1.5}', 400, 'replicas'],
      ['/admin/deployments/gpt/scale', '{"replicas":"2"}', 400, 'replicas'],
      ['/admin/deployments/gpt/scale', '{"replica":2}', 400, 'replica'],
      ['/admin/deployments/gpt/scale', '{}', 400, 'replicas'],
      ['/admin/deployments/gpt/scale', '[2]', 400, null],
      ['/admin/deployments/gpt/scale', '{', 400, null],
      ['/admin/deployments/ghost/scale', '{"replicas":1}', 404, 'name'],
    ];
    for (const [path, body, status, param] of cases) {
      const res = await call(path, body);
      expect(res.status, body).toBe(status);
      const err = ((await res.json()) as { error: { type: string; code: string; param: string | null } }).error;
      expect(err.type).toBe('invalid_request_error');
      expect(err.code).toBe(status === 404 ? 'model_not_found' : 'invalid_request');
      if (param !== null) expect(err.param).toBe(param);
    }
  });
});
