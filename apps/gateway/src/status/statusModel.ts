// The status view the status page renders (GET /admin/status): deployments with
// desired and actual replicas, each replica's state, placement, load and restarts,
// last-minute rates, spend against budget, and the recent errors. Built by a pure
// function from the deployment manager's list, the metrics summary and the budget
// ledgers. Fields a replica may or may not carry (placement, details) are read
// defensively. API keys appear by their configured name only, never a key.

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
}

export interface BudgetLimits {
  readonly window: string;
  readonly maxTokens?: number | undefined;
  readonly maxCostUsd?: number | undefined;
}

/** One budget window's spend, as the budget ledgers report it. */
export interface SpendIn {
  readonly scope: string;
  readonly name: string;
  readonly window: string;
  readonly windowEnd: number;
  readonly tokens: number;
  readonly costUsd: number;
}

/** The budget ledgers at `now`, and the budgets of API keys by key name. */
export interface BudgetsIn {
  readonly now: number;
  readonly spend: readonly SpendIn[];
  readonly keys: ReadonlyMap<string, BudgetLimits>;
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

/** An API key's budget (by the key's configured name) and its spend in the current window. */
export interface StatusKey {
  name: string;
  spend: StatusSpend;
  budget: { window: string; maxTokens?: number; maxCostUsd?: number };
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
  keys: StatusKey[];
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
  if (typeof p.threads === 'number' && p.threads > 0) parts.push(`${p.threads} thread${p.threads === 1 ? '' : 's'}`);
  if (typeof p.warning === 'string' && p.warning !== '') parts.push(`(${p.warning})`);
  return parts.length === 0 ? undefined : parts.join(' · ');
}

/** Spend in the current window of a budget; a window that has ended (no request since) spent nothing yet. */
function windowSpend(budgets: BudgetsIn, scope: string, name: string, window: string): StatusSpend {
  const r = budgets.spend.find((x) => x.scope === scope && x.name === name && x.window === window && x.windowEnd > budgets.now);
  const out: StatusSpend = { costUsd: r?.costUsd ?? 0, tokens: r?.tokens ?? 0, scope: 'window', window };
  if (r !== undefined) out.windowEnd = r.windowEnd;
  return out;
}

function limits(b: BudgetLimits): { window: string; maxTokens?: number; maxCostUsd?: number } {
  const out: { window: string; maxTokens?: number; maxCostUsd?: number } = { window: b.window };
  if (b.maxTokens !== undefined) out.maxTokens = b.maxTokens;
  if (b.maxCostUsd !== undefined) out.maxCostUsd = b.maxCostUsd;
  return out;
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
 * The status view. A deployment with a budget shows its spend in the budget's
 * current window (from the ledgers); one without shows what the metrics counted
 * since the process started.
 */
export function buildStatus(list: readonly DeploymentIn[], summary: MetricsSummary, budgets?: BudgetsIn): StatusView {
  const deployments = list.map((d): StatusDeployment => {
    const name = d.spec.name;
    const m = summary.deployments[name];
    const desired = d.desired ?? d.spec.replicas;
    const b = d.spec.budget;
    const spend: StatusSpend = b !== undefined && budgets !== undefined
      ? windowSpend(budgets, 'deployment', name, b.window)
      : { costUsd: m?.costUsd ?? 0, tokens: (m?.tokensIn ?? 0) + (m?.tokensOut ?? 0), scope: 'start' };
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
    if (b !== undefined) out.budget = limits(b);
    if (d.spec.price !== undefined) out.price = d.spec.price;
    return out;
  });
  const keys = [...(budgets?.keys ?? new Map<string, BudgetLimits>())].map(([name, b]): StatusKey => ({
    name,
    spend: budgets === undefined ? { costUsd: 0, tokens: 0, scope: 'window', window: b.window } : windowSpend(budgets, 'key', name, b.window),
    budget: limits(b),
  }));
  return { time: summary.time, windowSeconds: summary.windowSeconds, deployments, keys, errors: summary.errors };
}
