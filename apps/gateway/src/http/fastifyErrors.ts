// Fastify's own failures (body parsing, size, content type, malformed URLs) as
// taxonomy errors with the status to send. Both error renderers (the OpenAI
// envelope and the Anthropic shape) use this one mapping, so a client mistake the
// framework catches is always a 4xx in the route's own error shape, never a 500.

import type { FastifyError } from 'fastify';
import { InferenceError, toInferenceError } from '@inference/core';

export interface MappedError {
  readonly e: InferenceError;
  /** Overrides the kind's status (413, 415, 414 ...). */
  readonly status?: number;
}

export function fromFastify(err: FastifyError, bodyLimitBytes: number): MappedError {
  if (err instanceof InferenceError) return { e: err };
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { e: new InferenceError('invalid_request', `request body is larger than ${bodyLimitBytes} bytes`), status: 413 };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { e: new InferenceError('invalid_request', 'content-type must be application/json'), status: 415 };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { e: new InferenceError('invalid_request', 'request body is empty') };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { e: new InferenceError('invalid_request', 'content-length does not match the body') };
    case 'FST_ERR_BAD_URL':
      return { e: new InferenceError('invalid_request', 'the request URL is malformed') };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { e: new InferenceError('invalid_request', 'a path parameter is too long'), status: 414 };
    default:
      break;
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return { e: new InferenceError('invalid_request', 'request body is not valid JSON') };
  }
  // Any other framework error that Fastify itself classes as the client's (4xx) stays a client error.
  const status = err.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return status === 400 ? { e: new InferenceError('invalid_request', 'bad request') } : { e: new InferenceError('invalid_request', 'bad request'), status };
  }
  return { e: toInferenceError(err) };
}
