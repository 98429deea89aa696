#!/usr/bin/env node
// First tokens under concurrency, straight on the native engine (no gateway, no HTTP): a
// closed loop of C clients, each submitting the next request when its previous one ends,
// with test/bench/local.mjs's prompts. Per request: the time to its first sampled token and
// the decode step it came from (1 = the first step after its submit); per step: the
// sequences and tokens decoded. Prints numbers only (docs/benchmarks.md, "Requests that
// arrive together"). $INFERENCE_NATIVE_ADDON selects another build of the addon (a before/after).
// --prompt-cache-mib sets the host-memory prompt cache (default 1024, a deployment's default;
// 0: off); the prompt and cached tokens per request show what it saved.
//
//   node test/bench/first-token.mjs [--model models/dummy-llama-1b-q8_0.gguf] [--concurrency 4]
//                                   [--max-tokens 32] [--seconds 15] [--threads 1] [--context 2048]
//                                   [--prompt-cache-mib 1024]
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(root, 'models', 'dummy-llama-1b-q8_0.gguf') },
    concurrency: { type: 'string', default: '4' },
    'max-tokens': { type: 'string', default: '32' },
    seconds: { type: 'string', default: '15' },
    threads: { type: 'string', default: '1' },
    context: { type: 'string', default: '2048' },
    'prompt-cache-mib': { type: 'string', default: '1024' },
  },
});
const C = Number(values.concurrency);
const { tryLoadAddon } = await import(join(root, 'packages', 'engine-local', 'dist', 'native.js'));
const { addon, reason } = tryLoadAddon();
if (addon === null) throw new Error(reason);

const waiters = new Map();
const stepLog = [];
const engine = new addon.Engine(
  {
    modelPath: values.model, contextSize: Number(values.context), maxSequences: C, threads: Number(values.threads), gpuLayers: 0, batchTokens: 512,
    promptCacheBytes: Number(values['prompt-cache-mib']) * 1024 * 1024,
  },
  (ev) => {
    stepLog.push(`${ev.step}:${ev.seqs}/${ev.tokens}`);
    for (const it of ev.items) waiters.get(it.id)?.(it, ev.step);
  },
);
await engine.ready();
const animals = ['dog', 'cat', 'girl', 'boy', 'bird', 'fish', 'tree', 'car'];
let seq = 0;
let nextId = 1;
function one() {
  const id = nextId++;
  const prompt = engine.tokenize(`Once upon a time, there was a little ${animals[seq % 8]} number ${seq++}`, true, false);
  const t0 = performance.now();
  const s0 = engine.stats().steps;
  return new Promise((resolveOne) => {
    let ttft;
    let step;
    waiters.set(id, (it, at) => {
      if (it.n > 0 && ttft === undefined) {
        ttft = performance.now() - t0;
        step = at - s0;
      }
      if (it.error !== undefined) throw new Error(`${it.error.kind}: ${it.error.message}`);
      if (it.done !== undefined) {
        waiters.delete(id);
        resolveOne({ ttft, step, promptTokens: it.promptTokens ?? 0, cachedTokens: it.cachedTokens ?? 0 });
      }
    });
    engine.submit({ id, prompt, maxTokens: Number(values['max-tokens']), temperature: 0, stop: [] });
  });
}
await Promise.all(Array.from({ length: C }, one)); // warm-up: every slot holds a cache, as in local.mjs
stepLog.length = 0;
const load0 = loadavg()[0];
const end = performance.now() + Number(values.seconds) * 1000;
const rs = [];
await Promise.all(Array.from({ length: C }, async () => {
  while (performance.now() < end) rs.push(await one());
}));
const t = rs.map((r) => r.ttft).sort((a, b) => a - b);
const mean = t.reduce((a, b) => a + b, 0) / t.length;
const load1 = loadavg()[0];
const name = values.model.split('/').pop();
console.log(`${name}, concurrency ${C}, ${values['max-tokens']} tokens per request, load average ${load0.toFixed(2)} -> ${load1.toFixed(2)}`);
const p50 = t[Math.floor(t.length / 2)];
console.log(`  ${rs.length} requests   TTFT p50 ${p50.toFixed(0)} ms   mean ${mean.toFixed(0)} ms   min ${t[0].toFixed(0)}   max ${t.at(-1).toFixed(0)} ms`);
const sum = (k) => rs.reduce((a, r) => a + r[k], 0);
const st = engine.stats();
console.log(`  prompt tokens ${sum('promptTokens')}, cached ${sum('cachedTokens')} (${(100 * sum('cachedTokens') / sum('promptTokens')).toFixed(1)}%), `
  + `decoded ${((sum('promptTokens') - sum('cachedTokens')) / rs.length).toFixed(2)} per request; prompt cache hits ${st.promptCacheHits ?? 'n/a'}, `
  + `saves ${st.promptCacheSaves ?? 'n/a'}, ${((st.promptCacheBytes ?? 0) / 1048576).toFixed(1)} MiB held`);
console.log(`  first 24 requests (ms @ step): ${rs.slice(0, 24).map((r) => `${r.ttft.toFixed(0)}@${r.step}`).join(' ')}`);
const withPrompt = stepLog.filter((s) => !s.endsWith(`/${s.split(':')[1].split('/')[0]}`));
console.log(`  steps with a prompt (step:sequences/tokens), first 12 of ${withPrompt.length}: ${withPrompt.slice(0, 12).join(' ')}`);
engine.close();
