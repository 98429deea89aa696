// Breaker state machine: properties over random outcome sequences, on a fake clock.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './breaker.js';

describe('CircuitBreaker', () => {
  it('opens after exactly failureThreshold consecutive failures, fast-fails, then probes once', () => {
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000 });
    for (let i = 0; i < 2; i++) b.failure(false, 0);
    expect(b.state(0)).toBe('closed');
    b.failure(false, 10);
    expect(b.state(10)).toBe('open');
    expect(b.tryAcquire(500)).toEqual({ allow: false, retryAfterMs: 510 });
    expect(b.tryAcquire(1010)).toEqual({ allow: true, probe: true });
    expect(b.tryAcquire(1011).allow).toBe(false);
    b.success(true);
    expect(b.state(1012)).toBe('closed');
  });

  it('a failed probe opens it for another openMs', () => {
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 100 });
    b.failure(false, 0);
    expect(b.tryAcquire(100)).toEqual({ allow: true, probe: true });
    b.failure(true, 150);
    expect(b.tryAcquire(200).allow).toBe(false);
    expect(b.tryAcquire(250)).toEqual({ allow: true, probe: true });
  });

  it('a success resets the consecutive count', () => {
    const b = new CircuitBreaker({ failureThreshold: 2, openMs: 100 });
    b.failure(false, 0);
    b.success(false);
    b.failure(false, 1);
    expect(b.state(1)).toBe('closed');
  });

  it('property: never more than one probe in flight; open only after threshold consecutive failures', () => {
    type Op = { kind: 'req'; ok: boolean | 'abandon'; dt: number };
    const op = fc.record({
      kind: fc.constant('req' as const),
      ok: fc.oneof(fc.boolean(), fc.constant('abandon' as const)),
      dt: fc.integer({ min: 0, max: 300 }),
    });
    const thresholds = fc.integer({ min: 1, max: 5 });
    const openTimes = fc.integer({ min: 1, max: 500 });
    fc.assert(fc.property(thresholds, openTimes, fc.array(op, { maxLength: 200 }), (threshold, openMs, ops: Op[]) => {
      const transitions: string[] = [];
      const b = new CircuitBreaker({ failureThreshold: threshold, openMs }, (f, t) => transitions.push(`${f}>${t}`));
      let now = 0;
      let run = 0;
      const probes: boolean[] = [];
      for (const o of ops) {
        now += o.dt;
        const before = b.state(now);
        const d = b.tryAcquire(now);
        if (before === 'open') expect(d.allow).toBe(false);
        if (!d.allow) {
          expect(d.retryAfterMs).toBeGreaterThan(0);
          continue;
        }
        if (d.probe) probes.push(true);
        // Only one probe may be granted before it settles.
        if (d.probe) expect(b.tryAcquire(now).allow).toBe(false);
        if (o.ok === 'abandon') b.abandon(d.probe);
        else if (o.ok) { run = 0; b.success(d.probe); }
        else {
          run++;
          b.failure(d.probe, now);
          if (!d.probe && run < threshold && before === 'closed') expect(b.state(now)).toBe('closed');
        }
      }
      for (const t of transitions) expect(['closed>open', 'open>half_open', 'half_open>open', 'half_open>closed']).toContain(t);
    }));
  });
});
