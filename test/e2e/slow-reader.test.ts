// A slow reader holds back only its own stream (docs/flow-control.md): one client
// stops reading its stream while another stream of the same deployment is read at
// full speed. The fast one completes with every token; what the gateway holds for the
// slow one stays bounded (inference_gateway_stream_buffered_peak_bytes); the slow one
// then completes once read (local: stories260K in the real engine host) or is ended by
// the stall timeout, which frees its upstream call (remote: the mock upstream).
// Every chunk carries 20 alternatives per token, so a stream that is not held back
// puts megabytes into the gateway's buffers long before the fast one is done.
//
// The slow client speaks HTTP/2 (over TLS, ALPN h2) and pauses its stream: HTTP/2
// flow control then stops the gateway's socket after the stream's window (64 KiB),
// whatever the kernel's TCP buffers are (loopback autotuning can absorb tens of MB of
// an HTTP/1.1 response that nobody reads). The fast client is the openai SDK.

import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { type Server, parseConfig, serve } from '@inference/gateway';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { waitFor } from '../support/deployments.js';
import { Pki } from '../support/pki.js';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'stories260K.gguf');
/** What a held-back stream may hold in the gateway: a socket's buffers and the steps produced before the pause took effect. */
const BOUND = 512 * 1024;
const TOKENS = 2000;

interface ChunkJson {
  choices: { delta?: { content?: string }; logprobs?: { content?: unknown[] } | null; finish_reason?: string | null }[];
  usage?: { completion_tokens: number } | null;
}

/** A streamed chat completion over HTTP/2, paused after its first bytes until `read()`. */
class SlowReader {
  private readonly session: ClientHttp2Session;
  private readonly req: ClientHttp2Stream;
  private text = '';
  readonly started: Promise<void>;
  readonly ended: Promise<{ complete: boolean; text: string }>;

  constructor(url: string, ca: Buffer, body: unknown) {
    let onStart: () => void = () => undefined;
    this.started = new Promise((r) => { onStart = r; });
    this.session = http2.connect(url, { ca });
    this.session.on('error', () => undefined);
    const req = this.session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
    this.req = req;
    req.setEncoding('utf8');
    this.ended = new Promise((resolve) => {
      let complete = false;
      req.once('data', (d: string) => {
        this.text += d;
        req.pause(); // the client falls behind: nothing more is read until read()
        onStart();
        req.on('data', (more: string) => { this.text += more; });
      });
      req.on('end', () => { complete = true; });
      req.on('error', () => undefined);
      req.on('close', () => {
        this.session.close();
        resolve({ complete: complete && req.rstCode === http2.constants.NGHTTP2_NO_ERROR, text: this.text });
      });
    });
    req.end(JSON.stringify(body));
  }

  read(): void {
    this.req.resume();
  }

  /** Gone for good (a failed test must not leave a stream that the server's drain waits for). */
  destroy(): void {
    this.session.destroy();
  }
}

const readers = new Set<SlowReader>();
function slowReader(url: string, ca: Buffer, body: unknown): SlowReader {
  const r = new SlowReader(url, ca, body);
  readers.add(r);
  return r;
}
afterEach(() => {
  for (const r of readers) r.destroy();
  readers.clear();
});

function parseStream(text: string): { chunks: ChunkJson[]; done: boolean } {
  const chunks: ChunkJson[] = [];
  let done = false;
  // Only whole events: a stream cut short may end inside one.
  for (const block of text.split('\n\n').slice(0, -1)) {
    if (!block.startsWith('data: ')) continue;
    const data = block.slice(6);
    if (data === '[DONE]') done = true;
    else chunks.push(JSON.parse(data) as ChunkJson);
  }
  return { chunks, done };
}

/** Tokens (logprobs entries), the finish reason and the reported usage of a stream. */
function summary(chunks: ChunkJson[]): { tokens: number; finish: string | undefined; usage: number | undefined } {
  let tokens = 0;
  let finish: string | undefined;
  let usage: number | undefined;
  for (const c of chunks) {
    for (const ch of c.choices) {
      tokens += ch.logprobs?.content?.length ?? 0;
      if (ch.finish_reason !== null && ch.finish_reason !== undefined) finish = ch.finish_reason;
    }
    if (c.usage !== null && c.usage !== undefined) usage = c.usage.completion_tokens;
  }
  return { tokens, finish, usage };
}

const request = (model: string): Record<string, unknown> => ({
  model,
  messages: [{ role: 'user', content: 'Once upon a time' }],
  max_tokens: TOKENS,
  temperature: 0,
  logprobs: true,
  top_logprobs: 20,
  stream: true,
  stream_options: { include_usage: true },
});

/** TLS for the gateway, and clients that trust it. */
class Tls {
  readonly pki = Pki.create();
  readonly caFile = this.pki.ca('ca');
  readonly cert = this.pki.leaf('ca', 'server');
  readonly ca = Pki.read(this.caFile);
  readonly dispatcher = new Agent({ connect: { ca: this.ca } });

  client(url: string): OpenAI {
    return new OpenAI({
      baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0,
      fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher: this.dispatcher } as unknown as OpenAI['fetchOptions'],
    });
  }

  /** The sum of a metric's samples (no labels asked). */
  async metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await undiciFetch(`${url}/metrics`, { dispatcher: this.dispatcher })).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (want.every((w) => line.includes(w))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return total;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
    this.pki.destroy();
  }
}

/** Reads a whole stream at full speed with the openai SDK. */
async function readFast(client: OpenAI, model: string): Promise<{ tokens: number; finish: string | undefined; usage: number | undefined }> {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: TOKENS,
    temperature: 0,
    logprobs: true,
    top_logprobs: 20,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: ChunkJson[] = [];
  for await (const c of stream) chunks.push(c as ChunkJson);
  return summary(chunks);
}

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
    const slow = slowReader(server.url, tls.ca, request('local'));
    await slow.started;
    // The gateway sees the slow client fall behind and pauses its flow.
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_streams_held', {})) >= 1, 60_000, 'the slow stream held');
    const fast = await readFast(client, 'local');
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
      server: { port: 0, streamStallMs: 1500, tls: tls.cert },
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
    const slow = slowReader(server.url, tls.ca, request('gpt'));
    await slow.started;
    const fast = await readFast(client, 'gpt');
    expect(fast.finish).toBe('length');
    expect(fast.usage).toBe(TOKENS);
    expect(fast.tokens).toBe(TOKENS);
    // Never read: the stall timeout ends the stream, and its upstream call is freed.
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_stream_stalls_total')) === 1, 60_000, 'the stall timeout');
    await waitFor(() => mock.stats().inFlight === 0, 30_000, 'the upstream call freed');
    await waitFor(async () => (await tls.metric(server.url, 'inference_gateway_requests_total', { deployment: 'gpt', outcome: 'cancelled' })) === 1, 30_000, 'the request counted as cancelled');
    // Reading now, the client finds its stream cut short: no [DONE], far from all tokens.
    slow.read();
    const end = await slow.ended;
    const cut = parseStream(end.text);
    expect(cut.done).toBe(false);
    expect(summary(cut.chunks).tokens).toBeLessThan(TOKENS);
    const peak = await tls.metric(server.url, 'inference_gateway_stream_buffered_peak_bytes', {});
    process.stdout.write(`slow reader (remote): peak ${peak} bytes\n`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(BOUND);
    expect(await tls.metric(server.url, 'inference_gateway_stream_buffered_bytes', {})).toBe(0);
  });
});
