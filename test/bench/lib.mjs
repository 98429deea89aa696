// Shared load-generation helpers for the benchmarks: child processes that print
// their URL, a closed-loop max-throughput run and an open-loop fixed-rate run.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { Pool } from 'undici';

export function startProcess(cmd, args, match, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')} did not start`)), 120_000);
    child.stdout.on('data', (d) => {
      buf += d.toString();
      const m = buf.match(match);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) });
      }
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited ${code}`)));
  });
}

/** The repository's root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The mock upstream and a gateway with one remote deployment (`mock`) in front
 * of it, as the gateway benchmarks use them. `stop()` ends both.
 */
export async function startMockAndGateway({ nodeArgs = [], checkout = root } = {}) {
  const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0'], /listening (\S+)/);
  const cfg = join(mkdtempSync(join(tmpdir(), 'bench-')), 'config.yaml');
  const deployment = 'replicas: 1, remote: { maxConcurrent: 512, maxQueue: 100000 }';
  writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - { name: mock, runtime: openai, endpoint: ${mock.url}, ${deployment} }\n`);
  const gw = await startProcess('node', [...nodeArgs, join(checkout, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/);
  // Every non-default setting, so that a reader can reproduce the run.
  const settings = `serve --quiet (no per-request log lines); deployment mock: runtime openai, ${deployment}; no auth, budgets or rate limits`;
  return { mock, mockOrigin: new URL(mock.url).origin, gw, settings, cfg, stop: async () => { await gw.stop(); await mock.stop(); } };
}

/**
 * A gateway with one remote deployment (`mock`) in front of `mockUrl`; `env` is added to its environment.
 * `checkout`: another built checkout of this repository whose gateway to start (a before/after comparison).
 */
export async function startGatewayFor(mockUrl, env = {}, checkout = root) {
  const cfg = join(mkdtempSync(join(tmpdir(), 'bench-')), 'config.yaml');
  writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - name: mock\n    runtime: openai\n    endpoint: ${mockUrl}\n    replicas: 1\n    remote: { maxConcurrent: 512, maxQueue: 100000 }\n`);
  return startProcess('node', [join(checkout, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/, env);
}

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Spawns a server on `port` and waits until GET `readyPath` answers 2xx (its stderr tail in the error if it never does). */
export async function startServer(cmd, args, port, { env = {}, readyPath = '/health' } = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr.on('data', (d) => {
    err = (err + d.toString()).slice(-4000);
    // An engine host exit (logged by the gateway with its code or signal, docs/metrics.md) is always shown.
    if (d.toString().includes('engine host ')) process.stderr.write(d);
  });
  let exited = false;
  child.once('exit', () => { exited = true; });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited) throw new Error(`${cmd} exited: ${err}`);
    if (Date.now() > deadline) throw new Error(`${cmd} did not become ready: ${err}`);
    const ok = await fetch(`${origin}${readyPath}`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { origin, stop: () => new Promise((r) => { if (exited) r(); else { child.once('exit', r); child.kill('SIGTERM'); } }) };
}

/**
 * Starts this checkout's gateway (apps/gateway/dist) on a free local port serving `deployments`
 * (the config's `deployments` key, written to a temporary config file), and waits until it is
 * ready. `env`: extra environment of the gateway process.
 */
export async function startLocalGateway(deployments, { env = {} } = {}) {
  const port = await freePort();
  const config = join(mkdtempSync(join(tmpdir(), 'bench-gateway-')), 'config.json');
  writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port }, deployments }));
  const cli = join(root, 'apps', 'gateway', 'dist', 'cli.js');
  return startServer(process.execPath, [cli, 'serve', '--config', config, '--quiet'], port, { readyPath: '/ready', env });
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Checks an answer's body, so that a 200 carrying an error is not counted as a
 * success: a JSON completion must hold `choices`; a stream must end with
 * `data: [DONE]` and carry no error event.
 */
export function checkBody(text, stream) {
  if (stream) {
    if (text.includes('data: {"error"') || text.includes('event: error')) throw new Error('stream ended in an error event');
    if (!text.trimEnd().endsWith('data: [DONE]')) throw new Error('stream ended without [DONE]');
    return;
  }
  const j = JSON.parse(text);
  if (!Array.isArray(j.choices) || j.choices.length === 0) throw new Error(`no choices in ${text.slice(0, 120)}`);
}

async function once(pool, path, body, stream, headers = {}) {
  const t0 = performance.now();
  const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  let ttfb;
  let text = '';
  for await (const chunk of res.body) {
    if (ttfb === undefined) ttfb = performance.now() - t0;
    text += chunk.toString();
  }
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  checkBody(text, stream);
  return { ms: performance.now() - t0, ttfb: ttfb ?? 0, bytes: text.length, stream };
}

/** Closed loop: `concurrency` workers back to back for `seconds`. */
export async function maxRps(origin, path, body, { concurrency = 64, seconds = 5, stream = false, headers = {}, onStart = () => {} } = {}) {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const lat = [];
  let errors = 0;
  // warm-up (not measured)
  await Promise.all(Array.from({ length: concurrency }, () => once(pool, path, body, stream, headers).catch(() => undefined)));
  onStart();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      try {
        lat.push((await once(pool, path, body, stream, headers)).ms);
      } catch {
        errors++;
      }
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  lat.sort((a, b) => a - b);
  return { rps: lat.length / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), errors, n: lat.length };
}

/** Open loop: requests started at a fixed rate whatever the answers do. */
export async function fixedRate(origin, path, body, { rps = 500, seconds = 5, stream = false, headers = {} } = {}) {
  const pool = new Pool(origin, { connections: 256, pipelining: 1 });
  const lat = [];
  const ttfb = [];
  let errors = 0;
  const total = Math.round(rps * seconds);
  const interval = 1000 / rps;
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(once(pool, path, body, stream, headers).then((r) => { lat.push(r.ms); ttfb.push(r.ttfb); }, () => { errors++; }));
  }
  await Promise.all(pending);
  await pool.close();
  lat.sort((a, b) => a - b);
  ttfb.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), ttfbP50: percentile(ttfb, 50), errors, n: lat.length };
}

export const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/**
 * Runs `fn(side, round)` for every side in every round, the order rotated each
 * round (a machine shared with other work slows whichever side runs at the time),
 * and returns each side's results in round order.
 */
export async function interleaved(sides, rounds, fn) {
  const out = Object.fromEntries(sides.map((s) => [s, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(k + round) % sides.length];
      out[side].push(await fn(side, round));
    }
  }
  return out;
}

/** Median and spread (min..max) of a list of numbers. */
export function stats(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

/** "median (min..max)" with `d` decimals. */
export const fmtStats = (s, d = 2) => `${fmt(s.median, d)} (${fmt(s.min, d)}..${fmt(s.max, d)})`;

/** CPU seconds a process has used (user + system, every thread), or NaN off Linux. */
/** CPU seconds (user + system) of process `pid`, every thread; with `mainOnly`, of its main thread alone. */
export function cpuSeconds(pid, mainOnly = false) {
  try {
    const fields = readFileSync(mainOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Keeps a benchmark's raw rounds beside the summary in docs/benchmarks.md:
 * docs/bench-raw/<name>.json holds the settings, the machine and every round.
 */
export function saveRaw(name, data) {
  const dir = join(root, 'docs', 'bench-raw');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const doc = { benchmark: name, date: new Date().toISOString(), argv: process.argv.slice(2), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavg: loadavg(), ...data };
  writeFileSync(file, `${JSON.stringify(doc, null, 1)}\n`);
  return file;
}
