// Budgets: the pure logic. A budget limits tokens and/or USD per fixed window
// (minute, hour, day, month, or n of them), for a deployment or an API key.
// Windows are fixed and aligned: `1h` runs from the top of each UTC hour, `1d`
// from UTC midnight, `1mo` from the 1st of the UTC month; `n` units are aligned
// to multiples of n since the Unix epoch (months: since January 1970).
//
// Invariant (the reservation rule): a request reserves its estimate before it
// runs and is admitted only if spent + reserved + estimate stays within every
// limit; when it ends it releases the estimate and adds its real usage. So as
// long as real usage does not exceed the estimate, spend never passes the limit,
// however many requests run at once; where it does (a prompt the estimator
// undercounted), spend passes the limit by at most that difference per request.

import { type BudgetSpec, type EmbeddingRequest, type GenerateRequest, InferenceError, type PriceSpec, type Usage } from '@inference/core';

export type WindowUnit = 's' | 'm' | 'h' | 'd' | 'mo';

export interface BudgetWindow {
  readonly n: number;
  readonly unit: WindowUnit;
}

const WORDS: Readonly<Record<string, WindowUnit>> = { minute: 'm', hour: 'h', day: 'd', month: 'mo' };
const UNIT_MS: Readonly<Record<Exclude<WindowUnit, 'mo'>, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `30s`, `1h`, `15m`, `1d`, `1mo`, or `minute`/`hour`/`day`/`month`. */
export function parseWindow(s: string): BudgetWindow {
  const word = WORDS[s];
  if (word !== undefined) return { n: 1, unit: word };
  const m = /^([1-9]\d{0,5})(mo|m|h|d|s)$/.exec(s);
  if (m === null) {
    throw new InferenceError('invalid_request', `budget window '${s}': expected <n>s, <n>m, <n>h, <n>d, <n>mo or minute, hour, day, month`, {
      param: 'window',
    });
  }
  return { n: Number(m[1]), unit: m[2] as WindowUnit };
}

/** The fixed window holding `now`: [start, end) in ms since the epoch. */
export function windowBounds(w: BudgetWindow, now: number): { start: number; end: number } {
  if (w.unit === 'mo') {
    const d = new Date(now);
    const index = (d.getUTCFullYear() - 1970) * 12 + d.getUTCMonth();
    const first = Math.floor(index / w.n) * w.n;
    const at = (i: number): number => Date.UTC(1970 + Math.floor(i / 12), i % 12, 1);
    return { start: at(first), end: at(first + w.n) };
  }
  const size = w.n * UNIT_MS[w.unit];
  const start = Math.floor(now / size) * size;
  return { start, end: start + size };
}

export interface Amount {
  readonly tokens: number;
  readonly costUsd: number;
}

export const ZERO: Amount = { tokens: 0, costUsd: 0 };

/** USD for a number of prompt and completion tokens at a deployment's price (0 without one). */
export function costOf(promptTokens: number, completionTokens: number, price: PriceSpec | undefined): number {
  if (price === undefined) return 0;
  return (promptTokens * price.inputPerMTok + completionTokens * price.outputPerMTok) / 1_000_000;
}

export function amountOf(usage: Pick<Usage, 'promptTokens' | 'completionTokens'>, price: PriceSpec | undefined): Amount {
  return { tokens: usage.promptTokens + usage.completionTokens, costUsd: costOf(usage.promptTokens, usage.completionTokens, price) };
}

/** Costs are compared with this slack so float rounding never refuses an exact fit. */
const USD_EPSILON = 1e-9;

export interface Limits {
  readonly maxTokens?: number | undefined;
  readonly maxCostUsd?: number | undefined;
}

/** One budget's window: what was spent in it and what in-flight requests hold. */
export class Ledger {
  window: BudgetWindow;
  start: number;
  end: number;
  spent: Amount = ZERO;
  /** Estimates of requests admitted and not yet settled; carried across window ends. */
  reserved: Amount = ZERO;

  constructor(readonly windowText: string, public limits: Limits, now: number, spent: Amount = ZERO) {
    this.window = parseWindow(windowText);
    const b = windowBounds(this.window, now);
    this.start = b.start;
    this.end = b.end;
    this.spent = spent;
  }

  /** Moves to the window holding `now`; true when a new window began (spend starts at 0). */
  roll(now: number): boolean {
    if (now < this.end) return false;
    const b = windowBounds(this.window, now);
    this.start = b.start;
    this.end = b.end;
    this.spent = ZERO;
    return true;
  }

