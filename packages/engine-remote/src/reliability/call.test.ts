// callReliably on a fake clock: how many upstream attempts each failure gets, and when none.
import { type DeploymentSpec, InferenceError, parseDeployment } from '@inference/core';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './breaker.js';
import { type Clock, LimiterGate } from './gate.js';
import { type RemoteEvent, callReliably } from './call.js';

const clock: Clock = { now: () => Date.now(), setTimeout: (fn) => { queueMicrotask(fn); return 0; }, clearTimeout: () => undefined };

function setup(remote: Record<string, unknown>, policy = 'queue'): { spec: DeploymentSpec; events: RemoteEvent[]; deps: Parameters<typeof callReliably>[0] } {
  const spec = parseDeployment({ name: 'd', runtime: 'openai', endpoint: 'http://127.0.0.1:1/v1', remote, onCapacityExhausted: policy });
  const events: RemoteEvent[] = [];
  const deps = {
    spec, clock, random: () => 0.5, backoff: { baseMs: 1, capMs: 1 },
    gate: new LimiterGate({ rpm: spec.remote.rpm, maxConcurrent: spec.remote.maxConcurrent }, clock),
    breaker: new CircuitBreaker(spec.remote.breaker),
    onEvent: (e: RemoteEvent) => { events.push(e); },
  };
  return { spec, events, deps };
}

const ctx = { requestId: 'r', signal: new AbortController().signal };

function failing(errors: InferenceError[], emitted = false): { calls: () => number; attempt: Parameters<typeof callReliably<string>>[2] } {
  let n = 0;
  return {
    calls: () => n,
    attempt: {
      tokens: 0,
      run: () => {
        const e = errors[n++];
        return e === undefined ? Promise.resolve('ok') : Promise.reject(e);
      },
      usage: () => undefined,
      emitted: () => emitted,
    },
  };
}

describe('callReliably', () => {
  it('retries transient failures up to maxRetries, then succeeds or gives up', async () => {
    const { deps, events } = setup({ maxRetries: 2 });
    const ok = failing([new InferenceError('upstream_error', 'x'), new InferenceError('upstream_timeout', 'x')]);
    expect(await callReliably(deps, ctx, ok.attempt)).toBe('ok');
    expect(ok.calls()).toBe(3);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(2);
    const spent = failing([0, 1, 2, 3].map(() => new InferenceError('overloaded', 'x')));
    await expect(callReliably(deps, ctx, spent.attempt)).rejects.toMatchObject({ kind: 'overloaded' });
    expect(spent.calls()).toBe(3);
  });

  it('never retries request errors, nor anything after output reached the client', async () => {
    const { deps } = setup({ maxRetries: 3 });
    for (const kind of ['invalid_request', 'unauthorized', 'content_filtered', 'context_length_exceeded'] as const) {
      const f = failing([new InferenceError(kind, 'x')]);
      await expect(callReliably(deps, ctx, f.attempt)).rejects.toMatchObject({ kind });
      expect(f.calls()).toBe(1);
    }
    const streamed = failing([new InferenceError('upstream_error', 'x')], true);
    await expect(callReliably(deps, ctx, streamed.attempt)).rejects.toMatchObject({ kind: 'upstream_error' });
    expect(streamed.calls()).toBe(1);
  });

  it('holds the limiter slot only while an attempt runs, and hands it back once however the call ends', async () => {
    const { deps } = setup({ maxRetries: 2, maxConcurrent: 3 });
    const active = (): number => deps.gate.limiter.active;
    const seen: number[] = [];
    const watch = (f: ReturnType<typeof failing>): ReturnType<typeof failing> => ({
      ...f, attempt: { ...f.attempt, run: () => { seen.push(active()); return f.attempt.run(); } },
    });
    // At once; after retries; given up; refused (no retry); output already sent.
    await expect(callReliably(deps, ctx, watch(failing([])).attempt)).resolves.toBe('ok');
    await expect(callReliably(deps, ctx, watch(failing([new InferenceError('upstream_error', 'x')])).attempt)).resolves.toBe('ok');
    const spent = [0, 1, 2].map(() => new InferenceError('overloaded', 'x'));
    await expect(callReliably(deps, ctx, watch(failing(spent)).attempt)).rejects.toMatchObject({ kind: 'overloaded' });
    await expect(callReliably(deps, ctx, watch(failing([new InferenceError('invalid_request', 'x')])).attempt)).rejects.toMatchObject({ kind: 'invalid_request' });
    await expect(callReliably(deps, ctx, watch(failing([new InferenceError('upstream_error', 'x')], true)).attempt)).rejects.toMatchObject({ kind: 'upstream_error' });
    expect(seen).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(active()).toBe(0);
  });

  it('opens the breaker after the threshold and then fails fast without calling', async () => {
    const { deps, events } = setup({ maxRetries: 0, breaker: { failureThreshold: 2, openMs: 60_000 } });
    for (let i = 0; i < 2; i++) {
      await expect(callReliably(deps, ctx, failing([new InferenceError('upstream_error', 'x')]).attempt)).rejects.toMatchObject({ kind: 'upstream_error' });
    }
    const f = failing([]);
    await expect(callReliably(deps, ctx, f.attempt)).rejects.toMatchObject({ kind: 'circuit_open' });
    expect(f.calls()).toBe(0);
    expect(events.at(-1)).toEqual({ type: 'breakerRejected' });
  });

  it('an upstream 429 with a retry-after longer than the queue allows goes back to the client at once', async () => {
    const { deps, events } = setup({ maxRetries: 3 }, 'reject');
    const f = failing([new InferenceError('rate_limited', 'x', { retryAfterMs: 5000 })]);
    await expect(callReliably(deps, ctx, f.attempt)).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 5000 });
    expect(f.calls()).toBe(1);
    expect(events).toContainEqual({ type: 'upstreamRateLimited' });
    // The key is paused: the next request is refused locally, never reaching the upstream.
    const next = failing([]);
    await expect(callReliably(deps, ctx, next.attempt)).rejects.toMatchObject({ kind: 'rate_limited', capacity: true });
    expect(next.calls()).toBe(0);
  });
});
