// What a remote request allocates: the floor proxy (floor-proxy.mjs) and the gateway
// in front of the same mock, each in a process of its own under the same closed loop
// in turn, non-streamed and streamed.
//
// Per side and round: the bytes V8 allocated per request (the sum of `allocated=`
// over the young-generation collections of `--trace-gc-nvp` in the measured window,
// divided by the requests answered in it) and the collections' pause per request.
// Allocation does not move with what else the machine runs, so this figure holds
// where CPU figures wander. Then, with `--sites N`, the gateway of this build in this
// process under the same load from a child process, sampled by V8's allocation
// profiler with collected objects kept (every 256 bytes): the N functions that
// allocate most per request, by self size.
//
//   node test/bench/allocations.mjs [--rounds 2] [--seconds 3] [--concurrency 64] [--sites 25]
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { fmtStats, interleaved, maxRps, saveRaw, startProcess, stats } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    sites: { type: 'string', default: '25' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const sites = Number(values.sites);
const chat = (stream) => JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'Say something short please' }], max_tokens: 16, ...(stream ? { stream: true } : {}) });

const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0'], /listening (\S+)/);
const dir = mkdtempSync(join(tmpdir(), 'bench-alloc-'));
const deployment = { name: 'mock', runtime: 'openai', endpoint: mock.url, replicas: 1, remote: { maxConcurrent: 512, maxQueue: 100000 } };
const cfg = join(dir, 'config.yaml');
writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - ${JSON.stringify(deployment)}\n`);

/** A side with its stdout (the GC trace) in a file; resolves once it prints its URL. */
async function startTraced(name, args) {
  const log = join(dir, `${name}.log`);
  const child = spawn('node', ['--trace-gc-nvp', ...args], { stdio: ['ignore', openSync(log, 'w'), 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      const m = /on (http:\/\/\S+)/.exec(readFileSync(log, 'utf8'));
      if (m !== null || Date.now() - t0 > 60_000) {
        clearInterval(poll);
        if (m === null) reject(new Error(`${name} did not start`));
        else resolve(m[1]);
      }
    }, 50);
  });
  return { log, child, origin: new URL(url).origin };
}

const sides = {
  floor: await startTraced('floor', [join(here, 'floor-proxy.mjs'), new URL(mock.url).origin]),
  gateway: await startTraced('gateway', [join(root, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet']),
};

/** Young-generation collections in `text` (a --trace-gc-nvp log): bytes allocated and pause, summed. */
function collections(text) {
  let bytes = 0;
  let pauseMs = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (!/ gc=s /.test(line)) continue;
    const a = /allocated=(\d+)/.exec(line);
    const p = /pause=([\d.]+)/.exec(line);
    bytes += Number(a?.[1] ?? 0);
    pauseMs += Number(p?.[1] ?? 0);
    count++;
  }
  return { bytes, pauseMs, count };
}

async function measure(name, stream) {
  const s = sides[name];
  const body = chat(stream);
  let from = 0;
  const r = await maxRps(s.origin, '/v1/chat/completions', body, { concurrency, seconds, stream, onStart: () => { from = readFileSync(s.log, 'utf8').length; } });
  const c = collections(readFileSync(s.log, 'utf8').slice(from));
  const n = r.n + r.errors;
  return { requests: n, errors: r.errors, bytesPerReq: c.bytes / n, gcPauseUsPerReq: (c.pauseMs * 1000) / n, collections: c.count };
}

const results = {};
for (const stream of [false, true]) results[stream ? 'streamed' : 'non-streamed'] = await interleaved(Object.keys(sides), rounds, (side) => measure(side, stream));
for (const s of Object.values(sides)) s.child.kill('SIGKILL');

console.log(`allocations per remote request — ${rounds} rounds, sides interleaved; per side and round ${seconds}s closed loop at concurrency ${concurrency}; mock answers 16 tokens`);
console.log(`gateway settings: serve --quiet; deployment ${JSON.stringify(deployment.remote)}; the collections counted are young-generation ones (the bytes a request leaves to the GC)`);
for (const [mode, r] of Object.entries(results)) {
  console.log(`\n[${mode}]`);
  for (const [side, rows] of Object.entries(r)) {
    console.log(`  ${side.padEnd(8)} allocated ${fmtStats(stats(rows.map((x) => x.bytesPerReq / 1024)), 1)} KiB/req   GC pause ${fmtStats(stats(rows.map((x) => x.gcPauseUsPerReq)), 1)} µs/req   (errors ${rows.reduce((a, x) => a + x.errors, 0)})`);
  }
  const ratio = stats(r.gateway.map((x, i) => x.bytesPerReq / r.floor[i].bytesPerReq));
  console.log(`  gateway/floor allocated ${fmtStats(ratio)}x`);
}

/** The gateway's allocation sites per request, by self size (in this process; the load from a child). */
async function allocationSites(stream) {
  const gwm = await import(pathToFileURL(join(root, 'apps/gateway/dist/index.js')).href);
  const server = await gwm.serve(gwm.parseConfig({ server: { port: 0 }, deployments: [deployment] }), { quiet: true, logger: false });
  const load = (secs) => new Promise((resolve, reject) => {
    const script = `import(${JSON.stringify(pathToFileURL(join(here, 'lib.mjs')).href)}).then(async (l) => {
      const r = await l.maxRps(${JSON.stringify(new URL(server.url).origin)}, '/v1/chat/completions', ${JSON.stringify(chat(stream))},
        { concurrency: ${concurrency}, seconds: ${secs}, stream: ${stream} });
      console.log(JSON.stringify(r));
    });`;
    const c = spawn('node', ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load client exited ${code}`))));
  });
  await load(1);
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const r = await load(seconds);
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  await server.close();
  const n = r.n + r.errors;
  const self = new Map();
  let total = 0;
  const walk = (node) => {
    const cf = node.callFrame;
    const where = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(packages|apps|node_modules)\//, '$1/').replace(/^file:\/\//, '')}:${cf.lineNumber + 1}`;
    total += node.selfSize;
    if (node.selfSize > 0) self.set(where, (self.get(where) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  return { requests: n, sampledBytesPerReq: total / n, top: [...self].sort((a, b) => b[1] - a[1]).slice(0, sites).map(([where, bytes]) => ({ where, bytesPerReq: bytes / n })) };
}

const siteResults = {};
if (sites > 0) {
  for (const stream of [false, true]) {
    const mode = stream ? 'streamed' : 'non-streamed';
    const s = await allocationSites(stream);
    siteResults[mode] = s;
    console.log(`\nthe gateway's ${sites} largest allocation sites, ${mode} (self bytes per request; sampled total ${(s.sampledBytesPerReq / 1024).toFixed(1)} KiB/req over ${s.requests} requests)`);
    for (const t of s.top) console.log(`  ${t.bytesPerReq.toFixed(0).padStart(7)}  ${t.where}`);
  }
}
await mock.stop();
const file = saveRaw('allocations', { settings: { rounds, seconds, concurrency, sites, deployment: deployment.remote }, results, sites: siteResults });
console.log(`\nraw rounds: ${file}`);
process.exit(0);
