#!/usr/bin/env node
// Idle concurrent streams: how much memory the gateway needs to hold N open
// streamed chat completions whose upstream has sent the first chunk and then
// pauses (a slow model, a long tool call). The mock upstream speaks HTTP/2 over
// TLS, as real providers do, so the gateway's upstream side is multiplexed; each
// client holds its own HTTP/1.1 connection. Prints the gateway's RSS before and
// with all streams open, and per stream.
//
//   node test/bench/idle-streams.mjs [--streams 10000] [--hold 5]
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startProcess } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { streams: { type: 'string', default: '10000' }, hold: { type: 'string', default: '5' } } });
const streams = Number(values.streams);
const holdSeconds = Number(values.hold);
const cert = join(root, 'packages', 'mock-upstream', 'fixtures', 'localhost-cert.pem');

function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0', '--tls'], /listening (\S+)/);
const mockOrigin = new URL(mock.url).origin;
const tlsAgent = new Agent({ connect: { ca: readFileSync(cert) } });

const dir = mkdtempSync(join(tmpdir(), 'bench-idle-'));
const cfg = join(dir, 'config.yaml');
writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - name: slow\n    runtime: openai\n    endpoint: ${mock.url}\n    replicas: 1\n    remote: { maxConcurrent: ${streams + 100}, maxQueue: ${streams + 100}, timeouts: { idleMs: 900000, totalMs: 900000 } }\n`);
const gw = await startProcess('node', [join(root, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/, { NODE_EXTRA_CA_CERTS: cert });
const gwPid = gw.child.pid;

const body = JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'Tell me a long story' }], stream: true });
const client = new Agent({ connections: streams + 10, pipelining: 1, keepAliveTimeout: 600_000, bodyTimeout: 0, headersTimeout: 0 });
async function inFlight() {
  const text = await (await request(`${gw.url}/metrics`, { dispatcher: client })).body.text();
  return text.split('\n').filter((l) => l.startsWith('inference_gateway_in_flight_requests')).map((l) => Number(l.split(' ').pop())).reduce((a, b) => a + b, 0);
}

// Warm up (JIT, pools) with short, complete streams before the baseline.
await request(`${mockOrigin}/_mock/default`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, dispatcher: tlsAgent });
for (let i = 0; i < 200; i++) {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: client });
  await r.body.text();
}
// From now on every stream sends its first event at once and the next one ten minutes later.
await request(`${mockOrigin}/_mock/default`, { method: 'POST', body: JSON.stringify({ chunkDelayMs: 600_000 }), headers: { 'content-type': 'application/json' }, dispatcher: tlsAgent });
await new Promise((r) => setTimeout(r, 1000));
const before = rssMiB(gwPid);

let failed = 0;
let done = false;
const held = [];
const t0 = performance.now();
for (let i = 0; i < streams; i++) {
  held.push(request(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: client }).then(
    (r) => r,
    (e) => { if (failed++ === 0 && !done) console.error(`first failure: ${e.message}`); return undefined; },
  ));
}
// The gateway holds them all once its in-flight gauge says so (responses wait for the upstream's next token).
let open = 0;
const deadline = Date.now() + 300_000;
while ((open = await inFlight()) < streams - failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
const openedIn = (performance.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, holdSeconds * 1000));
const during = rssMiB(gwPid);
open = await inFlight();

console.log(`idle streams — ${streams} streamed chat completions held open through the gateway (upstream: HTTP/2 mock, first chunk then a pause)`);
console.log(`  held          ${open} streams in flight at the gateway after ${openedIn.toFixed(1)} s (${failed} failed)`);
console.log(`  gateway RSS   before ${before.toFixed(0)} MiB   with streams open ${during.toFixed(0)} MiB   added ${(during - before).toFixed(0)} MiB`);
console.log(`  per stream    ${(((during - before) * 1024) / Math.max(1, open)).toFixed(1)} KiB   (target: ${streams} streams in < 1024 MiB total: ${during < 1024 ? 'met' : 'not met'})`);

done = true;
// The gateway would drain the held streams on SIGTERM; this run is over.
gw.child.kill('SIGKILL');
await mock.stop();
await client.destroy().catch(() => undefined);
process.exit(0);
