// The request pipeline of the mock, transport-agnostic (HTTP/1.1 and HTTP/2 both land
// here). Order for an API request: route (404) -> record arrival -> read body -> record
// headers/body -> auth (401) -> own rpm limit (429; like a real per-key limit,
// unauthenticated requests do not count) -> JSON (400) -> pick the behavior
// (x-mock-behavior header, else the next scripted one, else the default) -> answer.
// Requests rejected before the behavior is picked do not consume the script.

import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { messages } from './anthropic.js';
import { BehaviorError, parseBehavior, ScriptQueue, type Behavior } from './behavior.js';
import { InputError, type Provider } from './errors.js';
import { Exchange, type ResponseLike } from './exchange.js';
import { chatCompletions } from './openaiChat.js';
import { anthropicModelList, completions, embeddings, openaiModel, openaiModelList } from './openaiOther.js';
import { SlidingWindowLimiter } from './rateLimiter.js';
import type { Endpoint, RenderContext, Rendered } from './render.js';
import { StatsRecorder } from './stats.js';

/** What the pipeline needs from a request, satisfied by both HTTP versions' requests. */
export interface RequestLike extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
}

export interface PipelineOptions {
  readonly defaultScript?: readonly Behavior[] | undefined;
  readonly defaultBehavior?: Behavior | undefined;
  readonly apiKey?: string | undefined;
  readonly rpm?: number | undefined;
  readonly rpmWindowMs?: number | undefined;
  readonly models?: readonly string[] | undefined;
  readonly maxArrivals?: number | undefined;
}

interface Route {
  readonly provider: Provider;
  readonly endpoint: Endpoint;
  /** Whether the request carries a JSON body to parse. */
  readonly hasBody: boolean;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const ID_PREFIX = randomBytes(6).toString('hex');

export const DEFAULT_MODELS: readonly string[] = ['mock-model', 'gpt-4o-mini', 'claude-3-5-haiku-latest'];

const CHAT: Route = { provider: 'openai', endpoint: chatCompletions, hasBody: true };
const COMPLETIONS: Route = { provider: 'openai', endpoint: completions, hasBody: true };
const EMBEDDINGS: Route = { provider: 'openai', endpoint: embeddings, hasBody: true };
const MESSAGES: Route = { provider: 'anthropic', endpoint: messages, hasBody: true };

function isAnthropicClient(headers: IncomingHttpHeaders): boolean {
  return headers['anthropic-version'] !== undefined || headers['x-api-key'] !== undefined;
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

export class Pipeline {
  readonly stats: StatsRecorder;
  private readonly script = new ScriptQueue();
  private defaultBehavior: Behavior;
  private apiKey: string | undefined;
  private bearer: string | undefined;
  private limiter: SlidingWindowLimiter | undefined;
  private readonly rpmWindowMs: number;
  private readonly openaiModels: Route;
  private readonly anthropicModels: Route;
  private readonly models: ReadonlySet<string>;
  private seq = 0;

  constructor(options: PipelineOptions = {}) {
    this.stats = new StatsRecorder(options.maxArrivals ?? 200_000);
    this.defaultBehavior = parseBehavior(options.defaultBehavior ?? {}, 'defaultBehavior');
    this.script.replace(options.defaultScript?.map((b, i) => parseBehavior(b, `defaultScript[${i}]`)) ?? []);
    this.rpmWindowMs = options.rpmWindowMs ?? 60_000;
    this.setApiKey(options.apiKey);
    this.setRpm(options.rpm);
    const models = options.models ?? DEFAULT_MODELS;
    this.models = new Set(models);
    const openaiList = openaiModelList(models);
    const anthropicList = anthropicModelList(models);
    this.openaiModels = { provider: 'openai', endpoint: () => ({ kind: 'json', body: openaiList }), hasBody: false };
    this.anthropicModels = { provider: 'anthropic', endpoint: () => ({ kind: 'json', body: anthropicList }), hasBody: false };
  }

  setScript(behaviors: readonly Behavior[]): void {
    this.script.replace(behaviors.map((b, i) => parseBehavior(b, `script[${i}]`)));
  }

  setDefault(behavior: Behavior): void {
    this.defaultBehavior = parseBehavior(behavior, 'default');
  }

  setApiKey(key: string | undefined): void {
    this.apiKey = key;
    this.bearer = key === undefined ? undefined : `Bearer ${key}`;
  }

  setRpm(rpm: number | undefined): void {
    this.limiter = rpm === undefined ? undefined : new SlidingWindowLimiter(rpm, this.rpmWindowMs);
  }

  get scriptRemaining(): number {
    return this.script.remaining;
  }

  /** Clears the script, the default behavior, the limiter's window and the stats. */
  reset(): void {
    this.script.replace([]);
    this.defaultBehavior = {};
    if (this.limiter !== undefined) this.setRpm(this.limiter.limit);
    this.stats.reset();
  }

  private route(method: string, path: string, headers: IncomingHttpHeaders): Route | undefined {
    switch (path) {
      case '/v1/chat/completions':
        return method === 'POST' ? CHAT : undefined;
      case '/v1/messages':
        return method === 'POST' ? MESSAGES : undefined;
      case '/v1/completions':
        return method === 'POST' ? COMPLETIONS : undefined;
      case '/v1/embeddings':
        return method === 'POST' ? EMBEDDINGS : undefined;
      case '/v1/models':
        if (method !== 'GET') return undefined;
        return isAnthropicClient(headers) ? this.anthropicModels : this.openaiModels;
      default:
        if (method === 'GET' && path.startsWith('/v1/models/')) {
          const id = safeDecode(path.slice('/v1/models/'.length));
          if (id === undefined || !this.models.has(id)) return undefined;
          const body = openaiModel(id);
          return { provider: 'openai', endpoint: () => ({ kind: 'json', body }), hasBody: false };
        }
        return undefined;
    }
  }

  /** Handles one API request (`path` has no query string). */
  handle(req: RequestLike, res: ResponseLike, path: string, kill: () => void): void {
    const now = Date.now();
    const method = req.method ?? 'GET';
    const route = this.route(method, path, req.headers);
    const provider = route?.provider ?? (isAnthropicClient(req.headers) ? 'anthropic' : 'openai');
    const id = `${ID_PREFIX}${(++this.seq).toString(36)}`;
    this.stats.arrive(path, req.httpVersion, now);
    const exchange = new Exchange(res, kill, provider, `req_${id}`, () => {
      this.stats.leave();
    });

    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (route === undefined) {
        this.stats.received(req.headers, undefined);
        exchange.sendError(404, { message: `Invalid URL (${method} ${path})` });
        return;
      }
      if (size > MAX_BODY_BYTES) {
        this.stats.received(req.headers, undefined);
        exchange.sendError(413, {});
        return;
      }
      this.afterBody(req.headers, route, exchange, chunks, now, id);
    });
  }

