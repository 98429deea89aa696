// BudgetActor: reservations against deployment and key budgets, settlement with
// real usage, spend written to the store and read back by a fresh actor.
import type { BudgetSpec, ChatRequest, PriceSpec } from '@inference/core';
import { afterEach, describe, expect, it } from 'vitest';
import { BudgetRefusal } from './budget.js';
import { ActorBudgetGate, BudgetActor, type BudgetMsg, type BudgetStatus, type SpendRecord, type SpendStore } from './budgetActor.js';
import { type ActorRef, ActorSystem } from './kernel.js';

class ArrayStore implements SpendStore {
  rows: SpendRecord[] = [];
  writes = 0;
  spend(now: number): SpendRecord[] {
    return this.rows.filter((r) => r.windowEnd > now);
  }
  putSpend(row: SpendRecord): void {
    this.writes++;
    this.rows = [...this.rows.filter((r) => !(r.scope === row.scope && r.name === row.name && r.window === row.window && r.windowStart === row.windowStart)), row];
  }
  pruneSpend(now: number): void {
    this.rows = this.rows.filter((r) => r.windowEnd > now);
  }
}

const PRICE: PriceSpec = { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000 }; // $1 per prompt token, $2 per completion token
let clock = Date.UTC(2025, 3, 10, 9, 15);
const systems: ActorSystem[] = [];
afterEach(async () => {
  for (const s of systems.splice(0)) await s.stop();
});

function start(store: SpendStore, deployments: Record<string, { budget?: BudgetSpec; price?: PriceSpec }>, keys: Record<string, BudgetSpec> = {}): ActorRef<BudgetMsg> {
  const system = new ActorSystem('budget-test');
  systems.push(system);
  return system.spawn('budget', () => new BudgetActor({ store, deployment: (n) => deployments[n], keys: new Map(Object.entries(keys)), now: () => clock }));
}

function gate(ref: ActorRef<BudgetMsg>, prompt: number, completion: number): ActorBudgetGate {
  return new ActorBudgetGate(ref, () => Promise.resolve({ promptTokens: prompt, completionTokens: completion }), () => true);
}

const req = (): ChatRequest => ({ kind: 'chat', model: 'd', messages: [{ role: 'user', content: 'hi' }], sampling: { n: 1 }, stream: false, includeUsage: false } as unknown as ChatRequest);

async function spend(ref: ActorRef<BudgetMsg>): Promise<BudgetStatus[]> {
  return ref.ask((reply) => ({ type: 'spend', reply }));
}

