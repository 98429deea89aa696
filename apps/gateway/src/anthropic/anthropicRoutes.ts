// POST /v1/messages: the Anthropic Messages surface. The handler validates the
// body into the internal chat request, runs it through the same request path as
// /v1/chat/completions (one RequestRun), and renders Anthropic's message or
// event stream; any deployment serves it, whatever its runtime. The route lives
// in its own Fastify scope so that every error on it, body-parser failures
// included, renders in Anthropic's shape (overloads as 529) with `request-id`.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestJob, RequestResult } from '@inference/actors';
import {
  type Flow, InferenceError, anthropicErrorBody, hexId, anthropicStatus, parseMessagesRequest, renderAnthropicMessage, retryAfterSeconds,
  toInferenceError,
} from '@inference/core';
import { AnthropicStream } from './anthropicStreaming.js';
import type { WriterOptions } from '../http/coalesce.js';
import { fromFastify } from '../http/fastifyErrors.js';

export type Dispatch = (req: FastifyRequest, job: RequestJob, onCancel: (cancel: () => void) => void) => Promise<RequestResult>;

function sendError(reply: FastifyReply, requestId: string, e: InferenceError, status = anthropicStatus(e)): FastifyReply {
  const ra = retryAfterSeconds(e);
  if (ra !== undefined) void reply.header('retry-after', String(ra));
  return reply.code(status).type('application/json').send({ ...anthropicErrorBody(e), request_id: requestId });
}

/** A streamed response's writer options: its own Flow (back-pressure, docs/flow-control.md), the stall bound, the accounting. */
export type StreamOptions = () => WriterOptions & { readonly flow: Flow };

async function messages(dispatch: Dispatch, streamOptions: StreamOptions, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const parsed = parseMessagesRequest(req.body);
  const id = `msg_${hexId()}`;
  const res = reply.raw;
  const whenGone = (cancel: () => void): void => {
    res.on('close', () => {
      if (!res.writableFinished) cancel();
    });
  };
  if (!parsed.stream) {
    const out = await dispatch(req, { kind: 'generate', endpoint: 'messages', req: parsed, sink: () => undefined }, whenGone);
    const choice = out.kind === 'generate' ? out.tokens.choices[0] : undefined;
    if (out.kind !== 'generate' || choice === undefined) throw new InferenceError('internal', 'internal error', { diagnostic: 'no choice in result' });
    return reply.type('application/json').send(renderAnthropicMessage(id, out.deployment, choice, out.tokens.usage));
  }
  const options = streamOptions();
  const stream = new AnthropicStream(res, req.id, id, parsed.model, options);
  try {
    const job: RequestJob = { kind: 'generate', endpoint: 'messages', req: parsed, sink: stream.push, onDeployment: stream.setModel, flow: options.flow };
    const out = await dispatch(req, job, whenGone);
    if (out.kind !== 'generate') throw new InferenceError('internal', 'internal error');
    reply.hijack();
    stream.end(out.tokens);
  } catch (e) {
    const err = toInferenceError(e);
    if (!stream.headersSent) return sendError(reply, req.id, err);
    reply.hijack();
    stream.fail(err);
  }
  return reply;
}

export function registerAnthropicRoutes(app: FastifyInstance, dispatch: Dispatch, bodyLimitBytes: number, streamOptions: StreamOptions): void {
  void app.register((scope, _opts, done) => {
    scope.addHook('onRequest', (req, reply, next) => {
      void reply.header('request-id', req.id);
      next();
    });
    scope.setErrorHandler((err: FastifyError, req, reply) => {
      const { e, status } = fromFastify(err, bodyLimitBytes);
      return sendError(reply, req.id, e, status);
    });
    scope.post('/v1/messages', (req, reply) => messages(dispatch, streamOptions, req, reply));
    done();
  });
}
