// Authentication at the HTTP edge, before any body is read: `authorize` decides
// from the path and headers alone, and both HTTP fronts call it (the Fastify
// onRequest hook here, and the lean front of the generate routes, fastLane.ts).
// When `auth.apiKeys` is configured, /v1/* needs one of those keys
// (`Authorization: Bearer <key>`; /v1/messages also takes `x-api-key`, as
// Anthropic clients send it); when `auth.adminKeys` is configured, /admin/* and
// /metrics need an admin key. The two sets never stand in for each other. /health,
// /ready and the status page's HTML at / stay open (its data comes from /admin).
// Keys are compared as SHA-256 digests with crypto.timingSafeEqual, against every
// configured key (no early exit), so timing reveals neither a key nor which one
// matched. A key is known here only as its digest and its configured name; it is
// never logged, rendered or put in a metric.
// Virtual keys (keys/, docs/keys.md) are looked up by the same digest in the
// KeyRegistry (a Map hit). Once any virtual key exists, /v1/* requires a key even
// without `auth.apiKeys`; a revoked or expired virtual key is refused with 401
// saying so, a key used on a deployment it may not use with 403 (requestRun.ts).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '@inference/actors';
import { InferenceError, invalid } from '@inference/core';
import { type AdminKeyConfig, type ApiKeyConfig, type Env, resolveKeys } from '@inference/runtime';
import type { KeyRegistry } from '../keys/keyRegistry.js';
import { ANTHROPIC_PATH, pathOf, sendRefusal } from './refusal.js';

interface Entry {
  readonly digest: Buffer;
  readonly principal: Principal;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** A set of keys, matched in constant time. */
export class KeyRing {
  private readonly entries: Entry[];

