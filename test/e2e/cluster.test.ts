// Cluster mode end to end: a real etcd and three gateway processes started with
// the real CLI (`inference serve --cluster ... --node-name ... --advertise ...`)
// on loopback, lease TTL 2 s, counter sync 200 ms, remote deployments on the
// mock upstream. Each scenario prints its measured times as `[cluster]` lines
// (docs/cluster.md keeps them); assertions on time are generous upper bounds.
// Scenarios run in order on one cluster; a killed node is started again (same
// name) before the next one.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestCluster as Cluster, TestCluster, chat, clusterView, deploymentView, putDeployment, sleep, until } from '../support/cluster.js';

let cluster: Cluster;
const NAMES = ['a', 'b', 'c'] as const;

beforeAll(async () => {
  cluster = await TestCluster.start();
  for (const n of NAMES) await cluster.startNode(n);
  await until('three members', async () => ((await clusterView(cluster.node('a').url)).members.length === 3 ? true : undefined));
}, 120_000);

afterAll(async () => {
  await cluster.destroy();
}, 60_000);

const remote = (replicas: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas, ...extra });
const alive = (): string[] => [...cluster.nodes.values()].filter((n) => n.proc.exitCode === null && n.proc.signalCode === null).map((n) => n.name);
const urlOf = (name: string): string => cluster.node(name).url;

async function leader(): Promise<string> {
  return until('a leader', async () => {
    const v = await clusterView(urlOf(alive()[0] ?? 'a'));
    return v.leader !== undefined && alive().includes(v.leader) ? v.leader : undefined;
  });
}

/** Which node holds each replica of `name` (as node `from` sees the cluster). */
async function holders(from: string, name: string): Promise<string[]> {
  const d = await deploymentView(urlOf(from), name);
  return (d?.replicas ?? []).filter((r) => r.state === 'serving').map((r) => r.node).sort();
}

async function servesFromAll(name: string, nodes: readonly string[]): Promise<true | undefined> {
  for (const n of nodes) if ((await chat(urlOf(n), name)).status !== 200) return undefined;
  return true;
}

async function waitMember(name: string): Promise<void> {
  await until(`${name} a member on every node`, async () => {
    for (const n of alive()) if (!(await clusterView(urlOf(n))).members.some((m) => m.name === name)) return undefined;
    return true;
  });
}

