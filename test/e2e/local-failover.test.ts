// Supervision of local replicas seen from a client: two replicas of the real
// model in engine host processes; hosts are stopped, killed and poisoned while
// requests run. The gateway stays up, requests without output yet move to the
// other replica, a replica past its restart budget is Failed and the deployment
// keeps serving on the other one.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');

let server: Server;
type ReplicaStatus = Awaited<ReturnType<Server['runtime']['get']>>['replicas'][number];
let client: OpenAI;

interface FaultInjectable { injectFault(kind: 'ContextPoisoned'): Promise<void> }

async function replicas(): Promise<ReplicaStatus[]> {
  return (await server.runtime.get('stories')).replicas;
}

async function replica(id: string): Promise<ReplicaStatus> {
  const r = (await replicas()).find((x) => x.id === id);
  if (r === undefined) throw new Error(`no replica ${id}`);
  return r;
}

async function pidOf(id: string): Promise<number> {
  const pid = (await replica(id)).details?.pid;
  if (pid === undefined) throw new Error(`replica ${id} has no host`);
  return pid;
}

async function waitFor(cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until the replica serves again from a host other than `oldPid`. */
async function waitBack(id: string, oldPid: number): Promise<void> {
  await waitFor(async () => {
    const r = await replica(id);
    return r.state === 'serving' && r.details?.pid !== undefined && r.details.pid !== oldPid;
  });
}

/** A streamed completion read to its end: the text and the raw SSE body. */
async function stream(prompt: string, maxTokens: number): Promise<{ status: number; body: string; text: string }> {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stories', prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
  });
  const body = await res.text();
  let text = '';
  for (const block of body.split('\n\n')) {
    if (!block.startsWith('data: {')) continue;
    const parsed = JSON.parse(block.slice(6)) as { choices?: { text?: string }[] };
    text += parsed.choices?.[0]?.text ?? '';
  }
  return { status: res.status, body, text };
}

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'stories', runtime: 'llama', model: MODEL, replicas: 2, engine: { contextSize: 2048, maxSequences: 4, threads: 1 } }],
  }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

describe('local replicas under host failures', () => {
  it('/v1/models says the model runs on the fallback chat template', async () => {
    const models = await (await fetch(`${server.url}/v1/models`)).json() as { data: { id: string; meta: Record<string, unknown> }[] };
    const entry = models.data.find((m) => m.id === 'stories');
    expect(entry?.meta).toMatchObject({ runtime: 'llama', replicas: 2, serving: 2, template_source: 'fallback', backend: 'cpu' });
    expect(entry?.meta.context_length).toBe(512);
  });

  it('a request whose host dies before its first token is retried on the other replica', async () => {
    const [a, b] = await replicas();
    if (a === undefined || b === undefined) throw new Error('two replicas expected');
    const pidA = await pidOf(a.id);
    const pidB = await pidOf(b.id);
    const retriesBefore = await metricValue(server.url, 'inference_request_retries_total', { deployment: 'stories' });
    const killsBefore = await metricValue(server.url, 'inference_engine_host_exits_total', { deployment: 'stories', reason: 'SIGKILL' });
    // Both hosts frozen: the two requests are spread one per replica and neither can produce a token.
    process.kill(pidA, 'SIGSTOP');
    process.kill(pidB, 'SIGSTOP');
    const both = Promise.all([stream('Once upon a time', 32), stream('Once upon a time', 32)]);
    await waitFor(async () => (await replicas()).every((r) => r.load.outstanding >= 1));
    process.kill(pidA, 'SIGKILL');
    process.kill(pidB, 'SIGCONT');
    const results = await both;
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body).toContain('data: [DONE]');
      expect(r.body).not.toContain('"error"');
    }
    expect(results[0]?.text.length).toBeGreaterThan(0);
    expect(results[1]?.text).toBe(results[0]?.text);
    expect(await metricValue(server.url, 'inference_request_retries_total', { deployment: 'stories' })).toBe(retriesBefore + 1);
    await waitBack(a.id, pidA);
    // The host's exit is counted by its reason (docs/metrics.md).
    expect(await metricValue(server.url, 'inference_engine_host_exits_total', { deployment: 'stories', reason: 'SIGKILL' })).toBe(killsBefore + 1);
  }, 60_000);

  it('an injected ContextPoisoned ends the stream on that replica with engine_unavailable; the host is restarted', async () => {
    const [a] = await replicas();
    if (a === undefined) throw new Error('a replica expected');
    const pidA = await pidOf(a.id);
    const restartsBefore = a.restarts;
    const poisonedBefore = await metricValue(server.url, 'inference_engine_host_exits_total', { deployment: 'stories', reason: 'context_poisoned' });
    const runner = (await server.runtime.coordinator.ask<{ id: string; runner: unknown }[]>((reply) => ({ type: 'table', reply })))
      .find((e) => e.id === a.id)?.runner as FaultInjectable | undefined;
    if (runner === undefined) throw new Error('runner not found');
    // Four long streams, two per replica; the fault hits the next decode step of replica a.
    const streams = Array.from({ length: 4 }, (_, i) => stream(`The cat ${String(i)}`, 400));
    await waitFor(async () => (await replica(a.id)).load.outstanding >= 1);
    await runner.injectFault('ContextPoisoned');
    const results = await Promise.all(streams);
    const failed = results.filter((r) => r.body.includes('"code":"engine_unavailable"'));
    const completed = results.filter((r) => r.body.includes('data: [DONE]'));
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length + completed.length).toBe(4);
    for (const r of failed) expect(r.body).not.toContain('[DONE]');
    await waitBack(a.id, pidA);
    expect((await replica(a.id)).restarts).toBe(restartsBefore + 1);
    expect(await metricValue(server.url, 'inference_engine_host_exits_total', { deployment: 'stories', reason: 'context_poisoned' }))
      .toBe(poisonedBefore + 1);
  }, 60_000);

  it('the 4th host death within 60 s marks the replica Failed; the deployment keeps serving on the other', async () => {
    const [a, b] = await replicas();
    if (a === undefined || b === undefined) throw new Error('two replicas expected');
    // Earlier tests may have used part of the budget: kill until 3 restarts are spent.
    while ((await replica(a.id)).restarts < 3) {
      const pid = await pidOf(a.id);
      process.kill(pid, 'SIGKILL');
      await waitBack(a.id, pid);
    }
    process.kill(await pidOf(a.id), 'SIGKILL');
    await waitFor(async () => (await replica(a.id)).state === 'failed');
    expect((await replica(a.id)).reason).toMatch(/restart/i);
    expect((await replica(b.id)).state).toBe('serving');
    const served = await Promise.all(Array.from({ length: 8 }, () => client.completions.create({ model: 'stories', prompt: 'Lily', max_tokens: 8 })));
    for (const r of served) expect(r.choices[0]?.text.length).toBeGreaterThan(0);
    expect(await metricValue(server.url, 'inference_replica_state', { deployment: 'stories', replica: a.id, state: 'failed' })).toBe(1);
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(200);
  }, 120_000);
});
