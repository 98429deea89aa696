import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { Cancellation, type ChatRequest, ChunkWriter, TEXT_JSON, type TokenChunk, parseDeployment } from '@inference/core';
import { type MockUpstream, parseSse, startMockUpstream } from '@inference/mock-upstream';
import { closeSession, openSession } from '../session.js';
import { generate } from './openai.js';
import { PlainTextEvents, textOfPlainChatEvent } from './openaiTextEvent.js';

type Json = Record<string, unknown>;

/** What the full parse reads from an event, when it carries only text for choice 0; undefined otherwise. */
function plainTextByFullParse(data: string): string | undefined {
  let ev: Json;
  try {
    ev = JSON.parse(data) as Json;
  } catch {
    return undefined;
  }
  if (typeof ev.error === 'object' && ev.error !== null) return undefined;
  if (typeof ev.usage === 'object' && ev.usage !== null) return undefined;
  const choices = ev.choices;
  if (!Array.isArray(choices) || choices.length !== 1) return undefined;
  const c = choices[0] as Json;
  const delta = (c.delta ?? {}) as Json;
  const keys = Object.keys(delta).filter((k) => k !== 'role');
  if (c.index !== 0 || c.finish_reason !== null || (c.logprobs ?? null) !== null) return undefined;
  if (keys.length !== 1 || typeof delta.content !== 'string') return undefined;
  return delta.content;
}

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream();
});
afterAll(async () => {
  await mock.close();
});

async function streamEvents(body: Json): Promise<string[]> {
  const res = await fetch(`${mock.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'Tell me a "quoted"\nstory' }], stream: true, ...body }),
  });
  expect(res.status).toBe(200);
  return parseSse(await res.text()).map((e) => e.data).filter((d) => d !== '[DONE]');
}

describe('textOfPlainChatEvent', () => {
  const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
  const variants: [string, Json][] = [
    ['plain', { max_tokens: 12 }],
    ['with usage asked', { max_tokens: 12, stream_options: { include_usage: true } }],
    ['n = 2', { max_tokens: 6, n: 2 }],
    ['logprobs', { max_tokens: 6, logprobs: true, top_logprobs: 2 }],
    ['tool call', { tools: [tool], tool_choice: 'required' }],
  ];

  it.each(variants)('reads exactly what the full parse reads, on every event of a real stream (%s)', async (_name, body) => {
    const events = await streamEvents(body);
    expect(events.length).toBeGreaterThan(2);
    for (const data of events) expect(textOfPlainChatEvent(data)).toBe(plainTextByFullParse(data));
  });

  it('is taken for the usual text events (the fast path is not dead code)', async () => {
    const events = await streamEvents({ max_tokens: 12, stream_options: { include_usage: true } });
    const taken = events.filter((d) => textOfPlainChatEvent(d) !== undefined);
    // All but the first (role and `refusal: null`), the finish_reason event and the usage event.
    expect(taken.length).toBe(events.length - 3);
    expect(taken.length).toBeGreaterThan(5);
    expect(taken.map((d) => textOfPlainChatEvent(d)).join('')).toBe(events.map((d) => plainTextByFullParse(d) ?? '').join(''));
  });

  const head = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[';
  it.each([
    ['escapes', `${head}{"index":0,"delta":{"content":"a\\"b\\n\\u00e9\\\\"},"logprobs":null,"finish_reason":null}]}`, 'a"b\né\\'],
    ['role with content', `${head}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`, ''],
    ['no logprobs key, keys after choices', `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":null,"obfuscation":"q1"}`, 'x'],
    ['scalar usage and error keys', `{"usage":3,"error":"no","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"n":-1.5e3}`, 'x'],
  ])('reads the text of a plain event (%s)', (_name, data, text) => {
    expect(textOfPlainChatEvent(data)).toBe(text);
    expect(plainTextByFullParse(data)).toBe(text);
  });

  it('leaves a very long event to the full parse instead of overflowing the match', () => {
    const data = `${head}{"index":0,"delta":{"content":"${'x'.repeat(8 * 1024 * 1024)}"},"logprobs":null,"finish_reason":null}]}`;
    expect(textOfPlainChatEvent(data)).toBeUndefined();
    expect(plainTextByFullParse(data)?.length).toBe(8 * 1024 * 1024);
    const short = `${head}{"index":0,"delta":{"content":"${'x'.repeat(60_000)}"},"logprobs":null,"finish_reason":null}]}`;
    expect(textOfPlainChatEvent(short)?.length).toBe(60_000);
  });

  it.each([
    ['finish_reason', `${head}{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":"stop"}]}`],
    ['another choice', `${head}{"index":1,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}`],
    ['two choices', `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null},{"index":1,"delta":{"content":"y"},"finish_reason":null}]}`],
    ['tool calls', `${head}{"index":0,"delta":{"content":"x","tool_calls":[]},"finish_reason":null}]}`],
    ['reasoning', `${head}{"index":0,"delta":{"reasoning_content":"r","content":"x"},"finish_reason":null}]}`],
    ['logprobs', `${head}{"index":0,"delta":{"content":"x"},"logprobs":{"content":[]},"finish_reason":null}]}`],
    ['usage object', `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`],
    ['error object', `{"error":{"message":"boom"},"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`],
    ['second choices key', `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null}],"choices":[]}`],
    ['whitespace', `{"choices": [{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`],
    ['invalid escape', `${head}{"index":0,"delta":{"content":"\\q"},"finish_reason":null}]}`],
    ['raw control character', `${head}{"index":0,"delta":{"content":"a\tb"},"finish_reason":null}]}`],
    ['malformed prefix', `{"id":"c1,"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`],
    ['object before choices', `{"meta":{"a":1},"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`],
    ['trailing garbage', `${head}{"index":0,"delta":{"content":"x"},"finish_reason":null}]}x`],
  ])('leaves any other event to the full parse (%s)', (_name, data) => {
    expect(textOfPlainChatEvent(data)).toBeUndefined();
  });
});

