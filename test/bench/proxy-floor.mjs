// Where the gateway stands between the mock hit directly and the cheapest
// possible Node proxy (floor-proxy.mjs) on the same machine, in one run: max RPS
// of each (closed loop) and, on Linux, the CPU each proxy process spends per
// request (all its threads, GC included). On a small machine the load generator,
// the proxy and the mock share the cores, so even the floor proxy stays well
// under the direct RPS; the gap between the floor and the gateway is what the
// gateway's own work costs.
//   node test/bench/proxy-floor.mjs [--seconds 5] [--concurrency 64]
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, maxRps, startMockAndGateway, startProcess } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '64' } } });
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

/** CPU seconds a process has used (user + system, every thread), or NaN off Linux. */
function cpuSeconds(pid) {
  const f = `/proc/${pid}/stat`;
  if (!existsSync(f)) return Number.NaN;
  const fields = readFileSync(f, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measure(origin, body, stream, pid) {
  const c0 = pid === undefined ? 0 : cpuSeconds(pid);
  const r = await maxRps(origin, '/v1/chat/completions', body, { concurrency, seconds, stream });
  const cpu = pid === undefined ? Number.NaN : cpuSeconds(pid) - c0;
  return { ...r, cpuUsPerReq: (cpu * 1e6) / (r.rps * seconds) };
}

const { mockOrigin, gw, stop } = await startMockAndGateway();
const floor = await startProcess('node', [join(here, 'floor-proxy.mjs'), mockOrigin], /on (http:\/\/\S+)/);

const rows = [];
try {
  for (const stream of [false, true]) {
    const body = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });
    const direct = await measure(mockOrigin, body, stream);
    const viaFloor = await measure(floor.url, body, stream, floor.child.pid);
    const viaGateway = await measure(gw.url, body, stream, gw.child.pid);
    rows.push({ mode: stream ? 'streamed' : 'non-streamed', direct, viaFloor, viaGateway });
  }
} finally {
  floor.child.kill('SIGKILL');
  await stop();
}

console.log(`proxy floor — ${seconds}s per run, closed loop at concurrency ${concurrency}; mock answers 16 tokens`);
for (const r of rows) {
  console.log(`\n[${r.mode}]`);
  console.log(`  max RPS      direct ${fmt(r.direct.rps, 0)}   floor proxy ${fmt(r.viaFloor.rps, 0)}   gateway ${fmt(r.viaGateway.rps, 0)}   (errors ${r.direct.errors}/${r.viaFloor.errors}/${r.viaGateway.errors})`);
  console.log(`  ratio        floor/direct ${fmt(r.viaFloor.rps / r.direct.rps, 3)}   gateway/direct ${fmt(r.viaGateway.rps / r.direct.rps, 3)}   gateway/floor ${fmt(r.viaGateway.rps / r.viaFloor.rps, 3)}`);
  console.log(`  CPU per req  floor proxy ${fmt(r.viaFloor.cpuUsPerReq, 0)} µs   gateway ${fmt(r.viaGateway.cpuUsPerReq, 0)} µs`);
}
