// OpenTelemetry traces end to end (docs/tracing.md): the gateway exports OTLP/HTTP
// to a real receiver started here, which decodes what arrives. A request that
// retried on its primary and then fell back gives the span tree checked below,
// under the client's own traceparent; the upstream sees the trace context of the
// very call span it answered; and no secret appears in anything exported.

import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlpReceiver.js';

const UPSTREAM_KEY = `sk-upstream-${randomBytes(8).toString('hex')}`;
const CLIENT_KEY = `sk-client-${randomBytes(8).toString('hex')}`;
const open: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** `stop()` closes the gateway once (flushing its spans to the receiver). */
interface Setup { primary: MockUpstream; backup: MockUpstream; receiver: OtlpReceiver; server: Server; stop(): Promise<void> }

async function setup(traces: Record<string, unknown> | undefined): Promise<Setup> {
  const receiver = await startOtlpReceiver();
  open.push(receiver);
  const primary = await startMockUpstream({ port: 0, apiKey: UPSTREAM_KEY });
  open.push(primary);
  const backup = await startMockUpstream({ port: 0, apiKey: UPSTREAM_KEY });
  open.push(backup);
  process.env.TRACING_TEST_CLIENT_KEY = CLIENT_KEY;
  const config = parseConfig({
    server: { port: 0 },
    auth: { apiKeys: [{ name: 'team', keyEnv: 'TRACING_TEST_CLIENT_KEY' }] },
    ...(traces === undefined ? {} : { telemetry: { traces: { endpoint: receiver.url, serviceName: 'inference-test', batchDelayMs: 50, ...traces } } }),
    deployments: [
      { name: 'gpt', runtime: 'openai', endpoint: primary.url, model: 'gpt-4o-mini', replicas: 2, remote: { maxRetries: 1, retryBaseMs: 10 }, fallbacks: ['backup'] },
      { name: 'backup', runtime: 'openai', endpoint: backup.url, model: 'gpt-4o-mini', replicas: 1 },
    ],
  });
  const server = await serve(config, { credentials: () => ({ apiKey: UPSTREAM_KEY }) });
  let closing: Promise<void> | undefined;
  const stop = (): Promise<void> => (closing ??= server.close());
  open.push({ close: stop });
  return { primary, backup, receiver, server, stop };
}

function client(s: Setup, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${s.server.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0, defaultHeaders: headers });
}

function childrenOf(spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
}

