#!/usr/bin/env node
// Routing policies on a shared-prefix workload: the gateway serving a GGUF model
// on N local replicas (1 thread each), started once per policy (round_robin,
// least_load, prefix) with the same request sequence, measured in one run.
//
// Workload: G groups, each with its own long "system prompt" (~300 tokens of the
// model's kind of text); every request is one group's system prompt plus a short
// user suffix of its own; groups are interleaved in a fixed shuffled order, run as
// a closed loop at concurrency C. Engines cache prompt prefixes per sequence slot
// (maxSequences slots per replica), so a replica that keeps seeing the same groups
// reuses their prefixes and one that sees every group evicts them.
//
// Prints per policy: TTFT p50/p90, completion tokens/s, cache-hit ratio (prompt
// tokens reused / prompt tokens, from each response's usage), requests per
// replica and routing outcomes (from /metrics); then the ratios against
// least_load, and what the routing key costs on the request path. The shared share is
// what a perfect cache could reuse: per group, the prompt tokens every request of it
// shares (the longest cached prefix seen in the group, over all policies), summed over
// the requests. Requests are then counted as warm (reused at least 90% of it), partial,
// or cold (reused under a tenth of it). With --rounds N
// each policy runs N times, in a rotated order each round (a machine shared with
// other work slows whichever policy runs at the time), and the rounds are pooled;
// the per-round median and range (min..max) of cache hit, TTFT p50 and tokens/s follow.
//
//   node test/bench/routing.mjs [--replicas 2] [--groups 8] [--requests 192]
//        [--concurrency 8] [--max-tokens 16] [--slots 8] [--slack N] [--rounds 2]
//        [--policies round_robin,least_load,prefix] [--model models/stories260K.gguf]
//        [--before-addon PATH] [--raw NAME]
//
// --slack N sets routing.prefixLoadSlack for every side; without it the deployments
// keep the default routing (docs/config.md, "Routing"). A side `prefix:slackN` runs the
// prefix policy with prefixLoadSlack N set explicitly, beside the others in the same
// rotation (e.g. --policies prefix,prefix:slack4,least_load).
//
// --before-addon: each policy also runs as `<policy>@before` on another build of the
// addon (INFERENCE_NATIVE_ADDON for the engine hosts), interleaved with this build's.
//
// Raw rounds (every request's group, prompt and cached tokens, TTFT): docs/bench-raw/routing.json.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { loadavg } from 'node:os';
import { fmt, percentile, root, saveRaw, startLocalGateway } from './lib.mjs';

const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '2' },
    groups: { type: 'string', default: '8' },
    requests: { type: 'string', default: '192' },
    concurrency: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '16' },
    slots: { type: 'string', default: '8' },
    slack: { type: 'string' },
    policies: { type: 'string', default: 'round_robin,least_load,prefix' },
    rounds: { type: 'string', default: '2' },
    model: { type: 'string', default: join(root, 'models', 'stories260K.gguf') },
    'before-addon': { type: 'string' },
    raw: { type: 'string' },
  },
});
const replicas = Number(values.replicas);
const groups = Number(values.groups);
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const maxTokens = Number(values['max-tokens']);
const slots = Number(values.slots);
const slack = values.slack === undefined ? undefined : Number(values.slack);
const beforeAddon = values['before-addon'];
// Sides: each policy on this build, and with --before-addon on the other build too.
const policies = values.policies.split(',').flatMap((p) => (beforeAddon === undefined ? [p] : [p, `${p}@before`]));
const rounds = Number(values.rounds);

// A deterministic generator, so every policy sees the same prompts in the same order.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const WORDS = ['little', 'girl', 'named', 'Lily', 'saw', 'big', 'red', 'ball', 'in', 'the', 'park', 'she', 'wanted', 'to', 'play', 'with', 'her', 'friend',
  'Tom', 'dog', 'happy', 'sun', 'tree', 'bird', 'sang', 'song', 'mom', 'said', 'went', 'home', 'and', 'they', 'were', 'very', 'day', 'one', 'a', 'cat'];
