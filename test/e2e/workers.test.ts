// `inference serve --workers N`: N processes on one port. Both workers take
// connections, a deployment budget holds across them (they share the primary's
// coordination store as cluster nodes share etcd), a worker that dies is replaced,
// SIGHUP reaches every worker, and SIGTERM drains every worker and exits 0.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/cluster.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(root, 'apps', 'gateway', 'dist', 'cli.js');
const BUDGET_TOKENS = 400;

let mock: MockUpstream;
let primary: ChildProcess;
let url = '';
let out = '';

/** One request on a connection of its own, so that node:cluster hands it to the next worker. */
async function fresh(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('connection', 'close');
  return fetch(`${url}${path}`, { ...init, headers });
}

async function nodesAnswering(tries: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < tries; i++) {
    const r = await fresh('/admin/cluster');
    seen.add(((await r.json()) as { node: string }).node);
  }
  return seen;
}

const workerPids = (): number[] =>
  execFileSync('ps', ['-o', 'pid=', '--ppid', String(primary.pid)], { encoding: 'utf8' }).split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'workers-'));
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, `server: { port: 0 }
deployments:
  - { name: gpt, runtime: openai, endpoint: ${mock.url}, replicas: 2 }
  - { name: capped, runtime: openai, endpoint: ${mock.url}, replicas: 2, budget: { window: 1h, maxTokens: ${String(BUDGET_TOKENS)} } }
`);
  primary = spawn(process.execPath, [CLI, 'serve', '--config', cfg, '--workers', '2', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  primary.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  primary.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  url = await until('the workers serve', () => Promise.resolve(/serving with 2 workers on (http:\/\/\S+)/.exec(out)?.[1]), 60_000);
  // Both deployments serve (placed across the workers by the leader).
  await until('replicas serving', async () => {
    const r = await fresh('/ready');
    return r.status === 200 ? true : undefined;
  }, 60_000);
}, 90_000);

afterAll(async () => {
  if (primary.exitCode === null) primary.kill('SIGKILL');
  await mock.close();
});

describe('serve --workers 2', () => {
  it('both workers take connections on the one port, as two members of one cluster', async () => {
    const r = await fresh('/admin/cluster');
    const view = (await r.json()) as { members: { name: string }[] };
    expect(view.members.map((m) => m.name).sort()).toEqual(['worker-1', 'worker-2']);
    expect(await nodesAnswering(8)).toEqual(new Set(['worker-1', 'worker-2']));
    const chat = await fresh('/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
    });
    expect(chat.status).toBe(200);
  });

  it('a deployment budget holds across the workers', async () => {
    let served = 0;
    let tokens = 0;
    let refused = 0;
    for (let i = 0; i < 80 && refused < 4; i++) {
      const r = await fresh('/v1/chat/completions', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'capped', messages: [{ role: 'user', content: 'Say something' }], max_tokens: 16 }),
      });
      if (r.status === 200) {
        served++;
        tokens += ((await r.json()) as { usage: { total_tokens: number } }).usage.total_tokens;
      } else {
        expect(r.status).toBe(429);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('budget_exceeded');
        refused++;
      }
      // Requests one after another: the shared counters sync every 100 ms.
      await new Promise((res) => setTimeout(res, 120));
    }
    expect(refused).toBeGreaterThan(0);
    // Two workers each with a budget of their own would have served about twice as much.
    const perRequest = tokens / served;
    expect(tokens).toBeLessThanOrEqual(BUDGET_TOKENS + 2 * perRequest);
    expect(tokens).toBeGreaterThanOrEqual(BUDGET_TOKENS - perRequest);
  }, 60_000);

  it('a worker that dies is replaced and the port keeps serving', async () => {
    const before = workerPids();
    expect(before).toHaveLength(2);
    process.kill(before[0] ?? 0, 'SIGKILL');
    await until('a replacement worker', () => Promise.resolve(workerPids().filter((p) => !before.includes(p)).length === 1 ? true : undefined), 30_000);
    await until('both workers answer again', async () => ((await nodesAnswering(6)).size === 2 ? true : undefined), 60_000, 500);
    expect(out).toMatch(/worker \d exited \(SIGKILL\); restarting it/);
  }, 90_000);

  it('SIGHUP reaches every worker (each re-reads its TLS files, as one process does) and the primary stays', async () => {
    const before = workerPids();
    const from = out.length;
    primary.kill('SIGHUP');
    const took = (): number => out.slice(from).match(/inference: SIGHUP, certificates unchanged/g)?.length ?? 0;
    await until('both workers took SIGHUP', () => Promise.resolve(took() === 2 ? true : undefined), 30_000);
    expect(out.slice(from)).toMatch(/SIGHUP, passed to 2 workers/);
    expect(primary.exitCode).toBeNull();
    expect(primary.signalCode).toBeNull();
    expect(workerPids().sort()).toEqual(before.sort());
    expect((await fresh('/ready')).status).toBe(200);
  }, 60_000);

  it('SIGTERM drains every worker and the primary exits 0', async () => {
    const exited = new Promise<number | null>((r) => primary.once('exit', (code) => { r(code); }));
    primary.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});
