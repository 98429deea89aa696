#!/usr/bin/env node
// Local path benchmark: the gateway serving a GGUF model on the native engine,
// beside llama.cpp's own llama-server built from the same source, same model, same
// thread count and the same number of parallel sequences, measured in one run.
// Both servers run side by side; each round measures every concurrency level
// (default 1, 4, 16) on both, the two sides in a rotated order, with a closed loop of
// streamed /v1/completions: aggregate completion tokens/s and TTFT (time to the
// first streamed token). The summary is the median and spread (min..max) over the
// rounds of each figure and of the per-round ratios gateway / llama-server; the raw
// rounds go to docs/bench-raw/local-<model>.json. A stream counts only when it ends
// with [DONE] and no error event. llama-bench and llama-batched-bench give the
// engine's raw decode speed as a ceiling (--no-ceiling skips them). Flash attention is
// the engine's default on every side: off on CPU (llama.cpp's own default is auto), auto
// with --gpu-layers above 0 (every side then offloads that many layers: -ngl).
//
//   node test/bench/local.mjs [--rounds 3] [--seconds 10] [--concurrency 1,4,16] [--max-tokens 128]
//                             [--threads 1] [--model models/stories260K.gguf] [--context 8192]
//                             [--gpu-layers 0] [--no-ceiling]
//
// llama-server and llama-bench come from `node scripts/build-llama-tools.mjs`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { fmtStats, freePort, percentile, root, saveRaw, startLocalGateway, startServer, stats } from './lib.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1,4,16' },
    'max-tokens': { type: 'string', default: '128' },
    threads: { type: 'string', default: '1' },
    model: { type: 'string', default: join(root, 'models', 'stories260K.gguf') },
    context: { type: 'string', default: '8192' },
    'gpu-layers': { type: 'string', default: '0' },
    'no-ceiling': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const levels = values.concurrency.split(',').map(Number);
const maxTokens = Number(values['max-tokens']);
const threads = Number(values.threads);
const slots = Math.max(...levels);
const contextSize = Number(values.context);
const gpuLayers = Number(values['gpu-layers']);
// The engine's default (packages/engine-local/src/native.ts): off on CPU, auto with offload.
const fa = gpuLayers > 0 ? 'auto' : 'off';
const bin = join(root, 'native', 'vendor', 'tools-build', 'bin');

/** One streamed completion: TTFT (first non-empty text) and completion tokens. */
async function one(pool, prompt) {
  const t0 = performance.now();
  const res = await pool.request({
    path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stories', prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    throw new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`);
  }
  let ttft;
  let tokens = 0;
  let chunks = 0;
  let done = false;
  let buf = '';
  for await (const piece of res.body) {
    buf += piece.toString();
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block === 'data: [DONE]') done = true;
      if (!block.startsWith('data: {')) continue;
      const m = JSON.parse(block.slice(6));
      if (m.error !== undefined) throw new Error(`error event: ${JSON.stringify(m.error).slice(0, 200)}`);
      if (m.choices?.[0]?.text) {
        chunks++;
        ttft ??= performance.now() - t0;
      }
      if (m.usage?.completion_tokens !== undefined) tokens = m.usage.completion_tokens;
    }
  }
  if (!done) throw new Error('stream ended without [DONE]');
  return { ttft: ttft ?? performance.now() - t0, tokens: tokens || chunks };
}

async function load(origin, concurrency) {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  let seq = 0;
  const prompt = () => `Once upon a time, there was a little ${['dog', 'cat', 'girl', 'boy', 'bird', 'fish', 'tree', 'car'][seq % 8]} number ${seq++}`;
  await Promise.all(Array.from({ length: concurrency }, () => one(pool, prompt())));
  const ttfts = [];
  let tokens = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      try {
        const r = await one(pool, prompt());
        ttfts.push(r.ttft);
        tokens += r.tokens;
      } catch (e) {
        if (errors++ === 0) console.error(`  first error: ${e.message}`);
      }
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  ttfts.sort((a, b) => a - b);
  return { tps: tokens / elapsed, ttftP50: percentile(ttfts, 50), ttftP90: percentile(ttfts, 90), requests: ttfts.length, errors };
}

function gateway() {
  return () => startLocalGateway([
    { name: 'stories', runtime: 'llama', model: values.model, replicas: 1, engine: { contextSize, maxSequences: slots, threads, gpuLayers } },
  ]);
}

function llamaServer() {
  return async () => {
    const port = await freePort();
    return startServer(join(bin, 'llama-server'), [
      '-m', values.model, '--host', '127.0.0.1', '--port', String(port), '-t', String(threads), '-tb', String(threads),
      '-c', String(contextSize), '-np', String(slots), '-cb', '--no-kv-unified', '-fa', fa, '-ngl', String(gpuLayers), '--log-disable', '-a', 'stories',
    ], port);
  };
}