function text(r, words) {
  const out = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]);
  return `${out.join(' ')}.`;
}
const r = rng(42);
const systems = Array.from({ length: groups }, (_, g) => `Story ${g}. Once upon a time, ${text(r, 230)}`);
const order = Array.from({ length: total }, (_, i) => i % groups);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(r() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const workload = order.map((g, i) => ({ group: g, messages: [{ role: 'system', content: systems[g] }, { role: 'user', content: `Then ${text(r, 4)} (${i})` }] }));

/** A side's routing: `policy[:slackN]`; the slack given by the side, else --slack, else the default. */
function routingOf(name) {
  const [policy, variant] = name.split(':');
  const m = variant === undefined ? undefined : /^slack(\d+)$/.exec(variant);
  if (variant !== undefined && m === null) throw new Error(`unknown side variant '${variant}' (expected slackN)`);
  const s = m?.[1] !== undefined ? Number(m[1]) : slack;
  return s === undefined ? { policy } : { policy, prefixLoadSlack: s };
}

async function startGateway(side) {
  const [name, build] = side.split('@');
  const env = build === 'before' && beforeAddon !== undefined ? { INFERENCE_NATIVE_ADDON: beforeAddon } : {};
  return startLocalGateway([{
    name: 'stories', runtime: 'llama', model: values.model, replicas,
    engine: { contextSize: 512 * slots, maxSequences: slots, threads: 1 },
    routing: routingOf(name),
  }], { env });
}

/** One streamed chat completion: TTFT, completion tokens, prompt and cached prompt tokens. */
async function one(pool, messages) {
  const t0 = performance.now();
  const res = await pool.request({
    path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stories', messages, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`);
  let ttft;
  let usage;
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
      if (m.choices?.[0]?.delta?.content) ttft ??= performance.now() - t0;
      if (m.usage) usage = m.usage;
    }
  }
  if (!done) throw new Error('stream ended without [DONE]');
  return {
    ttft: ttft ?? performance.now() - t0,
    completion: usage?.completion_tokens ?? 0,
    prompt: usage?.prompt_tokens ?? 0,
    cached: usage?.prompt_tokens_details?.cached_tokens ?? 0,
  };
}

function metricLines(body, name) {
  const out = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    out.push({ labels: line.slice(name.length + 1, line.indexOf('}')), value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

async function measure(policy) {
  const gw = await startGateway(policy);
  try {
    const pool = new Pool(gw.origin, { connections: concurrency, pipelining: 1 });
    // Warm-up with text no group shares: loads pages, leaves no useful cache.
    await Promise.all(Array.from({ length: replicas * 2 }, (_, i) => one(pool, [{ role: 'user', content: `Warm up ${i}` }])));
    const ttfts = [];
    const perRequest = [];
    let completion = 0;
    let prompt = 0;
    let cached = 0;
    let errors = 0;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < workload.length) {
        const w = workload[next++];
        try {
          const x = await one(pool, w.messages);
          ttfts.push(x.ttft);
          perRequest.push({ group: w.group, prompt: x.prompt, cached: x.cached, ttft: Math.round(x.ttft * 10) / 10 });
          completion += x.completion;
          prompt += x.prompt;
          cached += x.cached;
        } catch (e) {
          if (errors++ === 0) console.error(`  first error: ${e.message}`);
        }
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    await pool.close();
    const metrics = await (await fetch(`${gw.origin}/metrics`)).text();
    const perReplica = metricLines(metrics, 'inference_replica_requests_total').map((l) => l.value).sort((a, b) => b - a);
    const outcomes = Object.fromEntries(metricLines(metrics, 'inference_routing_decisions_total').map((l) => [/outcome="([^"]+)"/.exec(l.labels)?.[1], l.value]));
    return { ttfts, perRequest, completion, prompt, cached, errors, elapsed, perReplica, outcomes };
  } finally {
    await gw.stop();
  }
}

function pooled(runs) {
  const ttfts = runs.flatMap((x) => x.ttfts).sort((a, b) => a - b);
  const sum = (f) => runs.reduce((a, x) => a + f(x), 0);
  const elapsed = sum((x) => x.elapsed);
  const outcomes = {};
  for (const x of runs) for (const [k, v] of Object.entries(x.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
  const prompt = sum((x) => x.prompt);
  return {
    ttftP50: percentile(ttfts, 50), ttftP90: percentile(ttfts, 90), tps: sum((x) => x.completion) / elapsed, rps: ttfts.length / elapsed,
    hit: prompt === 0 ? 0 : sum((x) => x.cached) / prompt, requests: ttfts.length, errors: sum((x) => x.errors), elapsed, outcomes,
    perReplica: runs.map((x) => `[${x.perReplica.join(', ')}]`).join(' '),
  };
}

/** Median and range over the rounds of one side. */
function perRound(rs) {
  const stat = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    return { median: percentile(v, 50), min: v[0], max: v[v.length - 1] };
  };
  return {
    hit: stat(rs.map((x) => (x.prompt === 0 ? 0 : x.cached / x.prompt))),
    ttftP50: stat(rs.map((x) => percentile([...x.ttfts].sort((a, b) => a - b), 50))),
    tps: stat(rs.map((x) => x.completion / x.elapsed)),
  };
}

/** What the routing key and the prefix pick cost on the request path (µs per call). */
async function keyCost() {
  const { prefixKey, route, routingState } = await import(join(root, 'packages', 'actors', 'dist', 'index.js'));
  const reqs = workload.map((w) => ({ kind: 'chat', model: 'stories', messages: w.messages, sampling: { stop: [], n: 1 }, stream: true, includeUsage: false, passthrough: {} }));
  const n = 200_000;
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += prefixKey(reqs[i % reqs.length]).length;
  let t = performance.now();
  for (let i = 0; i < n; i++) sink += prefixKey(reqs[i % reqs.length]).length;
  const keyUs = ((performance.now() - t) * 1000) / n;
  const entries = Array.from({ length: replicas }, (_, i) => ({
    id: `r${i}`, deployment: 'stories', state: 'serving', runner: { healthy: () => true, load: () => ({ outstanding: i, queued: 0, capacity: slots }) },
  }));
  const st = routingState({ policy: 'prefix', prefixLoadSlack: slack ?? 4, prefixFreeSlot: slack === undefined });
  t = performance.now();
  for (let i = 0; i < n; i++) sink += route(st, entries, () => prefixKey(reqs[i % reqs.length]), i).depth;
  const routeUs = ((performance.now() - t) * 1000) / n;
  const chars = reqs[0].messages.reduce((a, m) => a + m.content.length, 0);
  return { keyUs, routeUs, chars, blocks: prefixKey(reqs[0]).length, sink };
}

console.log(`routing policies — ${values.model.split('/').pop()}, ${replicas} replicas x 1 thread, ${slots} slots each, ${groups} prefix groups, ${total} requests x ${rounds} round(s), concurrency ${concurrency}, ${maxTokens} tokens per request, routing ${slack === undefined ? 'default (prefixLoadSlack 4, prefixFreeSlot)' : `prefixLoadSlack ${slack}`}, streamed /v1/chat/completions`);
const cost = await keyCost();
console.log(`  routing key: ${fmt(cost.keyUs, 2)} µs per request (${cost.chars} chars, ${cost.blocks} blocks); key + prefix pick + index update: ${fmt(cost.routeUs, 2)} µs`);
const runs = Object.fromEntries(policies.map((p) => [p, []]));
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < policies.length; k++) {
    const p = policies[(k + round) % policies.length];
    runs[p].push(await measure(p));
  }
}
// Tokens every request of a group shares: the longest prefix any request of it reused.
const sharedOf = new Map();
for (const rs of Object.values(runs)) {
  for (const run of rs) for (const q of run.perRequest) sharedOf.set(q.group, Math.max(sharedOf.get(q.group) ?? 0, q.cached));
}
function classify(run) {
  let warm = 0;
  let partial = 0;
  let cold = 0;
  let shared = 0;
  let prompt = 0;
  for (const q of run.perRequest) {
    const l = sharedOf.get(q.group) ?? 0;
    shared += Math.min(l, q.prompt);
    prompt += q.prompt;
    if (q.cached * 10 >= l * 9) warm++;
    else if (q.cached * 10 < l) cold++;
    else partial++;
  }
  return { warm, partial, cold, share: prompt === 0 ? 0 : shared / prompt };
}
const results = {};
for (const p of policies) {
  const x = pooled(runs[p]);
  results[p] = x;
  const outcomes = Object.entries(x.outcomes).map(([k, v]) => `${k} ${v}`).join(', ');
  const hits = runs[p].map((r) => (r.prompt === 0 ? 0 : r.cached / r.prompt));
  const c = runs[p].map(classify);
  const sum = (f) => c.reduce((a, y) => a + f(y), 0);
  x.classes = c;
  x.hitPerRound = hits;
  console.log(`  ${p.padEnd(12)} TTFT p50 ${fmt(x.ttftP50, 1).padStart(7)} ms p90 ${fmt(x.ttftP90, 1).padStart(7)} ms   ${fmt(x.tps, 0).padStart(5)} tok/s   ${fmt(x.rps, 1)} req/s   cache hit ${fmt(x.hit * 100, 1).padStart(5)}%   per replica ${x.perReplica}   decisions: ${outcomes}   (${x.requests} requests, ${x.errors} errors, ${fmt(x.elapsed, 1)} s)`);
  const share = `shared share ${fmt((sum((y) => y.share) / c.length) * 100, 1)}%`;
  const kinds = `requests warm ${sum((y) => y.warm)}, partial ${sum((y) => y.partial)}, cold ${sum((y) => y.cold)}`;
  console.log(`  ${''.padEnd(12)} cache hit per round ${hits.map((h) => `${fmt(h * 100, 1)}%`).join(' ')}   ${share}   ${kinds}`);
  x.perRound = perRound(runs[p]);
  const r = x.perRound;
  const spread = (v, d, k = 1) => `${fmt(v.median * k, d)} (${fmt(v.min * k, d)}..${fmt(v.max * k, d)})`;
  console.log(`  ${''.padEnd(12)} rounds median (min..max): cache hit ${spread(r.hit, 1, 100)}%   TTFT p50 ${spread(r.ttftP50, 1)} ms   tok/s ${spread(r.tps, 0)}`);
}
const base = results.least_load;
if (base !== undefined) {
  console.log('\n  ratios vs least_load (TTFT: lower is better; tokens/s and cache hit: higher is better)');
  for (const p of policies) {
    const x = results[p];
    console.log(`  ${p.padEnd(12)} TTFT p50 ${fmt(x.ttftP50 / base.ttftP50)}x   p90 ${fmt(x.ttftP90 / base.ttftP90)}x   tokens/s ${fmt(x.tps / base.tps)}x   cache hit ${fmt(x.hit / base.hit)}x`);
  }
}
const summary = Object.fromEntries(Object.entries(results).map(([p, x]) => [p, { ...x }]));
const settings = { replicas, groups, total, concurrency, maxTokens, slots, slack: slack ?? 'default', policies, rounds, model: values.model.split('/').pop(), beforeAddon };
console.log(`\n  load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const rawName = values.raw ?? `routing${slack === undefined ? '' : `-slack${slack}`}${beforeAddon === undefined ? '' : '-before-after'}`;
console.log(`raw rounds: ${saveRaw(rawName, { settings, summary, rounds: runs })}`);
