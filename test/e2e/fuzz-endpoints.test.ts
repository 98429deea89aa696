// Property-based fuzzing of every endpoint's body against a gateway on a healthy
// mock: arbitrary JSON values, mutations of valid bodies, prototype-pollution keys,
// non-JSON bytes and wrong content types at the OpenAI, Anthropic, embeddings and
// admin (PUT, scale) routes. Each answer must arrive within a generous bound, be
// below 500 (the mock is healthy, so not even the upstream 502/503/504 kinds), and
// every 4xx must be a well-formed error in the route's own shape; the gateway must
// answer /health after each property. fast-check prints the seed of a failure.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { ANTHROPIC_DEPLOYMENTS } from '../support/anthropic.js';
import { CONTENT_TYPES, type JsonValue, hostileValue, mutatedBody, nonJsonBody, withPollutionKeys } from '../support/fuzz.js';

const BODY_LIMIT = 64 * 1024;
/** No hang: far above any answer's real time, so it only trips on a request that never ends. */
const ANSWER_BOUND_MS = 20_000;
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ replicas: 1, bodyLimitBytes: BODY_LIMIT, extraDeployments: ANTHROPIC_DEPLOYMENTS });
  // Bounded answers whatever max_tokens a mutation picks: the mock's `tokens` wins when smaller.
  h.mock.setDefault({ tokens: 6 });
});
afterAll(async () => {
  await h.close();
});

interface Route {
  readonly name: string;
  readonly method: 'POST' | 'PUT';
  readonly path: string;
  readonly valid: JsonValue;
  readonly shape: 'openai' | 'anthropic';
}

const ROUTES: readonly Route[] = [
  { name: 'chat', method: 'POST', path: '/v1/chat/completions', shape: 'openai', valid: { model: 'gpt', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }], max_tokens: 3, temperature: 0.5, stop: ['x'], n: 1, stream: false, stream_options: { include_usage: true }, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }], tool_choice: 'none', response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object' } } } } },
  { name: 'completions', method: 'POST', path: '/v1/completions', shape: 'openai', valid: { model: 'gpt', prompt: 'Once', max_tokens: 3, stop: 'x', logprobs: 0, seed: 1, stream: false } },
  { name: 'embeddings', method: 'POST', path: '/v1/embeddings', shape: 'openai', valid: { model: 'gpt', input: ['a', 'b'], encoding_format: 'float', dimensions: 8 } },
  { name: 'messages', method: 'POST', path: '/v1/messages', shape: 'anthropic', valid: { model: 'claude', max_tokens: 3, system: [{ type: 'text', text: 'be brief' }], messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }, { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] }], tools: [{ name: 'f', input_schema: { type: 'object' } }], tool_choice: { type: 'auto' }, stop_sequences: ['x'], metadata: { user_id: 'u' }, stream: false } },
  // A deployment that does not exist: validation runs first, and a valid body answers 404, never scales anything.
  { name: 'admin scale', method: 'POST', path: '/admin/deployments/fuzz-none/scale', shape: 'openai', valid: { replicas: 2 } },
  { name: 'admin put', method: 'PUT', path: '/admin/deployments/fuzz-put', shape: 'openai', valid: { runtime: 'openai', endpoint: 'http://127.0.0.1:9/v1', model: 'm', replicas: 1, remote: { maxRetries: 0, rpm: 10 }, price: { inputPerMTok: 1, outputPerMTok: 2 }, budget: { window: '1h', maxTokens: 100 } } },
];

interface Answer { status: number; text: string; requestId: string | null }

async function send(route: Route, body: string | Uint8Array, contentType: string | undefined): Promise<Answer> {
  const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType };
  const res = await fetch(`${h.url}${route.path}`, { method: route.method, headers, body, signal: AbortSignal.timeout(ANSWER_BOUND_MS) });
  return { status: res.status, text: await res.text(), requestId: res.headers.get('x-request-id') };
}

