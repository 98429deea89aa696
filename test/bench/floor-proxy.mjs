// The least a Node proxy can do per request, for test/bench/gateway-overhead.mjs: read
// the JSON body, parse it, POST it upstream on a keep-alive undici Pool, parse the
// answer and send it back (streams are piped through). No validation, routing,
// metrics or error handling: the floor under any gateway written in Node.
//   node test/bench/floor-proxy.mjs <upstream origin>
import { createServer } from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.argv[2], { connections: 256, pipelining: 1 });
const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = JSON.parse(Buffer.concat(chunks).toString());
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
server.listen(0, '127.0.0.1', () => console.log(`floor proxy on http://127.0.0.1:${server.address().port}`));
