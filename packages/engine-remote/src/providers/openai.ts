// The OpenAI-compatible provider: translates internal requests to the wire
// format of /chat/completions, /completions and /embeddings and translates the
// answers (JSON, or SSE parsed incrementally) back into chunks and Tokens. It
// always asks for usage in streams, so usage is known even when the client
// did not ask to see it.

import {
  type ChoiceResult, type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type FinishReason,
  type GenerateRequest, InferenceError, TEXT_JSON, type TokenChunk, type TokenLogprob, type ToolCall, type ToolCallDelta, type Tokens, type Usage,
} from '@inference/core';
import type { RemoteSession } from '../session.js';
import { SseParser } from '../sse.js';
import { classifyStatus } from '../upstreamErrors.js';
import { type CallOptions, type ChunkReader, type Json, malformed, parseJson, post } from './http.js';
import { PlainTextEvents } from './openaiTextEvent.js';

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
  if (req.parallelToolCalls !== undefined) body.parallel_tool_calls = req.parallelToolCalls;
  if (s.logitBias !== undefined) body.logit_bias = s.logitBias;
  if (s.logprobs === true) {
    if (req.kind === 'chat') {
      body.logprobs = true;
      if (s.topLogprobs !== undefined && s.topLogprobs > 0) body.top_logprobs = s.topLogprobs;
    } else {
      body.logprobs = s.topLogprobs ?? 0;
    }
  }
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
  private readonly reasoning: string[] = [];
  private logprobs: TokenLogprob[][] | undefined;

  addReasoning(i: number, t: string): void {
    this.reasoning[i] = (this.reasoning[i] ?? '') + t;
  }

  addLogprobs(i: number, lp: TokenLogprob[]): void {
    const all = (this.logprobs ??= []);
    const list = (all[i] ??= []);
    for (const t of lp) list.push(t);
  }

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
      const reasoning = this.reasoning[i];
      if (reasoning !== undefined) c.reasoning = reasoning;
      if (this.logprobs !== undefined) c.logprobs = this.logprobs[i] ?? [];
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

function bytesOf(v: unknown): number[] | null {
  return Array.isArray(v) && v.every((b) => typeof b === 'number') ? v : null;
}

/** Chat's `logprobs.content[]` into the internal form; undefined when the upstream sent none. */
function chatLogprobs(v: unknown): TokenLogprob[] | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const content = (v as Json).content;
  if (!Array.isArray(content)) return undefined;
  const out: TokenLogprob[] = [];
  for (const raw of content) {
    if (typeof raw !== 'object' || raw === null) continue;
    const e = raw as Json;
    if (typeof e.token !== 'string' || typeof e.logprob !== 'number') continue;
    const top: TokenLogprob['topLogprobs'] = [];
    if (Array.isArray(e.top_logprobs)) {
      for (const a of e.top_logprobs as unknown[]) {
        if (typeof a !== 'object' || a === null) continue;
        const t = a as Json;
        if (typeof t.token === 'string' && typeof t.logprob === 'number') top.push({ token: t.token, logprob: t.logprob, bytes: bytesOf(t.bytes) });
      }
    }
    out.push({ token: e.token, logprob: e.logprob, bytes: bytesOf(e.bytes), topLogprobs: top });
  }
  return out;
}

const utf8 = new TextEncoder();

/** Legacy completions' `{tokens, token_logprobs, top_logprobs}` into the internal form. */
function completionLogprobs(v: unknown): TokenLogprob[] | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  if (!Array.isArray(o.tokens) || !Array.isArray(o.token_logprobs)) return undefined;
  const tops = Array.isArray(o.top_logprobs) ? (o.top_logprobs as unknown[]) : [];
  const out: TokenLogprob[] = [];
  (o.tokens as unknown[]).forEach((tok, i) => {
    const lp = (o.token_logprobs as unknown[])[i];
    if (typeof tok !== 'string') return;
    const top: TokenLogprob['topLogprobs'] = [];
    const t = tops[i];
    if (typeof t === 'object' && t !== null) {
      for (const [token, logprob] of Object.entries(t as Json)) {
        if (typeof logprob === 'number') top.push({ token, logprob, bytes: Array.from(utf8.encode(token)) });
      }
    }
    out.push({ token: tok, logprob: typeof lp === 'number' ? lp : 0, bytes: Array.from(utf8.encode(tok)), topLogprobs: top });
  });
  return out;
}

