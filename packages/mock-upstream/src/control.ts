// /_mock/* — steering a standalone mock over HTTP, mirroring the in-process MockUpstream
// methods. These requests are not API traffic: they are never counted in stats, never
// rate-limited or authenticated, and never consume the script.
//
//   POST /_mock/script   [Behavior, ...]                 replace the scripted queue
//   GET  /_mock/script                                   { remaining }
//   POST /_mock/default  Behavior                        behavior once the script is empty
//   GET  /_mock/stats                                    MockStats
//   POST /_mock/reset                                    clear stats, script, default, rpm window
//   POST /_mock/config   { apiKey?: string|null, rpm?: number|null }

import { BehaviorError, parseBehavior, parseScript } from './behavior.js';
import type { ResponseLike } from './exchange.js';
import { isObject } from './fields.js';
import type { Pipeline, RequestLike } from './pipeline.js';

function send(res: ResponseLike, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function fail(res: ResponseLike, status: number, message: string): void {
  send(res, status, { error: { message } });
}

function applyConfig(pipeline: Pipeline, body: unknown): void {
  if (!isObject(body)) throw new BehaviorError('config must be an object');
  for (const key of Object.keys(body)) {
    if (key !== 'apiKey' && key !== 'rpm') throw new BehaviorError(`config: unknown key '${key}'`);
  }
  const { apiKey, rpm } = body;
  if (apiKey !== undefined && apiKey !== null && typeof apiKey !== 'string') throw new BehaviorError('config.apiKey must be a string or null');
  if (rpm !== undefined && rpm !== null && (typeof rpm !== 'number' || !Number.isInteger(rpm) || rpm < 1)) {
    throw new BehaviorError('config.rpm must be an integer >= 1 or null');
  }
  if (apiKey !== undefined) pipeline.setApiKey(apiKey ?? undefined);
  if (rpm !== undefined) pipeline.setRpm(rpm ?? undefined);
}

function dispatch(pipeline: Pipeline, method: string, path: string, body: unknown, res: ResponseLike): void {
  switch (`${method} ${path}`) {
    case 'POST /_mock/script': {
      const script = parseScript(body);
      pipeline.setScript(script);
      send(res, 200, { ok: true, queued: script.length });
      return;
    }
    case 'GET /_mock/script':
      send(res, 200, { remaining: pipeline.scriptRemaining });
      return;
    case 'POST /_mock/default':
      pipeline.setDefault(parseBehavior(body, 'default'));
      send(res, 200, { ok: true });
      return;
    case 'GET /_mock/stats':
      send(res, 200, pipeline.stats.snapshot());
      return;
    case 'POST /_mock/reset':
      pipeline.reset();
      send(res, 200, { ok: true });
      return;
    case 'POST /_mock/config':
      applyConfig(pipeline, body);
      send(res, 200, { ok: true });
      return;
    default:
      fail(res, 404, `unknown control endpoint ${method} ${path}`);
  }
}

export function handleControl(pipeline: Pipeline, req: RequestLike, res: ResponseLike, path: string): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = undefined;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        fail(res, 400, 'body is not valid JSON');
        return;
      }
    }
    try {
      dispatch(pipeline, req.method ?? 'GET', path, body, res);
    } catch (error) {
      if (error instanceof BehaviorError) fail(res, 400, error.message);
      else fail(res, 500, error instanceof Error ? error.message : String(error));
    }
  });
}
