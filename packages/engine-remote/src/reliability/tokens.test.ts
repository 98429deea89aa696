// Token estimates: small prompts inline, large ones through the worker pool; both real counts.
import { afterAll, describe, expect, it } from 'vitest';
import { INLINE_CHARS, closeTokenPool, countPromptTokens } from './tokens.js';

afterAll(async () => {
  await closeTokenPool();
});

describe('countPromptTokens', () => {
  it('counts a small prompt inline with the o200k tokenizer', async () => {
    expect(await countPromptTokens(['hello world'])).toBe(2);
  });

  it('counts a prompt above the inline threshold in the worker pool, with the same tokenizer', async () => {
    const big = 'hello world '.repeat(Math.ceil(INLINE_CHARS / 12) + 10);
    const inParts = await Promise.all(big.match(/.{1,4000}(?= |$)/gs)?.map((p) => countPromptTokens([p])) ?? []);
    const pooled = await countPromptTokens([big]);
    // Word-aligned parts tokenize the same as the whole, up to the boundaries.
    const sum = inParts.reduce((a, b) => a + b, 0);
    expect(pooled).toBeGreaterThan(INLINE_CHARS / 8);
    expect(Math.abs(pooled - sum)).toBeLessThanOrEqual(inParts.length);
  });
});
