// The addon's event queue is bounded (docs/flow-control.md, "Back-pressure"): with a
// JS consumer slower than the engine, the engine thread waits for room instead of
// decoding further ahead, and close() returns even while that thread is waiting
// (inside the event callback, while loading, from a timer). The stress runs in a child
// process (scripts/native-events-stress.mjs) so that a deadlocked close() fails this
// test by its timeout instead of hanging the test worker. Real addon, real model.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findAddon } from './native.js';
import { MODEL, repoRoot } from './testModel.js';

const ADDON = findAddon();
if (ADDON === null) throw new Error('engine-local tests need the native addon (pnpm build:native)');

interface StressResult {
  rounds: number;
  queue: number;
  maxLag: number;
  closedWhileWaiting: number;
  deliveredAfterClose: number;
  steps: number;
}

describe('the addon event queue', () => {
  it('keeps the engine at most queue + 1 steps ahead of a slow consumer, and closes while it waits', { timeout: 90_000 }, () => {
    const queue = 4;
    const script = join(repoRoot, 'scripts', 'native-events-stress.mjs');
    const r = spawnSync(process.execPath, [script, '--rounds', '9', '--queue', String(queue), '--sequences', '32'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, INFERENCE_NATIVE_ADDON: ADDON, INFERENCE_TEST_MODEL: MODEL },
    });
    expect(r.error, 'the stress did not finish: a close() deadlocked').toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    const result = JSON.parse(line) as StressResult;
    // The consumer held the event loop until the engine was as far ahead as it may be ...
    expect(result.maxLag).toBeGreaterThanOrEqual(queue);
    // ... and it got no further: a full queue plus the one step waiting for room.
    expect(result.maxLag).toBeLessThanOrEqual(queue + 1);
    expect(result.closedWhileWaiting).toBeGreaterThanOrEqual(1);
    expect(result.deliveredAfterClose).toBe(0);
  });
});