describe('PlainTextEvents (one per stream)', () => {
  const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
  const variants: [string, Json][] = [
    ['plain', { max_tokens: 12 }],
    ['with usage asked', { max_tokens: 12, stream_options: { include_usage: true } }],
    ['n = 2', { max_tokens: 6, n: 2 }],
    ['logprobs', { max_tokens: 6, logprobs: true, top_logprobs: 2 }],
    ['tool call', { tools: [tool], tool_choice: 'required' }],
  ];

  /** The reader's answer for `data` checked against the full parse; returns whether it read without the expression. */
  function check(r: PlainTextEvents, data: string): void {
    const got = r.read(data);
    expect(got).toBe(plainTextByFullParse(data));
    // The JSON string handed on is exactly JSON.stringify of the text, or absent (always, for any other event).
    if (got === undefined) expect(r.json).toBeUndefined();
    else if (r.json !== undefined) expect(r.json).toBe(JSON.stringify(got));
  }

  it.each(variants)('reads exactly what the full parse reads, event after event of a real stream (%s)', async (_name, body) => {
    const r = new PlainTextEvents();
    for (const data of await streamEvents(body)) check(r, data);
  });

  it('hands on the JSON string of every text event of a real stream', async () => {
    const r = new PlainTextEvents();
    const read = (await streamEvents({ max_tokens: 12 })).map((d) => [r.read(d), r.json]).filter(([t]) => t !== undefined && t !== '');
    expect(read.length).toBe(12);
    for (const [text, json] of read) expect(json).toBe(JSON.stringify(text));
  });

  const head = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":';
  const tail = '},"logprobs":null,"finish_reason":null}]}';
  it.each([
    ['an unescaped quote (another key smuggled in)', '"a","reasoning_content":"b"'],
    ['a raw control character', '"a\tb"'],
    ['an invalid escape', '"a\\qb"'],
    ['a short \\u escape', '"a\\u12"'],
    ['a non-hex \\u escape', '"a\\u12g4"'],
    ['an escaped closing quote', '"a\\"'],
    ['a lone quote', '"'],
    ['not a string', '12'],
    ['an object', '{"a":"b"}'],
  ])('after a plain event, refuses one with the same bytes around %s', (_name, middle) => {
    const r = new PlainTextEvents();
    check(r, `${head}"x"${tail}`);
    expect(r.read(`${head}"x"${tail}`)).toBe('x');
    const data = `${head}${middle}${tail}`;
    expect(r.read(data)).toBeUndefined();
    check(new PlainTextEvents(), data);
  });

  it('after a plain event, refuses one with the same bytes before its text and others, as long, after it', () => {
    const r = new PlainTextEvents();
    check(r, `${head}"x"${tail}`);
    for (const other of ['},"logprobs":null,"finish_reason":"st"}]}', '},"logprobs":null,"finish_reason":null}]1', '},"logprobs":null,"finish_reason":null} ]']) {
      expect(other.length).toBe(tail.length);
      expect(r.read(`${head}"y"${other}`)).toBeUndefined();
      check(r, `${head}"y"${other}`);
    }
  });

  it.each([
    ['plain text', '"hello world"', 'hello world', true],
    ['escapes JSON.stringify writes', '"a\\"b\\\\c\\nd\\te\\u0001"', 'a"b\\c\nd\te\u0001', true],
    ['escapes it does not write', '"\\u00e9\\/"', 'é/', false],
    ['an uppercase \\u escape', '"\\u001F"', '\u001f', false],
    ['text longer than the expression allows', `"${'y'.repeat(70_000)}"`, 'y'.repeat(70_000), true],
  ])('after a plain event, reads one that differs in its text only (%s)', (_name, middle, text, exact) => {
    const r = new PlainTextEvents();
    check(r, `${head}"x"${tail}`);
    expect(r.read(`${head}${middle}${tail}`)).toBe(text);
    expect(r.json).toBe(exact ? middle : undefined);
    if (middle.length < 60_000) check(new PlainTextEvents(), `${head}${middle}${tail}`);
  });

  it("reads llama.cpp's key order (choices first, finish_reason before index)", () => {
    const llama = (t: string, created: number): string =>
      `{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"${t}"}}],"created":${created},"id":"chatcmpl-x","model":"m",` +
      '"system_fingerprint":"b1-abc","object":"chat.completion.chunk"}';
    const r = new PlainTextEvents();
    for (const [t, created] of [['Hi', 1], [' there', 1], ['!', 2], ['', 2]] as const) {
      const data = llama(t, created);
      expect(plainTextByFullParse(data)).toBe(t);
      check(r, data);
    }
    check(r, '{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":2,"id":"chatcmpl-x","model":"m","object":"chat.completion.chunk"}');
  });

  it('after the first text, which carries the role, reads the texts after it without matching again', () => {
    const r = new PlainTextEvents();
    const roleHead = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":';
    check(r, `${roleHead}"Once"${tail}`);
    const exec = vi.spyOn(RegExp.prototype, 'exec');
    try {
      for (const t of [' upon', ' a', ' "time"', '']) check(r, `${head}${JSON.stringify(t)}${tail}`);
      expect(exec).not.toHaveBeenCalled();
    } finally {
      exec.mockRestore();
    }
    // A second role event is still read exactly (matched again).
    check(r, `${roleHead}"again"${tail}`);
    check(r, `${head}"x"${tail}`);
  });

  it('follows a stream whose bytes around the text change', () => {
    const r = new PlainTextEvents();
    check(r, `${head}"a"${tail}`);
    check(r, `{"id":"c2","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":null}],"usage":null}`);
    check(r, `{"id":"c2","choices":[{"index":0,"delta":{"content":"c"},"finish_reason":null}],"usage":null}`);
    check(r, `{"id":"c2","choices":[{"index":0,"delta":{"content":"c"},"finish_reason":null}],"usage":{"prompt_tokens":1}}`);
    check(r, `{"id":"c2","choices":[{"index":0,"delta":{"content":"d"},"finish_reason":null}],"usage":01}`);
    check(r, `${head}"e"${tail}`);
  });

  it('writes, through ChunkWriter.text, the bytes ChunkWriter.delta renders for the text (any text, role or not)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constantFrom('\u2028', '"\\\n\r\t\b\f', '\u0000\u001f', '\ud83e\udd8a')),
      fc.boolean(), fc.nat(3), (text, role, index) => {
        for (const kind of ['chat', 'completion'] as const) {
          const w = new ChunkWriter(kind, 'chatcmpl-1', 7, 'model "x"');
          expect(w.text(index, JSON.stringify(text), role)).toBe(w.delta(index, role && kind === 'chat' ? { role: true, text } : { text }));
        }
      }));
  });
});

