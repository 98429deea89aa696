import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InferenceError } from '@inference/core';
import { RestartWindow, localEngineDecider, remoteSessionDecider } from './strategy.js';

describe('RestartWindow', () => {
  it('allows at most N restarts within the window, then frees up as time passes', () => {
    let t = 0;
    const w = new RestartWindow(3, 60_000, () => t);
    expect([w.tryRestart(), w.tryRestart(), w.tryRestart(), w.tryRestart()]).toEqual([true, true, true, false]);
    t = 60_001;
    expect(w.tryRestart()).toBe(true);
  });

  it('never admits more than N restarts in any window (property)', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 60 }), fc.integer({ min: 1, max: 5 }), (gaps, n) => {
      let t = 0;
      const w = new RestartWindow(n, 10_000, () => t);
      const admitted: number[] = [];
      for (const g of gaps) {
        t += g;
        if (w.tryRestart()) admitted.push(t);
      }
      for (let i = 0; i + n < admitted.length; i++) expect((admitted[i + n] ?? 0) - (admitted[i] ?? 0)).toBeGreaterThanOrEqual(10_000);
    }));
  });
});

describe('deciders', () => {
  it('maps engine faults per docs/architecture.md', () => {
    const f = (fault: 'ContextPoisoned' | 'OutOfMemory' | 'Unrecoverable') => new InferenceError('engine_unavailable', 'x', { fault });
    expect(localEngineDecider(f('ContextPoisoned'))).toBe('Restart');
    expect(localEngineDecider(f('OutOfMemory'))).toBe('Resume');
    expect(localEngineDecider(f('Unrecoverable'))).toBe('Stop');
    expect(localEngineDecider(new Error('x'))).toBe('Escalate');
  });

  it('rebuilds a remote session on 401 only', () => {
    expect(remoteSessionDecider(new InferenceError('unauthorized', 'x'))).toBe('Restart');
    expect(remoteSessionDecider(new InferenceError('rate_limited', 'x'))).toBe('Resume');
  });
});
