// A JSON request body read the way Fastify's default parser reads it, for the lean
// front of the generate routes (fastLane.ts): raw chunks up to the body limit, one
// UTF-8 decode at the end, the declared content-length checked against what came,
// an empty body refused, then secure-json-parse with `__proto__` and
// `constructor.prototype` keys refused (Fastify's defaults). Every failure is the
// error fastifyErrors.ts maps Fastify's own to, so both fronts answer alike.
// Callback-based: no promise per request.

import type { IncomingMessage } from 'node:http';
import secureJson from 'secure-json-parse';
import { type MappedError, badContentLength, bodyTooLarge, emptyBody, fromStatus, invalidJson } from './fastifyErrors.js';

const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

export type BodyDone = (err: MappedError | undefined, body: unknown) => void;

/** Whether Fastify would hand this content-type to its JSON parser: the media type, trimmed and in any case, is application/json. */
export function isJsonContentType(ct: string | undefined): boolean {
  if (ct === undefined) return false;
  if (ct === 'application/json') return true;
  const semi = ct.indexOf(';');
  return (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

function parsed(text: string, done: BodyDone): void {
  if (text.length === 0) {
    done(emptyBody(), undefined);
    return;
  }
  let body: unknown;
  try {
    body = secureJson.parse(text, PARSE_OPTIONS);
  } catch {
    done(invalidJson(), undefined);
    return;
  }
  done(undefined, body);
}

/** Reads `req`'s body (a declared length over the limit is the caller's to refuse first) and calls `done` once. */
export function readJsonBody(req: IncomingMessage, limit: number, done: BodyDone): void {
  const declared = Number(req.headers['content-length']);
  const chunks: Buffer[] = [];
  let received = 0;
  // Once settled, later events are ignored; the listeners are removed only on the rare early stop (a whole body needs none).
  let settled = false;
  function onData(chunk: Buffer): void {
    received += chunk.length;
    if (received <= limit) {
      chunks.push(chunk);
      return;
    }
    settled = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onEnd);
    done(bodyTooLarge(limit), undefined);
  }
  function onEnd(err?: Error & { statusCode?: unknown }): void {
    if (settled) return;
    settled = true;
    if (err !== undefined) {
      done(fromStatus(err, typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 400), undefined);
      return;
    }
    if (!Number.isNaN(declared) && received !== declared) {
      done(badContentLength(), undefined);
      return;
    }
    const only = chunks.length === 1 ? chunks[0] : undefined;
    parsed((only ?? Buffer.concat(chunks, received)).toString('utf8'), done);
  }
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onEnd);
}
