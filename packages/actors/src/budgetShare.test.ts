// Budgets shared by the nodes of a cluster (BudgetShare): what other nodes spent
// counts against the limit, and what this node settles is reported to them.
import type { ChatRequest } from '@inference/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type Amount, BudgetRefusal, type BudgetScope, type BudgetShare } from './budget.js';
import { ActorBudgetGate, BudgetActor, type SpendStore } from './budgetActor.js';
import { ActorSystem } from './kernel.js';

const store: SpendStore = { spend: () => [], putSpend: () => undefined, pruneSpend: () => undefined };
const systems: ActorSystem[] = [];
afterEach(async () => {
  for (const s of systems.splice(0)) await s.stop();
});

class FakeShare implements BudgetShare {
  others: Amount = { tokens: 0, costUsd: 0 };
  reported: { scope: BudgetScope; name: string; amount: Amount }[] = [];
  elsewhere(): Amount {
    return this.others;
  }
  spent(scope: BudgetScope, name: string, _start: number, amount: Amount): void {
    this.reported.push({ scope, name, amount });
  }
}

const req = { kind: 'chat', model: 'd', messages: [], sampling: { n: 1, stop: [] }, stream: false, includeUsage: false, passthrough: {} } as ChatRequest;

describe('BudgetActor with a cluster share', () => {
  it("refuses once this node's spend plus the others' would pass the limit, and reports what it settles", async () => {
    const share = new FakeShare();
    const system = new ActorSystem('budget-share');
    systems.push(system);
    const ref = system.spawn('budget', () => new BudgetActor({ store, deployment: () => ({ budget: { window: '1d', maxTokens: 100, onExceeded: 'reject' } }), keys: new Map(), share }));
    const gate = new ActorBudgetGate(ref, () => Promise.resolve({ promptTokens: 10, completionTokens: 10 }), () => true);
    const hold = await gate.reserve('d', undefined, req);
    hold.settle({ usage: { promptTokens: 10, completionTokens: 5 } });
    await ref.ask((reply) => ({ type: 'spend', reply }));
    expect(share.reported).toEqual([{ scope: 'deployment', name: 'd', amount: { tokens: 15, costUsd: 0 } }]);
    // 15 here + 70 elsewhere + 20 estimated > 100.
    share.others = { tokens: 70, costUsd: 0 };
    await expect(gate.reserve('d', undefined, { ...req })).rejects.toBeInstanceOf(BudgetRefusal);
    share.others = { tokens: 60, costUsd: 0 };
    await expect(gate.reserve('d', undefined, { ...req })).resolves.toBeDefined();
  });
});
