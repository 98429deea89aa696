// Shared load-generation helpers for the benchmarks: child processes that print
// their URL, a closed-loop max-throughput run and an open-loop fixed-rate run.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The mock upstream and a gateway with one remote deployment (`mock`) in front
 * of it, as the gateway benchmarks use them. `stop()` ends both.
 */
export async function startMockAndGateway() {
  const mock = await startProcess('node', [join(root, 'packages/mock-upstream/dist/cli.js'), '--port', '0'], /listening (\S+)/);
  const gw = await startGatewayFor(mock.url);
  return { mock, mockOrigin: new URL(mock.url).origin, gw, stop: async () => { await gw.stop(); await mock.stop(); } };
}

/** A gateway with one remote deployment (`mock`) in front of `mockUrl`; `env` is added to its environment. */
export async function startGatewayFor(mockUrl, env = {}) {
  const cfg = join(mkdtempSync(join(tmpdir(), 'bench-')), 'config.yaml');
  writeFileSync(cfg, `server: { port: 0 }\ndeployments:\n  - name: mock\n    runtime: openai\n    endpoint: ${mockUrl}\n    replicas: 1\n    remote: { maxConcurrent: 512, maxQueue: 100000 }\n`);
  return startProcess('node', [join(root, 'apps/gateway/dist/cli.js'), 'serve', '--config', cfg, '--quiet'], /on (http:\/\/\S+)/, env);
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
  child.stderr.on('data', (d) => { err = (err + d.toString()).slice(-4000); });
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

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function once(pool, path, body, stream, headers = {}) {
  const t0 = performance.now();
  const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  let ttfb;
  let bytes = 0;
  for await (const chunk of res.body) {
    if (ttfb === undefined) ttfb = performance.now() - t0;
    bytes += chunk.length;
  }
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return { ms: performance.now() - t0, ttfb: ttfb ?? 0, bytes, stream };
}

/** Closed loop: `concurrency` workers back to back for `seconds`. */
export async function maxRps(origin, path, body, { concurrency = 64, seconds = 5, stream = false, headers = {} } = {}) {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const lat = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  // warm-up
  await Promise.all(Array.from({ length: concurrency }, () => once(pool, path, body, stream, headers).catch(() => undefined)));
  const t0 = performance.now();
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
