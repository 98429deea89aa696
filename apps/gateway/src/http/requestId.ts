// The request id every answer carries in `x-request-id`: the client's own when it
// sends one that matches the pattern (so its logs and ours line up), otherwise a
// fresh `req_<hex>`. Both HTTP fronts (Fastify's genReqId, fastLane.ts) use it.

import type { IncomingHttpHeaders } from 'node:http';
import { hexId } from '@inference/core';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(headers: IncomingHttpHeaders): string {
  const h = headers['x-request-id'];
  return typeof h === 'string' && REQUEST_ID.test(h) ? h : `req_${hexId()}`;
}
