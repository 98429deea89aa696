// Budget wiring: the BudgetActor (ledgers and spend, per deployment and per API
// key) and the request path's gate to it. Deployment budgets are read from the
// manager's spec table, key budgets from the config.

import { MAILBOX } from './mailboxes.js';
import { type ActorRef, type ActorSystem, ActorBudgetGate, BudgetActor, type BudgetGate, type BudgetMsg, type BudgetShare, type SpecTable } from '@inference/actors';
import type { Store } from '@inference/storage';
import { estimateTokens } from './budgetEstimate.js';
import type { RuntimeConfig } from './config.js';

export interface Budgets {
  readonly budget: ActorRef<BudgetMsg>;
  readonly budgetGate: BudgetGate;
}

export function startBudgets(system: ActorSystem, store: Store, config: RuntimeConfig, specs: SpecTable, share?: BudgetShare): Budgets {
  const keyBudgets = new Map(config.auth.apiKeys.flatMap((k) => (k.budget === undefined ? [] : [[k.name, k.budget] as const])));
  const budget = system.spawn('budget', () => new BudgetActor({ store, deployment: (name) => specs.get(name), keys: keyBudgets, share }), { mailbox: MAILBOX.budget });
  const limited = (d: string, key: string | undefined): boolean => specs.get(d)?.budget !== undefined || (key !== undefined && keyBudgets.has(key));
  const budgetGate = new ActorBudgetGate(budget, estimateTokens, limited);
  return { budget, budgetGate };
}
