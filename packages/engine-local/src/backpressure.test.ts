// Back-pressure on the local path (docs/flow-control.md): a paused generation's
// sequence leaves the batch (no output while paused) while another generation on
// the same engine runs to its end, and the paused one finishes once resumed. Real
// engine host, real addon, real model (stories260K).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation, Flow } from '@inference/core';
import { EngineHost } from './hostClient.js';
import { MODEL } from './testModel.js';


let host: EngineHost;
beforeAll(async () => {
  host = await EngineHost.start({ modelPath: MODEL, contextSize: 4096, maxSequences: 2, gpuLayers: 0, threads: 1, batchTokens: 256 });
});
afterAll(async () => {
  await host.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a paused generation', () => {
  it('produces nothing while paused, lets another finish meanwhile, and completes once resumed', { timeout: 60_000 }, async () => {
    const flow = new Flow();
    let tokens = 0;
    let fellBehind = false;
    const slow = host.generate({ prompt: 'Once upon a time' }, { maxTokens: 600, temperature: 0, stop: [] }, new Cancellation(), (_t, n) => {
      tokens += n;
      // The client falls behind once, after its first 20 tokens.
      if (tokens >= 20 && !fellBehind) {
        fellBehind = true;
        flow.pause();
      }
    }, flow);
    for (let i = 0; i < 500 && !flow.paused; i++) await sleep(10);
    expect(flow.paused).toBe(true);
    // Another generation on the same engine runs to its end while the first is held back.
    let other = 0;
    const r = await host.generate({ prompt: 'The dog' }, { maxTokens: 300, temperature: 0, stop: [] }, new Cancellation(), (_t, n) => { other += n; });
    expect(r.completionTokens).toBe(300);
    expect(other).toBe(300);
    // By now the pause has reached the engine: the held sequence makes no progress.
    const held = tokens;
    await sleep(300);
    expect(tokens).toBe(held);
    expect(held).toBeLessThan(300);
    flow.resume();
    const done = await slow;
    expect(done.completionTokens).toBe(600);
    expect(tokens).toBe(600);
  });
});
