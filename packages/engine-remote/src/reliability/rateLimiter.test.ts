// Rate limiter and its waiting room: properties on a fake clock, no sockets.
import { InferenceError, parseDeployment } from '@inference/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Clock, LimiterGate } from './gate.js';
import { AdmissionWindow, RateLimiter } from './rateLimiter.js';
import { ReliabilityRegistry } from './registry.js';

class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void { this.timers = this.timers.filter((x) => x.id !== h); }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await Promise.resolve();
    }
    this.t = end;
    await Promise.resolve();
  }
}

describe('RateLimiter', () => {
  it('property: never admits more than rpm in any window', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 300 }), (rpm, gaps) => {
      const l = new RateLimiter({ rpm, maxConcurrent: 1_000_000 }, 60_000);
      let now = 0;
      const admitted: number[] = [];
      for (const g of gaps) {
        now += g;
        const a = l.tryAcquire(now, 0);
        if (a.ok) {
          admitted.push(now);
          l.release(now, 0);
        } else {
          expect(a.reason).toBe('rpm');
          expect(a.waitMs).toBeGreaterThan(0);
          // Waiting the announced time is enough.
          expect(l.tryAcquire(now + (a.waitMs ?? 0), 0).ok).toBe(true);
          l.release(now, 0);
          admitted.push(now + (a.waitMs ?? 0));
          now += a.waitMs ?? 0;
        }
      }
      for (let i = 0; i < admitted.length; i++) {
        const t = admitted[i] ?? 0;
        expect(admitted.filter((x) => x > t - 60_000 && x <= t).length).toBeLessThanOrEqual(rpm);
      }
    }));
  });

  it('property: tokens spent in any minute stay within tpm plus one bucket', () => {
    const requests = fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 1, max: 3000 })), { maxLength: 200 });
    fc.assert(fc.property(fc.integer({ min: 100, max: 10_000 }), requests, (tpm, reqs) => {
      const l = new RateLimiter({ tpm, maxConcurrent: 1_000_000 }, 60_000);
      let now = 0;
      let spent = 0;
      for (const [gap, tokens] of reqs) {
        now += gap;
        if (l.tryAcquire(now, tokens).ok) {
          spent += tokens;
          l.release(now, tokens, tokens);
        }
      }
      // A token bucket admits at most its capacity plus the refill over the elapsed time.
      expect(spent).toBeLessThanOrEqual(tpm + (now * tpm) / 60_000 + 3000);
    }));
  });

  it('caps concurrency and frees a slot on release', () => {
    const l = new RateLimiter({ maxConcurrent: 2 });
    expect(l.tryAcquire(0, 0).ok).toBe(true);
    expect(l.tryAcquire(0, 0).ok).toBe(true);
    expect(l.tryAcquire(0, 0)).toEqual({ ok: false, reason: 'concurrency', waitMs: undefined });
    l.release(0, 0);
    expect(l.tryAcquire(0, 0).ok).toBe(true);
  });

  it('settles the tpm estimate with the reported usage', () => {
    const l = new RateLimiter({ tpm: 1000, maxConcurrent: 10 }, 60_000, 0);
    expect(l.tryAcquire(0, 900).ok).toBe(true);
    l.release(0, 900, 100);
    expect(l.availableTokens(0)).toBe(900);
    expect(l.tryAcquire(0, 800).ok).toBe(true);
    l.release(0, 800, 1500);
    expect(l.availableTokens(0)).toBe(-600);
    const a = l.tryAcquire(0, 100);
    expect(a).toEqual({ ok: false, reason: 'tpm', waitMs: 42_000 });
  });

  it('an upstream 429 pauses until retry-after and halves the rate for a while', () => {
    const l = new RateLimiter({ rpm: 100, maxConcurrent: 10 }, 60_000, 0);
    l.onUpstreamRateLimited(0, 2000);
    expect(l.tryAcquire(1000, 0)).toEqual({ ok: false, reason: 'cooldown', waitMs: 1000 });
    expect(l.effectiveRpm(2000)).toBe(50);
    l.onUpstreamRateLimited(2000, undefined);
    expect(l.effectiveRpm(3000)).toBe(25);
    expect(l.effectiveRpm(2000 + 60_000)).toBe(100);
  });
});