export function generate(o: CallOptions, req: GenerateRequest, sink: ChunkSink): Promise<Tokens> {
  const path = req.kind === 'chat' ? '/chat/completions' : '/completions';
  const upstreamModel = o.spec.model ?? o.spec.name;
  const body = buildBody(req, upstreamModel);
  const headers = headersFor(o.session, o.ctx.requestId);
  // No suspended async function per call (an idle stream would keep its frame): the call itself holds
  // the request's signal and the total timeout (http.ts), so nothing is left to release here.
  if (req.stream) return readStream(req, (read) => post(o, path, headers, body, o.ctx.signal, 'openai', read), sink);
  return post(o, path, headers, body, o.ctx.signal, 'openai').then((text) => readWhole(req, parseJson(text), sink));
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
    const chunk: TokenChunk = { index: i, text, tokens: 0 };
    if (req.kind === 'chat') {
      const reasoning = ((c.message ?? {}) as Json).reasoning_content;
      if (typeof reasoning === 'string' && reasoning !== '') {
        agg.addReasoning(i, reasoning);
        chunk.reasoningDelta = reasoning;
      }
    }
    if (req.sampling.logprobs === true) {
      const lp = (req.kind === 'chat' ? chatLogprobs(c.logprobs) : completionLogprobs(c.logprobs)) ?? [];
      agg.addLogprobs(i, lp);
      chunk.logprobs = lp;
    }
    sink(chunk);
  }
  const usage = usageOf((body as Json).usage) ?? { promptTokens: 0, completionTokens: 0 };
  return { choices: agg.result(Math.max(n, req.sampling.n)), usage };
}

/** Reads a streamed answer, event by event as its bytes arrive. */
function readStream(req: GenerateRequest, send: (read: ChunkReader) => Promise<string>, sink: ChunkSink): Promise<Tokens> {
  const parser = new SseParser();
  const agg = new ChoiceAggregator();
  let usage: Usage | undefined;
  let done = false;
  let n = req.sampling.n;
  const wantLogprobs = req.sampling.logprobs === true;
  if (wantLogprobs) for (let i = 0; i < n; i++) agg.addLogprobs(i, []);
  // Most events are text for choice 0 alone: read without a full parse (openaiTextEvent.ts).
  const plainEvents = req.kind === 'chat' ? new PlainTextEvents() : undefined;
  /** One event's data; true once the stream is complete ([DONE]). */
  const handle = (data: string): boolean => {
    if (data === '[DONE]') {
      done = true;
      return true;
    }
    const plain = plainEvents?.read(data);
    if (plain !== undefined) {
      const text = plain.text;
      if (text === '') return false;
      agg.addText(0, text);
      // The upstream's JSON string of the text, when exact, is what the client's stream writes (TEXT_JSON).
      sink(plain.json === undefined ? { index: 0, text, tokens: 1 } : { index: 0, text, tokens: 1, [TEXT_JSON]: plain.json });
      return false;
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
    if (!Array.isArray(chunk.choices)) return false;
    for (const raw of chunk.choices as unknown[]) {
      const c = raw as Json;
      const i = typeof c.index === 'number' ? c.index : 0;
      n = Math.max(n, i + 1);
      let text = '';
      let tools: ToolCallDelta[] | undefined;
      let reasoning: string | undefined;
      if (req.kind === 'chat') {
        const delta = (c.delta ?? {}) as Json;
        if (typeof delta.content === 'string') text = delta.content;
        if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') reasoning = delta.reasoning_content;
        tools = toolDeltas(delta.tool_calls);
      } else if (typeof c.text === 'string') {
        text = c.text;
      }
      // Only requests that asked for logprobs look for them (no work per chunk otherwise).
      const lp = wantLogprobs && c.logprobs !== null && c.logprobs !== undefined
        ? (req.kind === 'chat' ? chatLogprobs(c.logprobs) : completionLogprobs(c.logprobs))
        : undefined;
      const finish = finishOf(c.finish_reason);
      if (text === '' && tools === undefined && finish === undefined && reasoning === undefined && lp === undefined) continue;
      if (text !== '') agg.addText(i, text);
      if (tools !== undefined) agg.addTools(i, tools);
      if (finish !== undefined) agg.setFinish(i, finish);
      const out: TokenChunk = { index: i, text, tokens: text === '' ? 0 : 1 };
      if (tools !== undefined) out.toolCalls = tools;
      if (reasoning !== undefined) {
        agg.addReasoning(i, reasoning);
        out.reasoningDelta = reasoning;
      }
      if (lp !== undefined) {
        agg.addLogprobs(i, lp);
        out.logprobs = lp;
      }
      if (finish !== undefined) out.finishReason = finish;
      sink(out);
    }
    return false;
  };
  return send((bytes) => parser.feed(bytes, handle)).then(() => {
    if (!done) for (const ev of parser.end()) if (handle(ev.data)) break;
    if (!done && usage === undefined) {
      throw new InferenceError('upstream_error', 'the upstream connection broke mid-response', { diagnostic: 'stream ended without [DONE]' });
    }
    return { choices: agg.result(n), usage: usage ?? { promptTokens: 0, completionTokens: 0 } };
  });
}

export async function embed(o: CallOptions, req: EmbeddingRequest): Promise<EmbeddingResult> {
  const body: Json = { model: o.spec.model ?? o.spec.name, input: req.input, encoding_format: 'float' };
  if (req.dimensions !== undefined) body.dimensions = req.dimensions;
  if (req.user !== undefined) body.user = req.user;
  const json = parseJson(await post(o, '/embeddings', headersFor(o.session, o.ctx.requestId), body, o.ctx.signal, 'openai'));
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
