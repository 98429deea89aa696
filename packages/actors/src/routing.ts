// Replica choice, as pure functions of the routing table: least outstanding
// requests first; among equally loaded replicas, power-of-two random choices
// broken by queue depth. Unhealthy or non-serving replicas are never picked.

import type { ModelRunner } from '@inference/core';

export type ReplicaState = 'pending' | 'loading' | 'serving' | 'draining' | 'failed';

export interface ReplicaEntry {
  readonly id: string;
  readonly deployment: string;
  readonly runner: ModelRunner;
  state: ReplicaState;
  /**
   * Requests the router sent here that have not finished. Counted at pick time,
   * so a burst of picks spreads before any replica has started its work; taken
   * back by `unassign`, synchronously, by whoever holds the pick (never by a
   * message that a full mailbox could drop).
   */
  assigned?: number;
  /**
   * Added to this replica's load when routing compares: the cost of reaching it (a
   * replica of another worker process is a hop away; serve --workers). Absent: 0.
   */
  readonly remoteBias?: number;
}

/**
 * Takes back one pick of `r`. Called exactly once per pick: by the request that
 * got it, when its work on the replica ends, or by the coordinator when the
 * asker had given up before the answer came. On the entry object itself, so a
 * replica that left the table and came back is not charged for the old one.
 */
export function unassign(r: ReplicaEntry): void {
  if ((r.assigned ?? 0) > 0) r.assigned = (r.assigned ?? 0) - 1;
}

/** What routing compares: picks not yet finished, or what the replica reports, whichever is more. */
export function loadOf(r: ReplicaEntry): number {
  return Math.max(r.assigned ?? 0, r.runner.load().outstanding) + (r.remoteBias ?? 0);
}

export function routable(r: ReplicaEntry, exclude?: ReadonlySet<string>): boolean {
  return r.state === 'serving' && r.runner.healthy() && (exclude === undefined || !exclude.has(r.id));
}

export function pickReplica(replicas: readonly ReplicaEntry[], random: () => number = Math.random, exclude?: ReadonlySet<string>): ReplicaEntry | undefined {
  let best: ReplicaEntry[] = [];
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const r of replicas) {
    if (!routable(r, exclude)) continue;
    const load = loadOf(r);
    if (load < bestLoad) {
      bestLoad = load;
      best = [r];
    } else if (load === bestLoad) {
      best.push(r);
    }
  }
  if (best.length <= 1) return best[0];
  const i = Math.floor(random() * best.length);
  let j = Math.floor(random() * (best.length - 1));
  if (j >= i) j++;
  const a = best[i];
  const b = best[j];
  if (a === undefined || b === undefined) return best[0];
  return b.runner.load().queued < a.runner.load().queued ? b : a;
}
