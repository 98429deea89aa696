// The lean front takes a body only when Fastify would hand it to its JSON parser:
// isJsonContentType never says yes where Fastify's own content-type parsing says
// no (that request would get 415 from Fastify). Checked against Fastify's parser
// on generated headers (case, whitespace, parameters, near misses). And the body
// reader answers as Fastify's parser does: empty, bad JSON, forbidden keys, a
// byte-order mark, a body over the limit, a length that does not match.

import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonContentType, readJsonBody } from './jsonBody.js';
import type { MappedError } from './fastifyErrors.js';

interface FastifyContentType { readonly isValid: boolean; readonly mediaType: string | undefined }
const require = createRequire(import.meta.url);
const ContentType = require('fastify/lib/content-type.js') as new (header: string) => FastifyContentType;

/** Fastify's JSON parser is the only one registered (text/plain is removed): it takes a valid header whose media type is application/json. */
function fastifyParsesJson(header: string): boolean {
  const ct = new ContentType(header);
  return ct.isValid && ct.mediaType === 'application/json';
}

const piece = fc.constantFrom('application', 'Application', 'APPLICATION', 'json', 'JSON', 'Json', 'text', 'plain', 'json-seq', 'x+json', '/', ';', ' ', '\t',
  'charset=utf-8', 'charset="utf-8"', '=', ',', 'a', '');

describe('isJsonContentType', () => {
  it('agrees with Fastify on common headers', () => {
    const headers = ['application/json', 'application/json; charset=utf-8', 'Application/JSON', ' application/json ', 'application/json;',
      'application/json-seq', 'text/plain', 'application /json', 'application/ json', 'json', '', 'application/problem+json',
      'application/json ; charset=UTF-8'];
    for (const h of headers) {
      expect([h, isJsonContentType(h)]).toEqual([h, fastifyParsesJson(h)]);
    }
  });

  it('never takes a header Fastify would refuse (generated headers)', () => {
    fc.assert(fc.property(fc.array(piece, { maxLength: 8 }), (parts) => {
      const h = parts.join('');
      if (isJsonContentType(h)) expect(fastifyParsesJson(h)).toBe(true);
    }), { numRuns: 5000 });
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      const h = `application/json${s}`;
      if (isJsonContentType(h)) expect(fastifyParsesJson(h)).toBe(true);
    }), { numRuns: 2000 });
  });
});

function read(chunks: readonly string[], limit: number, contentLength?: number): Promise<{ err: MappedError | undefined; body: unknown }> {
  const req = new PassThrough() as unknown as IncomingMessage & PassThrough;
  req.headers = contentLength === undefined ? {} : { 'content-length': String(contentLength) };
  return new Promise((resolve) => {
    readJsonBody(req, limit, (err, body) => { resolve({ err, body }); });
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('readJsonBody', () => {
  it('parses a body in one or several chunks, a byte-order mark dropped', async () => {
    expect(await read(['{"a":1}'], 100)).toEqual({ err: undefined, body: { a: 1 } });
    expect(await read(['{"a":', '[1,2', ']}'], 100, 11)).toEqual({ err: undefined, body: { a: [1, 2] } });
    expect(await read(['\uFEFF{"a":"é"}'], 100)).toEqual({ err: undefined, body: { a: 'é' } });
  });

  it('answers bad bodies as Fastify does', async () => {
    const message = async (chunks: string[], limit = 100, length?: number): Promise<[string | undefined, number | undefined]> => {
      const { err } = await read(chunks, limit, length);
      return [err?.e.message, err?.status];
    };
    expect(await message([''])).toEqual(['request body is empty', undefined]);
    expect(await message(['{"a":'])).toEqual(['request body is not valid JSON', undefined]);
    expect(await message(['{"__proto__":{"x":1}}'])).toEqual(['request body is not valid JSON', undefined]);
    expect(await message(['{"constructor":{"prototype":{"x":1}}}'])).toEqual(['request body is not valid JSON', undefined]);
    expect(await message(['x'.repeat(60), 'x'.repeat(60)])).toEqual(['request body is larger than 100 bytes', 413]);
    expect(await message(['{"a":1}'], 100, 3)).toEqual(['content-length does not match the body', undefined]);
  });
});
