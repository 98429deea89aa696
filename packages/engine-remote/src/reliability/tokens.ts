// Token estimates for the tpm limiter, made before a request is sent. Small
// prompts (under a character threshold) are counted inline — microseconds; large
// ones go to a piscina pool of worker threads so a huge prompt never blocks the
// event loop. The worker is a plain .mjs file at the package root, found from this
// module's URL, so the same path works from the TypeScript sources and from dist.

import type { GenerateRequest } from '@inference/core';
import { Piscina } from 'piscina';

/** Prompts with at most this many characters are counted on the calling thread. */
export const INLINE_CHARS = 8_192;
/** Tokens a chat message costs beyond its text (role, separators). */
const PER_MESSAGE = 4;
/** Completion tokens assumed when the request sets no max_tokens. */
export const DEFAULT_COMPLETION_ESTIMATE = 256;

type Counter = (text: string) => number;
let inline: Promise<Counter> | undefined;

function inlineCounter(): Promise<Counter> {
  inline ??= import('gpt-tokenizer/encoding/o200k_base').then((m) => (t: string) => m.countTokens(t));
  return inline;
}

let pool: Piscina | undefined;

function workerPool(): Piscina {
  pool ??= new Piscina({
    filename: new URL('../../workers/countTokens.mjs', import.meta.url).href,
    minThreads: 0,
    maxThreads: 2,
    idleTimeout: 30_000,
    maxQueue: 1024,
  });
  return pool;
}

/** Stops the worker threads (they also exit on their own when idle). */
export async function closeTokenPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (p !== undefined) await p.destroy();
}

export function promptTexts(req: GenerateRequest): string[] {
  if (req.kind === 'completion') return [req.prompt];
  const out: string[] = [];
  for (const m of req.messages) {
    if (m.content !== null) out.push(m.content);
    if (m.toolCalls !== undefined) for (const c of m.toolCalls) out.push(c.function.arguments);
  }
  return out;
}

/** Counts prompt tokens with a real tokenizer, inline or in the pool by size. */
export async function countPromptTokens(texts: readonly string[]): Promise<number> {
  let chars = 0;
  for (const t of texts) chars += t.length;
  if (chars <= INLINE_CHARS) {
    const count = await inlineCounter();
    let n = 0;
    for (const t of texts) n += count(t);
    return n;
  }
  return (await workerPool().run({ texts })) as number;
}

/** Tokens a request is charged before it is sent: its prompt plus the completion it may produce. */
export async function estimateRequestTokens(req: GenerateRequest): Promise<number> {
  const texts = promptTexts(req);
  const prompt = await countPromptTokens(texts);
  const overhead = req.kind === 'chat' ? req.messages.length * PER_MESSAGE : 0;
  const completion = (req.sampling.maxTokens ?? DEFAULT_COMPLETION_ESTIMATE) * Math.max(1, req.sampling.n);
  return prompt + overhead + completion;
}
