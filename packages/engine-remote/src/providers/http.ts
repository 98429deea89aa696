// HTTP plumbing shared by provider adapters: one upstream call's abort signal
// (client gone or total deadline), a JSON POST on the session's pool, reading a
// JSON body, and turning non-2xx answers into taxonomy errors. Adapters add only
// their headers, paths and wire translation.

import { type DeploymentSpec, InferenceError, type RunContext } from '@inference/core';
import type { Dispatcher } from 'undici';
import type { RemoteSession } from '../session.js';
import { classifyStatus, classifyTransport } from '../upstreamErrors.js';

export type Json = Record<string, unknown>;

export interface CallOptions {
  readonly spec: DeploymentSpec;
  readonly session: RemoteSession;
  readonly ctx: RunContext;
}

/** The request's own abort reason (client gone, total deadline), if it fired. */
export function abortReason(signal: AbortSignal): InferenceError | undefined {
  if (!signal.aborted) return undefined;
  const r: unknown = signal.reason;
  return r instanceof InferenceError ? r : new InferenceError('internal', 'request aborted', { diagnostic: String(r) });
}

export function malformed(detail: string): InferenceError {
  return new InferenceError('upstream_error', 'the upstream provider sent a malformed response', { diagnostic: detail });
}

/**
 * Signal for one upstream call: the request's own abort plus the total timeout.
 * One timer and one listener per call; both are released by `done()`.
 */
export function callSignal(o: CallOptions): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const totalMs = o.spec.remote.timeouts.totalMs;
  const onClient = (): void => { ac.abort(o.ctx.signal.reason); };
  const timer = setTimeout(() => {
    ac.abort(new InferenceError('upstream_timeout', 'the upstream provider took too long', { diagnostic: `total timeout ${totalMs} ms` }));
  }, totalMs);
  if (o.ctx.signal.aborted) onClient();
  else o.ctx.signal.addEventListener('abort', onClient, { once: true });
  return {
    signal: ac.signal,
    done: () => {
      clearTimeout(timer);
      o.ctx.signal.removeEventListener('abort', onClient);
    },
  };
}

export async function postJson(o: CallOptions, path: string, headers: Record<string, string>, body: Json, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  const t = o.spec.remote.timeouts;
  try {
    return await o.session.pool.request({
      path: `${o.session.basePath}${path}`,
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal,
      headersTimeout: t.firstByteMs,
      bodyTimeout: t.idleMs,
    });
  } catch (e) {
    throw abortReason(signal) ?? classifyTransport(e, 'headers');
  }
}

/** The parsed body, or undefined when it is not JSON. */
export async function readJson(res: Dispatcher.ResponseData, signal: AbortSignal): Promise<unknown> {
  let text: string;
  try {
    text = await res.body.text();
  } catch (e) {
    throw abortReason(signal) ?? classifyTransport(e, 'body');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export async function failIfError(res: Dispatcher.ResponseData, signal: AbortSignal, provider: string): Promise<void> {
  if (res.statusCode >= 200 && res.statusCode < 300) return;
  const body = await readJson(res, signal);
  throw classifyStatus(res.statusCode, body, res.headers, provider);
}
