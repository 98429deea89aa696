import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEADLINE_TICK_MS, DeadlineWheel } from './deadlines.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('DeadlineWheel', () => {
  it('never fires before the deadline, and within one tick after it', () => {
    vi.useFakeTimers();
    const wheel = new DeadlineWheel();
    const fired: number[] = [];
    const t0 = performance.now();
    for (const ms of [0, 1, 24, 25, 26, 100, 999]) wheel.add(ms, () => { fired.push(ms); });
    const seen = new Map<number, number>();
    for (let t = 0; t <= 1100; t++) {
      vi.advanceTimersByTime(1);
      for (const ms of fired) if (!seen.has(ms)) seen.set(ms, performance.now() - t0);
    }
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([0, 1, 24, 25, 26, 100, 999]);
    for (const [ms, at] of seen) {
      expect(at).toBeGreaterThanOrEqual(ms);
      expect(at).toBeLessThanOrEqual(ms + DEADLINE_TICK_MS + 1);
    }
    expect(wheel.size).toBe(0);
  });

  it('calls onDeadline() of an object given instead of a function, and not once cancelled', () => {
    vi.useFakeTimers();
    const wheel = new DeadlineWheel();
    const fired: string[] = [];
    const target = (name: string): { onDeadline: () => void } => ({ onDeadline: () => { fired.push(name); } });
    wheel.add(50, target('kept'));
    wheel.add(50, target('cancelled')).cancel();
    wheel.add(50, () => { fired.push('function'); });
    vi.advanceTimersByTime(50 + DEADLINE_TICK_MS + 1);
    expect(fired).toEqual(['kept', 'function']);
    expect(wheel.size).toBe(0);
  });

  it('forgets a cancelled deadline at once, and keeps no timer once nothing is pending', () => {
    vi.useFakeTimers();
    const wheel = new DeadlineWheel();
    const fn = vi.fn();
    const handles = Array.from({ length: 1000 }, (_, i) => wheel.add(10_000 + i, fn));
    expect(wheel.size).toBe(1000);
    expect(vi.getTimerCount()).toBe(1);
    for (const h of handles.slice(0, 999)) h.cancel();
    expect(wheel.size).toBe(1);
    handles[999]?.cancel();
    handles[999]?.cancel();
    expect(wheel.size).toBe(0);
    // The armed timer wakes once more, finds nothing pending and stops.
    vi.advanceTimersByTime(DEADLINE_TICK_MS);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(20_000);
    expect(fn).not.toHaveBeenCalled();
  });

  it('fires the others when one throws (then rethrows), and takes deadlines added while it fires', () => {
    vi.useFakeTimers();
    const wheel = new DeadlineWheel();
    const order: string[] = [];
    wheel.add(50, () => {
      order.push('a');
      wheel.add(50, () => { order.push('late'); });
    });
    wheel.add(50, () => {
      throw new Error('deadline handler broke');
    });
    wheel.add(50, () => { order.push('c'); });
    expect(() => { vi.advanceTimersByTime(50 + DEADLINE_TICK_MS); }).toThrow('deadline handler broke');
    expect(order).toEqual(['a', 'c']);
    vi.advanceTimersByTime(50 + DEADLINE_TICK_MS);
    expect(order).toEqual(['a', 'c', 'late']);
    expect(wheel.size).toBe(0);
  });

  it('fires on real timers too, and an infinite deadline never', async () => {
    const wheel = new DeadlineWheel();
    const t0 = performance.now();
    const at = await new Promise<number>((resolve) => { wheel.add(30, () => { resolve(performance.now()); }); });
    expect(at - t0).toBeGreaterThanOrEqual(30);
    wheel.add(Number.POSITIVE_INFINITY, () => { throw new Error('fired'); });
    expect(wheel.size).toBe(0);
  });
});
