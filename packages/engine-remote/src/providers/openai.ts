// The OpenAI-compatible provider: translates internal requests to the wire
// format of /chat/completions, /completions and /embeddings and translates the
// answers (JSON, or SSE parsed incrementally) back into chunks and Tokens. It
// always asks for usage in streams, so usage is known even when the client
// did not ask to see it.

import {
  type ChoiceResult, type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type FinishReason,
  type GenerateRequest, InferenceError, type ToolCall, type ToolCallDelta, type Tokens, type Usage,
} from '@inference/core';
import type { RemoteSession } from '../session.js';
import { SseParser } from '../sse.js';
import { classifyStatus } from '../upstreamErrors.js';
import { type CallOptions, type ChunkReader, type Json, callSignal, malformed, parseJson, post } from './http.js';

export type { CallOptions } from './http.js';

function wireMessages(req: GenerateRequest & { kind: 'chat' }): Json[] {
  return req.messages.map((m) => {
    const w: Json = { role: m.role, content: m.content };
    if (m.name !== undefined) w.name = m.name;
    if (m.toolCalls !== undefined) w.tool_calls = m.toolCalls;
    if (m.toolCallId !== undefined) w.tool_call_id = m.toolCallId;
    return w;
  });
}

export function buildBody(req: GenerateRequest, upstreamModel: string): Json {
  const s = req.sampling;
  const body: Json = { ...req.passthrough, model: upstreamModel };
  if (req.kind === 'chat') body.messages = wireMessages(req);
  else body.prompt = req.prompt;
  if (s.maxTokens !== undefined) body[req.kind === 'chat' ? 'max_completion_tokens' : 'max_tokens'] = s.maxTokens;
  if (s.temperature !== undefined) body.temperature = s.temperature;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.seed !== undefined) body.seed = s.seed;
  if (s.presencePenalty !== undefined) body.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  if (s.stop.length > 0) body.stop = s.stop;
  if (s.n !== 1) body.n = s.n;
  if (req.tools !== undefined) body.tools = req.tools;
  if (req.toolChoice !== undefined) body.tool_choice = req.toolChoice;
  if (req.responseFormat !== undefined) body.response_format = req.responseFormat;
  if (req.user !== undefined) body.user = req.user;
  if (req.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return body;
}

function headersFor(session: RemoteSession, requestId: string): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', 'x-request-id': requestId };
  if (session.credentials.apiKey !== undefined) h.authorization = `Bearer ${session.credentials.apiKey}`;
  return h;
}

const FINISH: ReadonlySet<string> = new Set(['stop', 'length', 'tool_calls', 'content_filter']);

function finishOf(v: unknown): FinishReason | undefined {
  if (v === 'function_call') return 'tool_calls';
  return typeof v === 'string' && FINISH.has(v) ? (v as FinishReason) : undefined;
}

function usageOf(v: unknown): Usage | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const u = v as Json;
  if (typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number') return undefined;
  const out: Usage = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
  const details = u.prompt_tokens_details as Json | undefined;
  if (details !== undefined && details !== null && typeof details.cached_tokens === 'number') out.cachedTokens = details.cached_tokens;
  return out;
}

class ChoiceAggregator {
  private readonly text: string[] = [];
  private readonly finish: (FinishReason | undefined)[] = [];
  private readonly tools: ToolCall[][] = [];

  addText(i: number, t: string): void {
    this.text[i] = (this.text[i] ?? '') + t;
  }

  addTools(i: number, deltas: ToolCallDelta[]): void {
    const list = (this.tools[i] ??= []);
    for (const d of deltas) {
      const call = (list[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (d.id !== undefined) call.id = d.id;
      if (d.name !== undefined) call.function.name += d.name;
      call.function.arguments += d.argumentsDelta;
    }
  }

  setFinish(i: number, f: FinishReason): void {
    this.finish[i] = f;
  }

  result(n: number): ChoiceResult[] {
    const out: ChoiceResult[] = [];
    for (let i = 0; i < n; i++) {
      const c: ChoiceResult = { index: i, text: this.text[i] ?? '', finishReason: this.finish[i] ?? 'stop' };
      const tools = this.tools[i];
      if (tools !== undefined && tools.length > 0) c.toolCalls = tools;
      out.push(c);
    }
    return out;
  }
}

function toolDeltas(v: unknown): ToolCallDelta[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const out: ToolCallDelta[] = [];
  for (const raw of v) {
    if (typeof raw !== 'object' || raw === null) continue;
    const t = raw as Json;
    const fn = (t.function ?? {}) as Json;
    const d: ToolCallDelta = { index: typeof t.index === 'number' ? t.index : 0, argumentsDelta: typeof fn.arguments === 'string' ? fn.arguments : '' };
    if (typeof t.id === 'string') d.id = t.id;
    if (typeof fn.name === 'string') d.name = fn.name;
    out.push(d);
  }
  return out;
}

export async function generate(o: CallOptions, req: GenerateRequest, sink: ChunkSink): Promise<Tokens> {
  const path = req.kind === 'chat' ? '/chat/completions' : '/completions';
  const upstreamModel = o.spec.model ?? o.spec.name;
  const { signal, done } = callSignal(o);
  try {
    const send = (read?: ChunkReader): Promise<string> => post(o, path, headersFor(o.session, o.ctx.requestId), buildBody(req, upstreamModel), signal, 'openai', read);
    return req.stream ? await readStream(req, send, sink) : readWhole(req, parseJson(await send()), sink);
  } finally {
    done();
  }
}

function readWhole(req: GenerateRequest, body: unknown, sink: ChunkSink): Tokens {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as Json).choices)) throw malformed('no choices array');
  const agg = new ChoiceAggregator();
  let n = 0;
  for (const raw of (body as Json).choices as unknown[]) {
    const c = raw as Json;
    const i = typeof c.index === 'number' ? c.index : n;
    n = Math.max(n, i + 1);
    let text = '';
    if (req.kind === 'chat') {
      const msg = (c.message ?? {}) as Json;
      text = typeof msg.content === 'string' ? msg.content : '';
      const calls = Array.isArray(msg.tool_calls) ? (msg.tool_calls as unknown[]) : [];
      const deltas = toolDeltas(calls.map((t, index) => ({ ...(t as Json), index })));
      if (deltas !== undefined) agg.addTools(i, deltas);
    } else {
      text = typeof c.text === 'string' ? c.text : '';
    }
    agg.addText(i, text);
    const f = finishOf(c.finish_reason);
    if (f !== undefined) agg.setFinish(i, f);
    sink({ index: i, text, tokens: 0 });
  }
  const usage = usageOf((body as Json).usage) ?? { promptTokens: 0, completionTokens: 0 };
  return { choices: agg.result(Math.max(n, req.sampling.n)), usage };
}

