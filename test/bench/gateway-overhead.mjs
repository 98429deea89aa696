// Remote-path overhead: the same load straight at the mock upstream ("direct"),
// through the cheapest possible Node proxy (floor-proxy.mjs: node:http in, one
// JSON.parse, an undici Pool out) and through the gateway (one remote deployment
// backed by the same mock); optionally through Portkey's open-source gateway
// (@portkey-ai/gateway from npm) on the same mock. Non-streamed and streamed.
//
// Each round measures every side once per mode, the sides in a rotated order each
// round; the summary is the median and the spread (min..max) over the rounds, and
// the raw rounds are written to docs/bench-raw/gateway-overhead.json.
//
// Per side and round: max RPS (closed loop), the CPU the proxy process spends per
// request at that load (user + system of every thread, GC included, from /proc;
// and of its main thread alone, where the request's JavaScript runs),
// and p50/p99 latency at a fixed rate (open loop). A response counts only when its
// body checks (JSON with choices; a stream that ends with [DONE] and no error event).
//
// `--baseline DIR` adds a fourth side, the gateway of another built checkout (an
// earlier commit) on the same mock, for a before/after comparison in the same run.
//
// `--pin` (Linux, taskset): every proxy (floor, gateway, baseline, Portkey) runs on
// the last CPU, the mock and the load client on the others. Unpinned, the three
// processes share every core and a proxy's CPU per request moves with how the
// scheduler happens to interleave them (a starved process handles more per wakeup);
// pinned, the proxy under test has its core to itself and nothing else on it.
//
//   node test/bench/gateway-overhead.mjs [--rounds 3] [--seconds 3] [--concurrency 64]
//        [--rate 500] [--portkey] [--baseline DIR] [--pin]
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, fixedRate, fmtStats, interleaved, maxRps, saveRaw, startGatewayFor, startMockAndGateway, startProcess, stats } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    rate: { type: 'string', default: '500' },
    portkey: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    pin: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const rate = Number(values.rate);

const { mock, mockOrigin, gw, stop, settings } = await startMockAndGateway();
const floor = await startProcess('node', [join(here, 'floor-proxy.mjs'), mockOrigin], /on (http:\/\/\S+)/);
const baseline = values.baseline === undefined ? undefined : await startGatewayFor(mock.url, {}, values.baseline);
let portkey;
if (values.portkey) {
  const entry = join(root, 'test', 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  const port = 20000 + Math.floor(Math.random() * 20000);
  portkey = await startProcess('node', [entry, `--port=${port}`, '--headless'], /running at:[\s\S]*?(http:\/\/localhost:\d+)/, { NODE_ENV: 'production' });
}
// Portkey routes by headers: the provider and the upstream's base URL.
const portkeyHeaders = { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': mock.url, authorization: 'Bearer unused' };

const proxyCpu = cpus().length - 1;
/** Every thread of `pid` on the given CPUs. */
const pin = (pid, list) => execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
if (values.pin) {
  const rest = proxyCpu === 0 ? '0' : `0-${proxyCpu - 1}`;
  pin(process.pid, rest);
  pin(mock.child.pid, rest);
  for (const p of [floor, gw, baseline, portkey]) if (p !== undefined) pin(p.child.pid, String(proxyCpu));
}

const sides = {
  direct: { origin: mockOrigin, pid: mock.child.pid, headers: {} },
  floor: { origin: floor.url, pid: floor.child.pid, headers: {} },
  gateway: { origin: gw.url, pid: gw.child.pid, headers: {} },
  ...(baseline === undefined ? {} : { baseline: { origin: baseline.url, pid: baseline.child.pid, headers: {} } }),
  ...(portkey === undefined ? {} : { portkey: { origin: portkey.url.replace('localhost', '127.0.0.1'), pid: portkey.child.pid, headers: portkeyHeaders } }),
};
const chat = (stream) => JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });

async function measure(side, stream) {
  const s = sides[side];
  const body = chat(stream);
  let c0 = 0;
  let m0 = 0;
  const onStart = () => {
    c0 = cpuSeconds(s.pid);
    m0 = cpuSeconds(s.pid, true);
  };
  const max = await maxRps(s.origin, '/v1/chat/completions', body, { concurrency, seconds, stream, headers: s.headers, onStart });
  const cpu = cpuSeconds(s.pid) - c0;
  const cpuMain = cpuSeconds(s.pid, true) - m0;
  const r0 = cpuSeconds(s.pid);
  const lat = await fixedRate(s.origin, '/v1/chat/completions', body, { rps: rate, seconds, stream, headers: s.headers });
  // At a fixed rate the process is not saturated: its CPU per request moves less with what else the machine runs.
  const cpuAtRate = ((cpuSeconds(s.pid) - r0) * 1e6) / (lat.n + lat.errors);
  // CPU over the measured window only (after the warm-up), over every request answered in it.
  const served = max.n + max.errors;
  return {
    rps: max.rps, errors: max.errors, cpuUsPerReq: (cpu * 1e6) / served, cpuMainUsPerReq: (cpuMain * 1e6) / served, cpuUsPerReqAtRate: cpuAtRate, p50: lat.p50, p99: lat.p99, ttfbP50: lat.ttfbP50,
    latErrors: lat.errors,
  };
}

