import { describe, expect, it } from 'vitest';
import { parseDeployment } from './deployment.js';
import { errorOf } from '../testing/errors.js';

describe('parseDeployment', () => {
  it('accepts the contract example with defaults filled in', () => {
    const d = parseDeployment({
      name: 'gpt-4o-mini',
      runtime: 'openai',
      endpoint: 'https://api.openai.com/v1/',
      apiKeyEnv: 'OPENAI_API_KEY',
      replicas: 1,
      remote: {
        maxConcurrent: 64,
        rpm: 500,
        tpm: 200000,
        maxRetries: 2,
        timeouts: { connectMs: 5000, firstByteMs: 30000, idleMs: 30000, totalMs: 600000 },
        breaker: { failureThreshold: 5, openMs: 30000 },
      },
      fallbacks: ['smollm'],
      onCapacityExhausted: 'fallback',
      price: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
      budget: { window: '1h', maxTokens: 1000000, maxCostUsd: 5, onExceeded: 'reject' },
    });
    expect(d.endpoint).toBe('https://api.openai.com/v1');
    expect(d.remote.rpm).toBe(500);
    expect(d.engine.maxSequences).toBe(8);
    expect(d.budget?.window).toBe('1h');
  });

  it('parses remote.rateWindowMs: absent unless set (a catalog entry reads the same to older nodes), at least a second', () => {
    const base = { name: 'g', runtime: 'openai', endpoint: 'http://x/v1' };
    expect(parseDeployment(base).remote.rateWindowMs).toBeUndefined();
    expect('rateWindowMs' in parseDeployment(base).remote).toBe(false);
    expect(parseDeployment({ ...base, remote: { rpm: 5, rateWindowMs: 1000 } }).remote.rateWindowMs).toBe(1000);
    expect(errorOf(() => parseDeployment({ ...base, remote: { rateWindowMs: 500 } })).param).toBe('remote.rateWindowMs');
    expect(errorOf(() => parseDeployment({ ...base, remote: { rateWindowMs: 1.5e3 + 0.5 } })).param).toBe('remote.rateWindowMs');
  });

  it('names the unknown key, nested too', () => {
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', replica: 2 })).param).toBe('replica');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', engine: { ctx: 1 } }, 'deployments[0]')).param).toBe(
      'deployments[0].engine.ctx',
    );
  });

  it('requires what each runtime needs', () => {
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama' })).param).toBe('model');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'openai' })).param).toBe('endpoint');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'vllm' })).param).toBe('runtime');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'openai', endpoint: 'ftp://x' })).param).toBe('endpoint');
    expect(errorOf(() => parseDeployment({ name: 'a b', runtime: 'openai', endpoint: 'http://x' })).param).toBe('name');
  });

  it('parses engine.promptCacheMiB: absent unless set (the default applies at the replica), an integer >= 0', () => {
    const base = { name: 'a', runtime: 'llama', model: 'x.gguf' };
    expect('promptCacheMiB' in parseDeployment(base).engine).toBe(false);
    expect(parseDeployment({ ...base, engine: { promptCacheMiB: 0 } }).engine.promptCacheMiB).toBe(0);
    expect(parseDeployment({ ...base, engine: { promptCacheMiB: 256 } }).engine.promptCacheMiB).toBe(256);
    for (const bad of [-1, 1.5, '256', 2 ** 21]) {
      const e = errorOf(() => parseDeployment({ ...base, engine: { promptCacheMiB: bad } }));
      expect(e.param).toBe('engine.promptCacheMiB');
      expect(e.message).toMatch(/promptCacheMiB/);
    }
  });

  it('parses placement keys: gpus defaults from gpuLayers, strategy, memory needs a GPU', () => {
    const cpu = parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf' });
    expect(cpu.engine).toMatchObject({ gpus: 0, gpuMemoryMiB: 0, placement: 'binpack' });
    expect(parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', engine: { gpuLayers: -1 } }).engine.gpus).toBe(1);
    const gpu = parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', engine: { gpus: 2, gpuMemoryMiB: 8000, placement: 'spread' } });
    expect(gpu.engine).toMatchObject({ gpus: 2, gpuMemoryMiB: 8000, placement: 'spread' });
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', engine: { placement: 'random' } })).param).toBe('engine.placement');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', engine: { gpuMemoryMiB: 10 } })).param).toBe('engine.gpuMemoryMiB');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', engine: { gpus: -1 } })).param).toBe('engine.gpus');
  });

  it('parses routing: prefix for local and least_load for remote by default, unknown keys named', () => {
    expect(parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf' }).routing)
      .toEqual({ policy: 'prefix', prefixLoadSlack: 4, prefixFreeSlot: true });
    expect(parseDeployment({ name: 'a', runtime: 'openai', endpoint: 'http://x' }).routing.policy).toBe('least_load');
    expect(parseDeployment({ name: 'a', runtime: 'anthropic' }).routing.policy).toBe('least_load');
    expect(parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { policy: 'round_robin', prefixLoadSlack: 0 } }).routing)
      .toEqual({ policy: 'round_robin', prefixLoadSlack: 0, prefixFreeSlot: false });
    // An explicit slack keeps its meaning unless the free-slot rule is asked for by name.
    expect(parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { prefixLoadSlack: 2, prefixFreeSlot: true } }).routing)
      .toEqual({ policy: 'prefix', prefixLoadSlack: 2, prefixFreeSlot: true });
    expect(parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { prefixFreeSlot: false } }).routing)
      .toEqual({ policy: 'prefix', prefixLoadSlack: 4, prefixFreeSlot: false });
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { prefixFreeSlot: 'yes' } })).param).toBe(
      'routing.prefixFreeSlot',
    );
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { policy: 'random' } })).param).toBe('routing.policy');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { slack: 1 } })).param).toBe('routing.slack');
    expect(errorOf(() => parseDeployment({ name: 'a', runtime: 'llama', model: 'x.gguf', routing: { prefixLoadSlack: -1 } })).param).toBe(
      'routing.prefixLoadSlack',
    );
  });
});
