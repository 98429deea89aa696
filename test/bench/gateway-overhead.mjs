// Gateway overhead: the same load straight at the mock upstream and through the
// gateway (a remote deployment backed by that mock), non-streamed and streamed.
// The same load through Portkey's open-source gateway (@portkey-ai/gateway, npm)
// pointed at the same mock, for comparison. Prints max RPS (closed loop), p50/p99
// at a fixed 500 RPS, and the ratios.
//   node test/bench/gateway-overhead.mjs [--seconds 5] [--concurrency 64] [--rate 500] [--no-portkey]
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fixedRate, fmt, maxRps, startMockAndGateway, startProcess } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '64' }, rate: { type: 'string', default: '500' }, 'no-portkey': { type: 'boolean' } } });
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const rate = Number(values.rate);

const { mock, mockOrigin, gw, stop } = await startMockAndGateway();
const portkeyEntry = join(root, 'test', 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
const portkeyPort = 20000 + Math.floor(Math.random() * 20000);
const portkey = values['no-portkey'] ? undefined : await startProcess('node', [portkeyEntry, `--port=${portkeyPort}`, '--headless'], /running at:[\s\S]*?(http:\/\/localhost:\d+)/, { NODE_ENV: 'production' });
// Portkey routes by headers: the provider and the upstream's base URL.
const portkeyHeaders = { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': mock.url, authorization: 'Bearer unused' };

const chat = (stream) => JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });
const rows = [];
try {
  for (const stream of [false, true]) {
    const body = chat(stream);
    const direct = await maxRps(mockOrigin, '/v1/chat/completions', body, { concurrency, seconds, stream });
    const via = await maxRps(gw.url, '/v1/chat/completions', body, { concurrency, seconds, stream });
    const directLat = await fixedRate(mockOrigin, '/v1/chat/completions', body, { rps: rate, seconds, stream });
    const viaLat = await fixedRate(gw.url, '/v1/chat/completions', body, { rps: rate, seconds, stream });
    // Portkey 1.15 answers every streamed request here with 500 (a TypeError inside it on Node 20): streamed rows report that.
    const pk = portkey === undefined || stream ? undefined : {
      max: await maxRps(portkey.url.replace('localhost', '127.0.0.1'), '/v1/chat/completions', body, { concurrency, seconds, stream, headers: portkeyHeaders }),
      lat: await fixedRate(portkey.url.replace('localhost', '127.0.0.1'), '/v1/chat/completions', body, { rps: rate, seconds, stream, headers: portkeyHeaders }),
    };
    rows.push({ mode: stream ? 'streamed' : 'non-streamed', direct, via, directLat, viaLat, pk });
  }
} finally {
  if (portkey !== undefined) portkey.child.kill('SIGKILL');
  await stop();
}

console.log(`gateway overhead — ${seconds}s per run, closed loop at concurrency ${concurrency}, latency at ${rate} RPS open loop; mock answers 16 tokens`);
for (const r of rows) {
  console.log(`\n[${r.mode}]`);
  console.log(`  max RPS      direct ${fmt(r.direct.rps, 0)}   via gateway ${fmt(r.via.rps, 0)}   ratio ${fmt(r.via.rps / r.direct.rps, 3)}   (errors ${r.direct.errors}/${r.via.errors})`);
  console.log(`  @${rate} RPS    direct p50 ${fmt(r.directLat.p50)} ms p99 ${fmt(r.directLat.p99)} ms   via p50 ${fmt(r.viaLat.p50)} ms p99 ${fmt(r.viaLat.p99)} ms   (errors ${r.directLat.errors}/${r.viaLat.errors})`);
  console.log(`  added p50    ${fmt(r.viaLat.p50 - r.directLat.p50, 3)} ms   added p99 ${fmt(r.viaLat.p99 - r.directLat.p99, 3)} ms   added TTFB p50 ${fmt(r.viaLat.ttfbP50 - r.directLat.ttfbP50, 3)} ms`);
  if (portkey !== undefined && r.pk === undefined) console.log('  portkey      streamed requests fail inside Portkey on this Node (500 "immutable" TypeError): no comparison');
  if (r.pk !== undefined) {
    console.log(`  portkey      max RPS ${fmt(r.pk.max.rps, 0)}   ratio to direct ${fmt(r.pk.max.rps / r.direct.rps, 3)}   (errors ${r.pk.max.errors})   @${rate} RPS p50 ${fmt(r.pk.lat.p50)} ms, added ${fmt(r.pk.lat.p50 - r.directLat.p50, 3)} ms (errors ${r.pk.lat.errors})`);
    console.log(`  ours/portkey max RPS ${fmt(r.via.rps / r.pk.max.rps, 2)}x`);
  }
}
