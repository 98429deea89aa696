// Accounting that must balance, through full mailboxes: requests in flight (the
// metrics' started/finished pair) and routing picks go back to zero however
// busy the actors were while requests ran.
import { describe, expect, it } from 'vitest';
import { type ChunkSink, type GenerateRequest, InferenceError, type ModelRunner, type RunContext, type Tokens } from '@inference/core';
import { DpCoordinatorActor, localRouter } from './dpCoordinatorActor.js';
import { ActorSystem } from './kernel.js';
import { MetricsActor, type MetricsSummary, type ReplicaSample, localRecorder } from './metricsActor.js';
import type { RequestResult } from './requestJob.js';
import { RequestRun } from './requestRun.js';
import type { ReplicaEntry } from './routing.js';

class QuickRunner implements ModelRunner {
  constructor(readonly id: string, readonly deployment: string) {}
  async generate(_req: GenerateRequest, _ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    await new Promise((r) => setTimeout(r, 2));
    sink({ index: 0, text: 'x', tokens: 1 });
    return { choices: [{ index: 0, text: 'x', finishReason: 'stop' }], usage: { promptTokens: 1, completionTokens: 1 } };
  }
  embed(): Promise<never> {
    return Promise.reject(new InferenceError('invalid_request', 'no embeddings'));
  }
  load() {
    return { outstanding: 0, queued: 0, capacity: 8 };
  }
  healthy() {
    return true;
  }
  stop() {
    return Promise.resolve();
  }
}

describe('accounting through full mailboxes', () => {
  it('requests in flight and picks return to zero while the metrics mailbox was full', async () => {
    const sys = new ActorSystem('accounting');
    let release!: () => void;
    const scrapeBlocked = new Promise<void>((r) => { release = r; });
    // A scrape that takes long keeps the metrics actor busy: its mailbox of 4 fills with observations.
    const sample = async (): Promise<readonly ReplicaSample[]> => {
      await scrapeBlocked;
      return [];
    };
    const metrics = sys.spawn('metrics', () => new MetricsActor({ defaultMetrics: false, sample }), { mailbox: 4 });
    const coordinator = sys.spawn('coordinator', () => new DpCoordinatorActor(), { mailbox: 4 });
    const entry: ReplicaEntry = { id: 'd#1', deployment: 'd', runner: new QuickRunner('d#1', 'd'), state: 'serving' };
    coordinator.tell({ type: 'register', replica: entry });
    const scrape = metrics.ask<{ body: string }>((reply) => ({ type: 'render', reply }));
    const req: GenerateRequest = { kind: 'completion', model: 'd', prompt: 'p', sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {} };
    const runs: Promise<RequestResult>[] = [];
    for (let i = 0; i < 20; i++) {
      runs.push(new RequestRun({ coordinator, metrics }, `r${i}`, { kind: 'generate', endpoint: 'completion', req, sink: () => undefined }).run());
    }
    await Promise.all(runs);
    expect(metrics.mailboxSize).toBeGreaterThanOrEqual(4);
    release();
    await scrape;
    while (metrics.mailboxSize > 0) await new Promise((r) => setTimeout(r, 1));
    const s = await metrics.ask<MetricsSummary>((reply) => ({ type: 'summary', reply }));
    expect(s.deployments['d']?.inFlight ?? 0).toBe(0);
    expect(entry.assigned).toBe(0);
    await sys.stop();
  });

  it('in place (local router and recorder), while a scrape waits: requests in flight and picks return to zero, every request counted', async () => {
    const sys = new ActorSystem('accounting-local');
    let release!: () => void;
    const scrapeBlocked = new Promise<void>((r) => { release = r; });
    const sample = async (): Promise<readonly ReplicaSample[]> => {
      await scrapeBlocked;
      return [];
    };
    const meters = new MetricsActor({ defaultMetrics: false, sample });
    const metrics = sys.spawn('metrics', () => meters, { mailbox: 4 });
    const table = new DpCoordinatorActor();
    const coordinator = sys.spawn('coordinator', () => table, { mailbox: 4 });
    const entry: ReplicaEntry = { id: 'd#1', deployment: 'd', runner: new QuickRunner('d#1', 'd'), state: 'serving' };
    coordinator.tell({ type: 'register', replica: entry });
    const deps = { coordinator, metrics, router: localRouter(coordinator, table), recorder: localRecorder(metrics, meters) };
    const scrape = metrics.ask<{ body: string }>((reply) => ({ type: 'render', reply }));
    const req: GenerateRequest = {
      kind: 'completion', model: 'd', prompt: 'p', sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {},
    };
    const runs: Promise<RequestResult>[] = [];
    for (let i = 0; i < 20; i++) {
      const job = { kind: 'generate', endpoint: 'completion', req, sink: () => undefined } as const;
      runs.push(new RequestRun(deps, `r${i}`, job).run());
    }
    await Promise.all(runs);
    // Nothing waited in the mailbox: the observations were taken in place.
    expect(metrics.mailboxSize).toBe(0);
    expect(entry.assigned).toBe(0);
    release();
    await scrape;
    const s = await metrics.ask<MetricsSummary>((reply) => ({ type: 'summary', reply }));
    expect(s.deployments['d']?.inFlight).toBe(0);
    const body = (await metrics.ask<{ body: string }>((reply) => ({ type: 'render', reply }))).body;
    expect(body).toContain('inference_gateway_requests_total{deployment="d",endpoint="completion",outcome="ok"} 20');
    await sys.stop();
  });
});
