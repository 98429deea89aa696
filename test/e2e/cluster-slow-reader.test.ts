// Back-pressure across a forwarded stream (docs/flow-control.md): a two-node cluster
// on a real etcd (the real CLI), a local deployment (stories260K) whose one replica
// lives on node B, clients on node A, so every request is forwarded A -> B over HTTP/2.
// A slow client on A pauses its stream: A stops reading the forwarded stream, HTTP/2
// flow control holds B's writes, and B pauses the sequence. What either node holds
// for the slow stream stays bounded (inference_gateway_stream_buffered_peak_bytes on
// both), a fast stream of the same deployment completes with every token meanwhile,
// and the slow one completes once read.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import { MODEL } from '../support/cli.js';
import { type Node, TestCluster, deploymentView, until } from '../support/cluster.js';
import { metricValue } from '../support/harness.js';
import { Tls, parseStream, readFast, request, slowReader, summary } from '../support/slowReader.js';

const BOUND = 1024 * 1024;
const TOKENS = 2000;

let cluster: TestCluster;
let tls: Tls;
let a: Node;
let b: Node;
let client: OpenAI;

beforeAll(async () => {
  cluster = await TestCluster.start();
  tls = new Tls();
  // B alone first, so the replica is placed there; A (HTTPS for its clients) joins after.
  b = await cluster.startNode('b', [
    'deployments:',
    `  - { name: stories, runtime: llama, model: "${MODEL}", replicas: 1, engine: { contextSize: 16384, maxSequences: 4, threads: 1 } }`,
  ]);
  await until('the replica serving on b', async () => {
    const d = await deploymentView(b.url, 'stories');
    return d?.replicas.some((r) => r.state === 'serving' && r.node === 'b') === true ? true : undefined;
  }, 120_000);
  cluster.serverKeys = `tls: { certFile: "${tls.cert.certFile}", keyFile: "${tls.cert.keyFile}" }`;
  a = await cluster.startNode('a');
  client = tls.client(a.url);
  // A routes to B's replica once its table holds it.
  await until('a forwarding to b', async () => {
    const res = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }).catch(() => undefined);
    return res === undefined ? undefined : true;
  }, 60_000, 200);
}, 180_000);

afterAll(async () => {
  await cluster.destroy();
  await tls.close();
}, 60_000);

describe('a slow reader of a forwarded stream', () => {
  it('pauses the sequence on the owner node: both nodes hold little, the other stream completes, and it completes once read', { timeout: 120_000 }, async () => {
    const d = await deploymentView(b.url, 'stories');
    expect(d?.replicas.filter((r) => r.state === 'serving').map((r) => r.node)).toEqual(['b']);
    const slow = slowReader(a.url, tls.ca, request('stories', TOKENS));
    await slow.started;
    await until('the slow stream held on a', async () => ((await tls.metric(a.url, 'inference_gateway_streams_held')) >= 1 ? true : undefined), 60_000);
    const fast = await readFast(client, 'stories', TOKENS);
    expect(fast).toEqual({ tokens: TOKENS, finish: 'length', usage: TOKENS });
    const peakA = await tls.metric(a.url, 'inference_gateway_stream_buffered_peak_bytes');
    const peakB = await metricValue(b.url, 'inference_gateway_stream_buffered_peak_bytes', {});
    process.stdout.write(`slow reader (forwarded): peak on a ${peakA} bytes, on b ${peakB} bytes\n`);
    expect(peakA).toBeGreaterThan(0);
    expect(peakA).toBeLessThan(BOUND);
    expect(peakB).toBeGreaterThan(0);
    expect(peakB).toBeLessThan(BOUND);
    expect(await tls.metric(a.url, 'inference_gateway_streams_held')).toBe(1);
    // The forwarded run on B is held too: its peer (A) stopped reading it.
    expect(await metricValue(b.url, 'inference_gateway_streams_held', {})).toBe(1);
    // Read at last: it resumes on both nodes and completes, nothing lost.
    slow.read();
    const end = await slow.ended;
    expect(end.complete).toBe(true);
    const { chunks, done } = parseStream(end.text);
    expect(done).toBe(true);
    expect(summary(chunks)).toEqual({ tokens: TOKENS, finish: 'length', usage: TOKENS });
  });
});