/** The invariants of any answer to any body. */
async function checkAnswer(route: Route, a: Answer): Promise<void> {
  expect(a.status, a.text.slice(0, 300)).toBeLessThan(500);
  expect(a.requestId).toBeTruthy();
  if (a.status >= 400) {
    const body = JSON.parse(a.text) as Record<string, unknown>;
    if (route.shape === 'anthropic') {
      expect(body.type).toBe('error');
      const e = body.error as Record<string, unknown>;
      expect(typeof e.type).toBe('string');
      expect(typeof e.message).toBe('string');
      expect(typeof body.request_id).toBe('string');
    } else {
      const e = body.error as Record<string, unknown>;
      expect(typeof e.message).toBe('string');
      expect(typeof e.type).toBe('string');
      expect(typeof e.code).toBe('string');
      expect(e.param === null || typeof e.param === 'string').toBe(true);
    }
  }
  // A PUT that happened to be valid made a deployment: take it away again so runs stay independent.
  if (route.method === 'PUT' && a.status < 300) {
    const del = await fetch(`${h.url}${route.path}`, { method: 'DELETE', signal: AbortSignal.timeout(ANSWER_BOUND_MS) });
    expect(del.status).toBe(200);
  }
}

async function expectHealthy(): Promise<void> {
  const res = await fetch(`${h.url}/health`, { signal: AbortSignal.timeout(ANSWER_BOUND_MS) });
  expect(res.status).toBe(200);
  const ok = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }) });
  expect(ok.status).toBe(200);
}

const asText = (v: JsonValue): string => JSON.stringify(v);

describe.each(ROUTES)('fuzz $name', (route) => {
  it('arbitrary JSON values', async () => {
    await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (v) => {
      await checkAnswer(route, await send(route, JSON.stringify(v), 'application/json'));
    }), { numRuns: RUNS });
    await expectHealthy();
  });

  it('mutations of a valid body', async () => {
    const keys = route.shape === 'anthropic' ? ['top_k', 'service_tier'] : ['logprobs', 'top_logprobs', 'max_completion_tokens', 'user'];
    await fc.assert(fc.asyncProperty(mutatedBody(route.valid, BODY_LIMIT - 2048, keys), async (v) => {
      await checkAnswer(route, await send(route, asText(v), 'application/json'));
    }), { numRuns: RUNS });
    await expectHealthy();
  });

  it('streamed mutations read to the end', async () => {
    if (route.path === '/v1/embeddings' || route.path.startsWith('/admin')) {
      // No stream on these routes: a hostile value in place of the whole body instead.
      await fc.assert(fc.asyncProperty(hostileValue(BODY_LIMIT - 2048), async (v) => {
        await checkAnswer(route, await send(route, asText(v), 'application/json'));
      }), { numRuns: Math.ceil(RUNS / 2) });
    } else {
      const valid = { ...(route.valid as Record<string, JsonValue>), stream: true };
      await fc.assert(fc.asyncProperty(mutatedBody(valid, 4096), async (v) => {
        const a = await send(route, asText(v), 'application/json');
        await checkAnswer(route, a);
        // A stream that began ends as the wire says: [DONE] or one final error event (OpenAI), message_stop or error (Anthropic).
        if (a.status === 200 && a.text.startsWith(route.shape === 'openai' ? 'data: ' : 'event: ')) {
          const last = a.text.trimEnd().split('\n\n').at(-1) ?? '';
          if (route.shape === 'openai') expect(last === 'data: [DONE]' || last.startsWith('data: {"error"')).toBe(true);
          else expect(/^event: (message_stop|error)\n/.test(last)).toBe(true);
        }
      }), { numRuns: Math.ceil(RUNS / 2) });
    }
    await expectHealthy();
  });

  it('prototype-pollution keys', async () => {
    await fc.assert(fc.asyncProperty(withPollutionKeys(route.valid), async (text) => {
      await checkAnswer(route, await send(route, text, 'application/json'));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }), { numRuns: Math.ceil(RUNS / 4) });
    await expectHealthy();
  });

  it('non-JSON bytes and wrong content types', async () => {
    const ct = fc.option(fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.stringMatching(/^[a-z]{1,8}\/[a-z+.-]{1,12}$/)), { nil: undefined });
    await fc.assert(fc.asyncProperty(fc.oneof(nonJsonBody(), fc.constant(asText(route.valid))), ct, async (body, contentType) => {
      await checkAnswer(route, await send(route, body, contentType));
    }), { numRuns: RUNS });
    await expectHealthy();
  });
});
