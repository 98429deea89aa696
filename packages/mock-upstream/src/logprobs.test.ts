// logprobs on the mock's OpenAI endpoints: chat (content[] with bytes and top_logprobs)
// and legacy completions (tokens / token_logprobs / top_logprobs / text_offset), streamed
// and not, with OpenAI's validation of the fields.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOpenAiStream, startMockUpstream, type MockUpstream } from './index.js';

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
});
afterAll(async () => {
  await mock.close();
});

async function post(path: string, body: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const r = await fetch(`${mock.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}

const messages = [{ role: 'user', content: 'hi' }];

describe('mock logprobs', () => {
  it('chat, not streamed: one entry per token with bytes and top alternatives', async () => {
    const { status, json } = await post('/chat/completions', { model: 'm', messages, max_tokens: 2, logprobs: true, top_logprobs: 2 });
    expect(status).toBe(200);
    const lp = (json as { choices: { logprobs: unknown }[] }).choices[0]?.logprobs;
    expect(lp).toEqual({
      refusal: null,
      content: [
        {
          token: 'The',
          logprob: -1 / 16,
          bytes: [84, 104, 101],
          top_logprobs: [
            { token: 'The', logprob: -1 / 16, bytes: [84, 104, 101] },
            { token: 'quick', logprob: -1 / 16 - 1, bytes: [113, 117, 105, 99, 107] },
          ],
        },
        {
          token: ' quick',
          logprob: -2 / 16,
          bytes: [32, 113, 117, 105, 99, 107],
          top_logprobs: [
            { token: ' quick', logprob: -2 / 16, bytes: [32, 113, 117, 105, 99, 107] },
            { token: ' brown', logprob: -2 / 16 - 1, bytes: [32, 98, 114, 111, 119, 110] },
          ],
        },
      ],
    });
    const off = await post('/chat/completions', { model: 'm', messages, max_tokens: 2 });
    expect((off.json as { choices: { logprobs: unknown }[] }).choices[0]?.logprobs).toBeNull();
  });

  it('chat, streamed: each content chunk carries its token', async () => {
    const { text } = await post('/chat/completions', { model: 'm', messages, max_tokens: 3, logprobs: true, stream: true });
    const chunks = parseOpenAiStream(text).chunks as { choices: { delta: { content?: string }; logprobs: { content: { token: string }[] } | null }[] }[];
    const withText = chunks.filter((c) => (c.choices[0]?.delta.content ?? '') !== '');
    expect(withText.map((c) => c.choices[0]?.logprobs?.content.map((e) => e.token))).toEqual([['The'], [' quick'], [' brown']]);
  });

  it('completions: legacy shape with running text offsets, streamed and not', async () => {
    const { json } = await post('/completions', { model: 'm', prompt: 'x', max_tokens: 2, logprobs: 1 });
    expect((json as { choices: { logprobs: unknown }[] }).choices[0]?.logprobs).toEqual({
      tokens: ['The', ' quick'], token_logprobs: [-1 / 16, -2 / 16], top_logprobs: [{ The: -1 / 16 }, { ' quick': -2 / 16 }], text_offset: [0, 3],
    });
    const { text } = await post('/completions', { model: 'm', prompt: 'x', max_tokens: 2, logprobs: 0, stream: true });
    const chunks = parseOpenAiStream(text).chunks as { choices: { text: string; logprobs: { text_offset: number[]; top_logprobs: unknown[] } | null }[] }[];
    expect(chunks.filter((c) => c.choices[0]?.text !== '').map((c) => c.choices[0]?.logprobs)).toEqual([
      { tokens: ['The'], token_logprobs: [-1 / 16], top_logprobs: [{}], text_offset: [0] },
      { tokens: [' quick'], token_logprobs: [-2 / 16], top_logprobs: [{}], text_offset: [3] },
    ]);
  });

  it.each([
    ['/chat/completions', { model: 'm', messages, top_logprobs: 2 }, 'top_logprobs'],
    ['/chat/completions', { model: 'm', messages, logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
    ['/completions', { model: 'm', prompt: 'x', logprobs: 6 }, 'logprobs'],
    ['/chat/completions', { model: 'm', messages, logit_bias: { 5: 200 } }, 'logit_bias'],
    ['/completions', { model: 'm', prompt: 'x', logit_bias: { a: 1 } }, 'logit_bias'],
  ])('refuses %s %j naming %s', async (path, body, param) => {
    const { status, json } = await post(path, body);
    expect(status).toBe(400);
    expect((json as { error: { param: string } }).error.param).toBe(param);
  });
});
