// A node that drains (SIGTERM) in a cluster on a real etcd, started with the
// real CLI: at the start of the drain it resigns the lead, its membership entry
// says draining, the new leader places its replicas on the other node and the
// other node routes nothing new to it, all while its streams in flight (its own
// and those forwarded to it by the other node) run to their end; then it exits 0.
// docs/cluster.md "Draining".

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, chat, clusterView, deploymentView, putDeployment, until } from '../support/cluster.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster.destroy();
}, 60_000);

interface StreamEnd { status: number; data: string[] }

/** Starts a streamed chat; `started` resolves once the response headers are in, `end` with the whole stream. */
function stream(url: string, model: string): { started: Promise<void>; end: Promise<StreamEnd> } {
  let started!: () => void;
  const s = new Promise<void>((r) => { started = r; });
  const end = (async (): Promise<StreamEnd> => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    started();
    const text = await res.text();
    return { status: res.status, data: text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => b.slice(6)) };
  })();
  end.catch(() => { started(); });
  return { started: s, end };
}

function finishedWhole(s: StreamEnd): boolean {
  if (s.status !== 200 || s.data.at(-1) !== '[DONE]') return false;
  const chunks = s.data.slice(0, -1).map((d) => JSON.parse(d) as { error?: unknown; choices?: { finish_reason?: string | null }[] });
  return chunks.every((c) => c.error === undefined) && chunks.some((c) => (c.choices ?? []).some((ch) => typeof ch.finish_reason === 'string'));
}

describe('a draining node in a cluster', () => {
  it('leaves the lead, placement and routing at the start of its drain, and finishes its streams in flight', async () => {
    const a = await cluster.startNode('a');
    await until('a leads', async () => ((await clusterView(a.url)).leader === 'a' ? true : undefined), 60_000);
    const b = await cluster.startNode('b');
    await until('two members', async () => ((await clusterView(a.url)).members.length === 2 ? true : undefined), 60_000);
    // One replica: placed on a (fewest replicas, then by name), so b forwards its requests to a.
    const put = await putDeployment(a.url, 'one', { runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas: 1 });
    expect(put.status).toBeLessThan(300);
    await until('one serving on a, seen from b', async () => {
      const d = await deploymentView(b.url, 'one');
      const serving = (d?.replicas ?? []).filter((r) => r.state === 'serving').map((r) => r.node);
      return serving.length === 1 && serving[0] === 'a' ? true : undefined;
    }, 60_000);

    // Streams of about 12 s: two on a, two forwarded from b to a.
    cluster.mock.setDefault({ chunkDelayMs: 300, tokens: 40 });
    const streams = [stream(a.url, 'one'), stream(a.url, 'one'), stream(b.url, 'one'), stream(b.url, 'one')];
    await Promise.all(streams.map((s) => s.started));
    const exited = new Promise<number | null>((r) => { a.proc.once('exit', (code) => { r(code); }); });
    a.proc.kill('SIGTERM');

    // While a still runs its streams: b leads, sees a draining, runs the replica itself and routes to it.
    await until('b leads', async () => ((await clusterView(b.url)).leader === 'b' ? true : undefined), 20_000);
    const view = await until('a draining, seen from b', async () => {
      const v = await clusterView(b.url);
      return v.members.find((m) => m.name === 'a')?.draining === true ? v : undefined;
    }, 20_000);
    expect(view.members.map((m) => m.name)).toEqual(['a', 'b']);
    const d = await until('one re-placed on b; a\'s replica draining', async () => {
      const x = await deploymentView(b.url, 'one');
      const on = (node: string): string[] => (x?.replicas ?? []).filter((r) => r.node === node).map((r) => r.state);
      return on('b').includes('serving') && on('a').every((s) => s === 'draining') && on('a').length === 1 ? x : undefined;
    }, 20_000);
    expect(d.replicas.filter((r) => r.state === 'serving').map((r) => r.node)).toEqual(['b']);
    // New requests to b are served by b's own replica (a forwards nothing new, and answers 503 to its own clients).
    for (let i = 0; i < 3; i++) expect((await chat(b.url, 'one')).status).toBe(200);
    expect(a.proc.exitCode).toBeNull();

    const ends = await Promise.all(streams.map((s) => s.end));
    for (const s of ends) expect(finishedWhole(s), JSON.stringify(s).slice(0, 400)).toBe(true);
    expect(await exited).toBe(0);
    expect(a.output).toMatch(/SIGTERM, draining/);
  }, 180_000);
});
