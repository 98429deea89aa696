// ApiGatewayActor: owns the Fastify server. Route handlers only validate, hand
// the request to a RequestRun (one per request, a plain object this actor keeps
// while it runs and cancels when it stops) and render. Errors render in one place
// (OpenAI envelope) and, after the first SSE byte, in one other (the stream's final
// error event). POST /v1/chat/completions and /v1/completions are taken in front of
// Fastify by a lean listener (http/fastLane.ts), which logs them as Fastify would;
// both fronts answer through openai/generate.ts.

import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  Actor, type RequestDeps, type RequestJob, type RequestResult, RequestRun, requestSpan,
} from '@inference/actors';
import {
  Flow, InferenceError, openAIErrorBody, parseChatRequest, parseCompletionRequest, parseDeployment,
  parseEmbeddingRequest, renderEmbeddings, retryAfterSeconds, toInferenceError, type Tracing,
} from '@inference/core';
import type { Runtime } from '@inference/runtime';
import { modelEntry } from './openai/models.js';
import { LocalRecordStore } from '@inference/storage';
import { registerAnthropicRoutes } from './anthropic/anthropicRoutes.js';
import { ResponsesApi, registerResponsesRoutes } from './openai/responsesRoutes.js';
import { registerStatusRoutes } from './status/statusRoutes.js';
import { registerAdminScaleRoutes } from './admin/adminScaleRoutes.js';
import { type AnswerFront, type GenerateDeps, answerGenerate, cancelWhenGone } from './openai/generate.js';
import { type AuthKeys, mayUse, principalOf, registerAuth } from './http/auth.js';
import { registerBudgetResetRoute, registerBudgetRoutes } from './admin/budgetRoutes.js';
import { fromFastify } from './http/fastifyErrors.js';
import { type CorsConfig, CorsPolicy, registerCors } from './http/cors.js';
import { httpsOptions, registerOptionalClientCert, secureContextOf } from './http/gatewayTls.js';
import { FastLane } from './http/fastLane.js';
import { laneServerFactory } from './http/laneServer.js';
import { ClosingConnections } from './http/closingConnections.js';
import type { RequestHead } from './http/requestHead.js';
import { requestIdOf } from './http/requestId.js';
import { type SecretAllowList, type TlsReloader, secretPolicy } from '@inference/runtime';
import type { Server as SecureServer } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { Drain, refuseShuttingDown } from './http/drain.js';
import type { WriterOptions } from './http/coalesce.js';
import type { AdminServices } from './admin/adminServices.js';
import { recordChange, registerAuditRoutes } from './audit/auditRoutes.js';
import { specBefore } from './audit/deploymentAudit.js';
import { registerKeyRoutes } from './keys/keyRoutes.js';

export interface GatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly bodyLimitBytes: number;
  /** How long a streamed response may stay unread before it is ended (absent: forever). */
  readonly streamStallMs?: number;
  /** How long a response stored in this process is kept (config `responses.ttlSeconds`); absent: 30 days. */
  readonly responsesTtlMs?: number;
  readonly logger?: boolean;
  /** API and admin keys (absent or empty: no auth). */
  readonly auth?: AuthKeys;
  /** HTTPS on this listener: HTTP/2 for clients that negotiate it (ALPN), HTTP/1.1 for the rest. */
  readonly tls?: GatewayTls;
  /** Origins browser clients may call from. */
  readonly cors?: CorsConfig;
  /** Tracing, when on (docs/tracing.md); absent: requests make no spans at all. */
  readonly tracing?: Tracing | undefined;
  /** Shutdown state: once draining, new work gets 503 and /ready 503 (drain.ts). */
  readonly drain?: Drain;
  /** Virtual keys, their limits, the audit trail and budget resets (absent: none of them). */
  readonly admin?: AdminServices;
  /**
   * The lean front of the generate routes (http/fastLane.ts); default on. Off, Fastify
   * serves them as every other route.
   */
  readonly fastLane?: boolean;
}

export interface GatewayTls {
  readonly reloader: TlsReloader;
  /** With a client CA: refuse connections without a valid client certificate. */
  readonly requireClientCert: boolean;
}

export type GatewayMsg = { type: 'address'; reply: { resolve: (a: { host: string; port: number }) => void; reject: (e: unknown) => void } };

function sendError(reply: FastifyReply, e: InferenceError, status = e.status): FastifyReply {
  const ra = retryAfterSeconds(e);
  if (ra !== undefined) void reply.header('retry-after', String(ra));
  return reply.code(status).type('application/json').send(openAIErrorBody(e));
}

