// Behavior parsing and the script queue.

import { describe, expect, it } from 'vitest';
import { BehaviorError, injectedStatus, parseBehavior, parseScript, ScriptQueue } from './behavior.js';

describe('parseBehavior', () => {
  it('accepts every documented field', () => {
    const all = {
      latencyMs: 1,
      chunkDelayMs: 2,
      status: 429,
      retryAfterSeconds: 3,
      retryAfterMs: 4,
      hang: false,
      disconnectAfterChunks: 5,
      tokens: 6,
      errorType: 'x',
      errorMessage: 'y',
      errorParam: 'z',
    };
    expect(parseBehavior(all)).toEqual(all);
    expect(parseBehavior({})).toEqual({});
  });

  it('rejects unknown keys, wrong types and unsupported statuses', () => {
    expect(() => parseBehavior({ latency: 5 })).toThrow(BehaviorError);
    expect(() => parseBehavior({ status: 200 })).toThrow(/status/);
    expect(() => parseBehavior({ tokens: 1.5 })).toThrow(/tokens/);
    expect(() => parseBehavior({ latencyMs: Number.NaN })).toThrow(/latencyMs/);
    expect(() => parseBehavior({ hang: 'yes' })).toThrow(/hang/);
    expect(() => parseBehavior({ errorParam: '' })).toThrow(/errorParam/);
    expect(() => parseBehavior({ errorMessage: 3 })).toThrow(/errorMessage/);
    expect(() => parseBehavior([])).toThrow(BehaviorError);
    expect(() => parseScript([{}, { nope: 1 }])).toThrow(/script\[1\]/);
  });

  it('derives the injected status', () => {
    expect(injectedStatus({})).toBeUndefined();
    expect(injectedStatus({ errorType: 'content_filter' })).toBe(400);
    expect(injectedStatus({ status: 529, errorType: 'overloaded_error' })).toBe(529);
    expect(injectedStatus({ errorParam: 'temperature' })).toBe(400);
    expect(injectedStatus({ errorMessage: 'max_tokens: Field required' })).toBe(400);
  });
});

describe('ScriptQueue', () => {
  it('is FIFO, and replace() drops what was left', () => {
    const queue = new ScriptQueue();
    queue.replace([{ tokens: 1 }, { tokens: 2 }]);
    expect(queue.remaining).toBe(2);
    expect(queue.next()).toEqual({ tokens: 1 });
    queue.replace([{ tokens: 3 }]);
    expect(queue.next()).toEqual({ tokens: 3 });
    expect(queue.next()).toBeUndefined();
    expect(queue.remaining).toBe(0);
  });
});