describe('cluster of three nodes on etcd', () => {
  it('a deployment applied on one node serves from all, spread across nodes', async () => {
    const t0 = performance.now();
    const res = await putDeployment(urlOf('a'), 'gpt', remote(3));
    expect(res.status).toBe(200);
    const tAccepted = performance.now() - t0;
    await until('gpt serving from a, b and c', () => servesFromAll('gpt', NAMES));
    const tServe = performance.now() - t0;
    console.log(`[cluster] apply on a -> accepted ${tAccepted.toFixed(0)} ms; serving from a, b and c ${tServe.toFixed(0)} ms`);
    // One replica per node, and every node sees all three.
    for (const n of NAMES) expect(await until(`3 replicas seen by ${n}`, async () => { const h = await holders(n, 'gpt'); return h.length === 3 ? h : undefined; })).toEqual(['a', 'b', 'c']);
    // Two single-replica deployments land on different nodes; the others forward to them.
    for (const name of ['solo1', 'solo2']) expect((await putDeployment(urlOf('b'), name, remote(1))).status).toBe(200);
    const h1 = await until('solo1 placed', async () => { const h = await holders('c', 'solo1'); return h.length === 1 ? h : undefined; });
    const h2 = await until('solo2 placed', async () => { const h = await holders('c', 'solo2'); return h.length === 1 ? h : undefined; });
    expect(h1[0]).not.toBe(h2[0]);
    for (const n of NAMES) {
      expect((await chat(urlOf(n), 'solo1')).status).toBe(200);
      expect((await chat(urlOf(n), 'solo2')).status).toBe(200);
    }
    // /v1/models lists catalog deployments on a node holding none of their replicas.
    const models = (await (await fetch(`${urlOf('c')}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id).sort()).toEqual(['gpt', 'solo1', 'solo2']);
  });

  it('streams across nodes, and a client that goes away cancels the remote work', async () => {
    const holder = (await holders('a', 'solo1'))[0] ?? '';
    const other = NAMES.find((n) => n !== holder) ?? 'a';
    cluster.mock.setDefault({ chunkDelayMs: 20 });
    try {
      const res = await fetch(`${urlOf(other)}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'solo1', stream: true, max_tokens: 12, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      const data = text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => b.slice(6));
      expect(data.at(-1)).toBe('[DONE]');
      expect(data.length).toBeGreaterThan(5);
      // A long stream (400 words x 50 ms = 20 s) read for one chunk, then dropped.
      cluster.mock.setDefault({ chunkDelayMs: 50 });
      const ac = new AbortController();
      const long = await fetch(`${urlOf(other)}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
        body: JSON.stringify({ model: 'solo1', stream: true, max_tokens: 400, messages: [{ role: 'user', content: 'hi' }] }),
      });
      const reader = long.body?.getReader();
      await reader?.read();
      const busy = async (): Promise<number> => ((await deploymentView(urlOf(holder), 'solo1'))?.replicas as unknown as { node: string; load: { outstanding: number } }[]).filter((r) => r.node === holder).reduce((a, r) => a + r.load.outstanding, 0);
      expect(await busy()).toBe(1);
      const t0 = performance.now();
      ac.abort();
      await until('the holder to drop the cancelled request', async () => ((await busy()) === 0 ? true : undefined), 10_000, 50);
      console.log(`[cluster] client disconnect on ${other} -> work on ${holder} cancelled in ${(performance.now() - t0).toFixed(0)} ms`);
    } finally {
      cluster.mock.setDefault({});
    }
  });

  it('kill -9 of a node: its replicas serve elsewhere; requests to the others never fail', async () => {
    const lead = await leader();
    const solos = await Promise.all(['solo1', 'solo2'].map(async (s) => ({ s, h: (await holders(lead, s))[0] })));
    const target = solos.find((x) => x.h !== undefined && x.h !== lead) ?? solos[0];
    const victim = target?.h ?? 'c';
    const solo = target?.s ?? 'solo1';
    const survivors = NAMES.filter((n) => n !== victim);
    const t0 = performance.now();
    await cluster.kill(victim);
    // gpt has replicas on the survivors: every request must succeed (a failed forward retries elsewhere).
    let gptRequests = 0;
    const gptFailures: number[] = [];
    let soloBack = 0;
    while (performance.now() - t0 < 60_000) {
      for (const n of survivors) {
        const g = await chat(urlOf(n), 'gpt');
        gptRequests++;
        if (g.status !== 200) gptFailures.push(g.status);
      }
      const ok = await Promise.all(survivors.map(async (n) => (await chat(urlOf(n), solo)).status === 200));
      if (ok.every(Boolean)) {
        soloBack = performance.now() - t0;
        break;
      }
      await sleep(50);
    }
    const gone = await until('victim gone from membership', async () => ((await clusterView(urlOf(survivors[0] ?? 'a'))).members.some((m) => m.name === victim) ? undefined : performance.now() - t0));
    const gptBack = await until('gpt re-placed to 3 replicas on survivors', async () => {
      const h = await holders(survivors[0] ?? 'a', 'gpt');
      return h.length === 3 && !h.includes(victim) ? performance.now() - t0 : undefined;
    });
    console.log(`[cluster] kill -9 ${victim}: membership entry gone ${gone.toFixed(0)} ms; its only ${solo} replica serving elsewhere ${soloBack.toFixed(0)} ms; gpt back to 3 replicas ${gptBack.toFixed(0)} ms; ${gptRequests} gpt requests to survivors meanwhile, ${gptFailures.length} failed`);
    expect(soloBack).toBeGreaterThan(0);
    expect(soloBack).toBeLessThan(20_000); // bound: TTL 2 s + 1 s absence + placement + load
    expect(gptFailures).toEqual([]);
    await cluster.startNode(victim);
    await waitMember(victim);
  });

  it('kill -9 of the leader: a new leader takes over and placement goes on', async () => {
    const old = await leader();
    const survivors = NAMES.filter((n) => n !== old);
    const t0 = performance.now();
    await cluster.kill(old);
    const newLeader = await until('a new leader', async () => {
      const v = await clusterView(urlOf(survivors[0] ?? 'a'));
      return v.leader !== undefined && v.leader !== old ? v.leader : undefined;
    });
    const tLeader = performance.now() - t0;
    expect(survivors).toContain(newLeader);
    // Placement goes on: a new deployment through the other survivor, and the old leader's replicas re-placed.
    const via = survivors.find((n) => n !== newLeader) ?? newLeader;
    const tPut = performance.now();
    expect((await putDeployment(urlOf(via), 'after-leader', remote(2))).status).toBe(200);
    await until('after-leader serving on survivors', () => servesFromAll('after-leader', survivors));
    const tNew = performance.now() - tPut;
    const tReplaced = await until('gpt back to 3 replicas without the old leader', async () => {
      const h = await holders(newLeader, 'gpt');
      return h.length === 3 && !h.includes(old) ? performance.now() - t0 : undefined;
    });
    console.log(`[cluster] kill -9 leader ${old}: new leader ${newLeader} after ${tLeader.toFixed(0)} ms; new deployment serving ${tNew.toFixed(0)} ms after PUT; old leader's replicas re-placed ${tReplaced.toFixed(0)} ms`);
    expect(tLeader).toBeLessThan(20_000); // bound: TTL 2 s + one watch delivery
    await cluster.startNode(old);
    await waitMember(old);
  });

  it('etcd stopped for 10 s: every node keeps serving, local and forwarded; they rejoin when it returns', async () => {
    await until('gpt on all three nodes again', async () => ((await holders('a', 'gpt')).length === 3 ? true : undefined));
    await until('solo deployments serving', async () => ((await holders('a', 'solo1')).length === 1 && (await holders('a', 'solo2')).length === 1 ? true : undefined));
    const models = ['gpt', 'solo1', 'solo2'];
    await cluster.etcd.stop();
    const t0 = performance.now();
    let requests = 0;
    const failures: string[] = [];
    while (performance.now() - t0 < 10_000) {
      for (const n of NAMES) {
        for (const m of models) {
          const r = await chat(urlOf(n), m);
          requests++;
          if (r.status !== 200) failures.push(`${n}/${m}: ${String(r.status)} ${JSON.stringify((r.body.error as { message?: unknown } | undefined)?.message)}`);
        }
      }
    }
    const sessions = await Promise.all(NAMES.map(async (n) => (await clusterView(urlOf(n))).session));
    const tRestart = performance.now();
    await cluster.etcd.start();
    const etcdUp = performance.now() - tRestart;
    // Requests keep succeeding while the nodes re-establish their sessions.
    let during = 0;
    const rejoin = await until('every node live and not stale, three members', async () => {
      for (const n of NAMES) {
        for (const m of models) {
          const r = await chat(urlOf(n), m);
          during++;
          if (r.status !== 200) failures.push(`after restart ${n}/${m}: ${String(r.status)} ${JSON.stringify((r.body.error as { message?: unknown } | undefined)?.message)}`);
        }
      }
      for (const n of NAMES) {
        const v = await clusterView(urlOf(n));
        if (v.session !== 'live' || v.stale || v.members.length !== 3 || v.leader === undefined) return undefined;
      }
      return performance.now() - tRestart;
    });
    console.log(`[cluster] etcd down 10 s: ${requests} requests on 3 nodes, ${failures.length} failed; sessions at the end of the outage: ${sessions.join(', ')}; etcd back in ${etcdUp.toFixed(0)} ms, all nodes live again ${rejoin.toFixed(0)} ms after restart (${during} more requests meanwhile)`);
    expect(sessions.every((s) => s === 'lost')).toBe(true);
    expect(failures).toEqual([]);
    // Placement works again after the outage. Until the leader has its new session an admin
    // write answers 503 (retryable), so it is retried within the wait.
    const statuses: number[] = [];
    await until('after-etcd accepted', async () => {
      const st = (await putDeployment(urlOf('c'), 'after-etcd', remote(1))).status;
      statuses.push(st);
      return st === 200 ? true : undefined;
    });
    expect(statuses.every((st) => st === 200 || st === 503)).toBe(true);
    await until('after-etcd serving everywhere', () => servesFromAll('after-etcd', NAMES));
  });

  it('a budget holds across nodes within the sync bound', async () => {
    const MAX = 1000;
    const SYNC_S = 0.2;
    const WATCH_S = 0.1;
    const PER_NODE = 2;
    expect((await putDeployment(urlOf('a'), 'budgeted', remote(3, { budget: { window: '1d', maxTokens: MAX } }))).status).toBe(200);
    await until('budgeted on all nodes', () => servesFromAll('budgeted', NAMES));
    // The probes above spent some; what the cluster admitted is measured from the first request on.
    cluster.mock.setDefault({ latencyMs: 40 });
    const used = new Map<string, number>(NAMES.map((n) => [n, 0]));
    let estimate = 0;
    const t0 = performance.now();
    try {
      await Promise.all(NAMES.flatMap((n) => Array.from({ length: PER_NODE }, async () => {
        for (;;) {
          const r = await chat(urlOf(n), 'budgeted', { max_tokens: 16 });
          if (r.status === 429) return;
          expect(r.status).toBe(200);
          const usage = r.body.usage as { total_tokens: number; prompt_tokens: number };
          estimate = Math.max(estimate, usage.prompt_tokens + 16);
          used.set(n, (used.get(n) ?? 0) + usage.total_tokens);
        }
      })));
    } finally {
      cluster.mock.setDefault({});
    }
    const seconds = (performance.now() - t0) / 1000;
    const total = [...used.values()].reduce((a, b) => a + b, 0);
    const rate = Math.max(...used.values()) / seconds; // tokens/s of the busiest node
    // The probes spent before t0 count against MAX too, so `total` under-counts the spend: the bound is checked on total.
    const bound = MAX + (SYNC_S + WATCH_S) * rate * (NAMES.length - 1) + NAMES.length * PER_NODE * estimate;
    console.log(`[cluster] budget maxTokens ${MAX} on 3 nodes (sync ${SYNC_S * 1000} ms): admitted ${total} tokens (${[...used].map(([n, u]) => `${n} ${u}`).join(', ')}) in ${seconds.toFixed(1)} s at up to ${rate.toFixed(0)} tokens/s per node; bound ${bound.toFixed(0)}`);
    expect(total).toBeLessThanOrEqual(bound);
    // Without the shared counters each node would admit MAX on its own.
    expect(total).toBeLessThan(2 * MAX);
    // Once the last totals have synced, every node refuses.
    await sleep(2 * SYNC_S * 1000 + WATCH_S * 1000);
    for (const n of NAMES) expect((await chat(urlOf(n), 'budgeted', { max_tokens: 16 })).status).toBe(429);
  });

  it('a rate limit holds across nodes within the sync bound', async () => {
    const RPM = 12;
    const SYNC_S = 0.2;
    const WATCH_S = 0.1;
    const LATENCY_S = 0.2;
    expect((await putDeployment(urlOf('a'), 'limited', remote(3, { onCapacityExhausted: 'reject', remote: { rpm: RPM, maxRetries: 0 } }))).status).toBe(200);
    let admitted = 0;
    let refused = 0;
    // Wait until every node serves it; these probes count against the minute too.
    await until('limited on all nodes', async () => {
      for (const n of NAMES) {
        const r = await chat(urlOf(n), 'limited');
        if (r.status === 200) admitted++;
        else if (r.status === 429) return true;
        else return undefined;
      }
      return true;
    });
    cluster.mock.setDefault({ latencyMs: LATENCY_S * 1000 });
    const t0 = performance.now();
    try {
      // One client per node, each sending until its node refuses twice in a row with a rate limit.
      await Promise.all(NAMES.map(async (n) => {
        let streak = 0;
        while (streak < 2) {
          const r = await chat(urlOf(n), 'limited');
          if (r.status === 200) {
            admitted++;
            streak = 0;
          } else {
            expect(r.status).toBe(429);
            expect(r.headers.get('retry-after')).not.toBeNull();
            refused++;
            streak++;
          }
        }
      }));
    } finally {
      cluster.mock.setDefault({});
    }
    const seconds = (performance.now() - t0) / 1000;
    // One client per node, each request at least LATENCY_S long: at most 1 / LATENCY_S admissions per second per node.
    const bound = RPM + (SYNC_S + WATCH_S) * (1 / LATENCY_S) * (NAMES.length - 1);
    console.log(`[cluster] rpm ${RPM} on 3 nodes (sync ${SYNC_S * 1000} ms): ${admitted} admitted, ${refused} refused in ${seconds.toFixed(1)} s; bound ${bound.toFixed(1)}`);
    expect(admitted).toBeLessThanOrEqual(bound);
    // Each node alone would admit RPM: sharing is what keeps the cluster near one RPM.
    expect(admitted).toBeLessThan(2 * RPM);
    expect(refused).toBeGreaterThan(0);
  }, 120_000);
});
