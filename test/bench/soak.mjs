#!/usr/bin/env node
// Soak: mixed traffic with injected faults for a while, sampling the gateway's
// memory and event-loop delay, to show both stay flat (no leak, no creeping stall).
//
//   node test/bench/soak.mjs [--minutes 20] [--rate 40] [--sample 15]
//
// Traffic (open loop at --rate requests/s): OpenAI chat streamed and not, some
// streams abandoned after their first chunk, Anthropic /v1/messages, embeddings,
// local-model completions (some abandoned), and invalid requests. Every minute the
// upstream fails for a few seconds (500s, then 429s with retry-after, then a hang
// past the first-byte timeout) and the local engine host is killed with SIGKILL.
// Prints one line per sample and, at the end, the RSS trend (first vs last quarter
// and the least-squares slope) and the worst event-loop delay.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startProcess } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { minutes: { type: 'string', default: '20' }, rate: { type: 'string', default: '40' }, sample: { type: 'string', default: '15' } } });
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const sampleEvery = Number(values.sample) * 1000;
const model = join(root, 'models', 'stories260K.gguf');

const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0'], /listening (\S+)/);
const mockOrigin = new URL(mock.url).origin;
const dir = mkdtempSync(join(tmpdir(), 'soak-'));
const cfg = join(dir, 'config.yaml');
const remote = 'remote: { maxRetries: 1, retryBaseMs: 50, timeouts: { firstByteMs: 1500, idleMs: 3000, totalMs: 20000 }, breaker: { failureThreshold: 20, openMs: 2000 } }';
writeFileSync(cfg, `server: { port: 0 }
deployments:
  - { name: gpt, runtime: openai, endpoint: ${mock.url}, replicas: 2, fallbacks: [gpt-b], ${remote} }
  - { name: gpt-b, runtime: openai, endpoint: ${mock.url}, replicas: 1, ${remote} }
  - { name: stories, runtime: llama, model: ${model}, replicas: 1, engine: { contextSize: 4096, maxSequences: 8, threads: 1 } }
`);
const gw = await startProcess('node', [join(root, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/);
const client = new Agent({ connections: 256, keepAliveTimeout: 10_000 });
const json = { 'content-type': 'application/json' };

async function post(path, body, { abortAfterFirst = false } = {}) {
  const ac = new AbortController();
  try {
    const r = await request(`${gw.url}${path}`, { method: 'POST', headers: json, body: typeof body === 'string' ? body : JSON.stringify(body), dispatcher: client, signal: ac.signal });
    if (abortAfterFirst) {
      for await (const _ of r.body) {
        ac.abort();
        break;
      }
      return 'abandoned';
    }
    await r.body.dump();
    return r.statusCode < 300 ? '2xx' : r.statusCode < 500 ? '4xx' : '5xx';
  } catch (e) {
    return ac.signal.aborted ? 'abandoned' : `failed`;
  }
}

const chat = (stream) => ({ model: 'gpt', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 16, stream });
const mix = [
  [35, () => post('/v1/chat/completions', chat(false))],
  [20, () => post('/v1/chat/completions', chat(true))],
  [5, () => post('/v1/chat/completions', chat(true), { abortAfterFirst: true })],
  [10, () => post('/v1/messages', { model: 'gpt', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream: true })],
  [10, () => post('/v1/embeddings', { model: 'gpt', input: ['a', 'b'] })],
  [7, () => post('/v1/completions', { model: 'stories', prompt: 'Once upon a time', max_tokens: 48, stream: true })],
  [3, () => post('/v1/completions', { model: 'stories', prompt: 'The dog', max_tokens: 200, stream: true }, { abortAfterFirst: true })],
  [10, () => (Math.random() < 0.5 ? post('/v1/chat/completions', '{"model": "gpt", "messages": ') : post('/v1/chat/completions', { model: 'nope', messages: [] }))],
];
const totalWeight = mix.reduce((a, [w]) => a + w, 0);
function pick() {
  let x = Math.random() * totalWeight;
  for (const [w, f] of mix) if ((x -= w) < 0) return f;
  return mix[0][1];
}

const outcomes = new Map();
let inFlight = 0;
const traffic = setInterval(() => {
  if (inFlight > 512) return;
  inFlight++;
  void pick()().then((o) => {
    outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    inFlight--;
  });
}, 1000 / rate);

async function mockDefault(behavior) {
  await request(`${mockOrigin}/_mock/default`, { method: 'POST', headers: json, body: JSON.stringify(behavior), dispatcher: client }).then((r) => r.body.dump());
}
async function killHost() {
  const r = await request(`${gw.url}/admin/deployments/stories`, { dispatcher: client });
  const status = await r.body.json();
  for (const rep of status.replicas ?? []) if (rep.details?.pid) process.kill(rep.details.pid, 'SIGKILL');
}
const faults = [];
const faultCycle = () => {
  const at = (ms, f) => faults.push(setTimeout(() => { void f().catch(() => undefined); }, ms));
  at(10_000, () => mockDefault({ status: 500 }));
  at(13_000, () => mockDefault({}));
  at(25_000, () => mockDefault({ status: 429, retryAfterSeconds: 1 }));
  at(28_000, () => mockDefault({}));
  at(40_000, () => mockDefault({ latencyMs: 2500 }));
  at(42_000, () => mockDefault({}));
  at(50_000, killHost);
};
faultCycle();
const cycle = setInterval(faultCycle, 60_000);

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}
const samples = [];
const t0 = Date.now();
console.log(`soak — ${minutes} min at ${rate} req/s, faults every minute (500s, 429s, a hang, an engine host SIGKILL)`);
console.log('   min   RSS MiB   heap MiB   loop p99 ms   in flight   outcomes');
const sampler = setInterval(() => {
  void (async () => {
    const text = await (await request(`${gw.url}/metrics`, { dispatcher: client })).body.text();
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.child.pid}/status`, 'utf8'))?.[1]) / 1024;
    const heap = metric(text, 'inference_process_nodejs_heap_size_used_bytes') / 2 ** 20;
    const lag = metric(text, 'inference_process_nodejs_eventloop_lag_p99_seconds') * 1000;
    const min = (Date.now() - t0) / 60_000;
    samples.push({ min, rss, heap, lag });
    console.log(`${min.toFixed(2).padStart(6)} ${rss.toFixed(0).padStart(9)} ${heap.toFixed(0).padStart(10)} ${lag.toFixed(1).padStart(13)} ${String(inFlight).padStart(11)}   ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  })().catch((e) => console.error(`sample failed: ${e.message}`));
}, sampleEvery);

