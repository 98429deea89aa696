import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cancellation, linkedCancellation } from './cancel.js';
import { DEADLINE_TICK_MS } from './deadlines.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('Cancellation', () => {
  it('runs each listener once, in order, with the reason readable', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    c.addEventListener('abort', () => seen.push(`a:${String(c.reason)}`));
    c.addEventListener('abort', () => seen.push('b'));
    expect(c.aborted).toBe(false);
    c.abort('gone');
    c.abort('again');
    expect(seen).toEqual(['a:gone', 'b']);
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe('gone');
  });

  it('does not call a removed listener, nor one added after the abort', () => {
    const c = new Cancellation();
    const removed = vi.fn();
    c.addEventListener('abort', removed);
    c.removeEventListener('abort', removed);
    c.abort('x');
    const late = vi.fn();
    c.addEventListener('abort', late);
    expect(removed).not.toHaveBeenCalled();
    expect(late).not.toHaveBeenCalled();
  });

  it('runs the other listeners when one throws, then rethrows the first failure', () => {
    const c = new Cancellation();
    const after = vi.fn();
    c.addEventListener('abort', () => {
      throw new Error('listener broke');
    });
    c.addEventListener('abort', after);
    expect(() => { c.abort('x'); }).toThrow('listener broke');
    expect(after).toHaveBeenCalledOnce();
  });
});

describe('linkedCancellation', () => {
  it('follows its parent, and stops following once done', () => {
    const parent = new Cancellation();
    const first = linkedCancellation(parent, 60_000, () => 'timeout');
    parent.abort('client gone');
    expect(first.signal.aborted).toBe(true);
    expect(first.signal.reason).toBe('client gone');
    first.done();

    const other = new Cancellation();
    const second = linkedCancellation(other, 60_000, () => 'timeout');
    second.done();
    other.abort('later');
    expect(second.signal.aborted).toBe(false);
  });

  it('aborts with the timeout reason when the deadline passes first, and not after done', () => {
    vi.useFakeTimers();
    const parent = new Cancellation();
    const timed = linkedCancellation(parent, 100, () => 'deadline');
    vi.advanceTimersByTime(99);
    expect(timed.signal.aborted).toBe(false);
    // The shared deadline wheel fires within one tick after the deadline (deadlines.ts).
    vi.advanceTimersByTime(1 + DEADLINE_TICK_MS);
    expect(timed.signal.reason).toBe('deadline');
    expect(parent.aborted).toBe(false);

    const finished = linkedCancellation(parent, 100, () => 'deadline');
    finished.done();
    vi.advanceTimersByTime(200);
    expect(finished.signal.aborted).toBe(false);
  });

  it('starts aborted when the parent already is', () => {
    const parent = new Cancellation();
    parent.abort('already');
    expect(linkedCancellation(parent, 100, () => 'deadline').signal.reason).toBe('already');
  });
});
