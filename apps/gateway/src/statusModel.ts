// The status view the status page renders (GET /admin/status): deployments with
// desired and actual replicas, each replica's state, placement, load and restarts,
// last-minute rates, spend against budget, and the recent errors. Built by a pure
// function from the deployment manager's list and the metrics summary. Fields the
// catalog may or may not carry (deployment state, placement, spend in the budget
// window) are read defensively, so the view works with whatever the catalog says.

import type { MetricsSummary } from '@inference/actors';
import type { ModelDetails, PriceSpec, ReplicaLoad } from '@inference/core';

/** What is read of a replica in the manager's status. */
export interface ReplicaIn {
  readonly id: string;
  readonly state: string;
  readonly reason?: string | undefined;
  readonly restarts: number;
  readonly load: ReplicaLoad;
  readonly details?: ModelDetails | undefined;
  readonly placement?: unknown;
  readonly since?: string | undefined;
  readonly revision?: number | undefined;
}

/** What is read of a deployment in the manager's status. */
export interface DeploymentIn {
  readonly spec: {
    readonly name: string;
    readonly runtime: string;
    readonly model?: string | undefined;
    readonly replicas: number;
    readonly price?: PriceSpec | undefined;
    readonly budget?: { readonly window: string; readonly maxTokens?: number | undefined; readonly maxCostUsd?: number | undefined } | undefined;
  };
  readonly replicas: readonly ReplicaIn[];
  readonly state?: string | undefined;
  readonly reason?: string | undefined;
  readonly desired?: number | undefined;
  readonly serving?: number | undefined;
  readonly revision?: number | undefined;
  readonly spend?: unknown;
}

/** Spend in a deployment's current budget window, where budgets are tracked. */
export interface WindowSpend {
  readonly tokens: number;
  readonly costUsd: number;
  readonly window?: string | undefined;
  readonly windowEnd?: number | undefined;
}

export interface StatusReplica {
  id: string;
  state: string;
  reason?: string;
  restarts: number;
  load: { outstanding: number; queued: number; capacity: number };
  placement?: string;
  since?: string;
  revision?: number;
  backend?: string;
  pid?: number;
}

export interface StatusSpend {
  costUsd: number;
  tokens: number;
  /** `window`: the current budget window; `start`: since the process started. */
  scope: 'window' | 'start';
  window?: string;
  windowEnd?: number;
}

export interface StatusDeployment {
  name: string;
  runtime: string;
  model?: string;
  state: string;
  reason?: string;
  desired: number;
  serving: number;
  revision?: number;
  replicas: StatusReplica[];
  inFlight: number;
  restarts: number;
  rates: { requestsPerSec: number; errorsPerSec: number; tokensPerSec: number; outputTokensPerSec: number };
  spend: StatusSpend;
  budget?: { window: string; maxTokens?: number; maxCostUsd?: number };
  price?: PriceSpec;
}

