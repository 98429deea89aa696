// A slow reader holds back only its own stream (docs/flow-control.md): one client
// stops reading its stream while another stream of the same deployment is read at
// full speed. The fast one completes with every token; what the gateway holds for the
// slow one stays bounded (inference_gateway_stream_buffered_peak_bytes); the slow one
// then completes once read (local: stories260K in the real engine host) or is ended by
// the stall timeout, which frees its upstream call (remote: the mock upstream; also
// for the Anthropic Messages and the Responses streams).
// Every chunk carries 20 alternatives per token, so a stream that is not held back
// puts megabytes into the gateway's buffers long before the fast one is done.
//
// The slow client speaks HTTP/2 and pauses its stream (test/support/slowReader.ts):
// loopback TCP autotuning can absorb tens of MB of an HTTP/1.1 response nobody reads.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { waitFor } from '../support/deployments.js';
import { Tls, parseStream, readFast, request, slowReader, summary } from '../support/slowReader.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');
/** What a held-back stream may hold in the gateway: a socket's buffers and the steps produced before the pause took effect. */
const BOUND = 1024 * 1024;
const TOKENS = 2000;
/** The mock's alternatives are shorter than the model's: more tokens for as many bytes. */
const REMOTE_TOKENS = 8000;

describe('a slow reader on a local deployment', () => {
  let server: Server;
  let client: OpenAI;
  let tls: Tls;
  beforeAll(async () => {
    tls = new Tls();
    server = await serve(parseConfig({
      server: { port: 0, tls: tls.cert },
      deployments: [{ name: 'local', runtime: 'llama', model: MODEL, replicas: 1, engine: { contextSize: 16384, maxSequences: 4, threads: 1 } }],
    }));
    await server.runtime.settled();
    client = tls.client(server.url);
  });
  afterAll(async () => {
    await server.close();
    await tls.close();
  });

  it('holds back only its own sequence: the other completes, its buffer stays bounded, and it completes once read', { timeout: 120_000 }, async () => {
    const slow = slowReader(server.url, tls.ca, request('local', TOKENS));
    await slow.started;
    // The gateway sees the slow client fall behind and pauses its flow.
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_streams_held', {})) >= 1, 60_000, 'the slow stream held');
    const fast = await readFast(client, 'local', TOKENS);
    expect(fast.finish).toBe('length');
    expect(fast.usage).toBe(TOKENS);
    expect(fast.tokens).toBe(TOKENS);
    // The slow stream's sequence decoded alongside until the pause reached the engine, no further.
    const peak = await tls.metric(server.url, 'inference_gateway_stream_buffered_peak_bytes', {});
    const buffered = await tls.metric(server.url, 'inference_gateway_stream_buffered_bytes', {});
    process.stdout.write(`slow reader (local): peak ${peak} bytes, buffered now ${buffered} bytes\n`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(BOUND);
    expect(await tls.metric(server.url, 'inference_gateway_streams_held', {})).toBe(1);
    // Read at last: it resumes and completes, nothing lost.
    slow.read();
    const end = await slow.ended;
    expect(end.complete).toBe(true);
    const { chunks, done } = parseStream(end.text);
    expect(done).toBe(true);
    expect(summary(chunks)).toEqual({ tokens: TOKENS, finish: 'length', usage: TOKENS });
    expect(await tls.metric(server.url, 'inference_gateway_stream_stalls_total', {})).toBe(0);
  });
});

describe('a slow reader on a remote deployment', () => {
  let mock: MockUpstream;
  let server: Server;
  let client: OpenAI;
  let tls: Tls;
  beforeAll(async () => {
    tls = new Tls();
    mock = await startMockUpstream({ port: 0 });
    server = await serve(parseConfig({
      server: { port: 0, streamStallMs: 3000, tls: tls.cert },
      deployments: [{ name: 'gpt', runtime: 'openai', endpoint: mock.url, model: 'gpt-4o-mini', replicas: 1 }],
    }));
    await server.runtime.settled();
    client = tls.client(server.url);
  });
  afterAll(async () => {
    await server.close();
    await mock.close();
    await tls.close();
  });

  it('holds back only its own upstream read: the other completes, its buffer stays bounded, and the stall timeout ends it', { timeout: 120_000 }, async () => {
    const slow = slowReader(server.url, tls.ca, request('gpt', REMOTE_TOKENS));
    await slow.started;
    const fast = await readFast(client, 'gpt', REMOTE_TOKENS);
    expect(fast.finish).toBe('length');
    expect(fast.usage).toBe(REMOTE_TOKENS);
    expect(fast.tokens).toBe(REMOTE_TOKENS);
    // Never read: the stall timeout ends the stream, and its upstream call is freed.
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_stream_stalls_total')) === 1, 60_000, 'the stall timeout');
    await waitFor(() => mock.stats().inFlight === 0, 30_000, 'the upstream call freed');
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_requests_total', { deployment: 'gpt', outcome: 'cancelled' })) === 1, 30_000, 'the request counted as cancelled');
    // Reading now, the client finds its stream cut short: no [DONE], far from all tokens.
    slow.read();
    const end = await slow.ended;
    const cut = parseStream(end.text);
    expect(cut.done).toBe(false);
    expect(summary(cut.chunks).tokens).toBeLessThan(REMOTE_TOKENS);
    const peak = await tls.metric(server.url, 'inference_gateway_stream_buffered_peak_bytes', {});
    process.stdout.write(`slow reader (remote): peak ${peak} bytes\n`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(BOUND);
    expect(await tls.metric(server.url, 'inference_gateway_stream_buffered_bytes', {})).toBe(0);
  });

  it('holds back an Anthropic Messages stream the same way', { timeout: 120_000 }, async () => {
    const stalls = await tls.metric(server.url, 'inference_gateway_stream_stalls_total');
    const cancelled = await tls.metric(server.url, 'inference_gateway_requests_total', { deployment: 'gpt', outcome: 'cancelled' });
    // About 4 MB of events: far past the bound unless the upstream read pauses.
    const body = { model: 'gpt', max_tokens: 30_000, messages: [{ role: 'user', content: 'hi' }], stream: true };
    const slow = slowReader(server.url, tls.ca, body, '/v1/messages');
    await slow.started;
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_stream_stalls_total')) === stalls + 1, 60_000, 'the stall timeout');
    await waitFor(() => mock.stats().inFlight === 0, 30_000, 'the upstream call freed');
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_requests_total', { deployment: 'gpt', outcome: 'cancelled' })) === cancelled + 1,
      30_000, 'the request counted as cancelled');
    slow.read();
    const end = await slow.ended;
    expect(end.text).toContain('event: message_start');
    expect(end.text).not.toContain('event: message_stop');
    const peak = await tls.metric(server.url, 'inference_gateway_stream_buffered_peak_bytes');
    process.stdout.write(`slow reader (remote, messages): peak ${peak} bytes\n`);
    expect(peak).toBeLessThan(BOUND);
  });

  it('holds back a Responses stream the same way', { timeout: 120_000 }, async () => {
    const stalls = await tls.metric(server.url, 'inference_gateway_stream_stalls_total');
    const body = { model: 'gpt', input: 'hi', max_output_tokens: 30_000, stream: true };
    const slow = slowReader(server.url, tls.ca, body, '/v1/responses');
    await slow.started;
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_stream_stalls_total')) === stalls + 1, 60_000, 'the stall timeout');
    await waitFor(() => mock.stats().inFlight === 0, 30_000, 'the upstream call freed');
    slow.read();
    const end = await slow.ended;
    expect(end.text).toContain('response.created');
    expect(end.text).not.toContain('response.completed');
    const peak = await tls.metric(server.url, 'inference_gateway_stream_buffered_peak_bytes');
    process.stdout.write(`slow reader (remote, responses): peak ${peak} bytes\n`);
    expect(peak).toBeLessThan(BOUND);
  });
});