  constructor(keys: readonly { name: string; value: string; deployments?: readonly string[] | undefined }[]) {
    this.entries = keys.map((k) => ({ digest: digest(k.value), principal: { name: k.name, deployments: k.deployments } }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The principal whose key this is, or undefined. Compares against every key. */
  match(presented: string): Principal | undefined {
    return this.matchDigest(digest(presented));
  }

  matchDigest(d: Buffer): Principal | undefined {
    let found: Principal | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(d, e.digest) && found === undefined) found = e.principal;
    }
    return found;
  }
}

export interface AuthKeys {
  readonly api: KeyRing;
  readonly admin: KeyRing;
  /** Virtual keys managed through the admin API. */
  readonly virtual?: KeyRegistry | undefined;
}

/** Reads the configured keys from the environment; an unset variable, or one key in two places, is a startup error. */
export function loadAuthKeys(auth: { apiKeys: ApiKeyConfig[]; adminKeys: AdminKeyConfig[] }, env?: Env): AuthKeys {
  const api = resolveKeys(auth.apiKeys, env);
  const admin = resolveKeys(auth.adminKeys, env);
  const seen = new Map<string, string>();
  const check = (list: { keyEnv: string; value: string }[], path: string): void => {
    list.forEach((k, i) => {
      const at = `${path}[${i}].keyEnv`;
      if (k.value === '') invalid(at, `environment variable ${k.keyEnv} is not set`);
      const h = digest(k.value).toString('hex');
      const other = seen.get(h);
      if (other !== undefined) invalid(at, `holds the same key as ${other}; every key must be distinct`);
      seen.set(h, at);
    });
  };
  check(api, 'auth.apiKeys');
  check(admin, 'auth.adminKeys');
  return { api: new KeyRing(api), admin: new KeyRing(admin) };
}

/** What a request is known by on either front (Fastify's request, or the lean front's own object). */
type Keyed = object;

const principals = new WeakMap<Keyed, Principal>();
const admins = new WeakMap<Keyed, string>();

/** The admin key (by name) that authenticated this request; undefined without admin auth. */
export function adminOf(req: Keyed): string | undefined {
  return admins.get(req);
}

/** The API key (by name) that authenticated this request; undefined without auth. */
export function principalOf(req: Keyed): Principal | undefined {
  return principals.get(req);
}

/** Whether the request's key may use a deployment. */
export function mayUse(principal: Principal | undefined, deployment: string): boolean {
  return principal?.deployments === undefined || principal.deployments.includes(deployment);
}

type Area = 'api' | 'admin' | 'open';

function areaOf(path: string): Area {
  if (path === '/v1' || path.startsWith('/v1/')) return 'api';
  if (path === '/admin' || path.startsWith('/admin/') || path === '/metrics') return 'admin';
  return 'open';
}

function bearer(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

function refuse(req: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
  void reply.header('www-authenticate', 'Bearer');
  return sendRefusal(req, reply, new InferenceError('unauthorized', message));
}

/** The principal of a presented API key, or why it is refused. */
function apiPrincipal(keys: AuthKeys, presented: string): Principal | string {
  const d = digest(presented);
  const fromEnv = keys.api.matchDigest(d);
  if (fromEnv !== undefined) return fromEnv;
  const m = keys.virtual?.matchHash(d.toString('hex'), Date.now());
  if (m === undefined) return 'invalid API key';
  switch (m.kind) {
    case 'active':
      return m.principal;
    case 'revoked':
      return 'this API key has been revoked';
    case 'expired':
      return 'this API key has expired';
    default: {
      const never: never = m;
      throw new Error(`unknown match ${JSON.stringify(never)}`);
    }
  }
}

/** How a request stands with the configured keys: what it may do, or why it is refused (the client-safe message). */
export type AuthOutcome =
  | { readonly kind: 'open' }
  | { readonly kind: 'api'; readonly principal: Principal }
  | { readonly kind: 'admin'; readonly name: string }
  | { readonly kind: 'refused'; readonly message: string };

const OPEN: AuthOutcome = { kind: 'open' };

/** Whether any key is configured or possible (without any, every request is open and no hook is installed). */
export function authActive(keys: AuthKeys): boolean {
  return keys.api.size > 0 || keys.admin.size > 0 || keys.virtual !== undefined;
}

function apiOutcome(keys: AuthKeys, path: string, headers: IncomingHttpHeaders): AuthOutcome {
  if (keys.api.size === 0 && (keys.virtual?.size ?? 0) === 0) return OPEN;
  const apiKey = headers['x-api-key'];
  const presented = bearer(headers) ?? (path === ANTHROPIC_PATH && typeof apiKey === 'string' ? apiKey : undefined);
  if (presented === undefined) return { kind: 'refused', message: 'an API key is required (Authorization: Bearer <key>)' };
  const principal = apiPrincipal(keys, presented);
  return typeof principal === 'string' ? { kind: 'refused', message: principal } : { kind: 'api', principal };
}

function adminOutcome(keys: AuthKeys, headers: IncomingHttpHeaders): AuthOutcome {
  if (keys.admin.size === 0) return OPEN;
  const presented = bearer(headers);
  const admin = presented === undefined ? undefined : keys.admin.match(presented);
  if (admin !== undefined) return { kind: 'admin', name: admin.name };
  return { kind: 'refused', message: presented === undefined ? 'an admin key is required (Authorization: Bearer <key>)' : 'invalid admin key' };
}

/** The decision for a request to `path` (no query string) with these headers; both HTTP fronts call this. */
export function authorize(keys: AuthKeys, path: string, headers: IncomingHttpHeaders): AuthOutcome {
  const area = areaOf(path);
  switch (area) {
    case 'open':
      return OPEN;
    case 'api':
      return apiOutcome(keys, path, headers);
    case 'admin':
      return adminOutcome(keys, headers);
    default: {
      const never: never = area;
      throw new Error(`unknown area ${String(never)}`);
    }
  }
}

/** Records what an accepted request authenticated as (principalOf / adminOf read it back). */
export function remember(req: Keyed, outcome: AuthOutcome): void {
  if (outcome.kind === 'api') principals.set(req, outcome.principal);
  else if (outcome.kind === 'admin') admins.set(req, outcome.name);
}

/** Installs the hook; with no keys configured (and no virtual keys possible) it lets everything through. */
export function registerAuth(app: FastifyInstance, keys: AuthKeys): void {
  if (!authActive(keys)) return;
  app.addHook('onRequest', async (req, reply) => {
    const outcome = authorize(keys, pathOf(req.url), req.headers);
    if (outcome.kind === 'refused') return refuse(req, reply, outcome.message);
    remember(req, outcome);
    return undefined;
  });
}
