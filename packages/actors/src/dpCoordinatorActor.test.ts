// The routing table under each policy through its mailbox: prefix affinity, what
// it forgets, the default policy and a policy changed in place; decisions reported.

import { afterEach, describe, expect, it } from 'vitest';
import type { CompletionRequest, ModelRunner, RoutingSpec } from '@inference/core';
import { type CoordinatorMsg, DpCoordinatorActor, type RoutingDecision, localRouter } from './dpCoordinatorActor.js';
import { type ActorRef, ActorSystem } from './kernel.js';
import { type ReplicaEntry, unassign } from './routing.js';

function runner(id: string): ModelRunner {
  return { id, deployment: 'd', healthy: () => true, load: () => ({ outstanding: 0, queued: 0, capacity: 8 }) } as unknown as ModelRunner;
}

const request = (prompt: string): CompletionRequest => ({
  kind: 'completion', model: 'd', prompt, sampling: { stop: [], n: 1 }, stream: false, includeUsage: false, passthrough: {},
});
const SYSTEM_A = 'Once upon a time there was a fox who lived in a hole under an old oak tree. '.repeat(6);
const SYSTEM_B = 'The weather report for the northern hills says rain in the morning and sun. '.repeat(6);

let sys: ActorSystem | undefined;
afterEach(async () => {
  await sys?.stop();
  sys = undefined;
});

function coordinator(routing: RoutingSpec | undefined): { ref: ActorRef<CoordinatorMsg>; decisions: RoutingDecision[] } {
  sys = new ActorSystem(`coord${Math.random()}`);
  const decisions: RoutingDecision[] = [];
  // random() = 0: ties go to the first replica listed, so only the prefix index decides.
  const ref = sys.spawn('coordinator', () => new DpCoordinatorActor(() => 0, { onDecision: (d) => decisions.push(d) }));
  ref.tell(routing === undefined ? { type: 'deployment', name: 'd', present: true } : { type: 'deployment', name: 'd', present: true, routing });
  for (const id of ['r1', 'r2']) ref.tell({ type: 'register', replica: { id, deployment: 'd', runner: runner(id), state: 'serving' } });
  return { ref, decisions };
}

/** A pick still held (its request running). */
function hold(ref: ActorRef<CoordinatorMsg>, req?: CompletionRequest): Promise<ReplicaEntry> {
  return ref.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment: 'd', request: req, reply }));
}

/** A pick whose request has finished. */
async function pick(ref: ActorRef<CoordinatorMsg>, req?: CompletionRequest): Promise<string> {
  const r = await hold(ref, req);
  unassign(r);
  return r.id;
}

