import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { METRIC } from './metricNames.js';
import { Buckets, RequestMeters, TTFT_BUCKETS, escapeLabel } from './requestMeters.js';

/** Every sample line of a Prometheus text body, as "name{sorted labels}" → value. */
function samples(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable line: ${line}`);
    const labels = (m[2] ?? '').match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
    out.set(`${m[1] ?? ''}{${[...labels].sort().join(',')}}`, Number(m[3]));
  }
  return out;
}

describe('RequestMeters', () => {
  it('renders a histogram as prom-client does: the same buckets, sum and count for the same observations', async () => {
    const values = [0, 0.001, 0.0011, 0.0025, 0.004, 0.01, 0.3, 1, 59.9, 60, 61, 1e6];
    const registry = new Registry();
    const reference = new Histogram({ name: METRIC.ttft, help: 'Time to first token', labelNames: ['deployment'], buckets: TTFT_BUCKETS, registers: [registry] });
    const meters = new RequestMeters();
    for (const v of values) {
      reference.observe({ deployment: 'm' }, v);
      meters.finished({ deployment: 'm', endpoint: 'chat', durationMs: 1, retries: 0, ttftMs: v * 1000 }, false);
    }
    const ours = samples(meters.render());
    const theirs = samples(await registry.metrics());
    expect(theirs.size).toBe(TTFT_BUCKETS.length + 3);
    for (const [k, v] of theirs) expect(ours.get(k), k).toBeCloseTo(v, 9);
  });

  it('counts a value equal to a bound in that bucket (le), and one above every bound only in +Inf', () => {
    const b = new Buckets([1, 2]);
    b.observe(1);
    b.observe(2.5);
    expect([...b.counts]).toEqual([1, 0]);
    expect(b.count).toBe(2);
    expect(b.sum).toBe(3.5);
  });

  it('renders series only once touched, and forgets a deployment with the fallbacks that name it', () => {
    const meters = new RequestMeters();
    expect(meters.render()).not.toMatch(/^inference_/m);
    expect(meters.render()).toContain(`# TYPE ${METRIC.requests} counter`);
    meters.started('a');
    meters.fallback('a', 'b');
    meters.finished({ deployment: 'b', endpoint: 'chat', durationMs: 5, retries: 1, usage: { promptTokens: 3, completionTokens: 4 }, error: 'overloaded' }, true);
    let s = samples(meters.render());
    expect(s.get(`${METRIC.inFlight}{deployment="a"}`)).toBe(1);
    expect(s.get(`${METRIC.fallbacks}{deployment="a",to="b"}`)).toBe(1);
    expect(s.get(`${METRIC.requests}{deployment="b",endpoint="chat",outcome="error"}`)).toBe(1);
    expect(s.get(`${METRIC.errors}{deployment="b",kind="overloaded"}`)).toBe(1);
    expect(s.get(`${METRIC.retries}{deployment="b"}`)).toBe(1);
    expect(s.get(`${METRIC.tokensOut}{deployment="b"}`)).toBe(4);
    expect(s.has(`${METRIC.cost}{deployment="b"}`)).toBe(false);
    expect(s.has(`${METRIC.inFlight}{deployment="b"}`)).toBe(false);
    meters.forget('b');
    s = samples(meters.render());
    expect([...s.keys()].filter((k) => k.includes('"b"'))).toEqual([]);
    expect(s.get(`${METRIC.inFlight}{deployment="a"}`)).toBe(1);
  });

  it('escapes label values', () => {
    expect(escapeLabel('plain-name_1')).toBe('plain-name_1');
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const meters = new RequestMeters();
    meters.started('we"ird');
    expect(meters.render()).toContain(`${METRIC.inFlight}{deployment="we\\"ird"} 1`);
  });
});