describe('LimiterGate', () => {
  const never = new AbortController().signal;

  it('queues in FIFO order and admits as the window frees', async () => {
    const clock = new FakeClock();
    const g = new LimiterGate({ rpm: 2, maxConcurrent: 100 }, clock);
    const order: number[] = [];
    const opts = { tokens: 0, signal: never, maxWaitMs: 120_000, maxQueue: 10, deployment: 'd' };
    const all = [0, 1, 2, 3].map((i) => g.acquire(opts).then(() => order.push(i)));
    await clock.advance(0);
    expect(order).toEqual([0, 1]);
    expect(g.waiting).toBe(2);
    await clock.advance(60_000);
    await Promise.all(all);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('refuses past the queue bound and at the deadline, with retry-after and a capacity mark', async () => {
    const clock = new FakeClock();
    const g = new LimiterGate({ maxConcurrent: 1 }, clock);
    const opts = { tokens: 0, signal: never, maxWaitMs: 5000, maxQueue: 1, deployment: 'd' };
    await g.acquire(opts);
    const waiting = g.acquire(opts);
    const full = await g.acquire(opts).catch((e: unknown) => e);
    expect(full).toBeInstanceOf(InferenceError);
    expect((full as InferenceError).kind).toBe('overloaded');
    expect((full as InferenceError).capacity).toBe(true);
    expect((full as InferenceError).retryAfterMs).toBeGreaterThan(0);
    await clock.advance(5000);
    const late = await waiting.catch((e: unknown) => e);
    expect((late as InferenceError).kind).toBe('overloaded');
    expect(g.waiting).toBe(0);
  });

  it('maxWaitMs 0 refuses at once with rate_limited when the rpm window is full', async () => {
    const clock = new FakeClock();
    const g = new LimiterGate({ rpm: 1, maxConcurrent: 100 }, clock);
    const opts = { tokens: 0, signal: never, maxWaitMs: 0, maxQueue: 10, deployment: 'd' };
    await g.acquire(opts);
    const e = await g.acquire(opts).catch((x: unknown) => x);
    expect((e as InferenceError).kind).toBe('rate_limited');
    expect((e as InferenceError).retryAfterMs).toBe(60_000);
  });

  it('a waiter whose wait cannot fit its deadline leaves early; an aborted waiter leaves at once', async () => {
    const clock = new FakeClock();
    const g = new LimiterGate({ rpm: 1, maxConcurrent: 100 }, clock);
    await g.acquire({ tokens: 0, signal: never, maxWaitMs: 0, maxQueue: 10, deployment: 'd' });
    const early = await g.acquire({ tokens: 0, signal: never, maxWaitMs: 1000, maxQueue: 10, deployment: 'd' }).catch((x: unknown) => x);
    expect((early as InferenceError).kind).toBe('rate_limited');
    const ac = new AbortController();
    const p = g.acquire({ tokens: 0, signal: ac.signal, maxWaitMs: 120_000, maxQueue: 10, deployment: 'd' });
    ac.abort(new InferenceError('internal', 'gone'));
    expect(((await p.catch((x: unknown) => x)) as InferenceError).message).toBe('gone');
    expect(g.waiting).toBe(0);
  });

  it('property: admitted count never exceeds concurrency; every waiter settles', async () => {
    const requests = fc.array(fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 1, max: 3000 })), { minLength: 1, maxLength: 30 });
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 4 }), requests, async (max, reqs) => {
      const clock = new FakeClock();
      const g = new LimiterGate({ maxConcurrent: max, rpm: 5 }, clock);
      let active = 0;
      let peak = 0;
      let settled = 0;
      const jobs: Promise<void>[] = [];
      for (const [gap, hold] of reqs) {
        await clock.advance(gap);
        jobs.push(g.acquire({ tokens: 1, signal: never, maxWaitMs: 10_000, maxQueue: 8, deployment: 'd' }).then(
          () => {
            active++;
            peak = Math.max(peak, active);
            clock.setTimeout(() => { active--; settled++; g.release(1); }, hold);
          },
          () => { settled++; },
        ));
      }
      await clock.advance(200_000);
      await Promise.all(jobs);
      await clock.advance(200_000);
      expect(peak).toBeLessThanOrEqual(max);
      expect(settled).toBe(reqs.length);
    }), { numRuns: 50 });
  });
});

