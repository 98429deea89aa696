// BudgetActor: owns every budget ledger (per deployment and per API key name)
// and the spend store. Reservations and settlements are messages, handled one at
// a time, so the check-then-reserve of a request is atomic with respect to all
// others: concurrent requests cannot both take the last of a budget. A
// settlement is never lost: it travels past the mailbox bound (kernel.ts,
// `deliver`), and a reservation whose asker timed out is settled at once. Every
// settlement writes the touched windows' totals to the store at once (one small
// upsert per budget), so a restart loses at most the requests still in flight.
// Spend is exported as metrics by budget (deployment name or key NAME, never a key).

import type { BudgetSpec, EmbeddingRequest, GenerateRequest, PriceSpec } from '@inference/core';
import { Counter, Gauge, Registry } from 'prom-client';
import {
  type Amount, type BudgetGate, type BudgetHold, BudgetRefusal, type BudgetShare, type BudgetScope, Ledger, type Settlement, type TokenEstimate, ZERO,
  amountOf, limitsOf, reserveAll,
} from './budget.js';
import { Actor, type ActorRef, type Reply } from './kernel.js';
import { METRIC } from './metricNames.js';

/** A window's totals as stored (the storage package's SpendRow has this shape). */
export interface SpendRecord {
  readonly scope: BudgetScope;
  readonly name: string;
  readonly window: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly tokens: number;
  readonly costUsd: number;
}

/** A budget's current window as the admin API shows it. */
export interface BudgetStatus extends SpendRecord {
  readonly reservedTokens: number;
  readonly reservedUsd: number;
  readonly maxTokens?: number | undefined;
  readonly maxCostUsd?: number | undefined;
}

export interface SpendStore {
  spend(now: number): SpendRecord[];
  putSpend(row: SpendRecord): void;
  pruneSpend(now: number): void;
}

export interface BudgetActorOptions {
  readonly store: SpendStore;
  /** A deployment's current budget and price (specs change through the admin API). */
  readonly deployment: (name: string) => { budget?: BudgetSpec | undefined; price?: PriceSpec | undefined } | undefined;
  /** Budgets by API key name. */
  readonly keys: ReadonlyMap<string, BudgetSpec>;
  readonly now?: () => number;
  /** Cluster mode: what other nodes spent counts against every budget too. */
  readonly share?: BudgetShare | undefined;
}

export type BudgetMsg =
  | { type: 'reserve'; deployment: string; key: string | undefined; estimate: TokenEstimate; reply: Reply<number> }
  | { type: 'settle'; id: number; outcome: Settlement }
  | { type: 'spend'; reply: Reply<BudgetStatus[]> }
  /** Sets a budget's spend in its current window to zero; replies with the status before (undefined: no such budget). */
  | { type: 'reset'; scope: BudgetScope; name: string; reply: Reply<BudgetStatus | undefined> }
  | { type: 'render'; reply: Reply<string> };

interface Hold {
  readonly budgets: readonly { scope: BudgetScope; name: string }[];
  readonly estimate: Amount;
  readonly price: PriceSpec | undefined;
}

function ledgerKey(scope: BudgetScope, name: string): string {
  return `${scope}\u0000${name}`;
}

export class BudgetActor extends Actor<BudgetMsg> {
  private readonly ledgers = new Map<string, Ledger>();
  private readonly holds = new Map<number, Hold>();
  private stored = new Map<string, SpendRecord>();
  private seq = 0;
  private readonly now: () => number;
  readonly registry = new Registry();
  private readonly spendTokens = new Gauge({
    name: METRIC.budgetSpendTokens,
    help: "Tokens spent in the budget's current window",
    labelNames: ['scope', 'name'],
    registers: [this.registry],
  });
  private readonly spendUsd = new Gauge({
    name: METRIC.budgetSpendUsd,
    help: "USD spent in the budget's current window",
    labelNames: ['scope', 'name'],
    registers: [this.registry],
  });
  private readonly reservedTokens = new Gauge({
    name: METRIC.budgetReservedTokens,
    help: 'Tokens held by requests in flight (their estimates)',
    labelNames: ['scope', 'name'],
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: METRIC.budgetRefusals,
    help: 'Requests refused by a budget, by the limit',
    labelNames: ['scope', 'name', 'limit'],
    registers: [this.registry],
  });

  constructor(private readonly options: BudgetActorOptions) {
    super();
    this.now = options.now ?? Date.now;
  }