function rawSpeeds() {
  const out = {};
  try {
    const args = ['-m', values.model, '-t', String(threads), '-fa', fa, '-ngl', String(gpuLayers), '-p', '16', '-n', String(maxTokens), '-o', 'json'];
    const j = JSON.parse(execFileSync(join(bin, 'llama-bench'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    out.tg = j.find((r) => r.n_gen > 0)?.avg_ts;
    out.pp = j.find((r) => r.n_prompt > 0)?.avg_ts;
  } catch (e) {
    console.error(`  llama-bench failed: ${e.message}`);
  }
  try {
    const args = ['-m', values.model, '-t', String(threads), '-fa', fa, '-ngl', String(gpuLayers), '-c', String(contextSize),
      '-npp', '16', '-ntg', String(maxTokens), '-npl', levels.join(','), '--output-format', 'jsonl'];
    const lines = execFileSync(join(bin, 'llama-batched-bench'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    out.batched = {};
    for (const l of lines.split('\n')) {
      if (!l.startsWith('{')) continue;
      const r = JSON.parse(l);
      out.batched[r.pl] = r.speed_tg;
    }
  } catch (e) {
    console.error(`  llama-batched-bench failed: ${e.message}`);
  }
  return out;
}

if (!existsSync(join(bin, 'llama-server'))) {
  console.error('llama-server is not built: run `node scripts/build-llama-tools.mjs` first');
  process.exit(2);
}
console.log(`local path — ${values.model.split('/').pop()}, ${threads} thread(s), ${slots} parallel sequences, context ${contextSize}, ${maxTokens} tokens per request, ${seconds}s per level and side, ${rounds} rounds (sides in rotated order), streamed /v1/completions at temperature 0`);
const faNote = gpuLayers > 0 ? 'flash attention auto on every side: the engine\'s default with offload'
  : 'flash attention off on every side: the engine\'s CPU default';
const engineSettings = `{ contextSize: ${contextSize}, maxSequences: ${slots}, threads: ${threads}, gpuLayers: ${gpuLayers} }`;
const serverFlags = `-t ${threads} -tb ${threads} -c ${contextSize} -np ${slots} -cb --no-kv-unified -fa ${fa} -ngl ${gpuLayers} --log-disable`;
console.log(`settings: gateway serve --quiet, deployment engine ${engineSettings}; llama-server ${serverFlags} (${faNote}; `
  + `llama-bench and llama-batched-bench -fa ${fa} -ngl ${gpuLayers} too); both built from the same llama.cpp source with the same options `
  + `(native CPU, no OpenMP${gpuLayers > 0 ? ', CUDA' : ''}); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const raw = values['no-ceiling'] ? {} : rawSpeeds();
if (raw.tg !== undefined) console.log(`  llama-bench   tg${maxTokens} ${raw.tg.toFixed(0)} tok/s   pp16 ${raw.pp?.toFixed(0)} tok/s (one sequence, no server)`);
if (raw.batched) console.log(`  batched-bench decode ${levels.map((c) => `c=${c} ${raw.batched[c]?.toFixed(0)} tok/s`).join('   ')} (no server)`);
const servers = { gateway: await gateway()(), 'llama-server': await llamaServer()() };
let rows;
try {
  // Levels run in order within a round; at each level the two sides take turns going first.
  rows = Object.fromEntries(levels.map((c) => [c, { gateway: [], 'llama-server': [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const c of levels) {
      const order = round % 2 === 0 ? ['gateway', 'llama-server'] : ['llama-server', 'gateway'];
      for (const side of order) rows[c][side].push(await load(servers[side].origin, c));
    }
  }
} finally {
  await servers.gateway.stop();
  await servers['llama-server'].stop();
}
for (const c of levels) {
  for (const side of ['gateway', 'llama-server']) {
    const xs = rows[c][side];
    const errors = xs.reduce((a, x) => a + x.errors, 0);
    console.log(`  ${side.padEnd(13)} c=${String(c).padEnd(3)} ${fmtStats(stats(xs.map((x) => x.tps)), 0)} tok/s   TTFT p50 ${fmtStats(stats(xs.map((x) => x.ttftP50)))} ms   p90 ${fmtStats(stats(xs.map((x) => x.ttftP90)))} ms   (${xs.reduce((a, x) => a + x.requests, 0)} requests, ${errors} errors)`);
  }
}
console.log('\n  ratios gateway / llama-server per round, median (min..max) (tokens/s: higher is better; TTFT: lower is better)');
for (const c of levels) {
  const g = rows[c].gateway;
  const l = rows[c]['llama-server'];
  const tps = stats(g.map((x, i) => x.tps / l[i].tps));
  const ttft = stats(g.map((x, i) => x.ttftP50 / l[i].ttftP50));
  const ceiling = raw.batched?.[c] ? `   gateway at ${((stats(g.map((x) => x.tps)).median / raw.batched[c]) * 100).toFixed(0)}% of batched-bench decode` : '';
  console.log(`  c=${String(c).padEnd(3)} tokens/s ${fmtStats(tps)}x   TTFT p50 ${fmtStats(ttft)}x${ceiling}`);
}
const name = `local-${values.model.split('/').pop().replace(/\.gguf$/, '')}${gpuLayers > 0 ? '-gpu' : ''}`;
const settings = { rounds, seconds, levels, maxTokens, threads, slots, contextSize, gpuLayers, flashAttention: fa, model: values.model.split('/').pop() };
console.log(`\nload average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`raw rounds: ${saveRaw(name, { settings, raw, rows })}`);
