#!/usr/bin/env node
// Idle concurrent streams: how much memory the gateway needs to hold N open
// streamed chat completions whose upstream has sent its first token, which the
// client has received, and then pauses (a slow model, a long tool call). The mock upstream speaks HTTP/2 over
// TLS, as real providers do, so the gateway's upstream side is multiplexed; each
// client holds its own HTTP/1.1 connection. The client (this process), the
// gateway and the mock are three processes.
//
// Memory is read inside the gateway after a full garbage collection (memprobe.cjs,
// preloaded with --expose-gc): once after a warm-up with no stream open, once with
// N streams open, each of which has delivered its first event to the client. Per
// stream = the growth / N, for the JS heap + external memory (what the gateway's
// objects hold) and for the RSS (what the process holds from the OS, including
// native socket and HTTP/2 state and allocator slack).
//
// The floor side (always run): test/bench/floor-proxy.mjs --h2, node:http in and an undici
// Pool out that multiplexes on HTTP/2 as the gateway's session does, relaying each
// stream with one plain dispatch handler, holds the same N streams and is read the same
// way (memprobe.cjs preloaded). What it needs per idle stream is Node's own (client
// socket, HTTP parser, IncomingMessage, ServerResponse, the HTTP/2 stream, undici's
// request): the gateway's figure minus the floor's is what the gateway itself adds.
// A floor stream counts as held once its client has the first event (it has no gauge).
// The floor's RSS per stream (about 22 KiB at N = 10,000: sockets, TLS and HTTP/2
// state, V8's reserved pages) is what any Node proxy needs; the growth of RSS also
// depends on how much free heap a process had reserved before the streams opened,
// so heap + external is the figure that compares builds most steadily.
//
//   node test/bench/idle-streams.mjs [--streams 10000] [--hold 3] [--rounds 3]
//        [--compare DIR] [--snapshot] [--save NAME]
//
// --compare DIR   also run the gateway built in DIR (another checkout, built) as one more
//                 side; all sides (floor, gateway(s)) interleave over the rounds in rotating order
// --no-floor      leave the floor side out
// --snapshot      write a heap snapshot at 0 and at N streams (use a small N, e.g.
//                 1000) and print what each stream adds, by constructor / closure
//                 and who holds those bytes: by owner (package, Node, native) and by site
//                 (closures by source line, other objects by their holder)
//   --keep-snapshots DIR  keeps them in DIR (heap-1 at 0 streams, heap-2 at N) for a closer look
// --save NAME     keep the raw rounds in docs/bench-raw/NAME.json
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { fmt, fmtStats, interleaved, saveRaw, startProcess, stats } from './lib.mjs';
import { byOwner, diff, owners, summarize, totals } from './heapsnapshot.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '10000' },
    hold: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    compare: { type: 'string' },
    snapshot: { type: 'boolean', default: false },
    'keep-snapshots': { type: 'string' },
    save: { type: 'string' },
    'no-floor': { type: 'boolean', default: false },
  },
});
const streams = Number(values.streams);
const holdSeconds = Number(values.hold);
const rounds = Number(values.rounds);
const cert = join(root, 'packages', 'mock-upstream', 'fixtures', 'localhost-cert.pem');
const probe = join(here, 'memprobe.cjs');
const FLOOR = 'floor';
const gateways = values.compare === undefined ? { this: root } : { before: resolve(values.compare), after: root };
const sides = values['no-floor'] ? gateways : { [FLOOR]: FLOOR, ...gateways };
for (const dir of Object.values(gateways)) if (!existsSync(join(dir, 'apps/gateway/dist/cli.js'))) throw new Error(`no built gateway in ${dir}`);

