// Errors on the Anthropic surface: Anthropic's shape ({type:'error', error:{type,
// message}}) with `request-id`, overloads as 529 overloaded_error, rate limits as
// 429 rate_limit_error, bad bodies as 400 invalid_request_error naming the field,
// and a failure after the first byte as a final `event: error`. Plus the things an
// anthropic deployment refuses (embeddings) through the OpenAI surface.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ANTHROPIC_DEPLOYMENTS, anthropicClient } from '../support/anthropic.js';
import { type Harness, sseEvents, startHarness } from '../support/harness.js';

let h: Harness;
let anthropic: Anthropic;

beforeAll(async () => {
  h = await startHarness({
    replicas: 1,
    gpt: { remote: { maxRetries: 0 } },
    extraDeployments: (url) => [...ANTHROPIC_DEPLOYMENTS(url), { name: 'gpt-fallback-free', runtime: 'openai', endpoint: url, model: 'gpt-4o-mini', replicas: 1, remote: { maxRetries: 0 } }],
  });
  anthropic = anthropicClient(h.url);
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.mock.reset();
});

const ASK = { max_tokens: 8, messages: [{ role: 'user' as const, content: 'hello' }] };

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof Anthropic.APIError)) throw new Error(`expected an APIError, got ${String(e)}`);
  return e;
}

describe('upstream failures in Anthropic shape', () => {
  it('an upstream 529 reaches the Anthropic client as 529 overloaded_error', async () => {
    h.mock.setScript([{ status: 529 }]);
    const e = await apiError(anthropic.messages.create({ model: 'claude-strict', ...ASK }));
    expect(e.status).toBe(529);
    expect(e.type).toBe('overloaded_error');
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
    expect(e.requestID).toMatch(/^req_/);
    expect(e.headers?.get('x-request-id')).toBe(e.requestID);
  });

  it('a streamed request failing before the first byte gets the status, not a stream', async () => {
    h.mock.setScript([{ status: 529 }]);
    const e = await apiError((async () => {
      const s = await anthropic.messages.create({ model: 'claude-strict', stream: true, ...ASK });
      for await (const _ev of s) { /* drain */ }
    })());
    expect(e.status).toBe(529);
    expect(e.type).toBe('overloaded_error');
  });

  it('an OpenAI upstream 429 reaches the Anthropic client as 429 rate_limit_error with retry-after', async () => {
    h.mock.setScript([{ status: 429, retryAfterSeconds: 7 }]);
    const e = await apiError(anthropic.messages.create({ model: 'gpt-fallback-free', ...ASK }));
    expect(e.status).toBe(429);
    expect(e.type).toBe('rate_limit_error');
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('a stream cut after the first byte ends with event: error', async () => {
    h.mock.setScript([{ disconnectAfterChunks: 4 }]);
    const res = await fetch(`${h.url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-strict', stream: true, ...ASK }),
    });
    expect(res.status).toBe(200);
    const events = await sseEvents(res);
    expect(events[0]?.event).toBe('message_start');
    expect(events.some((e) => e.event === 'content_block_delta')).toBe(true);
    expect(events.at(-1)).toEqual({ event: 'error', data: { type: 'error', error: { type: 'api_error', message: 'the upstream connection broke mid-response' } } });
    expect(events.some((e) => e.event === 'message_stop')).toBe(false);

    h.mock.setScript([{ disconnectAfterChunks: 4 }]);
    const e = await apiError((async () => {
      const s = await anthropic.messages.create({ model: 'claude-strict', stream: true, ...ASK });
      for await (const _ev of s) { /* drain */ }
    })());
    expect(e.type).toBe('api_error');
  });
});

describe('bad requests in Anthropic shape', () => {
  const post = (body: string): Promise<Response> => fetch(`${h.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('names the missing field', async () => {
    const res = await post(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }] }));
    expect(res.status).toBe(400);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const body = await res.json() as Record<string, unknown>;
    expect(body).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: is required' }, request_id: res.headers.get('request-id') });
  });

  it('rejects invalid JSON, unknown models and unsupported blocks', async () => {
    const bad = await post('{"model":');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'request body is not valid JSON' } });
    const text = await fetch(`${h.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<hi/>' });
    expect(text.status).toBe(415);
    expect(await text.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'content-type must be application/json' } });
    const e404 = await apiError(anthropic.messages.create({ model: 'no-such-model', ...ASK }));
    expect(e404.status).toBe(404);
    expect(e404.type).toBe('not_found_error');
    const img = await post(JSON.stringify({ model: 'gpt', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'http://x' } }] }] }));
    expect(img.status).toBe(400);
    expect(((await img.json()) as { error: { message: string } }).error.message).toMatch(/^messages\[0\]\.content\[0\]\.type: /);
  });

  it('the OpenAI surface keeps its own error shape', async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'model' } });
  });
});

describe('what an anthropic deployment refuses', () => {
  it('embeddings are an invalid request', async () => {
    const e = await h.client.embeddings.create({ model: 'claude', input: 'hi' }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(/does not serve embeddings/);
    expect(h.mock.stats().requests).toBe(0);
  });

  it('n > 1 is an invalid request naming n', async () => {
    const e = await h.client.chat.completions.create({ model: 'claude', n: 2, max_tokens: 3, messages: [{ role: 'user', content: 'x' }] }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
  });
});
