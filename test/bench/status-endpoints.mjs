// Cost of the status page's endpoints: GET / (the page), GET /admin/status (the
// JSON it polls every second) and GET /metrics, with N deployments of 2 remote
// replicas each after some traffic and failed requests. Prints p50/p99 latency and
// response size. Usage (after setup): node test/bench/status-endpoints.mjs [N]
import { parseConfig, serve } from '@inference/gateway';
import { startMockUpstream } from '@inference/mock-upstream';
const mock = await startMockUpstream({ port: 0 });
const N = Number(process.argv[2] ?? 20);
const deployments = Array.from({ length: N }, (_, i) => ({ name: `d${i}`, runtime: 'openai', endpoint: mock.url, replicas: 2, price: { inputPerMTok: 1, outputPerMTok: 2 }, budget: { window: '1h', maxCostUsd: 100 } }));
const server = await serve(parseConfig({ server: { port: 0 }, deployments }));
// some traffic and errors
for (let i = 0; i < 200; i++) await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: `d${i % N}`, messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }) }).then((r) => r.text());
mock.setDefault({ status: 400 });
for (let i = 0; i < 60; i++) await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: `d${i % N}`, messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }) }).then((r) => r.text());
mock.setDefault({});
async function time(path, n = 300) {
  const ts = []; let size = 0;
  for (let i = 0; i < n; i++) { const t = performance.now(); const b = await (await fetch(server.url + path)).arrayBuffer(); ts.push(performance.now() - t); size = b.byteLength; }
  ts.sort((a, b) => a - b);
  return `${path}: p50 ${ts[Math.floor(n * 0.5)].toFixed(2)} ms, p99 ${ts[Math.floor(n * 0.99)].toFixed(2)} ms, ${size} bytes`;
}
console.log(`${N} deployments x 2 replicas, 260 requests (60 failed)`);
console.log(await time('/'));
console.log(await time('/admin/status'));
console.log(await time('/metrics'));
await server.close(); await mock.close();
