// State goes away with what it belongs to: deployments (remote on the mock
// upstream, local on the real engine) are applied, used, scaled and removed
// over and over under new names; afterwards /metrics has as many series as
// before, and the limiter and breaker registry holds only what exists.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { admin, waitFor } from '../support/deployments.js';
import { MODEL } from '../support/cli.js';

let mock: MockUpstream;
let server: Server;

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }],
  }));
  await server.runtime.settled();
});
afterAll(async () => {
  await server.close();
  await mock.close();
});

/** Series in /metrics, process metrics left out (their count is the runtime's, not ours). */
async function series(): Promise<string[]> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return text.split('\n').filter((l) => l.length > 0 && !l.startsWith('#') && !l.startsWith('inference_process_'));
}

async function use(model: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
  }
}

async function serving(name: string, n: number): Promise<void> {
  await waitFor(async () => {
    const d = await admin<{ replicas: { state: string }[] }>(server.url, 'GET', `/admin/deployments/${name}`);
    return d.replicas.filter((r) => r.state === 'serving').length === n && d.replicas.length === n;
  }, 60_000, `${name}: ${String(n)} serving`);
}

describe('cleanup', () => {
  it('series, limiters and breakers return to the baseline after deployments come and go', async () => {
    await use('gpt', 2);
    const baseline = await series();
    const registry = server.runtime.reliability.size();
    for (let round = 0; round < 3; round++) {
      const remote = `churn-remote-${String(round)}`;
      const local = `churn-local-${String(round)}`;
      // Each round its own upstream model (its own limiter), every other round another host name (its own breaker).
      const endpoint = round % 2 === 0 ? mock.url : mock.url.replace('127.0.0.1', 'localhost');
      await admin(server.url, 'PUT', `/admin/deployments/${remote}`, {
        runtime: 'openai', endpoint, model: `gpt-4o-mini-${String(round)}`, replicas: 2,
        remote: { rpm: 10_000 }, price: { inputPerMTok: 1, outputPerMTok: 2 },
      });
      await admin(server.url, 'PUT', `/admin/deployments/${local}`, {
        runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 512, maxSequences: 2, threads: 1 },
      });
      await serving(remote, 2);
      await serving(local, 1);
      await use(remote, 3);
      await use(local, 2);
      await admin(server.url, 'POST', `/admin/deployments/${local}/scale`, { replicas: 2 });
      await serving(local, 2);
      await use(local, 2);
      await admin(server.url, 'POST', `/admin/deployments/${remote}/scale`, { replicas: 1 });
      await serving(remote, 1);
      const during = await series();
      expect(during.some((l) => l.includes(`deployment="${local}"`) && l.includes('replica='))).toBe(true);
      expect(during.length).toBeGreaterThan(baseline.length);
      await admin(server.url, 'DELETE', `/admin/deployments/${remote}`);
      await admin(server.url, 'DELETE', `/admin/deployments/${local}`);
    }
    await waitFor(async () => (await series()).length === baseline.length, 30_000, 'series back to the baseline')
      .catch(async (e: unknown) => {
        const now = await series();
        const extra = now.filter((l) => !baseline.some((b) => b.slice(0, b.lastIndexOf(' ')) === l.slice(0, l.lastIndexOf(' '))));
        throw new Error(`${e instanceof Error ? e.message : String(e)}: ${String(now.length)} vs ${String(baseline.length)}; extra:\n${extra.slice(0, 20).join('\n')}`);
      });
    expect((await series()).some((l) => l.includes('churn-'))).toBe(false);
    expect(server.runtime.reliability.size()).toEqual(registry);
    // The base deployment still serves and is still counted.
    await use('gpt', 1);
    expect((await series()).some((l) => l.includes('deployment="gpt"'))).toBe(true);
  }, 300_000);
});
