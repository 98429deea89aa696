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

describe('Cancellation, listeners kept without an array', () => {
  it('keeps the order of every listener around removals of the first', () => {
    const seen: string[] = [];
    const a = (): void => { seen.push('a'); };
    const b = (): void => { seen.push('b'); };
    const d = (): void => { seen.push('d'); };
    const c = new Cancellation();
    c.addEventListener('abort', a);
    c.addEventListener('abort', b);
    c.removeEventListener('abort', a);
    // With b still waiting, d comes after it (not into the slot a left).
    c.addEventListener('abort', d);
    c.abort('x');
    expect(seen).toEqual(['b', 'd']);
    // Emptied, then filled again.
    const again = new Cancellation();
    again.addEventListener('abort', b);
    again.addEventListener('abort', d);
    again.removeEventListener('abort', b);
    again.removeEventListener('abort', d);
    again.addEventListener('abort', d);
    again.addEventListener('abort', a);
    again.abort('y');
    expect(seen).toEqual(['b', 'd', 'd', 'a']);
  });

  it('calls handleEvent() of a listener object, in its place, and not once removed', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    const object = { handleEvent: (): void => { seen.push('object'); } };
    const removed = { handleEvent: (): void => { seen.push('removed'); } };
    c.addEventListener('abort', () => seen.push('before'));
    c.addEventListener('abort', object);
    c.addEventListener('abort', removed);
    c.removeEventListener('abort', removed);
    c.addEventListener('abort', () => seen.push('after'));
    c.abort('x');
    expect(seen).toEqual(['before', 'object', 'after']);
  });

  it('still runs a function added twice and removed once, once', () => {
    const c = new Cancellation();
    const l = vi.fn();
    c.addEventListener('abort', l);
    c.addEventListener('abort', l);
    c.removeEventListener('abort', l);
    c.abort('x');
    expect(l).toHaveBeenCalledOnce();
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

  it('follows an AbortSignal parent too, and leaves it no listener once done', () => {
    const parent = new AbortController();
    const linked = linkedCancellation(parent.signal, 60_000, () => 'timeout');
    linked.done();
    parent.abort('later');
    expect(linked.signal.aborted).toBe(false);
    const followed = linkedCancellation(parent.signal, 60_000, () => 'timeout');
    expect(followed.signal.reason).toBe('later');
    const fresh = new AbortController();
    const child = linkedCancellation(fresh.signal, 60_000, () => 'timeout');
    fresh.abort('now');
    expect(child.signal.reason).toBe('now');
    child.done();
  });

  it('starts aborted when the parent already is', () => {
    const parent = new Cancellation();
    parent.abort('already');
    expect(linkedCancellation(parent, 100, () => 'deadline').signal.reason).toBe('already');
  });
});