  private afterBody(headers: IncomingHttpHeaders, route: Route, exchange: Exchange, chunks: readonly Buffer[], now: number, id: string): void {
    let body: unknown = undefined;
    let badJson = false;
    if (route.hasBody) {
      const text = chunks.length === 1 ? (chunks[0]?.toString('utf8') ?? '') : Buffer.concat(chunks).toString('utf8');
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
        badJson = true;
      }
    }
    this.stats.received(headers, body);

    if (this.apiKey !== undefined && !this.authorized(route.provider, headers)) {
      exchange.sendError(401, { message: this.authFailure(route.provider, headers) });
      return;
    }
    if (this.limiter !== undefined) {
      const waitMs = this.limiter.tryAcquire(now);
      if (waitMs > 0) {
        this.stats.rejectedByLimiter();
        exchange.sendError(429, {}, { seconds: Math.ceil(waitMs / 1000), ms: Math.ceil(waitMs) });
        return;
      }
    }
    if (badJson) {
      exchange.sendError(400, {
        message: 'We could not parse the JSON body of your request. The mock expects a JSON payload.',
      });
      return;
    }

    let behavior: Behavior;
    const override = headers['x-mock-behavior'];
    if (typeof override === 'string') {
      try {
        behavior = parseBehavior(JSON.parse(override), 'x-mock-behavior');
      } catch (error) {
        exchange.sendError(400, { message: error instanceof BehaviorError ? error.message : 'x-mock-behavior is not valid JSON' });
        return;
      }
    } else {
      behavior = this.script.next() ?? this.defaultBehavior;
    }

    const ctx: RenderContext = { id, created: Math.floor(now / 1000), behaviorTokens: behavior.tokens };
    exchange.run(
      behavior,
      (): Rendered => route.endpoint(body, ctx),
      (error) => {
        if (error instanceof InputError) exchange.sendError(400, { message: error.message, param: error.param });
        else exchange.sendError(500, { message: `mock-upstream failed: ${error instanceof Error ? error.message : String(error)}` });
      },
    );
  }

  private authorized(provider: Provider, headers: IncomingHttpHeaders): boolean {
    return provider === 'anthropic' ? headers['x-api-key'] === this.apiKey : headers.authorization === this.bearer;
  }

  /** The 401 message; it never echoes the key that was sent. */
  private authFailure(provider: Provider, headers: IncomingHttpHeaders): string {
    if (provider === 'anthropic') return headers['x-api-key'] === undefined ? 'x-api-key header is required' : 'invalid x-api-key';
    return headers.authorization === undefined
      ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
      : 'Incorrect API key provided.';
  }
}