await new Promise((r) => setTimeout(r, minutes * 60_000));
clearInterval(traffic);
clearInterval(cycle);
clearInterval(sampler);
for (const f of faults) clearTimeout(f);
await new Promise((r) => setTimeout(r, 3000));

const q = Math.max(1, Math.floor(samples.length / 4));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const first = median(samples.slice(0, q).map((s) => s.rss));
const last = median(samples.slice(-q).map((s) => s.rss));
const n = samples.length;
const mx = samples.reduce((a, s) => a + s.min, 0) / n;
const my = samples.reduce((a, s) => a + s.rss, 0) / n;
const slope = samples.reduce((a, s) => a + (s.min - mx) * (s.rss - my), 0) / Math.max(1e-9, samples.reduce((a, s) => a + (s.min - mx) ** 2, 0));
console.log(`\n  RSS median first quarter ${first.toFixed(0)} MiB, last quarter ${last.toFixed(0)} MiB, slope ${slope.toFixed(2)} MiB/min`);
console.log(`  event-loop delay p99: median ${median(samples.map((s) => s.lag)).toFixed(1)} ms, worst ${Math.max(...samples.map((s) => s.lag)).toFixed(1)} ms`);
console.log(`  requests: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);

gw.child.kill('SIGKILL');
await mock.stop();
await client.close();
process.exit(0);