function one(spans: ReceivedSpan[], pred: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(pred);
  if (found.length !== 1) throw new Error(`expected one ${what}, found ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0] as ReceivedSpan;
}

describe('OpenTelemetry traces', () => {
  it('a request that retried and fell back: the span tree under the client traceparent, propagated upstream, no secrets', async () => {
    const s = await setup({});
    s.primary.setDefault({ status: 500 });
    const traceId = randomBytes(16).toString('hex');
    const clientSpan = randomBytes(8).toString('hex');
    const r = await client(s, { traceparent: `00-${traceId}-${clientSpan}-01` }).chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hello' }], max_tokens: 3 });
    expect(r.model).toBe('backup');
    // Two replicas of the primary, each tried twice (one retry), then the fallback once.
    expect(s.primary.stats().requests).toBe(4);
    expect(s.backup.stats().requests).toBe(1);
    const lastPrimary = s.primary.stats().lastHeaders;
    const backupHeaders = s.backup.stats().lastHeaders;
    await s.stop();
    const spans = s.receiver.spans.filter((x) => x.traceId === traceId);

    // The request span continues the client's trace.
    const root = one(spans, (x) => x.parentSpanId === clientSpan, 'request span');
    expect(root).toMatchObject({ name: 'chat gpt', kind: 2, service: 'inference-test' });
    expect(root.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt',
      'gen_ai.request.max_tokens': 3,
      'gen_ai.response.model': 'backup',
      'gen_ai.provider.name': 'openai',
      'gen_ai.response.finish_reasons': ['length'],
      'inference.deployment': 'backup',
      'inference.retries': 1,
    });
    expect(root.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    expect(root.attributes['gen_ai.usage.output_tokens']).toBe(3);
    expect(root.status).not.toBe(2);

    // The primary (failed), then the fallback (served).
    const [primary, fallback, ...rest] = childrenOf(spans, root);
    expect(rest).toEqual([]);
    expect(primary).toMatchObject({ name: 'deployment gpt', status: 2, attributes: { 'inference.fallback': false, 'error.type': 'upstream_error' } });
    expect(fallback).toMatchObject({ name: 'fallback backup', attributes: { 'inference.fallback': true } });
    if (primary === undefined || fallback === undefined) throw new Error('unreachable');

    // Primary: route, attempt on one replica, route (excluding it), attempt on the other.
    const steps = childrenOf(spans, primary);
    expect(steps.map((x) => x.name)).toEqual(['route', 'attempt gpt', 'route', 'attempt gpt']);
    const [route1, attempt1, route2, attempt2] = steps as [ReceivedSpan, ReceivedSpan, ReceivedSpan, ReceivedSpan];
    expect(route1.attributes['inference.excluded']).toBe(0);
    expect(route2.attributes['inference.excluded']).toBe(1);
    expect(attempt1.attributes['inference.replica.id']).toBe(route1.attributes['inference.replica.id']);
    expect(attempt2.attributes['inference.replica.id']).toBe(route2.attributes['inference.replica.id']);
    expect(attempt1.attributes['inference.replica.id']).not.toBe(attempt2.attributes['inference.replica.id']);
    for (const attempt of [attempt1, attempt2]) {
      expect(attempt.status).toBe(2);
      // Each replica retried its upstream call once: two client spans, a retry event between them.
      const calls = childrenOf(spans, attempt);
      expect(calls.map((c) => [c.name, c.kind, c.status, c.attributes['http.response.status_code']])).toEqual([
        ['POST /v1/chat/completions', 3, 2, 500],
        ['POST /v1/chat/completions', 3, 2, 500],
      ]);
      expect(calls[0]?.attributes).toMatchObject({ 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'gen_ai.provider.name': 'openai', 'error.type': 'upstream_error' });
      expect(attempt.events.map((e) => e.name)).toEqual(['retry']);
      expect(attempt.events[0]?.attributes['error.type']).toBe('upstream_error');
    }

    // Fallback: route, one attempt, one successful upstream call.
    const fb = childrenOf(spans, fallback);
    expect(fb.map((x) => x.name)).toEqual(['route', 'attempt backup']);
    const fbCalls = childrenOf(spans, fb[1] as ReceivedSpan);
    expect(fbCalls).toHaveLength(1);
    const okCall = fbCalls[0] as ReceivedSpan;
    expect(okCall).toMatchObject({ kind: 3, attributes: { 'http.response.status_code': 200 } });
    expect(okCall.status).not.toBe(2);

    // The upstream received the trace context of the very call span that reached it.
    expect(backupHeaders.traceparent).toBe(`00-${traceId}-${okCall.spanId}-01`);
    const lastFailed = childrenOf(spans, attempt2)[1] as ReceivedSpan;
    expect(lastPrimary.traceparent).toBe(`00-${traceId}-${lastFailed.spanId}-01`);

    // Every span of the request is in the client's trace and in the tree.
    expect(spans).toHaveLength(1 + 2 + 4 + 4 + 2 + 1);

    // No secret in anything exported: not the upstream key, not the client's key, no auth header attribute.
    const exported = s.receiver.bodies.join('\n');
    expect(exported.length).toBeGreaterThan(0);
    expect(exported).not.toContain(UPSTREAM_KEY);
    expect(exported).not.toContain(CLIENT_KEY);
    expect(exported.toLowerCase()).not.toContain('authorization');
    expect(exported).not.toContain('hello');
  });

  it('a request without traceparent starts a new trace; sampleRatio 0 records nothing new but still honours a sampled caller', async () => {
    const s = await setup({ sampleRatio: 0 });
    const c = client(s);
    await c.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    // Unsampled: the upstream still gets a context (so its own spans can join), with the sampled flag off.
    expect(s.primary.stats().lastHeaders.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const traceId = randomBytes(16).toString('hex');
    await client(s, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` }).chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    await s.stop();
    expect(new Set(s.receiver.spans.map((x) => x.traceId))).toEqual(new Set([traceId]));
    expect(s.receiver.spans.some((x) => x.name === 'chat gpt')).toBe(true);
  });

  it('a local generation: the engine span under the attempt, with usage and finish reason', async () => {
    const receiver = await startOtlpReceiver();
    open.push(receiver);
    const model = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');
    const server = await serve(parseConfig({
      server: { port: 0 },
      telemetry: { traces: { endpoint: receiver.url, batchDelayMs: 50 } },
      deployments: [{ name: 'stories', runtime: 'llama', model, replicas: 1, engine: { contextSize: 512, maxSequences: 2, threads: 1 } }],
    }));
    let closing: Promise<void> | undefined;
    const stop = (): Promise<void> => (closing ??= server.close());
    open.push({ close: stop });
    const c = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    // The model loads in the background: wait until the replica serves.
    for (let i = 0; i < 600 && !(await fetch(`${server.url}/ready`)).ok; i++) await new Promise((r) => setTimeout(r, 100));
    const r = await c.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
    await stop();
    const root = one(receiver.spans, (x) => x.name === 'text_completion stories', 'request span');
    expect(root.parentSpanId).toBe('');
    expect(root.attributes).toMatchObject({
      'gen_ai.operation.name': 'text_completion', 'gen_ai.provider.name': 'llama.cpp', 'gen_ai.response.model': 'stories',
      'gen_ai.usage.output_tokens': r.usage?.completion_tokens, 'gen_ai.usage.input_tokens': r.usage?.prompt_tokens,
    });
    const gen = one(receiver.spans, (x) => x.name === 'generate', 'generate span');
    const attempt = one(receiver.spans, (x) => x.spanId === gen.parentSpanId, 'attempt span');
    expect(attempt.name).toBe('attempt stories');
    expect(gen.attributes).toMatchObject({ 'gen_ai.usage.output_tokens': r.usage?.completion_tokens, 'gen_ai.response.finish_reasons': [r.choices[0]?.finish_reason] });
    expect(receiver.bodies.join('\n')).not.toContain('Once upon a time');
  });

  it('tracing off: no export, no trace context sent upstream', async () => {
    const s = await setup(undefined);
    await client(s, { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` }).chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    expect(s.primary.stats().lastHeaders.traceparent).toBeUndefined();
    await s.stop();
    expect(s.receiver.bodies).toEqual([]);
  });
});
