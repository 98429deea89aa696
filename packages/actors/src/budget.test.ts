// Budget logic: windows are fixed and aligned; the reservation rule keeps spend
// within the limit under any interleaving of concurrent requests, and passes it
// only by what requests used beyond their estimates.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Amount, Ledger, costOf, parseWindow, reserveAll, windowBounds } from './budget.js';

describe('windows', () => {
  it('second windows are aligned to multiples of n seconds', () => {
    expect(windowBounds(parseWindow('1s'), 1500)).toEqual({ start: 1000, end: 2000 });
    expect(windowBounds(parseWindow('5s'), 12_345)).toEqual({ start: 10_000, end: 15_000 });
  });

  it('parses <n><unit> and the unit words; refuses the rest', () => {
    expect(parseWindow('1h')).toEqual({ n: 1, unit: 'h' });
    expect(parseWindow('15m')).toEqual({ n: 15, unit: 'm' });
    expect(parseWindow('3mo')).toEqual({ n: 3, unit: 'mo' });
    expect(parseWindow('day')).toEqual({ n: 1, unit: 'd' });
    expect(parseWindow('month')).toEqual({ n: 1, unit: 'mo' });
    for (const bad of ['0h', 'h', '1w', '1 h', '', '-1d']) expect(() => parseWindow(bad)).toThrow(/budget window/);
  });

  it('1h starts at the top of the UTC hour, 1d at UTC midnight, 1mo on the 1st', () => {
    const t = Date.UTC(2025, 1, 14, 13, 37, 12, 5);
    expect(windowBounds(parseWindow('1h'), t)).toEqual({ start: Date.UTC(2025, 1, 14, 13), end: Date.UTC(2025, 1, 14, 14) });
    expect(windowBounds(parseWindow('1d'), t)).toEqual({ start: Date.UTC(2025, 1, 14), end: Date.UTC(2025, 1, 15) });
    expect(windowBounds(parseWindow('1mo'), t)).toEqual({ start: Date.UTC(2025, 1, 1), end: Date.UTC(2025, 2, 1) });
    expect(windowBounds(parseWindow('1mo'), Date.UTC(2024, 11, 31, 23))).toEqual({ start: Date.UTC(2024, 11, 1), end: Date.UTC(2025, 0, 1) });
  });

  it('every window holds its instant, is aligned, and the next one starts where it ends', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 4_000_000_000_000 }),
      fc.integer({ min: 1, max: 48 }),
      fc.constantFrom('m', 'h', 'd', 'mo'),
      (now, n, unit) => {
        const w = parseWindow(`${n}${unit}`);
        const b = windowBounds(w, now);
        expect(b.start).toBeLessThanOrEqual(now);
        expect(b.end).toBeGreaterThan(now);
        expect(windowBounds(w, b.end).start).toBe(b.end);
        expect(windowBounds(w, b.end - 1)).toEqual(b);
        if (unit === 'mo') expect(new Date(b.start).getUTCDate()).toBe(1);
        else expect(b.start % (b.end - b.start)).toBe(0);
      },
    ));
  });
});

describe('ledger', () => {
  it('a new window starts with nothing spent; reservations in flight carry over', () => {
    const t = Date.UTC(2025, 0, 1, 10, 30);
    const l = new Ledger('1h', { maxTokens: 100 }, t, { tokens: 90, costUsd: 0 });
    l.reserve({ tokens: 5, costUsd: 0 });
    expect(l.wouldExceed({ tokens: 6, costUsd: 0 })).toBe('tokens');
    expect(l.roll(t + 60 * 60_000)).toBe(true);
    expect(l.spent).toEqual({ tokens: 0, costUsd: 0 });
    expect(l.reserved.tokens).toBe(5);
    expect(l.wouldExceed({ tokens: 95, costUsd: 0 })).toBeUndefined();
    expect(l.wouldExceed({ tokens: 96, costUsd: 0 })).toBe('tokens');
  });

  it('reserveAll is all or nothing, and says which budget refused and until when', () => {
    const t = Date.UTC(2025, 0, 1, 10, 30);
    const dep = new Ledger('1h', { maxCostUsd: 1 }, t);
    const key = new Ledger('1d', { maxTokens: 10 }, t);
    const refusal = reserveAll([{ scope: 'deployment', name: 'gpt', ledger: dep }, { scope: 'key', name: 'team-a', ledger: key }], { tokens: 11, costUsd: 0.5 }, t);
    expect(refusal).toEqual({ scope: 'key', name: 'team-a', limit: 'tokens', retryAfterMs: Date.UTC(2025, 0, 2) - t });
    expect(dep.reserved).toEqual({ tokens: 0, costUsd: 0 });
    expect(reserveAll([{ scope: 'deployment', name: 'gpt', ledger: dep }], { tokens: 1, costUsd: 1 }, t)).toBeUndefined();
    expect(reserveAll([{ scope: 'deployment', name: 'gpt', ledger: dep }], { tokens: 1, costUsd: 1e-6 }, t)).toMatchObject({ limit: 'cost', retryAfterMs: 30 * 60_000 });
  });

  it('cost follows the price per million tokens', () => {
    expect(costOf(1_000_000, 2_000_000, { inputPerMTok: 0.15, outputPerMTok: 0.6 })).toBeCloseTo(1.35, 12);
    expect(costOf(10, 10, undefined)).toBe(0);
  });
});

