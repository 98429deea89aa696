import { describe, expect, it } from 'vitest';
import type { MetricsSummary } from '@inference/actors';
import { type DeploymentIn, buildStatus, describePlacement } from './statusModel.js';

const summary = (over: Partial<MetricsSummary> = {}): MetricsSummary => ({ time: 1000, windowSeconds: 60, deployments: {}, errors: [], ...over });
const load = { outstanding: 1, queued: 0, capacity: 4 };

describe('status view', () => {
  it('describes a placement whatever its shape', () => {
    expect(describePlacement({ node: 'gpu-1', gpus: [0, 1], gpuMemoryMiB: 8000, threads: 4 })).toBe('gpu-1 · GPU 0,1 · 4 threads');
    expect(describePlacement({ node: 'vm', gpus: [], threads: 0 })).toBe('vm · CPU');
    expect(describePlacement({ node: 'vm', gpus: [], warning: 'no GPU free' })).toBe('vm · CPU · (no GPU free)');
    expect(describePlacement({ node: 'vm', gpus: [], threads: 1 })).toBe('vm · CPU · 1 thread');
    expect(describePlacement('n2')).toBe('n2');
    expect(describePlacement(undefined)).toBeUndefined();
    expect(describePlacement({})).toBeUndefined();
  });

  it('derives state and serving counts when the catalog does not say them', () => {
    const d = (states: string[]): DeploymentIn => ({
      spec: { name: 'm', runtime: 'openai', replicas: 2 },
      replicas: states.map((state, i) => ({ id: `m#${i}`, state, restarts: i, load })),
    });
    const v = buildStatus([d(['failed', 'serving']), d(['loading', 'failed']), d(['failed', 'failed'])], summary());
    expect(v.deployments.map((x) => x.state)).toEqual(['serving', 'loading', 'failed']);
    expect(v.deployments[0]).toMatchObject({ desired: 2, serving: 1, restarts: 1 });
    const given = buildStatus([{ ...d(['pending']), state: 'pending', reason: 'no GPU free', desired: 3, serving: 0 }], summary());
    expect(given.deployments[0]).toMatchObject({ state: 'pending', reason: 'no GPU free', desired: 3, serving: 0 });
  });

  it('shows spend in the current budget window, zero once the window has ended, and since start without a budget', () => {
    const withBudget: DeploymentIn = { spec: { name: 'b', runtime: 'openai', replicas: 1, budget: { window: '1h', maxCostUsd: 5 } }, replicas: [] };
    const without: DeploymentIn = { spec: { name: 'n', runtime: 'openai', replicas: 1 }, replicas: [] };
    const rates = { requestsPerSec: 0, errorsPerSec: 0, tokensPerSec: 0, outputTokensPerSec: 0 };
    const m = summary({ deployments: { n: { rates, inFlight: 0, costUsd: 0.25, tokensIn: 10, tokensOut: 5, restarts: 0 } } });
    const spend = [
      { scope: 'deployment', name: 'b', window: '1h', windowEnd: 5000, tokens: 100, costUsd: 1.5 },
      { scope: 'key', name: 'team', window: '1d', windowEnd: 2000, tokens: 7, costUsd: 0.5 },
    ];
    const keys = new Map([['team', { window: '1d', maxTokens: 1000 }], ['idle', { window: '1h', maxCostUsd: 1 }]]);
    const v = buildStatus([withBudget, without], m, { now: 1000, spend, keys });
    expect(v.deployments[0]?.spend).toEqual({ costUsd: 1.5, tokens: 100, scope: 'window', window: '1h', windowEnd: 5000 });
    expect(v.deployments[0]?.budget).toEqual({ window: '1h', maxCostUsd: 5 });
    expect(v.deployments[1]?.spend).toEqual({ costUsd: 0.25, tokens: 15, scope: 'start' });
    expect(v.keys).toEqual([
      { name: 'team', spend: { costUsd: 0.5, tokens: 7, scope: 'window', window: '1d', windowEnd: 2000 }, budget: { window: '1d', maxTokens: 1000 } },
      { name: 'idle', spend: { costUsd: 0, tokens: 0, scope: 'window', window: '1h' }, budget: { window: '1h', maxCostUsd: 1 } },
    ]);
    const later = buildStatus([withBudget], m, { now: 6000, spend, keys: new Map() });
    expect(later.deployments[0]?.spend).toEqual({ costUsd: 0, tokens: 0, scope: 'window', window: '1h' });
  });
});
