// Bad requests get a 4xx OpenAI envelope naming the param, and the gateway keeps serving.
// The corpus (bad-requests-corpus.ts) holds one entry per invalid shape of every route.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Harness, startHarness } from '../support/harness.js';
import { CORPUS } from './bad-requests-corpus.js';

let h: Harness;

beforeAll(async () => {
  // One retry and no waiting, so the upstream failures below reach the client as they are.
  h = await startHarness({ replicas: 1, bodyLimitBytes: 64 * 1024, gpt: { remote: { maxRetries: 1 }, onCapacityExhausted: 'reject' } });
});
afterAll(async () => {
  await h.close();
});

async function post(path: string, body: string, contentType = 'application/json'): Promise<{ status: number; body: { error: { message: string; type: string; param: string | null; code: string } }; requestId: string | null }> {
  const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, body: (await res.json()) as never, requestId: res.headers.get('x-request-id') };
}

const msg = [{ role: 'user', content: 'hi' }];

describe('bad requests', () => {
  it.each([
    ['malformed JSON', '{"model": "gpt", "messages": [', 400, null],
    ['a non-object body', '[1,2,3]', 400, null],
    ['missing messages', JSON.stringify({ model: 'gpt' }), 400, 'messages'],
    ['messages of the wrong type', JSON.stringify({ model: 'gpt', messages: 'hello' }), 400, 'messages'],
    ['a bad role', JSON.stringify({ model: 'gpt', messages: [{ role: 'robot', content: 'x' }] }), 400, 'messages[0].role'],
    ['max_tokens < 1', JSON.stringify({ model: 'gpt', messages: msg, max_tokens: 0 }), 400, 'max_tokens'],
    ['temperature as a string', JSON.stringify({ model: 'gpt', messages: msg, temperature: 'warm' }), 400, 'temperature'],
    ['model as a number', JSON.stringify({ model: 7, messages: msg }), 400, 'model'],
    ['an unknown model', JSON.stringify({ model: 'nope', messages: msg }), 404, 'model'],
    ['a body over the limit', JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x'.repeat(100_000) }] }), 413, null],
  ])('%s', async (_name, body, status, param) => {
    const r = await post('/v1/chat/completions', body);
    expect(r.status).toBe(status);
    expect(r.body.error.param).toBe(param);
    expect(typeof r.body.error.message).toBe('string');
    expect(typeof r.body.error.type).toBe('string');
    expect(r.requestId).toBeTruthy();
  });

  it('rejects a wrong content type and unknown routes in the envelope', async () => {
    const r = await post('/v1/chat/completions', 'model=gpt', 'application/x-www-form-urlencoded');
    expect(r.status).toBe(415);
    expect(r.body.error.type).toBe('invalid_request_error');
    const nf = await fetch(`${h.url}/v1/nothing`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBeTruthy();
  });

  it('the SDK sees typed errors, and the gateway keeps serving', async () => {
    const bad = h.client.chat.completions.create({ model: 'gpt', messages: [], max_tokens: 2 });
    await expect(bad).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(h.client.chat.completions.create({ model: 'missing', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const ok = await h.client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
    expect(ok.choices[0]?.message.content).toBe('The quick');
  });

  it('echoes a sane x-request-id and replaces an unsafe one', async () => {
    const a = await fetch(`${h.url}/health`, { headers: { 'x-request-id': 'abc-123' } });
    expect(a.headers.get('x-request-id')).toBe('abc-123');
    const b = await fetch(`${h.url}/health`, { headers: { 'x-request-id': 'bad id\twith spaces' } });
    expect(b.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('maps upstream failures to the taxonomy', async () => {
    h.mock.setScript([{ status: 500 }, { status: 500 }]);
    const r = await post('/v1/chat/completions', JSON.stringify({ model: 'gpt', messages: msg }));
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('upstream_error');
    h.mock.setScript([{ status: 429, retryAfterSeconds: 3 }]);
    const res = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt', messages: msg }) });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    h.mock.reset();
  });
});

describe('the corpus of invalid requests', () => {
  it.each(CORPUS)('$name: $status, param $param', async (entry) => {
    const body = typeof entry.body === 'string' ? entry.body : JSON.stringify(entry.body);
    const res = await fetch(`${h.url}${entry.path}`, { method: entry.method ?? 'POST', headers: { 'content-type': entry.contentType ?? 'application/json' }, body });
    expect(res.status).toBe(entry.status);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const json = (await res.json()) as { type?: string; error: { message: string; type: string; param?: string | null; code?: string } };
    expect(typeof json.error.message).toBe('string');
    expect(typeof json.error.type).toBe('string');
    if (entry.path === '/v1/messages') {
      // Anthropic's shape: no param or code; the message leads with the field's path.
      expect(json.type).toBe('error');
      if (entry.param !== null) expect(json.error.message.startsWith(`${entry.param}:`)).toBe(true);
    } else {
      expect(json.error.param).toBe(entry.param);
      expect(typeof json.error.code).toBe('string');
    }
  });

  it('left nothing behind: no deployment was created or scaled', async () => {
    const list = (await (await fetch(`${h.url}/admin/deployments`)).json()) as { deployments: { spec: { name: string; replicas: number } }[] };
    expect(list.deployments.map((d) => [d.spec.name, d.spec.replicas])).toEqual([['gpt', 1]]);
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
  });
});