describe('BudgetActor', () => {
  it('refuses what would pass the limit while earlier requests are in flight, then settles real usage', async () => {
    const ref = start(new ArrayStore(), { d: { budget: { window: '1h', maxCostUsd: 10, onExceeded: 'reject' }, price: PRICE } });
    const g = gate(ref, 2, 1); // estimate: $4
    const a = await g.reserve('d', undefined, req());
    const b = await g.reserve('d', undefined, req());
    const refused = await g.reserve('d', undefined, req()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BudgetRefusal);
    expect(refused).toMatchObject({ kind: 'budget_exceeded', fallback: false, retryAfterMs: 45 * 60_000 });
    a.settle({ usage: { promptTokens: 2, completionTokens: 0 } }); // $2 real
    b.settle('none');
    a.settle('none'); // a second settle is ignored
    expect(await spend(ref)).toEqual([{ scope: 'deployment', name: 'd', window: '1h', windowStart: Date.UTC(2025, 3, 10, 9), windowEnd: Date.UTC(2025, 3, 10, 10), tokens: 2, costUsd: 2, reservedTokens: 0, reservedUsd: 0, maxTokens: undefined, maxCostUsd: 10 }]);
    const c = await g.reserve('d', undefined, req());
    const d = await g.reserve('d', undefined, req());
    await expect(g.reserve('d', undefined, req())).rejects.toBeInstanceOf(BudgetRefusal);
    c.settle('estimate');
    d.settle('estimate');
    expect((await spend(ref))[0]).toMatchObject({ costUsd: 10 });
  });

  it('onExceeded: fallback marks the refusal so the request goes to the fallbacks; a key refusal never does', async () => {
    const ref = start(new ArrayStore(), { d: { budget: { window: '1d', maxTokens: 5, onExceeded: 'fallback' } }, e: {} }, { team: { window: '1d', maxTokens: 8, onExceeded: 'reject' } });
    const g = gate(ref, 3, 3);
    await expect(g.reserve('d', undefined, req())).rejects.toMatchObject({ fallback: true, refusal: { scope: 'deployment', name: 'd', limit: 'tokens' } });
    const h = await g.reserve('e', 'team', req());
    await expect(g.reserve('e', 'team', req())).rejects.toMatchObject({ fallback: false, refusal: { scope: 'key', name: 'team' } });
    h.settle({ usage: { promptTokens: 1, completionTokens: 1 } });
    expect(await spend(ref)).toEqual([expect.objectContaining({ scope: 'deployment', name: 'd', tokens: 0 }), expect.objectContaining({ scope: 'key', name: 'team', tokens: 2 })]);
  });

  it('spend is written on settle and a fresh actor on the same store counts it; the next window starts at zero', async () => {
    const store = new ArrayStore();
    const budget: BudgetSpec = { window: '1h', maxTokens: 100, onExceeded: 'reject' };
    const first = start(store, { d: { budget } });
    const h = await gate(first, 30, 30).reserve('d', undefined, req());
    h.settle({ usage: { promptTokens: 30, completionTokens: 30 } });
    await spend(first);
    expect(store.writes).toBe(1);
    const second = start(store, { d: { budget } });
    // 60 spent before the restart: 50 more does not fit, 40 does.
    await expect(gate(second, 25, 25).reserve('d', undefined, req())).rejects.toBeInstanceOf(BudgetRefusal);
    (await gate(second, 20, 20).reserve('d', undefined, req())).settle('none');
    clock += 60 * 60_000;
    const third = start(store, { d: { budget } });
    (await gate(third, 50, 50).reserve('d', undefined, req())).settle('none');
    // The ended window's row is pruned at start.
    expect(store.rows).toHaveLength(0);
  });

  it('exports spend by budget name, never anything else', async () => {
    const ref = start(new ArrayStore(), { d: { budget: { window: '1h', maxTokens: 1000, onExceeded: 'reject' }, price: PRICE } }, { 'team-a': { window: '1d', maxCostUsd: 1e9, onExceeded: 'reject' } });
    (await gate(ref, 1, 2).reserve('d', 'team-a', req())).settle({ usage: { promptTokens: 1, completionTokens: 2 } });
    const text = await ref.ask<string>((reply) => ({ type: 'render', reply }));
    expect(text).toContain('inference_budget_spend_tokens{scope="deployment",name="d"} 3');
    expect(text).toContain('inference_budget_spend_usd{scope="key",name="team-a"} 5');
    // The hour ends with no traffic: the deployment's spend shows 0; the key's day goes on.
    clock += 60 * 60_000;
    const later = await ref.ask<string>((reply) => ({ type: 'render', reply }));
    expect(later).toContain('inference_budget_spend_tokens{scope="deployment",name="d"} 0');
    expect(later).toContain('inference_budget_spend_usd{scope="key",name="team-a"} 5');
  });

  it('a reservation whose asker timed out is settled by the actor', async () => {
    const system = new ActorSystem('budget-test');
    systems.push(system);
    let open!: () => void;
    const started = new Promise<void>((r) => { open = r; });
    // Still starting: the reservation waits in the mailbox past its asker's timeout.
    class SlowStart extends BudgetActor {
      // eslint-disable-next-line @typescript-eslint/no-misused-promises -- the kernel awaits a start that returns a promise
      override preStart(): Promise<void> {
        return started.then(() => { super.preStart(); });
      }
    }
    const deployments = { d: { budget: { window: '1h', maxTokens: 10, onExceeded: 'reject' } satisfies BudgetSpec } };
    const ref = system.spawn('budget', () => new SlowStart({ store: new ArrayStore(), deployment: (n: string) => deployments[n as 'd'], keys: new Map(), now: () => clock }));
    const estimate = { promptTokens: 4, completionTokens: 4 };
    await expect(ref.ask<number>((reply) => ({ type: 'reserve', deployment: 'd', key: undefined, estimate, reply }), 20)).rejects.toMatchObject({ kind: 'internal' });
    open();
    // The timed-out reservation holds nothing: the budget (10) has room for this one (8).
    const hold = await gate(ref, 4, 4).reserve('d', undefined, req());
    expect((await spend(ref))[0]).toMatchObject({ reservedTokens: 8 });
    hold.settle('none');
    expect((await spend(ref))[0]).toMatchObject({ reservedTokens: 0 });
  });

  it('a settlement gets through a full mailbox', async () => {
    const filler = { resolve: () => true, reject: () => undefined };
    let during: (() => void) | undefined;
    // While the actor handles one settlement (writing spend), its mailbox of 2 fills up and another settlement comes.
    class BusyStore extends ArrayStore {
      override putSpend(row: SpendRecord): void {
        super.putSpend(row);
        const f = during;
        during = undefined;
        f?.();
      }
    }
    const system = new ActorSystem('budget-test');
    systems.push(system);
    const deployments = { d: { budget: { window: '1h', maxTokens: 100, onExceeded: 'reject' } satisfies BudgetSpec } };
    const ref = system.spawn('budget', () => new BudgetActor({ store: new BusyStore(), deployment: (n: string) => deployments[n as 'd'], keys: new Map(), now: () => clock }), { mailbox: 2 });
    const g = gate(ref, 4, 4);
    const first = await g.reserve('d', undefined, req());
    const second = await g.reserve('d', undefined, req());
    let full = false;
    during = () => {
      ref.tell({ type: 'spend', reply: filler });
      ref.tell({ type: 'spend', reply: filler });
      full = !ref.tell({ type: 'spend', reply: filler });
      second.settle('none');
    };
    first.settle({ usage: { promptTokens: 1, completionTokens: 1 } });
    expect(full).toBe(true);
    expect((await spend(ref))[0]).toMatchObject({ reservedTokens: 0, tokens: 2 });
  });
});
