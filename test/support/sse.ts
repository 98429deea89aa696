// Raw SSE framing for the conformance suites: the exact bytes of a stream split
// into events, and the invariants every OpenAI stream from the gateway must keep
// (framing, chunk fields, one role and one finish_reason per choice, usage only
// when asked, [DONE] last, nothing after an error event).

import { expect } from 'vitest';

export interface RawStream {
  status: number;
  contentType: string;
  requestId: string | null;
  /** The `data:` payload of each event, in order. */
  data: string[];
}

/** POSTs a JSON body and returns the stream's events, checking the framing of every byte. */
export async function rawStream(url: string, body: unknown, headers: Record<string, string> = {}): Promise<RawStream> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  if (res.status !== 200) return { status: res.status, contentType, requestId: res.headers.get('x-request-id'), data: [text] };
  // Every event is exactly `data: <payload>\n\n`: no comments, no `event:` lines, no other separators.
  expect(text.endsWith('\n\n')).toBe(true);
  const blocks = text.slice(0, -2).split('\n\n');
  for (const b of blocks) {
    expect(b.startsWith('data: ')).toBe(true);
    expect(b.includes('\n')).toBe(false);
  }
  return { status: res.status, contentType, requestId: res.headers.get('x-request-id'), data: blocks.map((b) => b.slice(6)) };
}

export interface Chunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: {
    index: number;
    delta?: { role?: string; content?: string | null; tool_calls?: { index: number; id?: string; type?: string; function: { name?: string; arguments: string } }[] };
    text?: string;
    logprobs: null;
    finish_reason: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface StreamSummary {
  chunks: Chunk[];
  /** Concatenated content (chat) or text (completions) per choice index. */
  text: Map<number, string>;
  finish: Map<number, string>;
  usage: Chunk['usage'];
}

/**
 * Checks an OpenAI stream's invariants and summarises it. `kind` picks the chunk
 * object; `n` the number of choices expected; `includeUsage` whether the final
 * usage chunk (empty choices) must be there.
 */
export function checkOpenAIStream(s: RawStream, opts: { kind: 'chat' | 'completion'; n: number; includeUsage: boolean; model: string }): StreamSummary {
  expect(s.status).toBe(200);
  expect(s.contentType).toMatch(/^text\/event-stream/);
  expect(s.requestId).toBeTruthy();
  expect(s.data.at(-1)).toBe('[DONE]');
  expect(s.data.filter((d) => d === '[DONE]')).toHaveLength(1);
  const chunks = s.data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
  expect(chunks.length).toBeGreaterThan(0);
  const first = chunks[0]!;
  expect(first.id).toMatch(opts.kind === 'chat' ? /^chatcmpl-/ : /^cmpl-/);
  const text = new Map<number, string>();
  const finish = new Map<number, string>();
  const roleSeen = new Set<number>();
  let usage: Chunk['usage'];
  chunks.forEach((c, at) => {
    expect(Object.keys(c)).not.toContain('error');
    // One id, one created, one model and the right object for every chunk of a stream.
    expect(c.id).toBe(first.id);
    expect(c.created).toBe(first.created);
    expect(Number.isInteger(c.created)).toBe(true);
    expect(c.model).toBe(opts.model);
    expect(c.object).toBe(opts.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion');
    if (c.choices.length === 0) {
      // The usage chunk: only when asked, only last.
      expect(opts.includeUsage).toBe(true);
      expect(at).toBe(chunks.length - 1);
      usage = c.usage;
      return;
    }
    expect(c.usage ?? null).toBeNull();
    for (const ch of c.choices) {
      expect(ch.index).toBeGreaterThanOrEqual(0);
      expect(ch.index).toBeLessThan(opts.n);
      expect(ch.logprobs).toBeNull();
      expect(finish.has(ch.index)).toBe(false); // nothing for a choice after its finish_reason
      if (opts.kind === 'chat') {
        const delta = ch.delta;
        expect(delta).toBeDefined();
        // role: in the choice's first delta, and only there.
        expect(delta?.role === 'assistant').toBe(!roleSeen.has(ch.index));
        roleSeen.add(ch.index);
        text.set(ch.index, (text.get(ch.index) ?? '') + (delta?.content ?? ''));
      } else {
        expect(typeof ch.text).toBe('string');
        text.set(ch.index, (text.get(ch.index) ?? '') + (ch.text ?? ''));
      }
      if (ch.finish_reason !== null) finish.set(ch.index, ch.finish_reason);
    }
  });
  // Exactly one finish_reason per choice, for every choice.
  const finishes = chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason !== null).map((ch) => ch.index));
  expect(finishes.sort()).toEqual(Array.from({ length: opts.n }, (_, i) => i));
  if (opts.includeUsage) {
    expect(usage).toBeDefined();
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  }
  return { chunks, text, finish, usage };
}

/** The error envelope of a non-2xx OpenAI answer. */
export interface Envelope {
  error: { message: string; type: string; param: string | null; code: string };
}

export function expectEnvelope(body: unknown): Envelope {
  const e = (body as Envelope).error;
  expect(typeof e.message).toBe('string');
  expect(typeof e.type).toBe('string');
  expect(typeof e.code).toBe('string');
  expect(e.param === null || typeof e.param === 'string').toBe(true);
  return body as Envelope;
}