// A request: its estimate, and what it really used (a fraction of the estimate, or beyond it by `excess`).
const request = fc.record({
  prompt: fc.integer({ min: 1, max: 500 }),
  completion: fc.integer({ min: 0, max: 500 }),
  usedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  excess: fc.integer({ min: 0, max: 50 }),
});
type Req = { prompt: number; completion: number; usedFraction: number; excess: number };
const PRICE = { inputPerMTok: 0.15, outputPerMTok: 0.6 };
const estimateOf = (r: Req): Amount => ({ tokens: r.prompt + r.completion, costUsd: costOf(r.prompt, r.completion, PRICE) });

/** Runs requests through one ledger in an arbitrary interleaving of admissions and settlements. */
function simulate(reqs: Req[], order: Op[], limits: { maxTokens?: number; maxCostUsd?: number }, overrun: boolean): { ledger: Ledger; excessTokens: number; excessUsd: number; maxSeen: Amount } {
  const t = Date.UTC(2025, 5, 1, 12);
  const ledger = new Ledger('1h', limits, t);
  const inFlight: { r: Req; est: Amount }[] = [];
  let next = 0;
  let excessTokens = 0;
  let excessUsd = 0;
  let maxSeen: Amount = { tokens: 0, costUsd: 0 };
  for (const { admit, pick } of order) {
    // An op admits the next request (if any is left) or settles one in flight (chosen by `pick`).
    if (admit && next < reqs.length) {
      const r = reqs[next++]!;
      const est = estimateOf(r);
      if (reserveAll([{ scope: 'deployment', name: 'd', ledger }], est, t) === undefined) inFlight.push({ r, est });
    } else if (inFlight.length > 0) {
      const { r, est } = inFlight.splice(pick % inFlight.length, 1)[0]!;
      const usedPrompt = r.prompt + (overrun ? r.excess : 0);
      const usedCompletion = Math.floor(r.completion * r.usedFraction);
      const actual = { tokens: usedPrompt + usedCompletion, costUsd: costOf(usedPrompt, usedCompletion, PRICE) };
      excessTokens += Math.max(0, actual.tokens - est.tokens);
      excessUsd += Math.max(0, actual.costUsd - est.costUsd);
      ledger.settle(est, actual);
    }
    const total = { tokens: ledger.spent.tokens + ledger.reserved.tokens, costUsd: ledger.spent.costUsd + ledger.reserved.costUsd };
    maxSeen = { tokens: Math.max(maxSeen.tokens, total.tokens), costUsd: Math.max(maxSeen.costUsd, total.costUsd) };
  }
  for (const { r, est } of inFlight) ledger.settle(est, { tokens: r.prompt, costUsd: costOf(r.prompt, 0, PRICE) });
  return { ledger, excessTokens, excessUsd, maxSeen };
}

type Op = { admit: boolean; pick: number };
// Admissions outnumber settlements two to one, so many requests are in flight at once.
const ops = fc.array(fc.record({ admit: fc.constantFrom(true, true, false), pick: fc.nat(1000) }), { minLength: 1, maxLength: 300 });

describe('the reservation rule under concurrency', () => {
  // Micro-dollar steps spread limits evenly over the range requests reach.
  const usd = fc.integer({ min: 0, max: 10_000 }).map((n) => n / 1_000_000);
  // Each limit alone, or both: a rule that forgot reservations on one limit is caught.
  const limits: fc.Arbitrary<{ maxTokens?: number; maxCostUsd?: number }> = fc.oneof(
    fc.record({ maxTokens: fc.integer({ min: 0, max: 20_000 }) }),
    fc.record({ maxCostUsd: usd }),
    fc.record({ maxTokens: fc.integer({ min: 0, max: 20_000 }), maxCostUsd: usd }),
  );

  it('usage within its estimate: spent + reserved never passes a limit, in any interleaving', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 64 }), ops, limits, (reqs, order, lim) => {
      const { ledger, maxSeen } = simulate(reqs, order, lim, false);
      expect(maxSeen.tokens).toBeLessThanOrEqual(lim.maxTokens ?? Infinity);
      expect(maxSeen.costUsd).toBeLessThanOrEqual((lim.maxCostUsd ?? Infinity) + 1e-9);
      expect(ledger.spent.tokens).toBeLessThanOrEqual(lim.maxTokens ?? Infinity);
      expect(ledger.reserved.tokens).toBe(0);
    }));
  });

  it('usage beyond the estimate: the overspend is at most what requests used beyond their estimates', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 64 }), ops, limits, (reqs, order, lim) => {
      const { ledger, excessTokens, excessUsd } = simulate(reqs, order, lim, true);
      expect(ledger.spent.tokens).toBeLessThanOrEqual((lim.maxTokens ?? Infinity) + excessTokens);
      expect(ledger.spent.costUsd).toBeLessThanOrEqual((lim.maxCostUsd ?? Infinity) + excessUsd + 1e-9);
    }));
  });

  it('a refusal means the estimate really would not fit', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 64 }), fc.integer({ min: 0, max: 5000 }), (reqs, maxTokens) => {
      const t = Date.UTC(2025, 5, 1, 12);
      const ledger = new Ledger('1h', { maxTokens }, t);
      for (const r of reqs) {
        const est = estimateOf(r);
        const before = ledger.reserved.tokens;
        const refused = reserveAll([{ scope: 'deployment', name: 'd', ledger }], est, t) !== undefined;
        expect(refused).toBe(before + est.tokens > maxTokens);
      }
    }));
  });
});
