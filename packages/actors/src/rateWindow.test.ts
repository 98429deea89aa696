import { describe, expect, it } from 'vitest';
import { RateWindow } from './rateWindow.js';
import { RecentErrors } from './recentErrors.js';

describe('RateWindow', () => {
  it('divides by the time since start until a full window has passed', () => {
    const w = new RateWindow(60, 0);
    w.add(1_000, 'a', { requests: 4, tokensIn: 10, tokensOut: 30 });
    const r = w.rates(4_000).get('a');
    expect(r?.requestsPerSec).toBeCloseTo(1, 9);
    expect(r?.tokensPerSec).toBeCloseTo(10, 9);
    expect(r?.outputTokensPerSec).toBeCloseTo(7.5, 9);
  });

  it('counts only the last window and forgets deployments with nothing in it', () => {
    const w = new RateWindow(60, 0);
    w.add(100_000, 'a', { requests: 60 });
    w.add(130_000, 'a', { requests: 60, errors: 6 });
    w.add(100_000, 'b', { requests: 1 });
    const at150 = w.rates(150_000);
    expect(at150.get('a')?.requestsPerSec).toBeCloseTo(2, 9);
    expect(at150.get('a')?.errorsPerSec).toBeCloseTo(0.1, 9);
    const at165 = w.rates(165_000);
    expect(at165.get('a')?.requestsPerSec).toBeCloseTo(1, 9);
    expect(at165.has('b')).toBe(false);
    expect(w.rates(200_000).size).toBe(0);
  });

  it('reuses a slot a whole window later instead of adding to it', () => {
    const w = new RateWindow(10, 0);
    w.add(5_000, 'a', { requests: 100 });
    w.add(15_000, 'a', { requests: 1 });
    expect(w.rates(15_500).get('a')?.requestsPerSec).toBeCloseTo(0.1, 9);
  });
});

describe('RecentErrors', () => {
  it('holds the newest entries up to its capacity', () => {
    const r = new RecentErrors(2);
    expect(r.list()).toEqual([]);
    r.add({ time: 1, deployment: 'a', kind: 'internal', message: 'one' });
    expect(r.list().map((e) => e.message)).toEqual(['one']);
    r.add({ time: 2, deployment: 'a', kind: 'internal', message: 'two' });
    r.add({ time: 3, deployment: 'a', kind: 'internal', message: 'three' });
    expect(r.list().map((e) => e.message)).toEqual(['three', 'two']);
  });
});