const deployment = `remote: { maxConcurrent: ${streams + 100}, maxQueue: ${streams + 100}, timeouts: { idleMs: 900000, totalMs: 900000 } }`;
const settings = `serve --quiet; deployment slow: runtime openai, replicas 1, ${deployment}; no auth, budgets, rate limits or tracing; `
  + 'gateway node --expose-gc --require memprobe.cjs; mock --tls (HTTP/2), chunkDelayMs 600000 with burstChunks 2 '
  + '(role chunk and first token at once) after a warm-up of 200 complete streams'
  + (values['no-floor'] ? '' : '; floor: floor-proxy.mjs --h2 (node:http in, undici Pool allowH2 pipelining 100 out, one dispatch handler per stream)');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** Signals the gateway's probe and waits for its report (after GC; with a heap snapshot when asked). */
async function measure(pid, out) {
  rmSync(out, { force: true });
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 600_000;
  while (!existsSync(out)) {
    if (Date.now() > deadline) throw new Error('the gateway\'s memory probe did not answer');
    await sleep(100);
  }
  const m = JSON.parse(readFileSync(out, 'utf8'));
  if (m.gc !== true) throw new Error('the gateway runs without --expose-gc');
  return { ...m, rssProc: rssKiB(pid) * 1024 };
}

/** What a round keeps of one memory reading. */
const record = (m) => ({
  rss: m.rssProc, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, malloced: m.mallocedMemory,
});