  /** Which limit `estimate` would pass, if any; `elsewhere` is what other nodes of a cluster spent in this window. */
  wouldExceed(estimate: Amount, elsewhere: Amount = ZERO): 'tokens' | 'cost' | undefined {
    const { maxTokens, maxCostUsd } = this.limits;
    if (maxTokens !== undefined && this.spent.tokens + elsewhere.tokens + this.reserved.tokens + estimate.tokens > maxTokens) return 'tokens';
    if (maxCostUsd !== undefined && this.spent.costUsd + elsewhere.costUsd + this.reserved.costUsd + estimate.costUsd > maxCostUsd + USD_EPSILON) return 'cost';
    return undefined;
  }

  reserve(estimate: Amount): void {
    this.reserved = add(this.reserved, estimate);
  }

  /** Releases a reservation and charges what was really used. */
  settle(estimate: Amount, actual: Amount): void {
    this.reserved = nonNegative(sub(this.reserved, estimate));
    this.spent = add(this.spent, actual);
  }
}

function add(a: Amount, b: Amount): Amount {
  return { tokens: a.tokens + b.tokens, costUsd: a.costUsd + b.costUsd };
}

function sub(a: Amount, b: Amount): Amount {
  return { tokens: a.tokens - b.tokens, costUsd: a.costUsd - b.costUsd };
}

function nonNegative(a: Amount): Amount {
  return { tokens: Math.max(0, a.tokens), costUsd: a.costUsd < USD_EPSILON ? 0 : a.costUsd };
}

export type BudgetScope = 'deployment' | 'key';

export interface Refusal {
  readonly scope: BudgetScope;
  readonly name: string;
  readonly limit: 'tokens' | 'cost';
  /** Until the window that refused ends. */
  readonly retryAfterMs: number;
}

/**
 * Admits `estimate` against every ledger or none (all-or-nothing, so a request
 * refused by its key's budget holds nothing on its deployment's). Each ledger
 * first rolls to the window holding `now`.
 */
export function reserveAll(
  ledgers: readonly { scope: BudgetScope; name: string; ledger: Ledger }[], estimate: Amount, now: number,
  elsewhere?: (scope: BudgetScope, name: string, windowStart: number) => Amount,
): Refusal | undefined {
  for (const { scope, name, ledger } of ledgers) {
    ledger.roll(now);
    const limit = ledger.wouldExceed(estimate, elsewhere?.(scope, name, ledger.start));
    if (limit !== undefined) return { scope, name, limit, retryAfterMs: Math.max(0, ledger.end - now) };
  }
  for (const { ledger } of ledgers) ledger.reserve(estimate);
  return undefined;
}

/** A refusal as the client sees it: 429 budget_exceeded with retry-after; `fallback` says whether the deployment's fallbacks may take it. */
export class BudgetRefusal extends InferenceError {
  constructor(readonly refusal: Refusal, readonly fallback: boolean) {
    const what = refusal.scope === 'key' ? `the budget of API key '${refusal.name}'` : `the budget of deployment '${refusal.name}'`;
    super('budget_exceeded', `${what} is exhausted for this window (${refusal.limit === 'tokens' ? 'maxTokens' : 'maxCostUsd'})`, {
      retryAfterMs: refusal.retryAfterMs,
    });
  }
}

/** A deployment's budget as the ledgers need it. */
export function limitsOf(b: BudgetSpec): Limits {
  return { maxTokens: b.maxTokens, maxCostUsd: b.maxCostUsd };
}

/** Prompt and completion tokens a request is expected to use (completion: its max_tokens or a default). */
export interface TokenEstimate {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** What the request path sees of budgets: reserve before running, settle after. */
export interface BudgetGate {
  /** Whether any budget covers this deployment or key (no estimate is made otherwise). */
  covers(deployment: string, key: string | undefined): boolean;
  /** Reserves the request's estimate; rejects with BudgetRefusal when a limit would be passed. */
  reserve(deployment: string, key: string | undefined, req: GenerateRequest | EmbeddingRequest): Promise<BudgetHold>;
}

/**
 * How a held reservation ends: `usage` — what the engine reported; `estimate` —
 * output reached the client but the usage is unknown (failed or cancelled
 * mid-stream), charged at the estimate; `none` — nothing ran, nothing charged.
 */
export type Settlement = { usage: Pick<Usage, 'promptTokens' | 'completionTokens'> } | 'estimate' | 'none';

/**
 * A budget shared by the nodes of a cluster: each node reports what it settled
 * and sees what the others did (their last synced totals, so late by at most a
 * sync interval: the overspend bound in docs/cluster.md).
 */
export interface BudgetShare {
  elsewhere(scope: BudgetScope, name: string, windowStart: number): Amount;
  spent(scope: BudgetScope, name: string, windowStart: number, amount: Amount): void;
}

export interface BudgetHold {
  settle(outcome: Settlement): void;
}
