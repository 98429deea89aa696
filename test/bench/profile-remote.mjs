// Where the remote path's CPU goes: the gateway and the floor proxy (floor-proxy.mjs)
// each run under V8's sampling profiler (--cpu-prof) in front of the same mock while
// a closed loop sends them the same requests; the profiles' self time is summed by
// where the code lives (our packages, Fastify, undici, Node's own http/net/stream, GC)
// and printed per request, side by side. Main-thread time only: GC work on helper
// threads is not in a CPU profile (gateway-overhead.mjs counts every thread).
//
// `--top N` also lists the gateway's N costliest functions (self time per request,
// with where they live), the detail behind the categories. `--baseline DIR` also
// profiles the gateway of another built checkout (an earlier commit) under the
// same load, in a third column: a before/after comparison by category. The
// sides are driven one after the other, in a rotated order on each pass.
//
//   node test/bench/profile-remote.mjs [--requests 20000] [--concurrency 64] [--stream] [--top 0] [--baseline DIR] [--passes 1]
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { checkBody, fmt, saveRaw, startMockAndGateway, startProcess } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    stream: { type: 'boolean', default: false },
    top: { type: 'string', default: '0' },
    baseline: { type: 'string' },
    passes: { type: 'string', default: '1' },
  },
});
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const stream = values.stream;
const body = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });

/** The category of a profile node, by the script it runs in. */
function category(node) {
  const { functionName, url } = node.callFrame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC (main thread)';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m !== null) {
    const pkg = m[1];
    if (pkg.startsWith('@inference/')) return pkg;
    if (['fastify', 'avvio', 'find-my-way', 'light-my-request', 'fast-json-stringify', 'fast-querystring', 'abstract-logging', 'toad-cache', 'process-warning', 'rfdc', 'secure-json-parse', 'fast-content-type-parse', '@fastify/error', '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'fast-decode-uri-component', 'safe-regex2', 'ret', 'light-my-request'].includes(pkg)) return 'fastify';
    if (pkg === 'pino' || pkg.startsWith('pino-') || pkg === 'sonic-boom' || pkg === 'thread-stream') return 'pino';
    return pkg;
  }
  if (url.startsWith('node:internal/http') || url.startsWith('node:_http') || url.startsWith('node:http')) return 'node: http';
  if (url.includes('net') || url.includes('stream') || url.includes('dns') || url.includes('socket')) return 'node: net/streams';
  if (url.startsWith('node:')) return `node: other (${url.replace(/^node:internal\//, '').split('/')[0]})`;
  const own = /\/(packages|apps)\/([^/]+)\//.exec(url);
  if (own !== null) return `@inference/${own[2]}`;
  return url.split('/').slice(-2).join('/');
}

/** µs on the monotonic clock V8's profiler stamps its samples with. */
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** A function's name and where it lives (file:line), for --top. */
function where(node) {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, '').replace(/^.*\/(packages|apps)\//, '$1/');
  return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
}

/** Self time per category and per function, in µs, from a .cpuprofile, counting only samples inside `windows`. */
function selfTimes(file, windows) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map();
  const fns = new Map();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (!windows.some((w) => t >= w.from && t <= w.to)) continue;
    const node = byId.get(p.samples[i]);
    const c = category(node);
    out.set(c, (out.get(c) ?? 0) + (p.timeDeltas[i] ?? 0));
    if (c !== 'idle') {
      const w = where(node);
      fns.set(w, (fns.get(w) ?? 0) + (p.timeDeltas[i] ?? 0));
    }
  }
  out.delete('idle');
  return { cats: out, fns };
}

async function drive(origin, total) {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  let next = 0;
  let errors = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) {
      try {
        const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        checkBody(text, stream);
      } catch {
        errors++;
      }
    }
  }));
  await pool.close();
  return errors;
}

