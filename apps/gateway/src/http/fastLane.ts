// The lean front of the two hot routes, POST /v1/chat/completions and POST
// /v1/completions: a plain request listener in front of Fastify's, installed
// through Fastify's serverFactory (laneServer.ts). It takes a request on exactly
// those paths only when every check Fastify would make before reading the body
// lets it through (not closing or draining, a client certificate that verifies,
// an API key that authenticates, a JSON content-type, a declared length within
// the limit); any other request, refusals included, goes to Fastify's listener
// untouched, so Fastify renders every refusal itself. A request the lane takes
// gets what Fastify's path gives it: its request id, CORS headers, drain
// tracking, the principal its key authenticated, the body read and parsed as
// Fastify's JSON parser does (jsonBody.ts), and the same answer (openai/generate.ts).
// What it leaves out is Fastify's per-request objects, hooks and promise hops.
// With the per-request log on, it logs what it takes as Fastify would (laneLog.ts).
// See docs/architecture.md ("The lean front of the generate routes").

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Endpoint } from '@inference/actors';
import { type GenerateRequest, parseChatRequest, parseCompletionRequest, toInferenceError } from '@inference/core';
import { type AnswerFront, type GenerateDeps, answerGenerate } from '../openai/generate.js';
import { type AuthKeys, type AuthOutcome, authActive, authorize, remember } from './auth.js';
import type { CorsPolicy } from './cors.js';
import type { Drain } from './drain.js';
import { badClientCert } from './gatewayTls.js';
import { isJsonContentType, readJsonBody } from './jsonBody.js';
import { LaneExchange } from './laneExchange.js';
import { type LaneLog, logExchange } from './laneLog.js';
import { requestIdOf } from './requestId.js';

export type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export interface LaneOptions {
  readonly bodyLimitBytes: number;
  readonly drain: Drain;
  readonly auth?: AuthKeys | undefined;
  readonly cors?: CorsPolicy | undefined;
  /** TLS with a client CA and certificates optional: a certificate that does not verify is Fastify's to refuse. */
  readonly optionalClientCert: boolean;
  readonly generate: GenerateDeps;
}

type Route = Extract<Endpoint, 'chat' | 'completion'>;

const OPEN: AuthOutcome = { kind: 'open' };

function routeOf(req: IncomingMessage): Route | undefined {
  if (req.method !== 'POST') return undefined;
  const url = req.url;
  if (url === '/v1/chat/completions') return 'chat';
  return url === '/v1/completions' ? 'completion' : undefined;
}

function parse(route: Route, body: unknown): GenerateRequest {
  return route === 'chat' ? parseChatRequest(body) : parseCompletionRequest(body);
}

export class FastLane {
  private readonly auth: AuthKeys | undefined;
  /** The per-request log, when it is on (absent: nothing is logged per request). */
  private log: LaneLog | undefined;

  constructor(private readonly options: LaneOptions) {
    this.auth = options.auth !== undefined && authActive(options.auth) ? options.auth : undefined;
  }

  /** Logs every request the lane takes (Fastify's logger, made after this listener). */
  logTo(log: LaneLog): void {
    this.log = log;
  }

  /** The server's request listener: the two generate routes here, everything else to `fastify`. */
  listener(fastify: Listener): Listener {
    return (req, res) => {
      const route = routeOf(req);
      const outcome = route === undefined ? undefined : this.admit(req);
      if (route === undefined || outcome === undefined) fastify(req, res);
      else this.take(req, res, route, outcome);
    };
  }

  /** The request's authentication when nothing Fastify checks before the body would refuse it; undefined: Fastify answers it. */
  private admit(req: IncomingMessage): AuthOutcome | undefined {
    const o = this.options;
    if (o.drain.draining || !isJsonContentType(req.headers['content-type'])) return undefined;
    if (Number(req.headers['content-length']) > o.bodyLimitBytes) return undefined;
    if (o.optionalClientCert && badClientCert(req.socket as TLSSocket | null)) return undefined;
    if (this.auth === undefined) return OPEN;
    const outcome = authorize(this.auth, req.url ?? '', req.headers);
    return outcome.kind === 'refused' ? undefined : outcome;
  }

  private take(req: IncomingMessage, res: ServerResponse, route: Route, outcome: AuthOutcome): void {
    const x = new LaneExchange(requestIdOf(req.headers), req, res);
    if (this.log !== undefined) logExchange(this.log, x.id, req, res);
    remember(x, outcome);
    this.options.cors?.applyActual(res, req.headers.origin);
    this.options.drain.track(res);
    readJsonBody(req, this.options.bodyLimitBytes, (err, body) => {
      if (err === undefined) this.answer(x, route, body);
      else x.error(err.e, err.status, true);
    });
  }

  private answer(x: LaneExchange, route: Route, body: unknown): void {
    let parsed: GenerateRequest;
    try {
      parsed = parse(route, body);
    } catch (e) {
      x.error(toInferenceError(e));
      return;
    }
    answerGenerate(this.options.generate, x satisfies AnswerFront, route, parsed).catch((e: unknown) => {
      x.error(toInferenceError(e));
    });
  }
}