describe('the streamed chat reader', () => {
  it('reads the plain text events without a full parse, with the same chunks and result', async () => {
    const spec = parseDeployment({ name: 'u', runtime: 'openai', endpoint: mock.url, replicas: 1 });
    const session = openSession(spec, () => ({ apiKey: undefined }), 1);
    const req: ChatRequest = {
      kind: 'chat', model: 'u', sampling: { stop: [], n: 1, maxTokens: 10 }, stream: true, includeUsage: false, passthrough: {},
      messages: [{ role: 'user', content: 'Tell me a "quoted"\nstory' }],
    };
    const events = await streamEvents({ max_tokens: 10, stream_options: { include_usage: true } });
    const chunks: TokenChunk[] = [];
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const tokens = await generate({ spec, session, ctx: { requestId: 'r', signal: new Cancellation() } }, req, (c) => { chunks.push(c); });
      const eventParses = parse.mock.calls.filter(([text]) => typeof text === 'string' && text.startsWith('{"id":"chatcmpl'));
      // Only the role event, the finish_reason event and the usage event are parsed whole.
      expect(eventParses.length).toBe(3);
      const texts = events.map((d) => plainTextByFullParse(d)).filter((t): t is string => t !== undefined && t !== '');
      // Each text chunk carries its text's JSON string as the upstream sent it: exactly JSON.stringify(text).
      expect(chunks.filter((c) => c.finishReason === undefined)).toEqual(texts.map((text) => ({ index: 0, text, tokens: 1, [TEXT_JSON]: JSON.stringify(text) })));
      expect(chunks.at(-1)?.finishReason).toBe('length');
      expect(tokens.choices).toEqual([{ index: 0, text: texts.join(''), finishReason: 'length' }]);
      expect(tokens.usage.completionTokens).toBe(10);
    } finally {
      parse.mockRestore();
      await closeSession(session);
    }
  });
});
