// Errors the global hooks answer (auth, drain and shutdown) before a request
// reaches its route's own scope, rendered in that route's shape: Anthropic's on
// /v1/messages (overloads as 529, `request-id` and the body's `request_id`, as
// anthropic/anthropicRoutes.ts renders its own errors), the OpenAI envelope on
// every other route. `retry-after` when the error carries one.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { type InferenceError, anthropicErrorBody, anthropicStatus, openAIErrorBody, retryAfterSeconds } from '@inference/core';

/** The one route answered in Anthropic's shape. */
export const ANTHROPIC_PATH = '/v1/messages';

/** The path of a request URL, without its query (no array per call: this runs on every request). */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function sendRefusal(req: FastifyRequest, reply: FastifyReply, e: InferenceError): FastifyReply {
  const ra = retryAfterSeconds(e);
  if (ra !== undefined) void reply.header('retry-after', String(ra));
  if (pathOf(req.url) === ANTHROPIC_PATH) {
    void reply.header('request-id', req.id);
    return reply.code(anthropicStatus(e)).type('application/json').send({ ...anthropicErrorBody(e), request_id: req.id });
  }
  return reply.code(e.status).type('application/json').send(openAIErrorBody(e));
}