export interface StatusView {
  /** Epoch ms. */
  time: number;
  windowSeconds: number;
  deployments: StatusDeployment[];
  errors: MetricsSummary['errors'];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One line for a replica's placement, whatever its shape (`node · GPU 0,1 · 4 threads`). */
export function describePlacement(p: unknown): string | undefined {
  if (typeof p === 'string') return p === '' ? undefined : p;
  if (!isRecord(p)) return undefined;
  const parts: string[] = [];
  if (typeof p.node === 'string' && p.node !== '') parts.push(p.node);
  if (Array.isArray(p.gpus)) {
    const ids = p.gpus.filter((g): g is number | string => typeof g === 'number' || typeof g === 'string');
    parts.push(ids.length === 0 ? 'CPU' : `GPU ${ids.join(',')}`);
  }
  if (typeof p.threads === 'number' && p.threads > 0) parts.push(`${p.threads} threads`);
  if (typeof p.warning === 'string' && p.warning !== '') parts.push(`(${p.warning})`);
  return parts.length === 0 ? undefined : parts.join(' · ');
}

/** A window spend from the catalog's `spend` field, when it has that shape. */
function catalogSpend(v: unknown): WindowSpend | undefined {
  const s = Array.isArray(v) ? v.find(isRecord) : v;
  if (!isRecord(s) || typeof s.costUsd !== 'number' || typeof s.tokens !== 'number') return undefined;
  return {
    costUsd: s.costUsd,
    tokens: s.tokens,
    window: typeof s.window === 'string' ? s.window : undefined,
    windowEnd: typeof s.windowEnd === 'number' ? s.windowEnd : undefined,
  };
}

function derivedState(replicas: readonly ReplicaIn[], desired: number): string {
  if (replicas.some((r) => r.state === 'serving')) return 'serving';
  if (replicas.some((r) => r.state === 'loading')) return 'loading';
  if (replicas.some((r) => r.state === 'pending')) return 'pending';
  if (replicas.length > 0 && replicas.every((r) => r.state === 'failed')) return 'failed';
  if (replicas.some((r) => r.state === 'draining')) return 'draining';
  return desired === 0 ? 'serving' : 'pending';
}

function replicaView(r: ReplicaIn): StatusReplica {
  const out: StatusReplica = {
    id: r.id,
    state: r.state,
    restarts: r.restarts,
    load: { outstanding: r.load.outstanding, queued: r.load.queued, capacity: r.load.capacity },
  };
  if (r.reason !== undefined) out.reason = r.reason;
  const placement = describePlacement(r.placement);
  if (placement !== undefined) out.placement = placement;
  if (r.since !== undefined) out.since = r.since;
  if (r.revision !== undefined) out.revision = r.revision;
  if (r.details?.backend !== undefined) out.backend = r.details.backend;
  if (r.details?.pid !== undefined) out.pid = r.details.pid;
  return out;
}

/**
 * The status view. `spendOf` gives a deployment's spend in its budget window where
 * budgets are tracked; otherwise the catalog's own `spend` field is used, and
 * failing both, the spend since start that the metrics counted.
 */
export function buildStatus(list: readonly DeploymentIn[], summary: MetricsSummary, spendOf?: (deployment: string) => WindowSpend | undefined): StatusView {
  const deployments = list.map((d): StatusDeployment => {
    const name = d.spec.name;
    const m = summary.deployments[name];
    const desired = d.desired ?? d.spec.replicas;
    const window = spendOf?.(name) ?? catalogSpend(d.spend);
    const spend: StatusSpend = window === undefined
      ? { costUsd: m?.costUsd ?? 0, tokens: (m?.tokensIn ?? 0) + (m?.tokensOut ?? 0), scope: 'start' }
      : { costUsd: window.costUsd, tokens: window.tokens, scope: 'window' };
    if (window?.window !== undefined) spend.window = window.window;
    if (window?.windowEnd !== undefined) spend.windowEnd = window.windowEnd;
    const out: StatusDeployment = {
      name,
      runtime: d.spec.runtime,
      state: d.state ?? derivedState(d.replicas, desired),
      desired,
      serving: d.serving ?? d.replicas.filter((r) => r.state === 'serving').length,
      replicas: d.replicas.map(replicaView),
      inFlight: m?.inFlight ?? 0,
      restarts: d.replicas.reduce((n, r) => n + r.restarts, 0),
      rates: m?.rates ?? { requestsPerSec: 0, errorsPerSec: 0, tokensPerSec: 0, outputTokensPerSec: 0 },
      spend,
    };
    if (d.spec.model !== undefined) out.model = d.spec.model;
    if (d.reason !== undefined) out.reason = d.reason;
    if (d.revision !== undefined) out.revision = d.revision;
    const b = d.spec.budget;
    if (b !== undefined) {
      out.budget = { window: b.window };
      if (b.maxTokens !== undefined) out.budget.maxTokens = b.maxTokens;
      if (b.maxCostUsd !== undefined) out.budget.maxCostUsd = b.maxCostUsd;
    }
    if (d.spec.price !== undefined) out.price = d.spec.price;
    return out;
  });
  return { time: summary.time, windowSeconds: summary.windowSeconds, deployments, errors: summary.errors };
}