describe('RateLimiter with a cluster RateShare', () => {
  /** Three nodes sharing one window: each node's admissions are visible to the others at once. */
  function cluster(rpm: number): { limiters: RateLimiter[]; seen: number[] } {
    const seen = [0, 0, 0];
    const byNode: number[][] = [[], [], []];
    const limiters = [0, 1, 2].map((node) => {
      const l = new RateLimiter({ rpm, maxConcurrent: 1000 });
      l.attachShare('k', {
        elsewhere: (_key, now, windowMs) => byNode.filter((_, i) => i !== node).reduce((a, ts) => a + ts.filter((t) => t > now - windowMs).length, 0),
        admitted: (_key, now) => {
          byNode[node]?.push(now);
          seen[node] = (seen[node] ?? 0) + 1;
        },
      });
      return l;
    });
    return { limiters, seen };
  }

  it('holds rpm across nodes: every admission in any window counts, wherever it happened', () => {
    const schedules = fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 5000 })), { maxLength: 300 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 30 }), schedules, (rpm, steps) => {
      const { limiters } = cluster(rpm);
      let now = 0;
      const admitted: number[] = [];
      for (const [node, dt] of steps) {
        now += dt;
        const l = limiters[node];
        if (l === undefined) continue;
        const a = l.tryAcquire(now, 0);
        if (a.ok) {
          admitted.push(now);
          l.release(now, 0);
        } else {
          expect(a.reason).toBe('rpm');
          expect(a.waitMs).toBeGreaterThan(0);
        }
        expect(admitted.filter((t) => t > now - 60_000).length).toBeLessThanOrEqual(rpm);
      }
    }));
  });

  it('without a share each node would admit its own rpm', () => {
    const alone = [0, 1, 2].map(() => new RateLimiter({ rpm: 5, maxConcurrent: 1000 }));
    let admitted = 0;
    for (let i = 0; i < 30; i++) if (alone[i % 3]?.tryAcquire(i, 0).ok === true) admitted++;
    expect(admitted).toBe(15);
    const { limiters, seen } = cluster(5);
    let shared = 0;
    for (let i = 0; i < 30; i++) if (limiters[i % 3]?.tryAcquire(i, 0).ok === true) shared++;
    expect(shared).toBe(5);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(5);
  });
});