async function oneRound(dir) {
  const floor = dir === FLOOR;
  const work = mkdtempSync(join(tmpdir(), 'bench-idle-'));
  const out = join(work, 'mem.json');
  // The mock is always this checkout's (burstChunks); only the gateway differs between sides.
  const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0', '--tls'], /listening (\S+)/);
  const mockOrigin = new URL(mock.url).origin;
  const tlsAgent = new Agent({ connect: { ca: readFileSync(cert) } });
  const cfg = join(work, 'config.yaml');
  writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - name: slow\n    runtime: openai\n    endpoint: ${mock.url}\n    replicas: 1\n    ${deployment}\n`);
  const snapshots = values.snapshot ? { MEMPROBE_SNAPSHOT: join(values['keep-snapshots'] ?? work, 'heap') } : {};
  const env = { NODE_EXTRA_CA_CERTS: cert, MEMPROBE_OUT: out, ...snapshots };
  const gw = floor
    ? await startProcess('node', ['--expose-gc', '--require', probe, join(here, 'floor-proxy.mjs'), mockOrigin, '--h2'], /on (http:\/\/\S+)/, env)
    : await startProcess('node', ['--expose-gc', '--require', probe, join(dir, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'],
      /on (http:\/\/\S+)/, env);
  const gwPid = gw.child.pid;
  // Patient connects: the gateway accepts thousands at once while it streams to the others.
  const client = new Agent({
    connections: streams + 10, pipelining: 1, keepAliveTimeout: 600_000, bodyTimeout: 0, headersTimeout: 0, connect: { timeout: 120_000 },
  });
  const body = JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'Tell me a long story' }], stream: true });
  const post = () => request(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: client });
  // Its own connection, patient: the gateway may be busy for seconds while thousands of streams open.
  const probeAgent = new Agent({ connect: { timeout: 120_000 }, headersTimeout: 300_000, bodyTimeout: 300_000 });
  async function inFlight() {
    // The floor has no gauge: its streams are the ones whose client has the first event.
    if (floor) return firstEvents;
    const text = await (await request(`${gw.url}/metrics`, { dispatcher: probeAgent })).body.text();
    return text.split('\n').filter((l) => l.startsWith('inference_gateway_in_flight_requests'))
      .map((l) => Number(l.split(' ').pop())).reduce((a, b) => a + b, 0);
  }
  const held = [];
  let measured = false;
  let firstEvents = 0;
  try {
    // Warm up (JIT, pools) with short, complete streams before the baseline.
    await request(`${mockOrigin}/_mock/default`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, dispatcher: tlsAgent });
    for (let i = 0; i < 200; i++) {
      const r = await post();
      const text = await r.body.text();
      if (r.statusCode !== 200 || !text.trimEnd().endsWith('data: [DONE]')) throw new Error(`warm-up stream failed: ${r.statusCode}`);
    }
    // From now on every stream sends its role chunk and first token at once and the next token ten minutes later.
    const paused = JSON.stringify({ chunkDelayMs: 600_000, burstChunks: 2 });
    await request(`${mockOrigin}/_mock/default`, { method: 'POST', body: paused, headers: { 'content-type': 'application/json' }, dispatcher: tlsAgent });
    await sleep(1000);
    const before = await measure(gwPid, out);

    let failed = 0;
    const t0 = performance.now();
    for (let i = 0; i < streams; i++) {
      held.push(post().then(
        async (r) => {
          if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
          // The stream is held once its first event reached this client (then the upstream pauses).
          // (Read in flowing mode and left open: breaking out of an async iterator would end the stream.)
          await new Promise((res, rej) => {
            r.body.on('data', (chunk) => { if (chunk.toString().includes('data: ')) res(); });
            r.body.once('error', rej);
            r.body.once('end', () => rej(new Error('stream ended early')));
          });
          firstEvents++;
          return r;
        },
      ).catch((e) => {
        // Once measured, the streams are cut on purpose.
        if (measured) return;
        if (failed++ === 0) console.error(`first failure: ${e.message}`);
      }));
    }
    const deadline = Date.now() + 300_000;
    let open = 0;
    while ((open = await inFlight()) < streams - failed && Date.now() < deadline) await sleep(250);
    // Then until every stream's first event is here, or none has come for 3 s (a request the gateway
    // holds may still wait for an upstream connection: it is counted in flight, not streaming).
    for (let last = -1, since = Date.now(); firstEvents + failed < streams && Date.now() < deadline; await sleep(250)) {
      if (firstEvents !== last) [last, since] = [firstEvents, Date.now()];
      else if (Date.now() - since > 3000) break;
    }
    const openedIn = (performance.now() - t0) / 1000;
    await sleep(holdSeconds * 1000);
    const during = await measure(gwPid, out);
    measured = true;
    open = await inFlight();
    const n = Math.max(1, open);
    const js = (m) => m.heapUsed + m.external;
    const r = {
      held: open, failed, firstEvents, openedInS: openedIn,
      before: record(before),
      during: record(during),
      perStreamKiB: {
        js: (js(during) - js(before)) / n / 1024,
        heap: (during.heapUsed - before.heapUsed) / n / 1024,
        external: (during.external - before.external) / n / 1024,
        rss: (during.rssProc - before.rssProc) / n / 1024,
        // What V8 reserved for its heap (used + free space in its pages): RSS minus this is memory outside V8's heap.
        heapTotal: (during.heapTotal - before.heapTotal) / n / 1024,
      },
    };
    if (values.snapshot) {
      const rows = diff(summarize(before.snapshot), summarize(during.snapshot), n);
      r.snapshot = { totals: totals(rows), top: rows.slice(0, 40), owners: owners(before.snapshot, during.snapshot, n).slice(0, 60),
        packages: byOwner(before.snapshot, during.snapshot, n).slice(0, 20) };
    }
    return r;
  } finally {
    // The gateway would drain the held streams on SIGTERM; this round is over.
    gw.child.kill('SIGKILL');
    await client.destroy().catch(() => undefined);
    await probeAgent.destroy().catch(() => undefined);
    await Promise.allSettled(held);
    await mock.stop();
    await tlsAgent.close();
    rmSync(work, { recursive: true, force: true });
  }
}

const results = await interleaved(Object.keys(sides), rounds, async (side, round) => {
  const r = await oneRound(sides[side]);
  console.log(`  round ${round + 1} ${side.padEnd(6)} held ${r.held}, streaming ${r.firstEvents} (failed ${r.failed}) in ${fmt(r.openedInS, 1)} s`
    + `   per stream: heap+external ${fmt(r.perStreamKiB.js, 1)} KiB`
    + ` (heap ${fmt(r.perStreamKiB.heap, 1)}, external ${fmt(r.perStreamKiB.external, 1)}, heap reserved ${fmt(r.perStreamKiB.heapTotal, 1)})`
    + `   RSS ${fmt(r.perStreamKiB.rss, 1)} KiB`
    + `   process RSS ${fmt(r.before.rss / 2 ** 20, 0)} -> ${fmt(r.during.rss / 2 ** 20, 0)} MiB`);
  return r;
});

console.log(`\nidle streams — ${streams} streamed chat completions held open through the gateway`
  + ` (upstream: HTTP/2 mock, first token then a pause), ${rounds} rounds`);
console.log(`  settings: ${settings}`);
for (const [side, rs] of Object.entries(results)) {
  const js = stats(rs.map((r) => r.perStreamKiB.js));
  const rss = stats(rs.map((r) => r.perStreamKiB.rss));
  const total = stats(rs.map((r) => r.during.rss / 2 ** 20));
  const streaming = stats(rs.map((r) => r.firstEvents));
  console.log(`  ${side.padEnd(6)} per stream: heap+external ${fmtStats(js, 1)} KiB   RSS ${fmtStats(rss, 1)} KiB`
    + `   process RSS with ${streams} open ${fmtStats(total, 0)} MiB   streaming ${fmtStats(streaming, 0)}`
    + `   (median (min..max); heap+external target <= 16 KiB: ${js.median <= 16 ? 'met' : 'not met'};`
    + ` RSS ${rss.median <= 16 ? '<=' : '>'} 16 KiB)`);
  const snap = rs.find((r) => r.snapshot !== undefined)?.snapshot;
  if (snap !== undefined) {
    const t = snap.totals;
    console.log(`    heap snapshot, per stream: ${fmt(t.all.count, 1)} objects, ${fmt(t.all.size / 1024, 2)} KiB self size;`
      + ` closures ${fmt(t.closures.count, 1)}`
      + ` (${fmt(t.closures.size, 0)} B), contexts ${fmt(t.contexts.count, 1)} (${fmt(t.contexts.size, 0)} B), promises ${fmt(t.promises.count, 1)},`
      + ` generators/async ${fmt(t.generators.count, 1)}, strings ${fmt(t.strings.count, 1)} (${fmt(t.strings.size, 0)} B)`);
    for (const row of snap.top.slice(0, 30)) console.log(`      ${fmt(row.size, 0).padStart(7)} B  ${fmt(row.count, 2).padStart(7)} x  ${row.kind}`);
    console.log('    by owner (objects made after the first snapshot, each charged to the first package, Node class or native owner on its retainer chain):');
    for (const row of snap.packages) console.log(`      ${fmt(row.size, 0).padStart(7)} B  ${row.owner}`);
    console.log('    by site (closures by source line, other objects by what holds them):');
    for (const row of snap.owners) console.log(`      ${fmt(row.size, 0).padStart(7)} B  ${fmt(row.count, 2).padStart(7)} x  ${row.site}`);
  }
}
const floorRounds = results[FLOOR];
if (floorRounds !== undefined) {
  // What the gateway adds above the floor (medians of each side; the sides ran in the same rounds).
  const fjs = stats(floorRounds.map((r) => r.perStreamKiB.js)).median;
  const frss = stats(floorRounds.map((r) => r.perStreamKiB.rss)).median;
  for (const side of Object.keys(gateways)) {
    const js = stats(results[side].map((r) => r.perStreamKiB.js)).median;
    const rss = stats(results[side].map((r) => r.perStreamKiB.rss)).median;
    console.log(`  ${side.padEnd(6)} minus floor: heap+external ${fmt(js - fjs, 1)} KiB   RSS ${fmt(rss - frss, 1)} KiB per stream`
      + `   (${side}/floor: ${fmt(js / fjs, 2)}x heap+external, ${fmt(rss / frss, 2)}x RSS)`);
  }
}
if (values.save !== undefined) console.log(`raw rounds: ${saveRaw(values.save, { settings, streams, holdSeconds, rounds, sides, results })}`);
process.exit(0);
