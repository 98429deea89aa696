// Deadlines of local deployments (docs/flow-control.md): a request that waits
// too long for a sequence slot is refused with overloaded, one that runs too long
// ends with upstream_timeout and frees its sequence, and an embedding whose client
// went away is cancelled. Real engine host, real model, the openai SDK.

import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { metricValue } from '../support/harness.js';
import { waitFor } from '../support/deployments.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');
// Long enough that no machine finishes it within a test (stopped by the test or by a deadline).
const LONG = 12_000;

let server: Server;
let client: OpenAI;

beforeAll(async () => {
  server = await serve(parseConfig({
    server: { port: 0 },
    deployments: [
      { name: 'queue', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 32768, maxSequences: 1, threads: 1, timeouts: { queueMs: 300 } } },
      { name: 'total', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 32768, maxSequences: 2, threads: 1, timeouts: { totalMs: 400 } } },
      { name: 'embed', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 512, maxSequences: 1, threads: 1 } },
    ],
  }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

describe('local deadlines', () => {
  it('a request that waits longer than queueMs for a slot is refused with overloaded', async () => {
    const ac = new AbortController();
    const first = await client.completions.create({ model: 'queue', prompt: 'Once upon a time', max_tokens: LONG, stream: true }, { signal: ac.signal });
    const reading = (async () => {
      try {
        for await (const _c of first) { /* keeps the only slot busy */ }
      } catch {
        /* aborted below */
      }
    })();
    const t0 = Date.now();
    const second = await client.completions.create({ model: 'queue', prompt: 'The dog', max_tokens: 4 }).then(() => undefined, (e: unknown) => e);
    expect(second).toBeInstanceOf(OpenAI.APIError);
    expect((second as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((second as InstanceType<typeof OpenAI.APIError>).code).toBe('overloaded');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    ac.abort();
    await reading;
  });

  it('a request running longer than totalMs ends with upstream_timeout and frees its sequence', async () => {
    const plain = await client.completions.create({ model: 'total', prompt: 'Once upon a time', max_tokens: LONG }).then(() => undefined, (e: unknown) => e);
    expect((plain as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    expect((plain as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_timeout');
    // Streamed: output first, then the deadline's error as the last event.
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'total', prompt: 'The cat', max_tokens: LONG, stream: true }),
    });
    expect(res.status).toBe(200);
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    expect(events.length).toBeGreaterThan(1);
    const last = JSON.parse(events.at(-1) ?? '{}') as { error?: { code?: string } };
    expect(last.error?.code).toBe('upstream_timeout');
    await waitFor(async () => (await metricValue(server.url, 'inference_engine_active_sequences', { deployment: 'total' })) === 0, 10_000, 'the sequences freed');
  });

  it('an embedding whose client disconnects is cancelled', async () => {
    const input = Array.from({ length: 2048 }, (_, i) => `Tim saw ${i} birds in the tall green tree by the river. `.repeat(6));
    const body = JSON.stringify({ model: 'embed', input });
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
      req.on('error', () => { resolve(); });
      req.on('response', () => { resolve(); });
      req.end(body, () => {
        // The request is with the engine (counted in flight); then the client goes away.
        void waitFor(async () => (await metricValue(server.url, 'inference_gateway_in_flight_requests', { deployment: 'embed' })) === 1, 10_000, 'the embedding in flight')
          .then(() => { req.destroy(); });
      });
    });
    await waitFor(async () => (await metricValue(server.url, 'inference_gateway_requests_total', { deployment: 'embed', outcome: 'cancelled' })) === 1, 10_000, 'the embedding cancelled');
    // The replica is free again at once, not after 2048 inputs.
    const r = await client.embeddings.create({ model: 'embed', input: 'hello' });
    expect(r.data[0]?.embedding.length).toBeGreaterThan(0);
  });
});
