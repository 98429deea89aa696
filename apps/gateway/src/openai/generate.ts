// The answer to a chat or text completion, for both HTTP fronts (Fastify's routes
// and the lean front, http/fastLane.ts): the request is dispatched, then its result
// rendered whole as JSON or streamed as server-sent events (OpenAIStream). A front
// says how it sends an error or a JSON body before the first byte, and how it
// hands the response over once a stream has begun (Fastify: hijack).
// Invariant: an error before the stream's first byte is an HTTP error in the
// OpenAI envelope; after it, the stream's final error event.

import type { ServerResponse } from 'node:http';
import type { Endpoint, RequestJob, RequestResult } from '@inference/actors';
import {
  type Flow, type GenerateRequest, InferenceError, hexId, renderChatCompletion, renderTextCompletion, toInferenceError,
} from '@inference/core';
import type { WriterOptions } from '../http/coalesce.js';
import type { RequestHead } from '../http/requestHead.js';
import { OpenAIStream } from './streaming.js';

export type GenerateDispatch = (head: RequestHead, job: RequestJob, onCancel: (cancel: () => void) => void) => Promise<RequestResult>;

export interface GenerateDeps {
  readonly dispatch: GenerateDispatch;
  /** A streamed response's writer options, with the flow its slow reader pauses. */
  readonly streamOptions: () => WriterOptions & { readonly flow: Flow };
}

/** One request's answer, as the front that took it sends it. */
export interface AnswerFront {
  readonly head: RequestHead;
  readonly res: ServerResponse;
  /** Before any byte went out: the error in the OpenAI envelope (with retry-after when it has one). */
  error(e: InferenceError): void;
  /** The whole answer: 200, application/json. */
  json(body: unknown): void;
  /** A stream that has begun writes the rest itself. */
  hijack(): void;
}

const CANCEL = Symbol('cancel when gone');
type Watched = ServerResponse & { [CANCEL]?: () => void };

/** One listener for every response (no closure per request): the client went away when it closes unfinished. */
function closed(this: Watched): void {
  if (!this.writableFinished) this[CANCEL]?.();
}

/** Cancels the request when its response closes before it was fully written (the client went away). */
export function cancelWhenGone(res: ServerResponse): (cancel: () => void) => void {
  return (cancel) => {
    (res as Watched)[CANCEL] = cancel;
    res.on('close', closed);
  };
}

/** The whole answer, rendered once the request settled. */
function answerWhole(deps: GenerateDeps, front: AnswerFront, endpoint: Endpoint, parsed: GenerateRequest, id: string): Promise<void> {
  const job: RequestJob = { kind: 'generate', endpoint, req: parsed, sink: () => undefined };
  return deps.dispatch(front.head, job, cancelWhenGone(front.res)).then((out) => {
    if (out.kind !== 'generate') throw new InferenceError('internal', 'internal error');
    const created = Math.floor(Date.now() / 1000);
    // `model` names the deployment that answered: the requested one or a fallback.
    front.json(parsed.kind === 'chat'
      ? renderChatCompletion(id, created, out.deployment, out.tokens.choices, out.tokens.usage)
      : renderTextCompletion(id, created, out.deployment, out.tokens.choices, out.tokens.usage));
  }, (e: unknown) => { front.error(toInferenceError(e)); });
}

/** A stream's end: its last events, or the error (an HTTP error before the first byte, the final event after it). */
function endStream(front: AnswerFront, stream: OpenAIStream, out: RequestResult | undefined, e?: unknown): void {
  if (out !== undefined && out.kind === 'generate') {
    front.hijack();
    stream.end(out.tokens);
    return;
  }
  const err = out === undefined ? toInferenceError(e) : new InferenceError('internal', 'internal error');
  if (!stream.headersSent) {
    front.error(err);
    return;
  }
  front.hijack();
  stream.fail(err);
}

/**
 * The streamed answer. Not an async function: an idle stream then holds one
 * promise reaction here, not a suspended function's frame (docs/benchmarks.md,
 * "Idle concurrent streams").
 */
function answerStreamed(deps: GenerateDeps, front: AnswerFront, endpoint: Endpoint, parsed: GenerateRequest, id: string): Promise<void> {
  const writer = deps.streamOptions();
  const res = front.res;
  const stream = new OpenAIStream(res, front.head.id, parsed.kind, id, parsed.model, parsed.includeUsage, writer);
  const job: RequestJob = { kind: 'generate', endpoint, req: parsed, sink: stream.push, onDeployment: stream.setModel, flow: writer.flow };
  return deps.dispatch(front.head, job, cancelWhenGone(res)).then((out) => { endStream(front, stream, out); }, (e: unknown) => {
    endStream(front, stream, undefined, e);
  });
}

/** Dispatches a parsed chat or text completion and answers it through `front`; rejects only on an internal fault. */
export function answerGenerate(deps: GenerateDeps, front: AnswerFront, endpoint: Endpoint, parsed: GenerateRequest): Promise<void> {
  const id = `${parsed.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${hexId()}`;
  try {
    return parsed.stream ? answerStreamed(deps, front, endpoint, parsed, id) : answerWhole(deps, front, endpoint, parsed, id);
  } catch (e) {
    // Neither throws by design; if one did, the caller hears it as a rejection, as from an async function.
    return Promise.reject(toInferenceError(e));
  }
}