describe('DpCoordinatorActor routing', () => {
  it('prefix: requests sharing a prefix follow the replica that served it, other prefixes may go elsewhere', async () => {
    const { ref, decisions } = coordinator({ policy: 'prefix', prefixLoadSlack: 2, prefixFreeSlot: false });
    // B first goes to r1 (tie, random 0); A then goes to r2 because r1 is busy with B.
    const held = await hold(ref, request(`${SYSTEM_B} one`));
    const b = held.id;
    const a = await pick(ref, request(`${SYSTEM_A} one`));
    unassign(held);
    expect([a, b]).toEqual(['r2', 'r1']);
    // Equal loads from here: least-load alone would always answer r1.
    for (let i = 0; i < 5; i++) {
      expect(await pick(ref, request(`${SYSTEM_A} question ${i}`))).toBe(a);
      expect(await pick(ref, request(`${SYSTEM_B} question ${i}`))).toBe(b);
    }
    expect(decisions.map((d) => d.outcome)).toEqual(['miss', 'miss', ...Array<string>(10).fill('hit')]);
    expect(decisions.every((d) => d.policy === 'prefix' && d.deployment === 'd')).toBe(true);
  });

  it('forgets a replica that stops serving or leaves the table', async () => {
    const { ref, decisions } = coordinator({ policy: 'prefix', prefixLoadSlack: 2, prefixFreeSlot: false });
    await hold(ref, request(`${SYSTEM_B} x`));
    expect(await pick(ref, request(`${SYSTEM_A} x`))).toBe('r2');
    ref.tell({ type: 'setState', replicaId: 'r2', state: 'draining' });
    ref.tell({ type: 'setState', replicaId: 'r2', state: 'serving' });
    // r1 is still busy with B, so A goes back to r2, now without a cache.
    expect(await pick(ref, request(`${SYSTEM_A} y`))).toBe('r2');
    expect(decisions.at(-1)?.outcome).toBe('miss');
    ref.tell({ type: 'unregister', replicaId: 'r2' });
    await pick(ref, request(`${SYSTEM_A} z`));
    expect(decisions.at(-1)?.outcome).toBe('miss');
  });

  it('routes least-load when the deployment names no policy, and round robin when asked', async () => {
    const plain = coordinator(undefined);
    expect(await pick(plain.ref, request(SYSTEM_A))).toBe('r1');
    expect(plain.decisions).toEqual([{ deployment: 'd', policy: 'least_load', outcome: 'none' }]);
    await sys?.stop();
    const rr = coordinator({ policy: 'round_robin', prefixLoadSlack: 0, prefixFreeSlot: false });
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await pick(rr.ref, request(SYSTEM_A)));
    expect(ids).toEqual(['r1', 'r2', 'r1', 'r2']);
  });

  it('a later apply changes the policy in place', async () => {
    const { ref, decisions } = coordinator({ policy: 'least_load', prefixLoadSlack: 0, prefixFreeSlot: false });
    await pick(ref);
    ref.tell({ type: 'deployment', name: 'd', present: true, routing: { policy: 'round_robin', prefixLoadSlack: 0, prefixFreeSlot: false } });
    await pick(ref);
    expect(decisions.map((d) => d.policy)).toEqual(['least_load', 'round_robin']);
  });

  it('a pick whose asker timed out is handed back by the coordinator: nothing stays assigned', async () => {
    sys = new ActorSystem(`coord${Math.random()}`);
    let open!: () => void;
    const started = new Promise<void>((r) => { open = r; });
    // A coordinator still starting holds the pick in its mailbox past the asker's timeout.
    class SlowStart extends DpCoordinatorActor {
      override preStart(): Promise<void> {
        return started;
      }
    }
    const ref = sys.spawn('coordinator', () => new SlowStart(() => 0));
    const entry: ReplicaEntry = { id: 'r1', deployment: 'd', runner: runner('r1'), state: 'serving' };
    ref.tell({ type: 'register', replica: entry });
    await expect(ref.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment: 'd', reply }), 20)).rejects.toMatchObject({ kind: 'internal' });
    open();
    const later = await ref.ask<ReplicaEntry>((reply) => ({ type: 'pick', deployment: 'd', reply }));
    // Only the pick that was taken is counted.
    expect(later.assigned).toBe(1);
    unassign(later);
    unassign(later);
    expect(entry.assigned).toBe(0);
  });

  it('a local router picks in place as an ask would: counted, spread by load, refused by name, and refused once stopped', async () => {
    sys = new ActorSystem(`coord${Math.random()}`);
    const decisions: RoutingDecision[] = [];
    const table = new DpCoordinatorActor(() => 0, { onDecision: (d) => decisions.push(d) });
    const ref = sys.spawn('coordinator', () => table);
    const router = localRouter(ref, table);
    ref.tell({ type: 'deployment', name: 'd', present: true });
    // A registration told just before is seen by the next pick (the handlers are synchronous).
    for (const id of ['r1', 'r2']) ref.tell({ type: 'register', replica: { id, deployment: 'd', runner: runner(id), state: 'serving' } });
    const a = router.pick('d', undefined, undefined);
    const b = router.pick('d', undefined, undefined);
    expect([a.id, b.id].sort()).toEqual(['r1', 'r2']);
    expect([a.assigned, b.assigned]).toEqual([1, 1]);
    expect(router.pick('d', new Set(['r1']), undefined).id).toBe('r2');
    expect(decisions).toHaveLength(3);
    expect(() => router.pick('nope', undefined, undefined)).toThrow(expect.objectContaining({ kind: 'not_found' }));
    ref.tell({ type: 'setState', replicaId: 'r1', state: 'failed' });
    ref.tell({ type: 'setState', replicaId: 'r2', state: 'failed' });
    expect(() => router.pick('d', undefined, undefined)).toThrow(expect.objectContaining({ kind: 'engine_unavailable' }));
    ref.tell({ type: 'setState', replicaId: 'r1', state: 'serving' });
    expect(router.pick('d', undefined, undefined).id).toBe('r1');
    await ref.stop();
    expect(() => router.pick('d', undefined, undefined)).toThrow(expect.objectContaining({ kind: 'engine_unavailable', message: 'service is shutting down' }));
  });
});
