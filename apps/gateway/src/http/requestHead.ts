// What the request path reads of an HTTP request, on either front: Fastify's
// request satisfies it, and so does the lean front's own object (fastLane.ts).
// The principal an API key authenticated is looked up by this object (auth.ts).

import type { IncomingHttpHeaders } from 'node:http';

export interface RequestHead {
  /** The request id (requestId.ts), echoed in `x-request-id`. */
  readonly id: string;
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly url: string;
}