/** How a request that came through Fastify is answered by openai/generate.ts. */
function fastifyFront(req: FastifyRequest, reply: FastifyReply): AnswerFront {
  return {
    head: req,
    res: reply.raw,
    error: (e) => { void sendError(reply, e); },
    json: (body) => { void reply.type('application/json').send(body); },
    hijack: () => { reply.hijack(); },
  };
}

/**
 * The parsed JSON body, which the request then lets go of: from here on only the
 * validated request is kept, not both, for however long the response streams.
 */
function takeBody(req: FastifyRequest): unknown {
  const body = req.body;
  req.body = undefined;
  return body;
}

export class ApiGatewayActor extends Actor<GatewayMsg> {
  private app: FastifyInstance | undefined;
  private lane: FastLane | undefined;
  /** Ends the connections clients hold open once the server closes (http/closingConnections.ts). */
  private connections: ClosingConnections | undefined;
  /** What every RequestRun is given (one object, not one per request). */
  private readonly requestDeps: RequestDeps;
  /**
   * The runs not yet settled: each adds itself when it starts and leaves when it
   * settles, so this holds no more than the requests in flight; stopping cancels them.
   */
  private readonly live = new Set<RequestRun>();
  /** Which variables an applied deployment may name in apiKeyEnv. */
  private readonly secrets: SecretAllowList;
  private readonly drain: Drain;
  /** What both fronts' chat and text completions are answered with. */
  private readonly generateDeps: GenerateDeps;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: GatewayOptions,
  ) {
    super();
    this.drain = options.drain ?? new Drain();
    const rt = runtime;
    this.secrets = secretPolicy(runtime.config);
    this.requestDeps = {
      coordinator: rt.coordinator, metrics: rt.metrics, router: rt.router, recorder: rt.recorder,
      policyOf: (name: string) => rt.spec(name), budget: rt.budgetGate, live: this.live,
    };
    this.generateDeps = { dispatch: (head, job, onCancel) => this.dispatch(head, job, onCancel), streamOptions: this.streamOptions };
  }

  get server(): FastifyInstance {
    if (this.app === undefined) throw new InferenceError('internal', 'gateway not started');
    return this.app;
  }

  override async preStart(): Promise<void> {
    const tls = this.options.tls;
    const common = {
      logger: this.options.logger === true ? { level: 'info', redact: ['req.headers.authorization', 'req.headers["x-api-key"]'] } : false,
      bodyLimit: this.options.bodyLimitBytes,
      genReqId: (req: { headers: IncomingHttpHeaders }) => requestIdOf(req.headers),
      keepAliveTimeout: 65_000,
      // Malformed URLs fail before routing (and before the onRequest hook): render them in the envelope too.
      frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
        const { e, status } = fromFastify(err, this.options.bodyLimitBytes);
        void reply.header('x-request-id', req.id);
        void sendError(reply, e, status);
      },
      // Off: Fastify's own 503 while closing is not our envelope; the drain hook below answers it (http/drain.ts).
      return503OnClosing: false,
    };
    // The routes and hooks take the HTTP/1 request types; under HTTP/2 the compat API
    // gives the same surface (streaming.ts leaves out headers HTTP/2 forbids).
    const lane = this.makeLane();
    this.lane = lane;
    const secure = tls === undefined ? undefined : httpsOptions(tls);
    const options = lane === undefined ? common : { ...common, serverFactory: laneServerFactory(lane, secure) };
    const app = (secure === undefined
      ? Fastify(options as object)
      : Fastify({ ...(options as object), http2: true, https: { allowHTTP1: true, ...secure } })) as unknown as FastifyInstance;
    this.connections = new ClosingConnections(app.server, secure !== undefined);
    // The lane logs what it takes in the shape of Fastify's request log (http/laneLog.ts).
    if (lane !== undefined && this.options.logger === true) lane.logTo(app.log);
    if (tls !== undefined) {
      const server = app.server as unknown as SecureServer;
      tls.reloader.onChange(() => { server.setSecureContext(secureContextOf(tls)); });
      if (tls.reloader.current.ca !== undefined && !tls.requireClientCert) registerOptionalClientCert(app);
    }
    app.addHook('onRequest', (req, reply, done) => {
      void reply.header('x-request-id', req.id);
      if (this.drain.refuses(req.url)) {
        void refuseShuttingDown(req, reply);
        return;
      }
      if (!Drain.isProbe(req.url)) this.drain.track(reply.raw);
      done();
    });
    // Before auth: preflights carry no credentials.
    if (this.options.cors !== undefined) registerCors(app, this.options.cors);
    if (this.options.auth !== undefined) registerAuth(app, this.options.auth);
    app.setErrorHandler((err: FastifyError, _req, reply) => {
      const { e, status } = fromFastify(err, this.options.bodyLimitBytes);
      return sendError(reply, e, status);
    });
    // Only JSON bodies are API input: without this, text/plain bodies would parse as strings.
    app.removeContentTypeParser('text/plain');
    app.setNotFoundHandler((req, reply) => sendError(reply, new InferenceError('not_found', `no route for ${req.method} ${req.url.split('?')[0] ?? ''}`)));
    this.routes(app);
    // A burst of new connections (thousands of clients opening streams at once) must not overflow
    // the accept queue; the kernel caps this at net.core.somaxconn.
    await app.listen({ host: this.options.host, port: this.options.port, backlog: 4096 });
    this.app = app;
  }

  override async postStop(): Promise<void> {
    // Work still running when the gateway stops (system shutdown) is cancelled, as before the server closes.
    for (const run of [...this.live]) run.cancel('request ended');
    // Requests still arriving on open connections while the server closes get the shutdown 503 (the lane,
    // which takes nothing while draining, hands them to Fastify's hook).
    this.drain.close();
    // Idle connections end now, busy ones once their requests have (an HTTP/2 session with a GOAWAY).
    this.connections?.close();
    await this.app?.close();
  }

  /** The lean front of the generate routes, unless it is off. */
  private makeLane(): FastLane | undefined {
    const o = this.options;
    if (o.fastLane === false) return undefined;
    return new FastLane({
      bodyLimitBytes: o.bodyLimitBytes,
      drain: this.drain,
      auth: o.auth,
      cors: o.cors === undefined ? undefined : new CorsPolicy(o.cors),
      optionalClientCert: o.tls !== undefined && o.tls.reloader.current.ca !== undefined && !o.tls.requireClientCert,
      generate: this.generateDeps,
    });
  }

  receive(m: GatewayMsg): void {
    const addr = this.app?.server.address();
    if (addr === undefined || addr === null || typeof addr === 'string') m.reply.reject(new InferenceError('internal', 'not listening'));
    else m.reply.resolve({ host: addr.address, port: addr.port });
  }

  private dispatch(req: RequestHead, job: RequestJob, onCancel: (cancel: () => void) => void): Promise<RequestResult> {
    const tracing = this.options.tracing;
    return tracing === undefined ? this.spawnRequest(req, job, onCancel) : this.tracedDispatch(tracing, req, job, onCancel);
  }

  private spawnRequest(req: RequestHead, job: RequestJob, onCancel: (cancel: () => void) => void): Promise<RequestResult> {
    const deps = this.requestDeps;
    const principal = principalOf(req);
    const withKey: RequestJob = principal === undefined ? job : { ...job, principal };
    // A virtual key's rpm/tpm: checked (and the request counted) before anything runs.
    const limits = principal === undefined || this.options.admin?.limits.limited(principal.name) !== true ? undefined : this.options.admin.limits;
    if (limits !== undefined && principal !== undefined) {
      try {
        limits.admit(principal.name);
      } catch (e) {
        return Promise.reject(toInferenceError(e));
      }
    }
    // A plain object, not a spawned actor: no mailbox, no ask, one promise (requestRun.ts).
    const request = new RequestRun(deps, req.id, withKey);
    onCancel(() => { request.cancel('client disconnected'); });
    // The request bounds itself (engine and upstream timeouts, client disconnect): no timer here.
    const run = request.run();
    if (limits === undefined || principal === undefined) return run;
    return run.then((out) => {
      limits.used(principal.name, out.kind === 'generate' ? out.tokens.usage.promptTokens + out.tokens.usage.completionTokens : out.result.promptTokens);
      return out;
    });
  }

  /** dispatch() under the request's span: the caller's traceparent is honoured, the span ends with the request. */
  private tracedDispatch(tracing: Tracing, req: RequestHead, job: RequestJob, onCancel: (cancel: () => void) => void): Promise<RequestResult> {
    const { name, attrs } = requestSpan(job.kind === 'generate' ? job.endpoint : 'embedding', job.req, req.id);
    const span = tracing.start(name, req.headers, attrs);
    span.set({ 'http.request.method': req.method, 'url.path': req.url.split('?')[0] });
    const done = (): void => { span.end(); };
    const out = this.spawnRequest(req, { ...job, trace: span }, onCancel);
    out.then(done, done);
    return out;
  }

  /** A streamed response's writer: a client that reads slowly pauses its own request's output (docs/flow-control.md). */
  private readonly streamOptions = (): WriterOptions & { readonly flow: Flow } => {
    const flow = new Flow();
    const stallMs = this.options.streamStallMs;
    return stallMs === undefined ? { flow, buffers: this.runtime.streams } : { flow, stallMs, buffers: this.runtime.streams };
  };

  private routes(app: FastifyInstance): void {
    const rt = this.runtime;
    app.post('/v1/chat/completions', async (req, reply) => {
      await answerGenerate(this.generateDeps, fastifyFront(req, reply), 'chat', parseChatRequest(takeBody(req)));
      return reply;
    });
    app.post('/v1/completions', async (req, reply) => {
      await answerGenerate(this.generateDeps, fastifyFront(req, reply), 'completion', parseCompletionRequest(takeBody(req)));
      return reply;
    });
    registerAnthropicRoutes(app, (r, job, onCancel) => this.dispatch(r, job, onCancel), this.options.bodyLimitBytes, this.streamOptions);
    const records = rt.records ?? new LocalRecordStore(rt.store, this.options.responsesTtlMs);
    registerResponsesRoutes(app, new ResponsesApi((r, job, onCancel) => this.dispatch(r, job, onCancel), records, this.streamOptions));
    app.post('/v1/embeddings', async (req, reply) => {
      const parsed = parseEmbeddingRequest(req.body);
      // A client that goes away cancels the embedding (queue wait and engine work).
      const out = await this.dispatch(req, { kind: 'embed', req: parsed }, cancelWhenGone(reply.raw));
      if (out.kind !== 'embed') throw new InferenceError('internal', 'internal error');
      return reply.send(renderEmbeddings(parsed.model, out.result.vectors, out.result.promptTokens, parsed.encodingFormat));
    });
    app.get('/v1/models', async (req) => {
      const all = await rt.list();
      const principal = principalOf(req);
      return {
        object: 'list',
        data: all.filter((d) => mayUse(principal, d.spec.name)).map((d) => modelEntry(d)),
      };
    });
    registerStatusRoutes(app, rt, this.options.admin?.audit);
    app.get('/health', () => ({ status: 'ok' }));
    app.get('/ready', async (_req, reply) => {
      // Draining: not ready, whatever the deployments say, so load balancers stop sending at once.
      if (this.drain.draining) return reply.code(503).send({ ready: false, draining: true, waiting: [] });
      const all = await rt.list();
      const notReady = [
        ...(rt.clusterWaiting?.() ?? []),
        ...all.filter((d) => d.spec.replicas > 0 && !d.replicas.some((r) => r.state === 'serving')).map((d) => d.spec.name),
      ];
      const cluster = rt.cluster?.();
      const body = { ready: notReady.length === 0, waiting: notReady, ...(cluster === undefined ? {} : { cluster }) };
      return reply.code(notReady.length === 0 ? 200 : 503).send(body);
    });
    app.get('/metrics', async (_req, reply) => {
      const m = await rt.metrics.ask<{ contentType: string; body: string }>((r) => ({ type: 'render', reply: r }));
      const budgets = await rt.budget.ask<string>((r) => ({ type: 'render', reply: r }));
      return reply.type(m.contentType).send(`${m.body}${budgets}${rt.streams.render()}`);
    });
    registerBudgetRoutes(app, rt);
    const admin = this.options.admin;
    const audit = admin?.audit;
    if (admin !== undefined) {
      registerKeyRoutes(app, admin.keys);
      registerAuditRoutes(app, admin.audit);
      registerBudgetResetRoute(app, admin.resets, admin.audit);
    }
    app.get('/admin/cluster', (_req, reply) => {
      const cluster = rt.cluster?.();
      if (cluster === undefined) return sendError(reply, new InferenceError('not_found', 'this node does not run in cluster mode'));
      return reply.send(cluster);
    });
    app.get('/admin/deployments', async () => ({ deployments: await rt.list() }));
    app.get<{ Params: { name: string } }>('/admin/deployments/:name', (req) => rt.get(req.params.name));
    app.put<{ Params: { name: string } }>('/admin/deployments/:name', async (req) => {
      const body = req.body;
      const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
      const withName = isObject ? { name: req.params.name, ...(body as Record<string, unknown>) } : body;
      const spec = parseDeployment(withName, '', rt.runtimes);
      if (spec.name !== req.params.name) throw new InferenceError('invalid_request', 'name in the body differs from the path', { param: 'name' });
      this.secrets.check(spec);
      return recordChange(audit, req, 'deployment.apply', spec.name, () => specBefore(rt, spec.name), () => rt.apply(spec), (s) => s.spec);
    });
    registerAdminScaleRoutes(app, rt, audit);
    app.delete<{ Params: { name: string } }>('/admin/deployments/:name', async (req) => {
      const name = req.params.name;
      await recordChange(audit, req, 'deployment.remove', name, () => specBefore(rt, name), () => rt.remove(name), () => null);
      return { deleted: name };
    });
  }
}

