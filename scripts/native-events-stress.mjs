#!/usr/bin/env node
// Stress of the addon's bounded event queue (docs/flow-control.md, "Back-pressure"):
// many sequences, a JS consumer slower than the engine, and engines closed while
// their thread waits for room in the queue (inside the event callback, the event
// loop busy), while loading, and from a timer. Prints one JSON line:
//   { rounds, queue, maxLag, closedWhileWaiting, deliveredAfterClose, steps }
// `maxLag` is the most steps the engine was ahead of the event being delivered: the
// bound says it never exceeds queue + 1. A close that never returns (a deadlock) hangs
// the script: run it under a timeout (the test does).
//
// Usage: node scripts/native-events-stress.mjs [--rounds N] [--queue Q] [--sequences S]
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const rounds = opt('--rounds', 6);
const queue = opt('--queue', 4);
const sequences = opt('--sequences', 32);
const addonPath = process.env.INFERENCE_NATIVE_ADDON || join(root, 'build', 'Release', 'inference_native.node');
const modelPath = process.env.INFERENCE_TEST_MODEL || join(root, 'models', 'stories260K.gguf');
const addon = createRequire(import.meta.url)(addonPath);

const options = { modelPath, contextSize: 256 * sequences, maxSequences: sequences, gpuLayers: 0, threads: 1, batchTokens: 512, embeddings: false, eventQueue: queue };

/**
 * Holds the event loop (a slow consumer) until the engine is `queue` + 1 steps ahead of
 * the event being delivered (a full queue and one step waiting for room), at most
 * `maxMs`; then a little longer, until it has not advanced for 20 ms: an engine that
 * does not wait keeps going.
 */
function slowConsumer(engine, step, maxMs) {
  const start = Date.now();
  while (engine.stats().steps - step < queue + 1 && Date.now() - start < maxMs) { /* busy */ }
  let last = engine.stats().steps;
  let since = Date.now();
  for (let now = since; now - since < 20 && now - start < maxMs; now = Date.now()) {
    const s = engine.stats().steps;
    if (s !== last) {
      last = s;
      since = now;
    }
  }
}

let maxLag = 0;
let closedWhileWaiting = 0;
let deliveredAfterClose = 0;
let steps = 0;

/** One engine: `mode` says when it is closed. */
async function round(mode, closeAt) {
  let closed = false;
  let delivered = 0;
  let finish;
  const finished = new Promise((r) => { finish = r; });
  const engine = new addon.Engine(options, (ev) => {
    if (closed) {
      deliveredAfterClose++;
      return;
    }
    delivered++;
    if (mode === 'timer') return; // a fast consumer
    slowConsumer(engine, ev.step, 1000);
    const s = engine.stats().steps;
    maxLag = Math.max(maxLag, s - ev.step);
    steps = Math.max(steps, s);
    if (delivered >= closeAt) {
      // The engine thread is (most likely) waiting for room in the full queue now.
      if (s - ev.step >= queue) closedWhileWaiting++;
      closed = true;
      engine.close();
      finish();
    }
  });
  if (mode === 'loading') {
    closed = true;
    engine.close();
    await engine.ready().catch(() => undefined);
    return;
  }
  await engine.ready();
  const prompt = engine.tokenize('Once upon a time', true, false);
  for (let id = 1; id <= sequences; id++) engine.submit({ id, prompt, maxTokens: 200, temperature: 0.8, seed: id, stop: [] });
  if (mode === 'timer') {
    setTimeout(() => {
      closed = true;
      engine.close();
      finish();
    }, 5);
  }
  await finished;
  // Let anything still queued reach the event loop: it must be dropped, not delivered.
  await new Promise((r) => setTimeout(r, 20));
}

const modes = ['callback', 'loading', 'timer'];
for (let i = 0; i < rounds; i++) await round(modes[i % modes.length], 5 + ((i * 7) % 20));
process.stdout.write(`${JSON.stringify({ rounds, queue, maxLag, closedWhileWaiting, deliveredAfterClose, steps })}\n`);
