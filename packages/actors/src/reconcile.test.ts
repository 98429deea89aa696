import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Desired, type ReconcileAction, type ReplicaView, deploymentState, plan } from './reconcile.js';
import type { ReplicaState } from './routing.js';

interface Sim {
  desired: Desired;
  replicas: ReplicaView[];
  seq: number;
}

function r(id: string, revision: number, state: ReplicaState, extra: Partial<ReplicaView> = {}): ReplicaView {
  return { id, revision, state, load: 0, seq: Number(id.replace(/\D/g, '')), servedOnce: state === 'serving', ...extra };
}

const starts = (a: ReconcileAction[]): number => a.filter((x) => x.type === 'start').length;
const drains = (a: ReconcileAction[]): string[] => a.flatMap((x) => (x.type === 'drain' ? [x.id] : []));

/** Applies a plan the way the actor does: starts are loading, drains are draining, discards vanish. */
function applyPlan(s: Sim): ReconcileAction[] {
  const actions = plan(s.desired, s.replicas);
  for (const a of actions) {
    switch (a.type) {
      case 'start':
        s.seq++;
        s.replicas.push({ id: `r${s.seq}`, revision: s.desired.revision, state: 'loading', load: 0, seq: s.seq, servedOnce: false });
        break;
      case 'drain':
        s.replicas = s.replicas.map((x) => (x.id === a.id ? { ...x, state: 'draining' } : x));
        break;
      case 'discard':
        s.replicas = s.replicas.filter((x) => x.id !== a.id);
        break;
      default: {
        const never: never = a;
        throw new Error(String(never));
      }
    }
  }
  return actions;
}

const serving = (s: Sim): number => s.replicas.filter((x) => x.state === 'serving').length;

