// Scaling and rolling local replicas (real engine host processes with the tiny
// GGUF model) under continuous streaming load: zero failed requests, and the roll
// observed step by step through admin GET. Also the CLI against this server.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type Status, StreamLoad, admin, sampleStates, servingIn, waitFor } from '../support/deployments.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = join(ROOT, 'models', 'stories260K.gguf');
const CLI = join(ROOT, 'apps', 'gateway', 'dist', 'cli.js');

let server: Server;
let client: OpenAI;

const engine = { contextSize: 1024, maxSequences: 4, threads: 1 };

beforeAll(async () => {
  server = await serve(parseConfig({ server: { port: 0 }, deployments: [{ name: 'stories', runtime: 'llama', model: MODEL, replicas: 1, engine }] }));
  await server.runtime.settled();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

const get = (): Promise<Status> => admin<Status>(server.url, 'GET', '/admin/deployments/stories');

describe('local replicas under streaming load', () => {
  it('scales 1 -> 3 -> 1 with zero failed requests', async () => {
    const load = new StreamLoad(client, 'stories', 4, 24);
    const sampler = sampleStates(server.url, 'stories');
    load.start();
    try {
      await waitFor(() => load.completed >= 4, 120_000, 'load running');
      const t0 = Date.now();
      await admin(server.url, 'POST', '/admin/deployments/stories/scale', { replicas: 3 });
      await waitFor(async () => ((await get()).serving === 3 ? true : undefined), 120_000, '3 serving');
      const upMs = Date.now() - t0;
      const atThree = load.completed;
      await waitFor(() => load.completed >= atThree + 12, 120_000, 'load at 3');
      const t1 = Date.now();
      await admin(server.url, 'POST', '/admin/deployments/stories/scale', { replicas: 1 });
      const one = await waitFor(async () => {
        const x = await get();
        return x.replicas.length === 1 && x.state === 'serving' ? x : undefined;
      }, 120_000, 'back to 1');
      const downMs = Date.now() - t1;
      const atOne = load.completed;
      await waitFor(() => load.completed >= atOne + 4, 120_000, 'load at 1');
      await load.stop();
      sampler.stop();
      const loadingSeen = new Set(sampler.samples.flatMap((x) => x.replicas.filter((r) => r.state === 'loading').map((r) => r.id)));
      console.log(`[scaling-local] 1->3->1 under 4 concurrent streams: ${load.completed} streams completed, ${load.failures.length} failed; 1->3 all serving after ${upMs} ms, 3->1 drained and stopped after ${downMs} ms; ${sampler.samples.length} admin samples`);
      expect(load.failures).toEqual([]);
      expect(one.replicas[0]?.placement).toMatchObject({ gpus: [], threads: 1 });
      expect(Math.max(...sampler.samples.map(servingIn))).toBe(3);
      // The two new replicas were seen loading before they served.
      expect(loadingSeen.size).toBeGreaterThanOrEqual(1);
    } finally {
      await load.stop();
      sampler.stop();
    }
  });

  it('a spec change (engine.maxSequences) rolls replicas one by one', async () => {
    await admin(server.url, 'POST', '/admin/deployments/stories/scale', { replicas: 2 });
    await waitFor(async () => ((await get()).serving === 2 ? true : undefined), 120_000, '2 serving');
    const before = await get();
    const oldIds = before.replicas.map((r) => r.id);
    const load = new StreamLoad(client, 'stories', 4, 24);
    const sampler = sampleStates(server.url, 'stories');
    load.start();
    try {
      await waitFor(() => load.completed >= 4, 120_000, 'load running');
      const t0 = Date.now();
      const applied = await admin<Status>(server.url, 'PUT', '/admin/deployments/stories', { runtime: 'llama', model: MODEL, replicas: 2, engine: { ...engine, maxSequences: 6 } });
      const rev = applied.revision;
      await waitFor(async () => {
        const x = await get();
        return x.state === 'serving' && x.replicas.length === 2 && x.replicas.every((r) => r.revision === rev) ? true : undefined;
      }, 120_000, 'roll finished');
      const rollMs = Date.now() - t0;
      const atEnd = load.completed;
      await waitFor(() => load.completed >= atEnd + 4, 120_000, 'load after roll');
      await load.stop();
      sampler.stop();
      const timeline = sampler.samples.map((x) => ({
        serving: servingIn(x),
        newServing: x.replicas.filter((r) => r.revision === rev && r.state === 'serving').length,
        newLoading: x.replicas.filter((r) => r.revision === rev && (r.state === 'pending' || r.state === 'loading')).length,
        oldOut: oldIds.filter((id) => x.replicas.find((r) => r.id === id)?.state !== 'serving').length,
      }));
      // Distinct (new serving, new loading, old out) steps, in order of first appearance.
      const steps = [...new Set(timeline.map((t) => `${t.newServing}/${t.newLoading}/${t.oldOut}`))];
      console.log(`[scaling-local] roll of 2 replicas under 4 concurrent streams: ${rollMs} ms, ${load.completed} streams completed, ${load.failures.length} failed; steps (new serving/new loading/old out): ${steps.join(' -> ')}`);
      expect(load.failures).toEqual([]);
      for (const t of timeline) {
        expect(t.serving).toBeGreaterThanOrEqual(2);
        expect(t.newLoading).toBeLessThanOrEqual(1);
        expect(t.newServing).toBeGreaterThanOrEqual(t.oldOut);
      }
      // The first new replica was seen loading while both old ones still served.
      expect(steps).toContain('0/1/0');
      expect(timeline.at(-1)).toMatchObject({ newServing: 2, oldOut: 2 });
    } finally {
      await load.stop();
      sampler.stop();
    }
  });
});

describe('the inference CLI against a running server', () => {
  const run = promisify(execFile);
  const cli = async (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
    }
  };

  it('list, get, scale, deploy and remove, with tables, --json and clear errors', async () => {
    const s = ['--server', server.url];
    const list = await cli(['list', ...s]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+RUNTIME\s+STATE\s+SERVING\s+REVISION/);
    expect(list.stdout).toMatch(/\nstories\s+llama\s+\w+\s+\d+\/\d+/);

    const scaled = await cli(['scale', 'stories', '1', ...s]);
    expect(scaled.stdout).toMatch(/^scaled stories to 1 replica/);
    await waitFor(async () => ((await get()).replicas.length === 1 ? true : undefined), 120_000, 'scaled to 1');

    const got = await cli(['get', 'stories', ...s]);
    expect(got.stdout).toMatch(/state:\s+serving/);
    expect(got.stdout).toMatch(/REPLICA\s+STATE\s+REV\s+RESTARTS\s+LOAD\s+GPUS/);
    expect(got.stdout).toMatch(/stories#\d+\s+serving\s+\d+\s+0\s+\d+\/\d+\s+cpu/);
    const json = JSON.parse((await cli(['get', 'stories', '--json', ...s])).stdout) as Status;
    expect(json).toMatchObject({ desired: 1, state: 'serving' });

    const dir = await mkdtemp(join(ROOT, 'test', '.tmp-cli-'));
    try {
      const file = join(dir, 'deploy.yaml');
      await writeFile(file, `deployments:\n  - name: cli-gpu\n    runtime: llama\n    model: ${MODEL}\n    engine: { gpus: 2 }\n`);
      const dep = await cli(['deploy', file, ...s]);
      expect(dep.code).toBe(0);
      expect(dep.stdout).toMatch(/^applied cli-gpu: revision 1, 1 replica desired/);
      const pending = await waitFor(async () => {
        const r = await cli(['get', 'cli-gpu', ...s]);
        return /needs 2 GPUs, node \S+ has 0 GPUs/.test(r.stdout) ? r : undefined;
      }, 60_000, 'pending reason in get');
      expect(pending.stdout).toMatch(/state:\s+pending/);
      await writeFile(file, 'name: cli-bad\nruntime: llama\nreplicaz: 2\n');
      const bad = await cli(['deploy', file, ...s]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^inference deploy: server: replicaz: unknown key 'replicaz' \(invalid_request_error, HTTP 400\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const removed = await cli(['remove', 'cli-gpu', ...s]);
    expect(removed.stdout).toMatch(/^removed cli-gpu/);
    const missing = await cli(['get', 'cli-gpu', ...s]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/deployment 'cli-gpu' does not exist \(invalid_request_error, HTTP 404\)/);

    // A port nothing listens on: bind one, then close it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const addr = probe.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    await new Promise((r) => probe.close(r));
    const refused = await cli(['list', '--server', `http://127.0.0.1:${port}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`cannot connect to http://127\\.0\\.0\\.1:${port}: connection refused`));
    const usage = await cli(['scale', 'stories', 'many', ...s]);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/N must be a whole number/);
  });
});
