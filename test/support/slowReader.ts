// Slow and fast readers of a streamed chat completion, for back-pressure tests
// (docs/flow-control.md): a slow one over HTTP/2 (over TLS, ALPN h2) that pauses its
// stream after the first bytes (HTTP/2 flow control then holds the server's writes
// after the stream's window, whatever the kernel's TCP buffers are), a fast one with
// the openai SDK, and the gateway's metrics read over the same TLS.

import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterEach } from 'vitest';
import { Pki } from './pki.js';

export interface ChunkJson {
  choices: { delta?: { content?: string }; logprobs?: { content?: unknown[] } | null; finish_reason?: string | null }[];
  usage?: { completion_tokens: number } | null;
}

/** A streamed chat completion over HTTP/2, paused after its first bytes until `read()`. */
export class SlowReader {
  private readonly session: ClientHttp2Session;
  private readonly req: ClientHttp2Stream;
  private text = '';
  readonly started: Promise<void>;
  readonly ended: Promise<{ complete: boolean; text: string }>;

  constructor(url: string, ca: Buffer, body: unknown, path = '/v1/chat/completions') {
    let onStart: () => void = () => undefined;
    this.started = new Promise((r) => { onStart = r; });
    this.session = http2.connect(url, { ca });
    this.session.on('error', () => undefined);
    const req = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
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
export function slowReader(url: string, ca: Buffer, body: unknown, path?: string): SlowReader {
  const r = new SlowReader(url, ca, body, path);
  readers.add(r);
  return r;
}
afterEach(() => {
  for (const r of readers) r.destroy();
  readers.clear();
});

export function parseStream(text: string): { chunks: ChunkJson[]; done: boolean } {
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
export function summary(chunks: ChunkJson[]): { tokens: number; finish: string | undefined; usage: number | undefined } {
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

export const request = (model: string, tokens: number): Record<string, unknown> => ({
  model,
  messages: [{ role: 'user', content: 'Once upon a time' }],
  max_tokens: tokens,
  temperature: 0,
  logprobs: true,
  top_logprobs: 20,
  stream: true,
  stream_options: { include_usage: true },
});

/** TLS for the gateway, and clients that trust it. */
export class Tls {
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
export async function readFast(client: OpenAI, model: string, tokens: number): Promise<{ tokens: number; finish: string | undefined; usage: number | undefined }> {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: tokens,
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
