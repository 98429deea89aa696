import { InferenceError } from '@inference/core';
import { type ThrownError, errorOf } from '@inference/core/testing';
import { describe, expect, it } from 'vitest';
import { decodeBody, decodeFrame, encodeFrame, errorFrame, frameError } from './forwardCodec.js';

const generate = {
  kind: 'chat',
  model: 'gpt',
  sampling: { n: 1, stop: [] },
  stream: true,
  includeUsage: false,
  passthrough: {},
  messages: [{ role: 'user', content: 'hi' }],
};

describe('forwarded bodies and frames', () => {
  it('round-trips a generate body and frames', () => {
    const body = decodeBody(JSON.stringify({ replica: 'gpt#1', kind: 'generate', req: generate }));
    expect(body.kind).toBe('generate');
    expect(decodeFrame(encodeFrame({ chunk: { index: 0, text: 'a', tokens: 1 } }).trim())).toEqual({ chunk: { index: 0, text: 'a', tokens: 1 } });
    const e = frameError(
      (
        decodeFrame(encodeFrame(errorFrame(new InferenceError('rate_limited', 'slow down', { retryAfterMs: 500 }))).trim()) as {
          error: Parameters<typeof frameError>[0];
        }
      ).error,
    );
    expect(e.kind).toBe('rate_limited');
    expect(e.retryAfterMs).toBe(500);
  });

  it('bad bodies are invalid_request naming the field', () => {
    const bad = (v: unknown): ThrownError => errorOf(() => decodeBody(typeof v === 'string' ? v : JSON.stringify(v)));
    expect(bad('{').kind).toBe('invalid_request');
    expect(bad({ kind: 'generate', req: generate }).param).toBe('replica');
    expect(bad({ replica: 'r', kind: 'x' }).param).toBe('kind');
    expect(bad({ replica: 'r', kind: 'generate', req: { ...generate, messages: [] } }).param).toBe('req.messages');
    expect(bad({ replica: 'r', kind: 'generate', req: { ...generate, sampling: { n: 0, stop: [] } } }).param).toBe('req.sampling');
    expect(bad({ replica: 'r', kind: 'embed', req: { model: 'e', input: [1], encodingFormat: 'float' } }).param).toBe('req.input');
  });

  it('malformed frames from a peer are engine_unavailable', () => {
    for (const f of ['nope', '[]', '{"chunk":{"index":"0"}}', '{"error":{"kind":"boom","message":"x"}}', '{}']) {
      expect(() => decodeFrame(f)).toThrow(expect.objectContaining({ kind: 'engine_unavailable' }) as Error);
    }
  });
});
