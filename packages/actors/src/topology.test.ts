import { describe, expect, it } from 'vitest';
import {
  type ChunkSink, type DeploymentSpec, type GenerateRequest, InferenceError, type ModelRunner, type RunContext, type Tokens, parseDeployment,
} from '@inference/core';
import { DpCoordinatorActor } from './dpCoordinatorActor.js';
import { DeploymentManagerActor, type DeploymentStatus, type ReplicaFactory } from './deploymentManagerActor.js';
import { ActorSystem } from './kernel.js';
import { MetricsActor } from './metricsActor.js';
import type { RequestResult } from './requestJob.js';
import { RequestRun } from './requestRun.js';

let sharedFailure: InferenceError | undefined;

class FakeRunner implements ModelRunner {
  outstanding = 0;
  stopped = false;
  failNext: InferenceError | undefined;
  served = 0;
  constructor(readonly id: string, readonly deployment: string, private readonly delayMs = 20) {}
  async generate(_req: GenerateRequest, ctx: RunContext, sink: ChunkSink): Promise<Tokens> {
    this.outstanding++;
    try {
      if (this.failNext !== undefined) {
        const e = this.failNext;
        this.failNext = undefined;
        throw e;
      }
      if (sharedFailure !== undefined) {
        const e = sharedFailure;
        sharedFailure = undefined;
        throw e;
      }
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, this.delayMs / 3));
        if (ctx.signal.aborted) throw new InferenceError('internal', 'aborted');
        sink({ index: 0, text: `t${i}`, tokens: 1 });
      }
      this.served++;
      return { choices: [{ index: 0, text: 't0t1t2', finishReason: 'stop' }], usage: { promptTokens: 1, completionTokens: 3 } };
    } finally {
      this.outstanding--;
    }
  }
  embed(): Promise<never> {
    return Promise.reject(new InferenceError('invalid_request', 'no embeddings'));
  }
  load() {
    return { outstanding: this.outstanding, queued: 0, capacity: 8 };
  }
  healthy() {
    return !this.stopped;
  }
  stop() {
    this.stopped = true;
    return Promise.resolve();
  }
}

function topology() {
  const sys = new ActorSystem(`topo${Math.random()}`);
  const runners = new Map<string, FakeRunner>();
  const factory: ReplicaFactory = (spec, id) => {
    const r = new FakeRunner(id, spec.name);
    runners.set(id, r);
    return { runner: r, ready: Promise.resolve() };
  };
  const coordinator = sys.spawn('coordinator', () => new DpCoordinatorActor());
  const metrics = sys.spawn('metrics', () => new MetricsActor(false));
  const manager = sys.spawn('manager', () => new DeploymentManagerActor(coordinator, metrics, factory));
  let n = 0;
  const run = (model: string, onChunk: (t: string) => void = () => undefined, signal?: AbortSignal): Promise<RequestResult> => {
    const req: GenerateRequest = { kind: 'completion', model, prompt: 'x', sampling: { stop: [], n: 1 }, stream: false, includeUsage: false, passthrough: {} };
    const run = new RequestRun({ coordinator, metrics }, `r${++n}`, { kind: 'generate', endpoint: 'completion', req, sink: (c) => { onChunk(c.text); } });
    signal?.addEventListener('abort', () => { run.cancel('client closed'); });
    return run.run();
  };
  const apply = (spec: DeploymentSpec) => manager.ask<DeploymentStatus>((reply) => ({ type: 'apply', spec, reply }));
  const remove = (name: string) => manager.ask<void>((reply) => ({ type: 'remove', name, reply }));
  return { sys, runners, run, apply, remove, manager, metrics };
}

const spec = (name: string, replicas = 2) => parseDeployment({ name, runtime: 'openai', endpoint: 'http://127.0.0.1:1/v1', replicas });

describe('runtime topology', () => {
  it('serves a deployment at once and spreads concurrent requests across replicas', async () => {
    const t = topology();
    await t.apply(spec('m', 3));
    const results = await Promise.all(Array.from({ length: 9 }, () => t.run('m')));
    const perReplica = new Map<string, number>();
    for (const r of results) perReplica.set(r.replica, (perReplica.get(r.replica) ?? 0) + 1);
    expect([...perReplica.values()]).toEqual([3, 3, 3]);
    await t.sys.stop();
  });

  it('answers not_found for an unknown deployment', async () => {
    const t = topology();
    await expect(t.run('nope')).rejects.toMatchObject({ kind: 'not_found', param: 'model' });
    await t.sys.stop();
  });

  it('retries once on another replica when a replica fails before the first token', async () => {
    const t = topology();
    await t.apply(spec('m', 2));
    sharedFailure = new InferenceError('engine_unavailable', 'host died');
    const out = await t.run('m');
    expect(out.kind).toBe('generate');
    const metrics = await t.metrics.ask<{ body: string }>((reply) => ({ type: 'render', reply }));
    expect(metrics.body).toMatch(/inference_request_retries_total\{deployment="m"\} 1/);
    await t.sys.stop();
  });

  it('does not retry non-retryable failures', async () => {
    const t = topology();
    await t.apply(spec('m', 2));
    for (const r of t.runners.values()) r.failNext = new InferenceError('context_length_exceeded', 'too long');
    await expect(t.run('m')).rejects.toMatchObject({ kind: 'context_length_exceeded' });
    await t.sys.stop();
  });

  it('removing a deployment drains: in-flight requests finish, new ones get not_found', async () => {
    const t = topology();
    await t.apply(spec('m', 1));
    const inflight = t.run('m');
    await new Promise((r) => setTimeout(r, 5));
    await t.remove('m');
    await expect(t.run('m')).rejects.toMatchObject({ kind: 'not_found' });
    await expect(inflight).resolves.toMatchObject({ kind: 'generate' });
    await new Promise((r) => setTimeout(r, 60));
    expect([...t.runners.values()].every((r) => r.stopped)).toBe(true);
    await t.sys.stop();
  });

  it('scales up and down without dropping in-flight requests', async () => {
    const t = topology();
    await t.apply(spec('m', 1));
    const inflight = Array.from({ length: 4 }, () => t.run('m'));
    let status = await t.apply(spec('m', 3));
    expect(status.replicas).toHaveLength(3);
    status = await t.apply(spec('m', 1));
    // Surplus replicas drain (listed until they stopped); one stays.
    expect(status.replicas.filter((r) => r.state !== 'draining')).toHaveLength(1);
    expect(status.desired).toBe(1);
    await expect(Promise.all(inflight)).resolves.toHaveLength(4);
    await t.sys.stop();
  });

  it('client cancellation aborts the work', async () => {
    const t = topology();
    await t.apply(spec('m', 1));
    const ac = new AbortController();
    const chunks: string[] = [];
    const p = t.run('m', (c) => chunks.push(c), ac.signal);
    setTimeout(() => { ac.abort(); }, 8);
    await expect(p).rejects.toBeInstanceOf(InferenceError);
    expect(chunks.length).toBeLessThan(3);
    await t.sys.stop();
  });
});
