// A runtime of one's own (createRuntime({ runtimes })): an in-process runner
// registered by name serves through the gateway with the built-in runtimes'
// routing, supervision (a crash restarts its resource; a spent restart budget
// fails the replica and a new one is placed), budgets, metrics and status page;
// the registered name is validated like a built-in one.

import { afterEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type RunnerDefinition, type Server, parseConfig, serve, supervisedRuntime } from '@inference/gateway';
import { metricValue } from '../support/harness.js';

interface Res {
  readonly generation: number;
}

/**
 * Answers "gen<N>: <prompt>"; a prompt `crash once` crashes generation 1 only, `crash always` every generation;
 * `heavy` reports 200 prompt tokens.
 */
const flaky: RunnerDefinition<Res> = {
  open: (_spec, generation) => Promise.resolve({ generation }),
  generate: (r, req, _ctx, sink) => {
    const prompt = req.kind === 'chat' ? (req.messages.at(-1)?.content ?? '') : req.prompt;
    if (prompt === 'crash always' || (prompt === 'crash once' && r.generation === 1)) {
      return Promise.reject(new Error(`runner crashed (generation ${r.generation})`));
    }
    const text = `gen${r.generation}: ${prompt}`;
    sink({ index: 0, text, tokens: 3 });
    return Promise.resolve({ choices: [{ index: 0, text, finishReason: 'stop' }], usage: { promptTokens: prompt === 'heavy' ? 200 : 2, completionTokens: 3 } });
  },
  restarts: { maxRestarts: 1, windowMs: 60_000 },
};

const runtimes = { flaky: supervisedRuntime(flaky) };
let server: Server | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(deployments: unknown[]): Promise<{ server: Server; client: OpenAI }> {
  server = await serve(parseConfig({ server: { port: 0 }, deployments }, { runtimes }), { runtimes });
  await server.runtime.settled();
  return { server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

const say = async (client: OpenAI, model: string, content: string, maxTokens?: number): Promise<string> =>
  (await client.chat.completions.create({ model, messages: [{ role: 'user', content }], ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }) }))
    .choices[0]?.message.content ?? '';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a registered runtime', () => {
  it('serves through the gateway: chat, streaming, /v1/models, metrics and the status page', async () => {
    const { server: s, client } = await start([{ name: 'mine', runtime: 'flaky', replicas: 2 }]);
    expect(await say(client, 'mine', 'hello')).toBe('gen1: hello');
    const stream = await client.chat.completions.create({ model: 'mine', messages: [{ role: 'user', content: 'streamed' }], stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('gen1: streamed');
    const models = await client.models.list();
    expect(models.data.map((m) => [m.id, m.owned_by])).toContainEqual(['mine', 'flaky']);
    expect(await metricValue(s.url, 'inference_gateway_requests_total', { deployment: 'mine' })).toBe(2);
    expect(await metricValue(s.url, 'inference_tokens_output_total', { deployment: 'mine' })).toBe(6);
    const status = await (await fetch(`${s.url}/admin/status`)).json() as { deployments: { name: string; runtime: string; replicas: { state: string }[] }[] };
    const mine = status.deployments.find((d) => d.name === 'mine');
    expect(mine?.runtime).toBe('flaky');
    expect(mine?.replicas.map((r) => r.state)).toEqual(['serving', 'serving']);
  });

  it('a crash restarts the replica\'s resource and the request is answered on the new one', async () => {
    const { server: s, client } = await start([{ name: 'mine', runtime: 'flaky', replicas: 1 }]);
    expect(await say(client, 'mine', 'crash once')).toBe('gen2: crash once');
    const st = await s.runtime.get('mine');
    expect(st.replicas.map((r) => [r.state, r.restarts])).toEqual([['serving', 1]]);
    expect(await metricValue(s.url, 'inference_replica_restarts_total', { deployment: 'mine' })).toBe(1);
  });

  it('a spent restart budget fails the replica; the manager places a new one that serves', async () => {
    const { server: s, client } = await start([{ name: 'mine', runtime: 'flaky', replicas: 1 }]);
    const first = (await s.runtime.get('mine')).replicas[0]?.id;
    // Each crashing request restarts the resource once (its retry on the new one is not counted again);
    // the budget is one restart, so the second crashing request spends it.
    for (let i = 0; i < 2; i++) {
      const err = await say(client, 'mine', 'crash always').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    }
    const failed = await waitFor('the failed replica', async () => (await s.runtime.get('mine')).replicas.find((r) => r.id === first && r.state === 'failed'));
    expect(failed.reason).toMatch(/restart budget spent/);
    await waitFor('a replacement serving', async () => (await s.runtime.get('mine')).replicas.find((r) => r.id !== first && r.state === 'serving'));
    expect(await say(client, 'mine', 'after')).toBe('gen1: after');
  });

  it('budgets hold for a registered runtime', async () => {
    const { client } = await start([{ name: 'mine', runtime: 'flaky', budget: { window: '1h', maxTokens: 100, onExceeded: 'reject' } }]);
    expect(await say(client, 'mine', 'heavy', 3)).toBe('gen1: heavy');
    const e = await say(client, 'mine', 'two', 3).catch((err: unknown) => err);
    expect(e).toMatchObject({ status: 429, code: 'budget_exceeded' });
  });

  it('the admin API accepts the registered name and refuses an unknown one naming `runtime`', async () => {
    const { server: s } = await start([]);
    const put = (body: unknown): Promise<Response> =>
      fetch(`${s.url}/admin/deployments/other`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const bad = await put({ runtime: 'nope' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('runtime');
    expect((await put({ runtime: 'flaky' })).status).toBe(200);
  });

  it('a config naming a runtime that is not registered is refused by name', async () => {
    expect(() => parseConfig({ deployments: [{ name: 'x', runtime: 'flaky' }] })).toThrow(/deployments\[0\]\.runtime/);
    const cfg = parseConfig({ server: { port: 0 }, deployments: [{ name: 'x', runtime: 'flaky' }] }, { runtimes });
    await expect(serve(cfg)).rejects.toMatchObject({ param: 'deployments[0].runtime' });
    await expect(serve(parseConfig({ server: { port: 0 } }), { runtimes: { openai: runtimes.flaky } })).rejects.toMatchObject({ param: 'runtimes' });
  });
});
