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

/** Cancels the request when its response closes before it was fully written (the client went away). */
export function cancelWhenGone(res: ServerResponse): (cancel: () => void) => void {
  return (cancel) => {
    res.on('close', () => {
      if (!res.writableFinished) cancel();
    });
  };
}

async function answerWhole(deps: GenerateDeps, front: AnswerFront, endpoint: Endpoint, parsed: GenerateRequest, id: string): Promise<void> {
  let out: RequestResult;
  try {
    out = await deps.dispatch(front.head, { kind: 'generate', endpoint, req: parsed, sink: () => undefined }, cancelWhenGone(front.res));
  } catch (e) {
    front.error(toInferenceError(e));
    return;
  }
  if (out.kind !== 'generate') throw new InferenceError('internal', 'internal error');
  const created = Math.floor(Date.now() / 1000);
  // `model` names the deployment that answered: the requested one or a fallback.
  front.json(parsed.kind === 'chat'
    ? renderChatCompletion(id, created, out.deployment, out.tokens.choices, out.tokens.usage)
    : renderTextCompletion(id, created, out.deployment, out.tokens.choices, out.tokens.usage));
}

async function answerStreamed(deps: GenerateDeps, front: AnswerFront, endpoint: Endpoint, parsed: GenerateRequest, id: string): Promise<void> {
  const writer = deps.streamOptions();
  const res = front.res;
  const stream = new OpenAIStream(res, front.head.id, parsed.kind, id, parsed.model, parsed.includeUsage, writer);
  try {
    const job: RequestJob = { kind: 'generate', endpoint, req: parsed, sink: stream.push, onDeployment: stream.setModel, flow: writer.flow };
    const out = await deps.dispatch(front.head, job, cancelWhenGone(res));
    if (out.kind !== 'generate') throw new InferenceError('internal', 'internal error');
    front.hijack();
    stream.end(out.tokens);
  } catch (e) {
    const err = toInferenceError(e);
    if (!stream.headersSent) {
      front.error(err);
      return;
    }
    front.hijack();
    stream.fail(err);
  }
}

/** Dispatches a parsed chat or text completion and answers it through `front`; rejects only on an internal fault. */
export function answerGenerate(deps: GenerateDeps, front: AnswerFront, endpoint: Endpoint, parsed: GenerateRequest): Promise<void> {
  const id = `${parsed.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${hexId()}`;
  return parsed.stream ? answerStreamed(deps, front, endpoint, parsed, id) : answerWhole(deps, front, endpoint, parsed, id);
}