describe('plan', () => {
  it('scales up at once and down by draining the idle, newest replicas first', () => {
    expect(starts(plan({ replicas: 3, revision: 1 }, [r('r1', 1, 'serving')]))).toBe(2);
    const three = [r('r1', 1, 'serving', { load: 0 }), r('r2', 1, 'serving', { load: 5 }), r('r3', 1, 'serving', { load: 0 })];
    expect(drains(plan({ replicas: 1, revision: 1 }, three))).toEqual(['r3', 'r1']);
    // A replica still loading is the first to go.
    expect(drains(plan({ replicas: 1, revision: 1 }, [r('r1', 1, 'serving', { load: 4 }), r('r2', 1, 'loading')]))).toEqual(['r2']);
  });

  it('rolls one replica at a time: surge one, drain one old once it serves', () => {
    const d = { replicas: 2, revision: 2 };
    let a = plan(d, [r('r1', 1, 'serving'), r('r2', 1, 'serving')]);
    expect(a).toEqual([{ type: 'start' }]);
    a = plan(d, [r('r1', 1, 'serving'), r('r2', 1, 'serving'), r('r3', 2, 'loading')]);
    expect(a).toEqual([]);
    a = plan(d, [r('r1', 1, 'serving'), r('r2', 1, 'serving', { load: 3 }), r('r3', 2, 'serving')]);
    expect(drains(a)).toEqual(['r1']);
    expect(starts(a)).toBe(1);
  });

  it('a new replica that fails to load halts the roll; old replicas keep serving', () => {
    const d = { replicas: 2, revision: 2 };
    const reps = [r('r1', 1, 'serving'), r('r2', 1, 'serving'), r('r3', 2, 'failed')];
    expect(plan(d, reps)).toEqual([]);
    expect(deploymentState(d, reps)).toBe('failed');
  });

  it('replaces a replica that failed after serving, keeps the newest such failure listed, discards older ones', () => {
    const a = plan({ replicas: 2, revision: 1 }, [r('r1', 1, 'serving'), r('r2', 1, 'failed', { servedOnce: true })]);
    expect(a).toEqual([{ type: 'start' }]);
    const b = plan({ replicas: 2, revision: 2 }, [r('r1', 2, 'serving'), r('r3', 2, 'serving'), r('r2', 2, 'failed', { servedOnce: true }), r('r4', 2, 'failed', { servedOnce: true }), r('r5', 1, 'failed')]);
    expect(b).toEqual([{ type: 'discard', id: 'r2' }, { type: 'discard', id: 'r5' }]);
  });

  it('derives the deployment state', () => {
    const d = { replicas: 2, revision: 1 };
    expect(deploymentState(d, [r('r1', 1, 'serving'), r('r2', 1, 'serving')])).toBe('serving');
    expect(deploymentState(d, [r('r1', 1, 'serving'), r('r2', 1, 'pending')])).toBe('pending');
    expect(deploymentState(d, [r('r1', 1, 'serving'), r('r2', 1, 'loading')])).toBe('loading');
    expect(deploymentState(d, [r('r1', 1, 'serving'), r('r2', 1, 'serving'), r('r3', 1, 'draining')])).toBe('draining');
    expect(deploymentState({ replicas: 0, revision: 1 }, [])).toBe('serving');
  });

  it('property: serving capacity never drops below min(desired, before) and a calm system converges', () => {
    type Ev =
      | { k: 'scale'; n: number }
      | { k: 'roll' }
      | { k: 'ready'; i: number }
      | { k: 'loadFail'; i: number }
      | { k: 'crash'; i: number }
      | { k: 'drained'; i: number };
    const ev: fc.Arbitrary<Ev> = fc.oneof(
      fc.record({ k: fc.constant('scale' as const), n: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ k: fc.constant('roll' as const) }),
      fc.record({ k: fc.constant('ready' as const), i: fc.nat(8) }),
      fc.record({ k: fc.constant('ready' as const), i: fc.nat(8) }),
      fc.record({ k: fc.constant('loadFail' as const), i: fc.nat(8) }),
      fc.record({ k: fc.constant('crash' as const), i: fc.nat(8) }),
      fc.record({ k: fc.constant('drained' as const), i: fc.nat(8) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.array(ev, { maxLength: 60 }), (initial, events) => {
        const s: Sim = { desired: { replicas: initial, revision: 1 }, replicas: [], seq: 0 };
        applyPlan(s);
        const pickIn = (i: number, state: ReplicaState): ReplicaView | undefined => {
          const c = s.replicas.filter((x) => x.state === state);
          return c[i % Math.max(1, c.length)];
        };
        for (const e of events) {
          switch (e.k) {
            case 'scale':
              s.desired = { ...s.desired, replicas: e.n };
              // A scale retries: failed replicas of the current revision are forgotten.
              s.replicas = s.replicas.filter((x) => x.state !== 'failed');
              break;
            case 'roll':
              s.desired = { ...s.desired, revision: s.desired.revision + 1 };
              break;
            case 'ready': {
              const t = pickIn(e.i, 'loading');
              if (t !== undefined) s.replicas = s.replicas.map((x) => (x === t ? { ...x, state: 'serving', servedOnce: true } : x));
              break;
            }
            case 'loadFail': {
              const t = pickIn(e.i, 'loading');
              if (t !== undefined) s.replicas = s.replicas.map((x) => (x === t ? { ...x, state: 'failed' } : x));
              break;
            }
            case 'crash': {
              const t = pickIn(e.i, 'serving');
              if (t !== undefined) s.replicas = s.replicas.map((x) => (x === t ? { ...x, state: 'failed' } : x));
              break;
            }
            case 'drained': {
              const t = pickIn(e.i, 'draining');
              if (t !== undefined) s.replicas = s.replicas.filter((x) => x !== t);
              break;
            }
            default: {
              const never: never = e;
              throw new Error(String(never));
            }
          }
          const before = serving(s);
          const actions = applyPlan(s);
          // Capacity: a plan never takes serving below what was asked for (or what there was).
          expect(serving(s)).toBeGreaterThanOrEqual(Math.min(before, s.desired.replicas));
          const live = s.replicas.filter((x) => x.state === 'pending' || x.state === 'loading' || x.state === 'serving');
          const cur = live.filter((x) => x.revision === s.desired.revision);
          expect(cur.length).toBeLessThanOrEqual(s.desired.replicas);
          // Surge bound: starting replicas never takes the live count past desired + 1.
          if (starts(actions) > 0) expect(live.length).toBeLessThanOrEqual(s.desired.replicas + 1);
        }
        // Calm down: every load succeeds, every drain finishes; the plan converges.
        s.replicas = s.replicas.filter((x) => x.state !== 'failed');
        for (let round = 0; round < 50; round++) {
          s.replicas = s.replicas.filter((x) => x.state !== 'draining').map((x) => (x.state === 'loading' ? { ...x, state: 'serving', servedOnce: true } : x));
          const before = serving(s);
          const a = applyPlan(s);
          expect(serving(s)).toBeGreaterThanOrEqual(Math.min(before, s.desired.replicas));
          if (a.length === 0) break;
        }
        expect(s.replicas.filter((x) => x.state === 'serving' && x.revision === s.desired.revision)).toHaveLength(s.desired.replicas);
        expect(s.replicas).toHaveLength(s.desired.replicas);
        expect(deploymentState(s.desired, s.replicas)).toBe('serving');
      }),
      { numRuns: 400 },
    );
  });
});
