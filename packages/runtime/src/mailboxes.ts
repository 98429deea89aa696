// The runtime actors' mailbox bounds, in one place.

/**
 * Mailbox bounds (docs/flow-control.md). What must balance (a settlement, a
 * release, a table change) never depends on them: it is synchronous or goes by
 * `deliver`. They bound what queues while an actor awaits: the metrics during a
 * scrape (a few observations per request), the budget while it renders; the
 * coordinator and the remote replicas answer each message at once, so theirs
 * only take a burst within one turn of the event loop. Past a bound, a request
 * is refused with `overloaded` and an observation is dropped.
 */
export const MAILBOX = { coordinator: 4096, metrics: 16_384, remoteReplica: 4096, budget: 4096 } as const;