const results = {};
try {
  for (const stream of [false, true]) {
    // Portkey 1.15 answers every streamed request with 500 on Node 20 (a TypeError inside it): non-streamed only.
    const names = Object.keys(sides).filter((n) => !(stream && n === 'portkey'));
    results[stream ? 'streamed' : 'non-streamed'] = await interleaved(names, rounds, (side) => measure(side, stream));
  }
} finally {
  if (portkey !== undefined) portkey.child.kill('SIGKILL');
  if (baseline !== undefined) baseline.child.kill('SIGKILL');
  floor.child.kill('SIGKILL');
  await stop();
}

console.log(`remote-path overhead — ${rounds} rounds, sides interleaved in rotated order; per side and round: ${seconds}s closed loop at concurrency ${concurrency}, then ${seconds}s open loop at ${rate} RPS; mock answers 16 tokens`);
console.log(`gateway settings: ${settings}`);
if (values.pin) console.log(`pinned: every proxy on CPU ${proxyCpu}, the mock and the load client on the others`);
console.log('figures: median (min..max) over the rounds; ratios are taken within each round, then summarised');
const perRound = (rows, f) => rows.map((r, i) => f(r, i));
for (const [mode, r] of Object.entries(results)) {
  console.log(`\n[${mode}]`);
  for (const [side, rows] of Object.entries(r)) {
    const cpu = side === 'direct' ? '' : `   CPU/req ${fmtStats(stats(rows.map((x) => x.cpuUsPerReq)), 0)} µs (main thread ${fmtStats(stats(rows.map((x) => x.cpuMainUsPerReq)), 0)}; at ${rate} RPS ${fmtStats(stats(rows.map((x) => x.cpuUsPerReqAtRate)), 0)})`;
    const errs = rows.reduce((a, x) => a + x.errors + x.latErrors, 0);
    console.log(`  ${side.padEnd(8)} max RPS ${fmtStats(stats(rows.map((x) => x.rps)), 0)}${cpu}   @${rate} RPS p50 ${fmtStats(stats(rows.map((x) => x.p50)))} ms p99 ${fmtStats(stats(rows.map((x) => x.p99)))} ms   (errors ${errs})`);
  }
  const gwRows = r.gateway;
  const ratio = (a, b, f) => stats(perRound(a, (x, i) => f(x) / f(b[i])));
  const diff = (a, b, f) => stats(perRound(a, (x, i) => f(x) - f(b[i])));
  console.log(`  gateway/floor   CPU per request ${fmtStats(ratio(gwRows, r.floor, (x) => x.cpuUsPerReq))}x (target <= 1.25)   max RPS ${fmtStats(ratio(gwRows, r.floor, (x) => x.rps), 3)}`);
  console.log(`  gateway/floor   CPU per request, main threads ${fmtStats(ratio(gwRows, r.floor, (x) => x.cpuMainUsPerReq))}x`);
  console.log(`  gateway/floor   CPU per request at ${rate} RPS ${fmtStats(ratio(gwRows, r.floor, (x) => x.cpuUsPerReqAtRate))}x`);
  console.log(`  gateway/direct  max RPS ${fmtStats(ratio(gwRows, r.direct, (x) => x.rps), 3)}`);
  console.log(`  added by the gateway @${rate} RPS: p50 ${fmtStats(diff(gwRows, r.direct, (x) => x.p50), 3)} ms (target <= 0.3)   p99 ${fmtStats(diff(gwRows, r.direct, (x) => x.p99), 3)} ms (target <= 1)   TTFB p50 ${fmtStats(diff(gwRows, r.direct, (x) => x.ttfbP50), 3)} ms`);
  console.log(`  added by the floor proxy @${rate} RPS: p50 ${fmtStats(diff(r.floor, r.direct, (x) => x.p50), 3)} ms   p99 ${fmtStats(diff(r.floor, r.direct, (x) => x.p99), 3)} ms`);
  if (r.baseline !== undefined) {
    const cpu = (x) => x.cpuUsPerReq;
    console.log(`  baseline/floor  CPU per request ${fmtStats(ratio(r.baseline, r.floor, cpu))}x   gateway/baseline ${fmtStats(ratio(gwRows, r.baseline, cpu))}x`);
    const cpuAt = (x) => x.cpuUsPerReqAtRate;
    console.log(`  at ${rate} RPS     baseline/floor ${fmtStats(ratio(r.baseline, r.floor, cpuAt))}x   gateway/baseline ${fmtStats(ratio(gwRows, r.baseline, cpuAt))}x`);
    const added = (f) => fmtStats(diff(r.baseline, r.direct, f), 3);
    console.log(`  added by the baseline @${rate} RPS: p50 ${added((x) => x.p50)} ms   p99 ${added((x) => x.p99)} ms`);
  }
  if (r.portkey !== undefined) {
    console.log(`  gateway/portkey max RPS ${fmtStats(ratio(gwRows, r.portkey, (x) => x.rps))}x   portkey added p50 ${fmtStats(diff(r.portkey, r.direct, (x) => x.p50), 3)} ms`);
  }
}
const runSettings = { rounds, seconds, concurrency, rate, gateway: settings, portkey: values.portkey, baseline: values.baseline, pin: values.pin };
const file = saveRaw('gateway-overhead', { settings: runSettings, results });
console.log(`\nraw rounds: ${file}`);
