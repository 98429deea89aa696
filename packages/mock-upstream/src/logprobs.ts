// Deterministic token log-probabilities, in OpenAI's two shapes: chat's
// `logprobs.content[]` (token, logprob, bytes, top_logprobs) and legacy completions'
// `{tokens, token_logprobs, top_logprobs, text_offset}`. Word i of the mock's output
// always gets the same numbers, so tests can predict them: the sampled token's
// logprob is -(i mod 9 + 1) / 16, and its alternatives are the next sentence words
// with logprobs one unit lower each. Requests parse and validate the fields the way
// the real API does (top_logprobs 0..20 needing logprobs: true; legacy logprobs 0..5;
// logit_bias values -100..100).

import { InputError } from './errors.js';
import { isObject, optionalBoolean, optionalInt, type JsonObject } from './fields.js';
import { SENTENCE_WORDS } from './text.js';

/** How many alternatives per position; undefined when logprobs were not asked for. */
export type LogprobRequest = number | undefined;

const utf8 = new TextEncoder();

function bytes(s: string): number[] {
  return Array.from(utf8.encode(s));
}

function sampled(i: number): number {
  return -((i % 9) + 1) / 16;
}

function alternatives(i: number, piece: string, top: number): { token: string; logprob: number }[] {
  const out: { token: string; logprob: number }[] = [];
  if (top === 0) return out;
  out.push({ token: piece, logprob: sampled(i) });
  for (let k = 1; k < top; k++) {
    const word = SENTENCE_WORDS[(i + k) % SENTENCE_WORDS.length] ?? '';
    out.push({ token: i === 0 ? word : ` ${word}`, logprob: sampled(i) - k });
  }
  return out;
}

/** Chat: `logprobs` (boolean) and `top_logprobs` (0..20, needs logprobs). */
export function parseChatLogprobs(body: JsonObject): LogprobRequest {
  const on = optionalBoolean(body, 'logprobs');
  const top = optionalInt(body, 'top_logprobs', 0, 20);
  if (top !== undefined && top > 0 && !on) throw new InputError("'top_logprobs' requires 'logprobs' to be true.", 'top_logprobs');
  return on ? (top ?? 0) : undefined;
}

/** Legacy completions: `logprobs` is the number of alternatives, 0..5. */
export function parseCompletionLogprobs(body: JsonObject): LogprobRequest {
  return optionalInt(body, 'logprobs', 0, 5);
}

/** `logit_bias` as OpenAI checks it: an object of token id -> number in -100..100. */
export function checkLogitBias(body: JsonObject): void {
  const lb = body.logit_bias;
  if (lb === undefined || lb === null) return;
  if (!isObject(lb)) throw new InputError("'logit_bias' must be an object.", 'logit_bias');
  for (const [k, v] of Object.entries(lb)) {
    if (!/^\d+$/.test(k)) throw new InputError(`Invalid key in 'logit_bias': ${k}.`, 'logit_bias');
    if (typeof v !== 'number' || v < -100 || v > 100) {
      throw new InputError(`Invalid value for 'logit_bias' at ${k}: must be between -100 and 100.`, 'logit_bias');
    }
  }
}

/** One chat `logprobs.content[]` entry for output word i, as JSON text. */
export function chatEntryJson(i: number, piece: string, top: number): string {
  const tops = alternatives(i, piece, top).map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytes(a.token) }));
  return JSON.stringify({ token: piece, logprob: sampled(i), bytes: bytes(piece), top_logprobs: tops });
}

/** A whole choice's chat `logprobs` object. */
export function chatLogprobsJson(pieces: readonly string[], top: number, first = 0): string {
  return `{"content":[${pieces.map((p, k) => chatEntryJson(first + k, p, top)).join(',')}],"refusal":null}`;
}

/** A legacy completions `logprobs` object for words first.. of the output, offsets from `offset`. */
export function completionLogprobsJson(pieces: readonly string[], top: number, first = 0, offset = 0): string {
  const tokens: string[] = [];
  const tokenLogprobs: number[] = [];
  const topLogprobs: Record<string, number>[] = [];
  const textOffset: number[] = [];
  let at = offset;
  pieces.forEach((p, k) => {
    const i = first + k;
    tokens.push(p);
    tokenLogprobs.push(sampled(i));
    const t: Record<string, number> = {};
    for (const a of alternatives(i, p, top)) t[a.token] = a.logprob;
    topLogprobs.push(t);
    textOffset.push(at);
    at += p.length;
  });
  return JSON.stringify({ tokens, token_logprobs: tokenLogprobs, top_logprobs: topLogprobs, text_offset: textOffset });
}
