// The node-to-node wire format of a forwarded request, and its validation.
// Request: one JSON body `{replica, kind: 'generate' | 'embed', req}` carrying the
// validated internal request (GenerateRequest / EmbeddingRequest) the origin
// node parsed at its edge. Response: newline-delimited JSON frames, one per
// line: `{chunk}` per TokenChunk, then exactly one of `{done}` (Tokens),
// `{embedded}` (EmbeddingResult) or `{error}` (a taxonomy error, client-safe
// message only). Whatever arrives from the network is checked here before it is
// trusted; a malformed body is an `invalid_request`, a malformed frame an
// `engine_unavailable` (the peer misbehaved, try elsewhere).

import {
  type ChatMessage, type EmbeddingRequest, ERROR_KINDS, type ErrorKind, type GenerateRequest, InferenceError, type Json, type TokenChunk, type Tokens,
  type EmbeddingResult, asObject, invalid, reqString,
} from '@inference/core';

export type ForwardBody =
  | { readonly replica: string; readonly kind: 'generate'; readonly req: GenerateRequest }
  | { readonly replica: string; readonly kind: 'embed'; readonly req: EmbeddingRequest };

export type Frame =
  | { readonly chunk: TokenChunk }
  | { readonly done: Tokens }
  | { readonly embedded: EmbeddingResult }
  | { readonly error: { readonly kind: ErrorKind; readonly message: string; readonly param?: string | null; readonly retryAfterMs?: number } };

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) invalid('req.messages', 'expected a non-empty array');
  v.forEach((m: unknown, i) => {
    const p = `req.messages[${i}]`;
    if (!isObject(m)) invalid(p, 'expected an object');
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) invalid(`${p}.role`, 'expected a role');
    if (m.content !== null && typeof m.content !== 'string') invalid(`${p}.content`, 'expected a string or null');
    if (m.toolCalls !== undefined && !Array.isArray(m.toolCalls)) invalid(`${p}.toolCalls`, 'expected an array');
  });
  return v as ChatMessage[];
}

function checkGenerate(v: unknown): GenerateRequest {
  const o = asObject(v, 'req');
  reqString(o, 'model', 'req', { nonEmpty: true });
  const s = o.sampling;
  if (!isObject(s) || typeof s.n !== 'number' || !Number.isInteger(s.n) || s.n < 1 || !Array.isArray(s.stop) || !s.stop.every((x) => typeof x === 'string')) {
    invalid('req.sampling', 'expected {n, stop, ...}');
  }
  if (typeof o.stream !== 'boolean' || typeof o.includeUsage !== 'boolean') invalid('req.stream', 'expected stream and includeUsage booleans');
  if (!isObject(o.passthrough)) invalid('req.passthrough', 'expected an object');
  switch (o.kind) {
    case 'chat':
      checkMessages(o.messages);
      break;
    case 'completion':
      if (typeof o.prompt !== 'string') invalid('req.prompt', 'expected a string');
      break;
    default:
      invalid('req.kind', "expected 'chat' or 'completion'");
  }
  return o as unknown as GenerateRequest;
}

function checkEmbed(v: unknown): EmbeddingRequest {
  const o = asObject(v, 'req');
  reqString(o, 'model', 'req', { nonEmpty: true });
  if (!Array.isArray(o.input) || !o.input.every((x) => typeof x === 'string')) invalid('req.input', 'expected an array of strings');
  if (o.encodingFormat !== 'float' && o.encodingFormat !== 'base64') invalid('req.encodingFormat', "expected 'float' or 'base64'");
  return o as unknown as EmbeddingRequest;
}

/** A forwarded request body, validated (invalid_request naming the field otherwise). */
export function decodeBody(text: string): ForwardBody {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new InferenceError('invalid_request', 'forwarded body is not valid JSON');
  }
  const o = asObject(doc, '');
  const replica = reqString(o, 'replica', '', { nonEmpty: true });
  switch (o.kind) {
    case 'generate':
      return { replica, kind: 'generate', req: checkGenerate(o.req) };
    case 'embed':
      return { replica, kind: 'embed', req: checkEmbed(o.req) };
    default:
      return invalid('kind', "expected 'generate' or 'embed'");
  }
}

export function encodeFrame(f: Frame): string {
  return `${JSON.stringify(f)}\n`;
}

export function errorFrame(e: InferenceError): Frame {
  return { error: { kind: e.kind, message: e.message, param: e.param, ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }) } };
}

const KINDS: ReadonlySet<string> = new Set(ERROR_KINDS);

function badFrame(why: string): InferenceError {
  return new InferenceError('engine_unavailable', 'a cluster peer answered with a malformed response', { diagnostic: why, retryAfterMs: 1000 });
}

/** One response line from a peer, validated; throws engine_unavailable when malformed. */
export function decodeFrame(line: string): Frame {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    throw badFrame('frame is not JSON');
  }
  if (!isObject(doc)) throw badFrame('frame is not an object');
  if (isObject(doc.chunk)) {
    const c = doc.chunk;
    if (typeof c.index !== 'number' || typeof c.text !== 'string' || typeof c.tokens !== 'number') throw badFrame('bad chunk');
    return { chunk: c as unknown as TokenChunk };
  }
  if (isObject(doc.done)) {
    const t = doc.done;
    if (!Array.isArray(t.choices) || !isObject(t.usage) || typeof t.usage.promptTokens !== 'number' || typeof t.usage.completionTokens !== 'number') throw badFrame('bad tokens');
    return { done: t as unknown as Tokens };
  }
  if (isObject(doc.embedded)) {
    const r = doc.embedded;
    if (!Array.isArray(r.vectors) || typeof r.promptTokens !== 'number') throw badFrame('bad embedding');
    return { embedded: r as unknown as EmbeddingResult };
  }
  if (isObject(doc.error)) {
    const e = doc.error;
    if (typeof e.kind !== 'string' || !KINDS.has(e.kind) || typeof e.message !== 'string') throw badFrame('bad error');
    const param = typeof e.param === 'string' ? e.param : null;
    const retryAfterMs = typeof e.retryAfterMs === 'number' ? e.retryAfterMs : undefined;
    return { error: { kind: e.kind as ErrorKind, message: e.message, param, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } };
  }
  throw badFrame('unknown frame');
}

/** The error a peer reported, as a taxonomy error for this node's client. */
export function frameError(f: { readonly kind: ErrorKind; readonly message: string; readonly param?: string | null; readonly retryAfterMs?: number }): InferenceError {
  return new InferenceError(f.kind, f.message, { param: f.param ?? null, ...(f.retryAfterMs === undefined ? {} : { retryAfterMs: f.retryAfterMs }) });
}
