// What tracing costs per request on the remote path: two gateways in front of
// one mock upstream, one with tracing off (the default) and one with it on
// through the standard OTEL_EXPORTER_OTLP_ENDPOINT (every request sampled,
// exported over OTLP/HTTP to a sink in this process that counts spans). Runs
// alternate off/on so drift on a shared machine hits both alike; the medians of
// the gateway process's CPU per request (all threads, GC included) and of max
// RPS are printed.
//   node test/bench/tracing-cost.mjs [--seconds 5] [--concurrency 64] [--rounds 3]
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, maxRps, startGatewayFor, startProcess } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);

function cpuSeconds(pid) {
  const f = `/proc/${pid}/stat`;
  if (!existsSync(f)) return Number.NaN;
  const fields = readFileSync(f, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// The OTLP sink: accepts exports and counts the spans in them (without keeping them).
let spans = 0;
let exports = 0;
const sink = createServer((req, res) => {
  let n = 0;
  req.on('data', (d) => { n += (d.toString().match(/"spanId"/g) ?? []).length; });
  req.on('end', () => {
    spans += n;
    exports++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise((r) => sink.listen(0, '127.0.0.1', r));
const sinkUrl = `http://127.0.0.1:${sink.address().port}`;

const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0'], /listening (\S+)/);
const off = await startGatewayFor(mock.url);
const on = await startGatewayFor(mock.url, { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_SERVICE_NAME: 'bench', OTEL_BSP_SCHEDULE_DELAY: '1000' });

async function measure(gw, body, stream) {
  const c0 = cpuSeconds(gw.child.pid);
  const r = await maxRps(gw.url, '/v1/chat/completions', body, { concurrency, seconds, stream });
  return { rps: r.rps, errors: r.errors, cpuUs: ((cpuSeconds(gw.child.pid) - c0) * 1e6) / (r.rps * seconds) };
}

const results = { 'non-streamed': { off: [], on: [] }, streamed: { off: [], on: [] } };
try {
  // Warm-up (JIT, connection pools), not recorded.
  const warm = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'warm up' }], max_tokens: 16 });
  for (const gw of [off, on]) await maxRps(gw.url, '/v1/chat/completions', warm, { concurrency, seconds: 2 });
  for (let round = 0; round < rounds; round++) {
    for (const stream of [false, true]) {
      const body = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });
      const r = results[stream ? 'streamed' : 'non-streamed'];
      // Alternate which goes first, so neither always runs on a warmer machine.
      const order = round % 2 === 0 ? [['off', off], ['on', on]] : [['on', on], ['off', off]];
      for (const [name, gw] of order) r[name].push(await measure(gw, body, stream));
    }
  }
  await new Promise((r) => setTimeout(r, 1500));
} finally {
  await on.stop();
  await off.stop();
  await mock.stop();
  sink.close();
}

console.log(`tracing cost — ${rounds} rounds of ${seconds}s per mode, closed loop at concurrency ${concurrency}; mock answers 16 tokens`);
for (const [mode, r] of Object.entries(results)) {
  const cOff = median(r.off.map((x) => x.cpuUs));
  const cOn = median(r.on.map((x) => x.cpuUs));
  console.log(`\n[${mode}]`);
  console.log(`  CPU per req (median)  off ${fmt(cOff, 0)} µs   on ${fmt(cOn, 0)} µs   cost of tracing ${fmt(cOn - cOff, 0)} µs (${fmt((cOn / cOff - 1) * 100, 1)} %)`);
  console.log(`  max RPS (median)      off ${fmt(median(r.off.map((x) => x.rps)), 0)}   on ${fmt(median(r.on.map((x) => x.rps)), 0)}   (errors ${r.off.reduce((a, x) => a + x.errors, 0)}/${r.on.reduce((a, x) => a + x.errors, 0)})`);
  console.log(`  runs (CPU µs/req)     off ${r.off.map((x) => fmt(x.cpuUs, 0)).join(', ')}   on ${r.on.map((x) => fmt(x.cpuUs, 0)).join(', ')}`);
}
console.log(`\nspans exported by the traced gateway: ${spans} in ${exports} exports`);
