// Traces across nodes (docs/tracing.md): two gateway processes on a real etcd,
// both exporting to one real OTLP receiver. A request with a client traceparent
// sent to the node that does not hold the replica is forwarded; the owner node
// continues the same trace under the forwarding span, and the upstream receives
// the context of the owner's call span.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, chat, clusterView, deploymentView, putDeployment, until } from '../support/cluster.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlpReceiver.js';

let cluster: TestCluster;
let receiver: OtlpReceiver;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  cluster = await TestCluster.start();
  for (const n of ['a', 'b']) {
    await cluster.startNode(n, [`telemetry: { traces: { endpoint: '${receiver.url}', serviceName: node-${n}, batchDelayMs: 50 } }`]);
  }
  await until('two members', async () => ((await clusterView(cluster.node('a').url)).members.length === 2 ? true : undefined));
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
  await receiver?.close();
}, 60_000);

describe('traces across nodes', () => {
  it('the forwarded hop continues the client trace on the owner node, down to the upstream call', async () => {
    expect((await putDeployment(cluster.node('a').url, 'solo', { runtime: 'openai', endpoint: cluster.mock.url, model: 'gpt-4o-mini', replicas: 1 })).status).toBe(200);
    const owner = await until('solo placed and serving', async () => {
      const d = await deploymentView(cluster.node('a').url, 'solo');
      return d?.replicas.find((r) => r.state === 'serving')?.node;
    });
    const entry = owner === 'a' ? 'b' : 'a';
    await until(`${entry} routes solo`, async () => ((await chat(cluster.node(entry).url, 'solo')).status === 200 ? true : undefined));

    const traceId = randomBytes(16).toString('hex');
    const clientSpan = randomBytes(8).toString('hex');
    const r = await chat(cluster.node(entry).url, 'solo', {}, { traceparent: `00-${traceId}-${clientSpan}-01` });
    expect(r.status).toBe(200);
    const upstream = cluster.mock.stats().lastHeaders;
    const inTrace = (s: ReceivedSpan[]): ReceivedSpan[] => s.filter((x) => x.traceId === traceId);
    await receiver.waitFor((s) => inTrace(s).some((x) => x.name === 'chat solo') && inTrace(s).some((x) => x.name.startsWith('POST ')));
    const spans = inTrace(receiver.spans);

    const root = spans.find((x) => x.name === 'chat solo');
    expect(root).toMatchObject({ parentSpanId: clientSpan, service: `node-${entry}` });
    const forward = spans.find((x) => x.name === `forward ${owner}`);
    expect(forward).toMatchObject({ kind: 3, service: `node-${entry}`, attributes: { 'inference.node': owner } });
    // The forward span hangs under the entry node's attempt, under its deployment span, under the request.
    const attempt = spans.find((x) => x.spanId === forward?.parentSpanId);
    const dep = spans.find((x) => x.spanId === attempt?.parentSpanId);
    expect(attempt?.name).toBe('attempt solo');
    expect(dep?.parentSpanId).toBe(root?.spanId);

    // On the owner: the forwarded run is the child of the forward span, and the upstream call its child.
    const run = spans.find((x) => x.name === 'forwarded run');
    expect(run).toMatchObject({ kind: 2, service: `node-${owner}`, parentSpanId: forward?.spanId });
    const call = spans.find((x) => x.name === 'POST /v1/chat/completions');
    expect(call).toMatchObject({ service: `node-${owner}`, parentSpanId: run?.spanId, attributes: { 'http.response.status_code': 200 } });
    expect(upstream.traceparent).toBe(`00-${traceId}-${call?.spanId ?? ''}-01`);
    // The cluster secret header (when configured) and keys never travel in spans.
    expect(receiver.bodies.join('\n').toLowerCase()).not.toContain('x-inference-cluster-secret');
  });
});