const dirs = { gateway: mkdtempSync(join(tmpdir(), 'prof-gw-')), floor: mkdtempSync(join(tmpdir(), 'prof-floor-')), baseline: mkdtempSync(join(tmpdir(), 'prof-base-')) };
const { mockOrigin, mock, gw, stop, settings, cfg } = await startMockAndGateway({ nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dirs.gateway] });
const floor = await startProcess('node', ['--cpu-prof', '--cpu-prof-dir', dirs.floor, join(here, 'floor-proxy.mjs'), mockOrigin], /on (http:\/\/\S+)/);
const base = values.baseline === undefined ? undefined : await startProcess('node',
  ['--cpu-prof', '--cpu-prof-dir', dirs.baseline, join(values.baseline, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/);
const origins = { gateway: gw.url, floor: floor.url, ...(base === undefined ? {} : { baseline: base.url }) };
const names = Object.keys(origins);
// A warm-up pass each (JIT, pools), then the measured passes, each side's inside its time windows.
for (const n of names) await drive(origins[n], Math.min(2000, total));
const windows = Object.fromEntries(names.map((n) => [n, []]));
const errors = Object.fromEntries(names.map((n) => [n, 0]));
const passes = Number(values.passes);
for (let pass = 0; pass < passes; pass++) {
  for (let k = 0; k < names.length; k++) {
    const side = names[(k + pass) % names.length];
    const from = nowUs();
    errors[side] += await drive(origins[side], total);
    windows[side].push({ from, to: nowUs() });
  }
}
await new Promise((r) => { floor.child.once('exit', r); floor.child.kill('SIGINT'); });
if (base !== undefined) await base.stop();
await stop();
void mock;
const prof = (dir) => join(dir, readdirSync(dir).find((f) => f.endsWith('.cpuprofile')));
const profiles = Object.fromEntries(names.map((n) => [n, selfTimes(prof(dirs[n]), windows[n])]));
const sides = Object.fromEntries(names.map((n) => [n, profiles[n].cats]));
const cats = [...new Set(names.flatMap((n) => [...sides[n].keys()]))]
  .sort((a, b) => (sides.gateway.get(b) ?? 0) - (sides.gateway.get(a) ?? 0));
const requests = total * passes;
const mode = stream ? 'streamed' : 'non-streamed';
console.log(`remote-path CPU profile — ${total} ${mode} requests per side and pass, ${passes} pass(es), at concurrency ${concurrency}; main-thread self time per request (µs), by where the code lives`);
console.log(`gateway settings: ${settings}; baseline: ${values.baseline ?? 'none'}; errors ${names.map((n) => `${n} ${errors[n]}`).join(', ')}`);
const per = (side, c) => (sides[side].get(c) ?? 0) / requests;
const sum = (side) => [...sides[side].values()].reduce((a, b) => a + b, 0) / requests;
const row = (label, f) => `  ${label.padEnd(34)} ${names.map((n) => f(n).padStart(9)).join(' ')}`;
console.log(row('where', (n) => n));
for (const c of cats) {
  if (names.every((n) => per(n, c) < 0.5)) continue;
  console.log(row(c, (n) => fmt(per(n, c), 1)));
}
const ratios = names.filter((n) => n !== 'floor').map((n) => `${n}/floor ${fmt(sum(n) / sum('floor'))}x`).join('   ');
console.log(`${row('total', (n) => fmt(sum(n), 1))}   ${ratios}`);
const top = Number(values.top);
const topFns = [...profiles.gateway.fns].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, us]) => ({ fn, us: us / requests }));
if (top > 0) {
  console.log(`\n  the gateway's ${top} costliest functions (self time, µs per request):`);
  for (const f of topFns) console.log(`  ${fmt(f.us, 1).padStart(7)}  ${f.fn}`);
}
const table = Object.fromEntries(cats.map((c) => [c, Object.fromEntries(names.map((n) => [n, per(n, c)]))]));
const raw = { settings: { total, passes, concurrency, stream, gateway: settings, baseline: values.baseline }, errors, usPerRequest: table, ...(top > 0 ? { gatewayTopFunctions: topFns } : {}) };
console.log(`raw: ${saveRaw(`profile-remote-${mode}`, raw)}`);