  override preStart(): void {
    const now = this.now();
    this.options.store.pruneSpend(now);
    const rows = this.options.store.spend(now).filter((r) => r.windowStart <= now);
    this.stored = new Map(rows.map((r) => [`${ledgerKey(r.scope, r.name)}\u0000${r.window}\u0000${String(r.windowStart)}`, r]));
    // Spend carried over from before a restart is visible at once.
    for (const r of rows) {
      this.spendTokens.set({ scope: r.scope, name: r.name }, r.tokens);
      this.spendUsd.set({ scope: r.scope, name: r.name }, r.costUsd);
    }
  }

  receive(m: BudgetMsg): void {
    switch (m.type) {
      case 'reserve':
        this.reserve(m.deployment, m.key, m.estimate, m.reply);
        return;
      case 'settle':
        this.settle(m.id, m.outcome);
        return;
      case 'spend': {
        const now = this.now();
        m.reply.resolve(
          [...this.ledgers.entries()].map(([k, l]) => {
            l.roll(now);
            return {
              ...this.record(k, l),
              reservedTokens: l.reserved.tokens,
              reservedUsd: l.reserved.costUsd,
              maxTokens: l.limits.maxTokens,
              maxCostUsd: l.limits.maxCostUsd,
            };
          }),
        );
        return;
      }
      case 'reset':
        m.reply.resolve(this.reset(m.scope, m.name));
        return;
      case 'render': {
        // A window that ended without traffic shows zero, not the last window's spend.
        const now = this.now();
        for (const [k, l] of this.ledgers) {
          // A deployment's budget that is gone (deployment removed, or its budget) leaves with nothing held: /metrics holds what exists.
          const r0 = this.record(k, l);
          if (r0.scope === 'deployment' && this.options.deployment(r0.name)?.budget === undefined && l.reserved.tokens === 0 && l.reserved.costUsd === 0) {
            this.ledgers.delete(k);
            const labels = { scope: r0.scope, name: r0.name };
            for (const g of [this.spendTokens, this.spendUsd, this.reservedTokens]) g.remove(labels);
            for (const limit of ['tokens', 'cost'] as const) this.refusals.remove({ ...labels, limit });
            continue;
          }
          if (!l.roll(now)) continue;
          const r = this.record(k, l);
          this.spendTokens.set({ scope: r.scope, name: r.name }, 0);
          this.spendUsd.set({ scope: r.scope, name: r.name }, 0);
        }
        this.registry.metrics().then(m.reply.resolve, m.reply.reject);
        return;
      }
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  /** The ledger of a budget, following changes of its spec (a new window text starts a new ledger; reservations carry over). */
  private ledger(scope: BudgetScope, name: string, spec: BudgetSpec, now: number): Ledger {
    const key = ledgerKey(scope, name);
    const have = this.ledgers.get(key);
    if (have?.windowText === spec.window) {
      have.limits = limitsOf(spec);
      return have;
    }
    const fresh = new Ledger(spec.window, limitsOf(spec), now);
    const row = this.stored.get(`${key}\u0000${spec.window}\u0000${String(fresh.start)}`);
    if (row !== undefined) fresh.spent = { tokens: row.tokens, costUsd: row.costUsd };
    if (have !== undefined) fresh.reserved = have.reserved;
    this.ledgers.set(key, fresh);
    return fresh;
  }

  private reserve(deployment: string, key: string | undefined, estimate: TokenEstimate, reply: Reply<number>): void {
    const now = this.now();
    const d = this.options.deployment(deployment);
    const price = d?.price;
    const budgets: { scope: BudgetScope; name: string; ledger: Ledger }[] = [];
    if (d?.budget !== undefined) budgets.push({ scope: 'deployment', name: deployment, ledger: this.ledger('deployment', deployment, d.budget, now) });
    const kb = key === undefined ? undefined : this.options.keys.get(key);
    if (key !== undefined && kb !== undefined) budgets.push({ scope: 'key', name: key, ledger: this.ledger('key', key, kb, now) });
    const amount = amountOf(estimate, price);
    const share = this.options.share;
    const refusal = reserveAll(budgets, amount, now, share === undefined ? undefined : (scope, name, start) => share.elsewhere(scope, name, start));
    if (refusal !== undefined) {
      this.refusals.inc({ scope: refusal.scope, name: refusal.name, limit: refusal.limit });
      reply.reject(new BudgetRefusal(refusal, refusal.scope === 'deployment' && d?.budget?.onExceeded === 'fallback'));
      return;
    }
    const id = ++this.seq;
    this.holds.set(id, { budgets: budgets.map(({ scope, name }) => ({ scope, name })), estimate: amount, price });
    for (const b of budgets) this.reservedTokens.set({ scope: b.scope, name: b.name }, b.ledger.reserved.tokens);
    // The asker timed out: nobody holds this reservation, so nobody would settle it.
    if (!reply.resolve(id)) this.settle(id, 'none');
  }

  private settle(id: number, outcome: Settlement): void {
    const hold = this.holds.get(id);
    if (hold === undefined) return;
    this.holds.delete(id);
    const now = this.now();
    const actual = outcome === 'none' ? ZERO : outcome === 'estimate' ? hold.estimate : amountOf(outcome.usage, hold.price);
    let rolled = false;
    for (const { scope, name } of hold.budgets) {
      const key = ledgerKey(scope, name);
      const l = this.ledgers.get(key);
      if (l === undefined) continue;
      rolled = l.roll(now) || rolled;
      l.settle(hold.estimate, actual);
      const labels = { scope, name };
      this.spendTokens.set(labels, l.spent.tokens);
      this.spendUsd.set(labels, l.spent.costUsd);
      this.reservedTokens.set(labels, l.reserved.tokens);
      if (actual !== ZERO) {
        this.options.store.putSpend(this.record(key, l));
        this.options.share?.spent(scope, name, l.start, actual);
      }
    }
    if (rolled) this.options.store.pruneSpend(now);
  }

  /** Spend goes to zero; what requests in flight hold stays held (they settle as usual). */
  private reset(scope: BudgetScope, name: string): BudgetStatus | undefined {
    const spec = scope === 'deployment' ? this.options.deployment(name)?.budget : this.options.keys.get(name);
    if (spec === undefined) return undefined;
    const now = this.now();
    const l = this.ledger(scope, name, spec, now);
    l.roll(now);
    const key = ledgerKey(scope, name);
    const before: BudgetStatus = {
      ...this.record(key, l),
      reservedTokens: l.reserved.tokens,
      reservedUsd: l.reserved.costUsd,
      maxTokens: l.limits.maxTokens,
      maxCostUsd: l.limits.maxCostUsd,
    };
    l.spent = ZERO;
    // Rows read at startup must not bring the old spend back when the ledger is rebuilt.
    for (const k of [...this.stored.keys()]) if (k.startsWith(`${key}\u0000`)) this.stored.delete(k);
    this.options.store.putSpend(this.record(key, l));
    this.spendTokens.set({ scope, name }, 0);
    this.spendUsd.set({ scope, name }, 0);
    return before;
  }

  private record(key: string, l: Ledger): SpendRecord {
    const [scope, name] = key.split('\u0000') as [BudgetScope, string];
    return { scope, name, window: l.windowText, windowStart: l.start, windowEnd: l.end, tokens: l.spent.tokens, costUsd: l.spent.costUsd };
  }
}

/** Estimates a request's tokens before it runs (prompt by tokenizer; completion by max_tokens or a default). */
export type Estimator = (req: GenerateRequest | EmbeddingRequest) => Promise<TokenEstimate>;

/** The request path's view of the BudgetActor. */
export class ActorBudgetGate implements BudgetGate {
  // One estimate per request, however many deployments (fallbacks) it tries.
  private readonly estimates = new WeakMap<GenerateRequest | EmbeddingRequest, Promise<TokenEstimate>>();

  constructor(
    private readonly ref: ActorRef<BudgetMsg>,
    private readonly estimator: Estimator,
    private readonly coversFn: (deployment: string, key: string | undefined) => boolean,
  ) {}

  covers(deployment: string, key: string | undefined): boolean {
    return this.coversFn(deployment, key);
  }

  async reserve(deployment: string, key: string | undefined, req: GenerateRequest | EmbeddingRequest): Promise<BudgetHold> {
    let estimate = this.estimates.get(req);
    if (estimate === undefined) {
      estimate = this.estimator(req);
      this.estimates.set(req, estimate);
    }
    const e = await estimate;
    const id = await this.ref.ask<number>((reply) => ({ type: 'reserve', deployment, key, estimate: e, reply }));
    let settled = false;
    return {
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        // Past the mailbox bound: a dropped settlement would hold the estimate for good.
        this.ref.deliver({ type: 'settle', id, outcome });
      },
    };
  }
}
