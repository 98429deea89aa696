// SIGTERM with requests in flight, through the real CLI (what a rolling restart
// under systemd or Kubernetes does): the streams already running, local (real
// engine) and remote (mock upstream), finish whole; /ready answers 503 at once;
// new requests get 503; the process exits 0. With a short `server.drainTimeoutMs`
// a stream that would not end is cut and the process still exits 0 within the bound.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { type CliServer, MODEL, startCli, writeConfig } from '../support/cli.js';
import { metricValue } from '../support/harness.js';
import { waitFor } from '../support/deployments.js';

let mock: MockUpstream;
let cli: CliServer | undefined;

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
});
afterAll(async () => {
  await mock.close();
});
afterEach(() => {
  cli?.kill();
  cli = undefined;
});

function config(drainTimeoutMs: number): string {
  return writeConfig({
    server: { port: 0, drainTimeoutMs },
    deployments: [
      // One sequence at a time: the later local streams wait in the engine's queue when SIGTERM comes.
      { name: 'stories', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 2048, maxSequences: 1, threads: 1 } },
      { name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 },
    ],
  });
}

interface StreamEnd { status: number; data: string[] }

async function stream(url: string, model: string, maxTokens: number): Promise<StreamEnd> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: 'Once upon a time' }] }),
  });
  const text = await res.text();
  return { status: res.status, data: text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => b.slice(6)) };
}

function finishedWhole(s: StreamEnd): boolean {
  if (s.status !== 200 || s.data.at(-1) !== '[DONE]') return false;
  const chunks = s.data.slice(0, -1).map((d) => JSON.parse(d) as { error?: unknown; choices?: { finish_reason?: string | null }[] });
  return chunks.every((c) => c.error === undefined) && chunks.some((c) => (c.choices ?? []).some((ch) => typeof ch.finish_reason === 'string'));
}

async function inFlight(url: string): Promise<number> {
  return metricValue(url, 'inference_gateway_in_flight_requests', {});
}

describe('SIGTERM drains', () => {
  it('lets local and remote streams in flight finish, refuses new work with 503 and exits 0', async () => {
    mock.setDefault({ chunkDelayMs: 150, tokens: 20 });
    const c = await startCli(['--config', config(120_000), '--quiet']);
    cli = c;
    await waitFor(async () => (await fetch(`${c.url}/ready`)).status === 200, 120_000, 'ready');
    const streams = [
      ...Array.from({ length: 4 }, () => stream(c.url, 'stories', 300)),
      ...Array.from({ length: 2 }, () => stream(c.url, 'gpt', 20)),
    ];
    await waitFor(async () => (await inFlight(c.url)) >= 6, 30_000, 'six requests in flight');
    c.child.kill('SIGTERM');
    // Not ready at once, while the streams still run.
    await waitFor(async () => (await fetch(`${c.url}/ready`)).status === 503, 5_000, '/ready 503');
    const refused = await fetch(`${c.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('overloaded');
    expect((await fetch(`${c.url}/health`)).status).toBe(200);
    const ends = await Promise.all(streams);
    for (const s of ends) expect(finishedWhole(s), JSON.stringify(s).slice(0, 400)).toBe(true);
    expect(await c.exited).toBe(0);
    expect(c.output()).toMatch(/SIGTERM, draining/);
    expect(c.output()).toMatch(/drained/);
  }, 180_000);

  it('ends what is left at server.drainTimeoutMs and still exits 0 within the bound', async () => {
    mock.setDefault({ hang: true });
    const c = await startCli(['--config', config(1_000), '--quiet']);
    cli = c;
    await waitFor(async () => (await fetch(`${c.url}/ready`)).status === 200, 120_000, 'ready');
    const hung = stream(c.url, 'gpt', 20);
    await waitFor(async () => (await inFlight(c.url)) >= 1, 30_000, 'one request in flight');
    const t0 = Date.now();
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    // The bound plus closing; generous for a loaded machine, far below the stream's own timeouts (30 s first byte).
    expect(took).toBeLessThan(15_000);
    const end = await hung;
    expect(finishedWhole(end)).toBe(false);
    expect(c.output()).toMatch(/drain bound reached, ending 1 requests/);
  }, 180_000);
});
