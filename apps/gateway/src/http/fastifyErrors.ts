// Fastify's own failures (body parsing, size, content type, malformed URLs) as
// taxonomy errors with the status to send. Both error renderers (the OpenAI
// envelope and the Anthropic shape) use this one mapping, so a client mistake the
// framework catches is always a 4xx in the route's own error shape, never a 500.
// The lean front of the generate routes (fastLane.ts, jsonBody.ts) reads bodies
// itself and takes its errors from the same constructors, so both fronts answer a
// bad body alike.

import type { FastifyError } from 'fastify';
import { InferenceError, toInferenceError } from '@inference/core';

export interface MappedError {
  readonly e: InferenceError;
  /** Overrides the kind's status (413, 415, 414 ...). */
  readonly status?: number;
}

export function bodyTooLarge(bodyLimitBytes: number): MappedError {
  return { e: new InferenceError('invalid_request', `request body is larger than ${bodyLimitBytes} bytes`), status: 413 };
}

export function emptyBody(): MappedError {
  return { e: new InferenceError('invalid_request', 'request body is empty') };
}

export function badContentLength(): MappedError {
  return { e: new InferenceError('invalid_request', 'content-length does not match the body') };
}

export function invalidJson(): MappedError {
  return { e: new InferenceError('invalid_request', 'request body is not valid JSON') };
}

/** A failure with an HTTP status: a 4xx stays the client's, anything else is ours. */
export function fromStatus(err: Error, status: unknown): MappedError {
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return status === 400 ? { e: new InferenceError('invalid_request', 'bad request') } : { e: new InferenceError('invalid_request', 'bad request'), status };
  }
  return { e: toInferenceError(err) };
}

export function fromFastify(err: FastifyError, bodyLimitBytes: number): MappedError {
  if (err instanceof InferenceError) return { e: err };
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bodyTooLarge(bodyLimitBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { e: new InferenceError('invalid_request', 'content-type must be application/json'), status: 415 };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return emptyBody();
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return badContentLength();
    case 'FST_ERR_BAD_URL':
      return { e: new InferenceError('invalid_request', 'the request URL is malformed') };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { e: new InferenceError('invalid_request', 'a path parameter is too long'), status: 414 };
    default:
      break;
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return invalidJson();
  // Any other framework error that Fastify itself classes as the client's (4xx) stays a client error.
  return fromStatus(err, err.statusCode);
}