async function readStream(req: GenerateRequest, send: (read: ChunkReader) => Promise<string>, sink: ChunkSink): Promise<Tokens> {
  const parser = new SseParser();
  const agg = new ChoiceAggregator();
  let usage: Usage | undefined;
  let done = false;
  let n = req.sampling.n;
  const handle = (data: string): void => {
    if (data === '[DONE]') {
      done = true;
      return;
    }
    let chunk: Json;
    try {
      chunk = JSON.parse(data) as Json;
    } catch {
      throw malformed('invalid JSON in stream chunk');
    }
    if (typeof chunk.error === 'object' && chunk.error !== null) {
      throw classifyStatus(502, chunk, {}, 'openai');
    }
    const u = usageOf(chunk.usage);
    if (u !== undefined) usage = u;
    if (!Array.isArray(chunk.choices)) return;
    for (const raw of chunk.choices as unknown[]) {
      const c = raw as Json;
      const i = typeof c.index === 'number' ? c.index : 0;
      n = Math.max(n, i + 1);
      let text = '';
      let tools: ToolCallDelta[] | undefined;
      if (req.kind === 'chat') {
        const delta = (c.delta ?? {}) as Json;
        if (typeof delta.content === 'string') text = delta.content;
        tools = toolDeltas(delta.tool_calls);
      } else if (typeof c.text === 'string') {
        text = c.text;
      }
      const finish = finishOf(c.finish_reason);
      if (text === '' && tools === undefined && finish === undefined) continue;
      if (text !== '') agg.addText(i, text);
      if (tools !== undefined) agg.addTools(i, tools);
      if (finish !== undefined) agg.setFinish(i, finish);
      const out: { index: number; text: string; tokens: number; toolCalls?: ToolCallDelta[]; finishReason?: FinishReason } = { index: i, text, tokens: text === '' ? 0 : 1 };
      if (tools !== undefined) out.toolCalls = tools;
      if (finish !== undefined) out.finishReason = finish;
      sink(out);
    }
  };
  await send((bytes) => {
    for (const ev of parser.push(bytes)) {
      handle(ev.data);
      if (done) return true;
    }
    return false;
  });
  if (!done) for (const ev of parser.end()) handle(ev.data);
  if (!done && usage === undefined) throw new InferenceError('upstream_error', 'the upstream connection broke mid-response', { diagnostic: 'stream ended without [DONE]' });
  return { choices: agg.result(n), usage: usage ?? { promptTokens: 0, completionTokens: 0 } };
}

export async function embed(o: CallOptions, req: EmbeddingRequest): Promise<EmbeddingResult> {
  const body: Json = { model: o.spec.model ?? o.spec.name, input: req.input, encoding_format: 'float' };
  if (req.dimensions !== undefined) body.dimensions = req.dimensions;
  if (req.user !== undefined) body.user = req.user;
  const { signal, done } = callSignal(o);
  let json: unknown;
  try {
    json = parseJson(await post(o, '/embeddings', headersFor(o.session, o.ctx.requestId), body, signal, 'openai'));
  } finally {
    done();
  }
  const data = typeof json === 'object' && json !== null ? (json as Json).data : undefined;
  if (!Array.isArray(data)) throw malformed('embeddings: no data array');
  const vectors: number[][] = [];
  for (const raw of data) {
    const d = raw as Json;
    const i = typeof d.index === 'number' ? d.index : vectors.length;
    if (!Array.isArray(d.embedding) || !d.embedding.every((x) => typeof x === 'number')) throw malformed('embeddings: vector is not numeric');
    vectors[i] = d.embedding;
  }
  const usage = (json as Json).usage as Json | undefined;
  return { vectors, promptTokens: typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : 0 };
}
