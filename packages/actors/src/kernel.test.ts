import { describe, expect, it } from 'vitest';
import { InferenceError } from '@inference/core';
import { Actor, ActorSystem, type Directive, type Reply } from './kernel.js';

type Msg = { type: 'add'; n: number } | { type: 'get'; reply: Reply<number> } | { type: 'boom' } | { type: 'slow'; ms: number };

const log: string[] = [];

class Counter extends Actor<Msg> {
  total = 0;
  override preStart(): void {
    log.push(`start ${this.context.name}`);
  }
  override postStop(): void {
    log.push(`stop ${this.context.name}`);
  }
  async receive(m: Msg): Promise<void> {
    switch (m.type) {
      case 'add':
        this.total += m.n;
        return;
      case 'get':
        m.reply.resolve(this.total);
        return;
      case 'boom':
        throw new Error('boom');
      case 'slow':
        await new Promise((r) => setTimeout(r, m.ms));
        this.total += 1;
        return;
    }
  }
}

function strategy(d: Directive) {
  return { decide: () => d };
}

describe('actor kernel', () => {
  it('handles one message at a time, in order', async () => {
    const sys = new ActorSystem('t1');
    const c = sys.spawn('c', () => new Counter());
    c.tell({ type: 'slow', ms: 20 });
    c.tell({ type: 'add', n: 10 });
    expect(await c.ask<number>((reply) => ({ type: 'get', reply }))).toBe(11);
    await sys.stop();
  });

  it('bounds the mailbox: tell answers false and ask rejects with overloaded', async () => {
    const sys = new ActorSystem('t2');
    const c = sys.spawn('c', () => new Counter(), { mailbox: 2 });
    await c.started();
    expect(c.tell({ type: 'slow', ms: 30 })).toBe(true);
    expect(c.tell({ type: 'add', n: 1 })).toBe(true);
    expect(c.tell({ type: 'add', n: 1 })).toBe(true);
    expect(c.tell({ type: 'add', n: 1 })).toBe(false);
    await expect(c.ask<number>((reply) => ({ type: 'get', reply }))).rejects.toMatchObject({ kind: 'overloaded' });
    await sys.stop();
  });

  it('a mailbox grows to its bound, keeps order across the wrap, and refuses past it', async () => {
    const sys = new ActorSystem('t2b');
    const c = sys.spawn('c', () => new Counter(), { mailbox: 50 });
    await c.started();
    expect(c.tell({ type: 'slow', ms: 30 })).toBe(true);
    // The slow message is being processed; 50 more fit (the ring grows from 8), the 51st does not.
    for (let i = 1; i <= 49; i++) expect(c.tell({ type: 'add', n: i })).toBe(true);
    const total = c.ask<number>((reply) => ({ type: 'get', reply }));
    expect(c.tell({ type: 'add', n: 1000 })).toBe(false);
    expect(await total).toBe(1 + (49 * 50) / 2);
    await sys.stop();
  });

  it('times out an unanswered ask', async () => {
    const sys = new ActorSystem('t3');
    const c = sys.spawn('c', () => new Counter());
    await expect(c.ask<number>(() => ({ type: 'add', n: 1 }), 20)).rejects.toBeInstanceOf(InferenceError);
    await sys.stop();
  });

  it('resume directive keeps the instance and its state', async () => {
    const sys = new ActorSystem('t5', strategy('resume'));
    const d = sys.spawn('d', () => new Counter());
    d.tell({ type: 'add', n: 5 });
    d.tell({ type: 'boom' });
    expect(await d.ask<number>((reply) => ({ type: 'get', reply }))).toBe(5);
    await sys.stop();
  });

  it('a failure while the system stops runs postStop once and starts nothing again', async () => {
    const sys = new ActorSystem('t4', strategy('stop'));
    let starts = 0;
    let stops = 0;
    class Fragile extends Counter {
      override preStart(): void {
        starts++;
      }
      override postStop(): void {
        stops++;
      }
    }
    const c = sys.spawn('c', () => new Fragile());
    await c.started();
    c.tell({ type: 'boom' });
    await Promise.all([sys.stop(), c.stop(), c.stopped()]);
    await new Promise((r) => setTimeout(r, 10));
    expect({ starts, stops, alive: c.alive }).toEqual({ starts: 1, stops: 1, alive: false });
  });

  it('stop directive stops the child and reports the failure', async () => {
    const sys = new ActorSystem('t6', strategy('stop'));
    const failures: string[] = [];
    sys.onFailure((path, _e, d) => failures.push(`${path}:${d}`));
    const c = sys.spawn('c', () => new Counter());
    c.tell({ type: 'boom' });
    await c.stopped();
    expect(c.alive).toBe(false);
    expect(failures).toEqual(['/t6/c:stop']);
    await expect(c.ask<number>((reply) => ({ type: 'get', reply }))).rejects.toMatchObject({ kind: 'engine_unavailable' });
    await sys.stop();
  });

  it('stops children before the parent and runs lifecycle hooks', async () => {
    log.length = 0;
    class Parent extends Counter {
      override preStart(): void {
        super.preStart();
        this.context.spawn('kid', () => new Counter());
      }
    }
    const sys = new ActorSystem('t7');
    const p = sys.spawn('p', () => new Parent());
    await p.started();
    await sys.stop();
    expect(log).toEqual(['start p', 'start kid', 'stop kid', 'stop p']);
  });

  it('escalate fails the parent with the child error', async () => {
    const sys = new ActorSystem('t8', strategy('stop'));
    const seen: string[] = [];
    sys.onFailure((path, _e, d) => seen.push(`${path}:${d}`));
    let kidRef: ReturnType<typeof sys.spawn<Msg>> | undefined;
    class Parent extends Counter {
      override preStart(): void {
        kidRef = this.context.spawn('kid', () => new Counter());
      }
    }
    const p = sys.spawn('p', () => new Parent(), { strategy: strategy('escalate') });
    await p.started();
    kidRef!.tell({ type: 'boom' });
    await p.stopped();
    expect(seen).toEqual(['/t8/p/kid:escalate', '/t8/p:stop']);
    await sys.stop();
  });

  it('an actor with a synchronous preStart handles a message told right after spawn at once', async () => {
    const sys = new ActorSystem('t9');
    let counter: Counter | undefined;
    const c = sys.spawn<Msg>('c', () => (counter = new Counter()));
    c.tell({ type: 'add', n: 2 });
    // No microtask in between: the message was handled inside tell().
    expect(counter?.total).toBe(2);
    await expect(c.ask<number>((reply) => ({ type: 'get', reply }))).resolves.toBe(2);
    await sys.stop();
  });

  it('a preStart that throws is supervised after spawn returns, and its name is free again once it stopped', async () => {
    const sys = new ActorSystem('t10', strategy('stop'));
    const seen: string[] = [];
    sys.onFailure((path, _e, d) => seen.push(`${path}:${d}`));
    class Broken extends Counter {
      override preStart(): void {
        throw new Error('cannot start');
      }
    }
    const ref = sys.spawn<Msg>('b', () => new Broken());
    expect(seen).toEqual([]);
    await ref.stopped();
    expect(seen).toEqual(['/t10/b:stop']);
    const again = sys.spawn<Msg>('b', () => new Counter());
    again.tell({ type: 'add', n: 1 });
    await expect(again.ask<number>((reply) => ({ type: 'get', reply }))).resolves.toBe(1);
    await sys.stop();
  });
});
