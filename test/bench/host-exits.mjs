#!/usr/bin/env node
// Engine host exits under streamed load: `inference serve` with one local replica of
// stories260K, N streamed /v1/completions at concurrency C through the gateway, with a
// mix of clients: read to the end, disconnect mid-stream, disconnect before the first
// token, read slowly; temperatures 0..2, stop strings, logprobs, long prompts. Prints
// the outcomes and the `inference_engine_host_exits_total` series; every host exit is
// also logged by the gateway (stderr, passed through) with its code or signal and the
// host's last stderr lines (docs/metrics.md).
//
//   node test/bench/host-exits.mjs [--requests 1000] [--concurrency 16] [--slots 16]
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { freePort } from './lib.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '16' },
    slots: { type: 'string', default: '16' },
  },
});
const N = Number(values.requests);
const C = Number(values.concurrency);
const port = await freePort();
const config = join(mkdtempSync(join(tmpdir(), 'host-exits-')), 'config.json');
writeFileSync(config, JSON.stringify({
  server: { host: '127.0.0.1', port },
  deployments: [{
    name: 'stories', runtime: 'llama', model: join(root, 'models', 'stories260K.gguf'), replicas: 1,
    engine: { contextSize: 8192, maxSequences: Number(values.slots), threads: 1, gpuLayers: 0 },
  }],
}));
const gw = spawn(process.execPath, [join(root, 'apps', 'gateway', 'dist', 'cli.js'), 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
const origin = `http://127.0.0.1:${port}`;
while (!(await fetch(`${origin}/ready`).then((r) => r.ok, () => false))) await new Promise((r) => setTimeout(r, 200));

const counts = {};
const bump = (k) => { counts[k] = (counts[k] ?? 0) + 1; };
async function one(i) {
  const ac = new AbortController();
  const midStream = i % 5 === 0;
  const early = i % 5 === 1;
  const slow = i % 5 === 2;
  if (early) setTimeout(() => ac.abort(), i % 13);
  const prompt = i % 3 === 0 ? `Once upon a time ${'there was a little dog who liked to play. '.repeat(2 + (i % 6))}` : `Once upon a time number ${i}`;
  const body = {
    model: 'stories', prompt, max_tokens: 64 + (i % 5) * 32, temperature: [0, 0.8, 1.5, 2][i % 4], top_p: i % 3 ? 1 : 0.9,
    stream: true, stream_options: { include_usage: true },
    ...(i % 4 === 3 ? { stop: ['\n', 'the', '\u00e9'] } : {}), ...(i % 6 === 5 ? { logprobs: 3 } : {}),
  };
  try {
    const res = await request(`${origin}/v1/completions`, {
      method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    if (res.statusCode !== 200) { bump(`status ${res.statusCode}: ${(await res.body.text()).slice(0, 150)}`); return; }
    let buf = '';
    let chunks = 0;
    for await (const p of res.body) {
      buf += p.toString();
      chunks++;
      if (slow) await new Promise((r) => setTimeout(r, 20 + (i % 40)));
      if (midStream && chunks >= 2 + (i % 7)) { ac.abort(); bump('disconnected'); return; }
    }
    const m = buf.match(/"error":\{[^}]*\}/);
    bump(m ? `error ${m[0].slice(0, 150)}` : buf.includes('[DONE]') ? 'ok' : 'no [DONE]');
  } catch (e) {
    bump(midStream || early ? 'disconnected' : `threw ${e.message}`);
  }
}
let next = 0;
const t0 = Date.now();
await Promise.all(Array.from({ length: C }, async () => { while (next < N) await one(next++); }));
const metrics = await fetch(`${origin}/metrics`).then((r) => r.text());
console.log(JSON.stringify(counts, null, 1), `${((Date.now() - t0) / 1000).toFixed(1)} s`);
const exits = metrics.split('\n').filter((l) => l.startsWith('inference_engine_host_exits_total'));
console.log(exits.length === 0 ? 'no engine host exits' : exits.join('\n'));
gw.kill('SIGTERM');
