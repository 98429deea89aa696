// The deterministic generator, word counting and embeddings: pure functions.

import { describe, expect, it } from 'vitest';
import { embed } from './embedding.js';
import { countWords, DEFAULT_COMPLETION_WORDS, generate, outputLength } from './text.js';

describe('outputLength', () => {
  it('uses max_tokens exactly (length) unless the behavior asks for fewer words (stop)', () => {
    expect(outputLength({ maxTokens: 5, behaviorTokens: undefined })).toEqual({ words: 5, finish: 'length' });
    expect(outputLength({ maxTokens: 5, behaviorTokens: 2 })).toEqual({ words: 2, finish: 'stop' });
    expect(outputLength({ maxTokens: 5, behaviorTokens: 9 })).toEqual({ words: 5, finish: 'length' });
    expect(outputLength({ maxTokens: undefined, behaviorTokens: 3 })).toEqual({ words: 3, finish: 'stop' });
    expect(outputLength({ maxTokens: undefined, behaviorTokens: undefined })).toEqual({ words: DEFAULT_COMPLETION_WORDS, finish: 'stop' });
  });
});

describe('generate', () => {
  it('repeats the pangram one word per piece, pieces concatenating to the text', () => {
    const g = generate({ maxTokens: 11, behaviorTokens: undefined }, []);
    expect(g.pieces).toEqual(['The', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog.', ' The', ' quick']);
    expect(g.text).toBe(g.pieces.join(''));
    expect(g.piecesJson.map((p) => JSON.parse(p) as string)).toEqual(g.pieces);
    expect(generate({ maxTokens: 0, behaviorTokens: undefined }, []).text).toBe('');
  });

  it('handles outputs past the precomputed range', () => {
    const g = generate({ maxTokens: 5000, behaviorTokens: undefined }, []);
    expect(g.pieces).toHaveLength(5000);
    expect(g.text.startsWith('The quick')).toBe(true);
    expect(countWords(g.text)).toBe(5000);
  });

  it('cuts before the earliest stop sequence, even inside a word', () => {
    const g = generate({ maxTokens: 20, behaviorTokens: undefined }, ['zzz', 'umps', 'lazy']);
    expect(g.text).toBe('The quick brown fox j');
    expect(g.pieces).toEqual(['The', ' quick', ' brown', ' fox', ' j']);
    expect(g).toMatchObject({ finish: 'stop_sequence', stopSequence: 'umps' });
    expect(generate({ maxTokens: 3, behaviorTokens: undefined }, ['dog'])).toMatchObject({ finish: 'length', stopSequence: null });
  });
});

describe('countWords', () => {
  it('counts whitespace-separated words', () => {
    expect(countWords('')).toBe(0);
    expect(countWords('  one\ttwo\n\nthree  ')).toBe(3);
    expect(countWords('single')).toBe(1);
  });
});

describe('embed', () => {
  it('is deterministic, unit length and input-sensitive', () => {
    expect(embed('a')).toEqual(embed('a'));
    expect(embed('a')).not.toEqual(embed('b'));
    expect(embed('a', 32)).toHaveLength(32);
    expect(Math.hypot(...embed('anything'))).toBeCloseTo(1, 5);
  });
});
