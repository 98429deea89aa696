// The least a Node proxy can do per request, for test/bench/gateway-overhead.mjs: read
// the JSON body, parse it, POST it upstream on a keep-alive undici Pool, parse the
// answer and send it back (streams are piped through). No validation, routing,
// metrics or error handling: the floor under any gateway written in Node.
//   node test/bench/floor-proxy.mjs <upstream origin> [--h2]
//
// --h2 (test/bench/idle-streams.mjs): the upstream speaks HTTP/2 over TLS (its CA in
// NODE_EXTRA_CA_CERTS) and each connection carries up to 100 requests at once, as the
// gateway's remote session does (packages/engine-remote/src/session.ts). A streamed
// answer is then relayed on undici's original dispatch API with one plain handler object
// (no body stream, no async iterator): what it holds per open stream is Node's own (the
// client socket, its parser, IncomingMessage and ServerResponse, the HTTP/2 stream)
// and undici's request, the least any Node proxy holds for an idle stream.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const h2 = process.argv.includes('--h2');
const pool = new Pool(process.argv[2], h2
  ? { allowH2: true, connections: 256, pipelining: 100, bodyTimeout: 0, headersTimeout: 0 }
  : { connections: 256, pipelining: 1 });

/**
 * Relays one streamed answer to `res` (--h2), as a handler of undici's original dispatch
 * API: undici wraps a handler of the newer API (onRequestStart, ...) in an UnwrapHandler
 * whose controller keeps the response's raw headers for the life of the stream. A
 * client that reads slowly pauses the upstream read.
 */
class Relay {
  constructor(res) {
    this.res = res;
    this.abort = undefined;
    this.resume = undefined;
  }

  onConnect(abort) {
    this.abort = abort;
    if (this.res.destroyed) abort(new Error('client gone'));
  }

  onHeaders(statusCode, _rawHeaders, resume) {
    this.resume = resume;
    this.res.writeHead(statusCode, { 'content-type': 'text/event-stream' });
    return true;
  }

  onData(chunk) {
    if (this.res.write(chunk)) return true;
    this.res.once('drain', () => { this.resume?.(); });
    return false;
  }

  onComplete() {
    this.res.end();
  }

  onError() {
    this.res.destroy();
  }
}

function relay(req, res, body) {
  const handler = new Relay(res);
  res.once('close', () => { if (!res.writableFinished) handler.abort?.(new Error('client gone')); });
  pool.dispatch({ path: req.url, method: 'POST', headers: { 'content-type': 'application/json' }, body, idempotent: true }, handler);
}

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = JSON.parse(Buffer.concat(chunks).toString());
  if (h2 && body.stream === true) {
    relay(req, res, JSON.stringify(body));
    return;
  }
  const up = await pool.request({ path: req.url, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (body.stream === true) {
    res.writeHead(up.statusCode, { 'content-type': 'text/event-stream' });
    for await (const c of up.body) res.write(c);
    res.end();
    return;
  }
  const out = JSON.stringify(JSON.parse(await up.body.text()));
  res.writeHead(up.statusCode, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
  res.end(out);
});
server.keepAliveTimeout = 65_000;
// A clean exit on SIGINT, so that a --cpu-prof profile is written (profile-remote.mjs).
process.once('SIGINT', () => process.exit(0));
server.listen(0, '127.0.0.1', 4096, () => console.log(`floor proxy on http://127.0.0.1:${server.address().port}`));