describe('a short rate window (remote.rateWindowMs)', () => {
  const spec = (extra: Record<string, unknown>): ReturnType<typeof parseDeployment> => parseDeployment({
    name: 'd', runtime: 'openai', endpoint: 'http://127.0.0.1:1/v1', model: 'm', remote: { rpm: 2, tpm: 1000, ...extra },
  });

  it('rpm and tpm count per second with rateWindowMs 1000, in the local limiter and in what the cluster share is told', async () => {
    const clock = new FakeClock();
    const registry = new ReliabilityRegistry(clock);
    const told: number[] = [];
    registry.shareRates({ elsewhere: () => 0, admitted: (_key, _now, windowMs) => { told.push(windowMs); } });
    const gate = registry.gate(spec({ rateWindowMs: 1000 }), undefined);
    expect(gate.limiter.windowMs).toBe(1000);
    const l = gate.limiter;
    expect(l.tryAcquire(clock.now(), 10).ok).toBe(true);
    expect(l.tryAcquire(clock.now(), 10).ok).toBe(true);
    const third = l.tryAcquire(clock.now(), 10);
    expect(third.ok).toBe(false);
    if (third.ok) return;
    expect(third.reason).toBe('rpm');
    expect(third.waitMs).toBe(1000);
    await clock.advance(999);
    expect(l.tryAcquire(clock.now(), 10).ok).toBe(false);
    await clock.advance(1);
    expect(l.tryAcquire(clock.now(), 10).ok).toBe(true);
    expect(told).toEqual([1000, 1000, 1000]);
    // tpm refills per window too: 1000 tokens a second, so 500 spent come back in half a second.
    const t = registry.gate(spec({ rpm: undefined, rateWindowMs: 1000 }), 'other-key').limiter;
    expect(t.tryAcquire(clock.now(), 1000).ok).toBe(true);
    const wait = t.tryAcquire(clock.now(), 500);
    expect(!wait.ok && wait.reason === 'tpm' ? wait.waitMs : undefined).toBe(500);
  });

  it('a deployment without it counts per minute, in a limiter of its own', () => {
    const clock = new FakeClock();
    const registry = new ReliabilityRegistry(clock);
    const minute = registry.gate(spec({}), undefined);
    const second = registry.gate(spec({ rateWindowMs: 1000 }), undefined);
    expect(minute.limiter.windowMs).toBe(60_000);
    expect(second).not.toBe(minute);
    expect(registry.gate(spec({}), undefined)).toBe(minute);
  });
});

describe('AdmissionWindow: memory follows admissions, never the configured rpm', () => {
  it('a limiter with the largest rpm a deployment can set is created and used at once, holding one ring of 16', () => {
    const l = new RateLimiter({ rpm: Number.MAX_SAFE_INTEGER, maxConcurrent: 10 }, 60_000, 0);
    expect(l.tryAcquire(1, 0).ok).toBe(true);
    l.reconfigure({ rpm: 2 ** 40, maxConcurrent: 10 }, 2);
    expect(l.tryAcquire(3, 0).ok).toBe(true);
    const w = (l as unknown as { window: AdmissionWindow }).window;
    expect(w.size).toBe(2);
    expect(w.capacity).toBe(16);
  });

  it('grows with a burst and shrinks back once the burst has left the window', () => {
    const l = new RateLimiter({ rpm: 1_000_000, maxConcurrent: 1_000_000 }, 1_000, 0);
    for (let i = 0; i < 5_000; i++) expect(l.tryAcquire(i / 10, 0).ok).toBe(true);
    const w = (l as unknown as { window: AdmissionWindow }).window;
    expect(w.size).toBe(5_000);
    expect(w.capacity).toBe(8_192);
    expect(l.tryAcquire(10_000, 0).ok).toBe(true);
    expect(w.size).toBe(1);
    expect(w.capacity).toBe(16);
  });

  it('property: the ring holds exactly the times after the last drop, oldest first', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.record({ push: fc.integer({ min: 0, max: 50 }) }), fc.record({ drop: fc.integer({ min: 0, max: 100 }) }),
      fc.record({ keep: fc.integer({ min: 0, max: 40 }) })), { maxLength: 400 }), (ops) => {
      const w = new AdmissionWindow();
      let model: number[] = [];
      let t = 0;
      for (const op of ops) {
        if ('push' in op) { t += op.push; w.push(t); model.push(t); }
        else if ('drop' in op) { const since = t - op.drop; model = model.filter((x) => x > since); expect(w.dropUntil(since)).toBe(model.length); }
        else { model = model.slice(Math.max(0, model.length - op.keep)); w.keepNewest(op.keep); }
        expect(w.size).toBe(model.length);
        for (let i = 0; i < model.length; i++) expect(w.at(i)).toBe(model[i]);
        expect(w.capacity).toBeLessThanOrEqual(Math.max(16, 4 * model.length));
      }
    }));
  });
});
