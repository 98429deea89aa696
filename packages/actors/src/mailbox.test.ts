// What a full mailbox does (kernel.ts): `tell` drops, `ask` answers overloaded,
// `deliver` (balancing messages) goes past the bound; and an ask whose asker gave
// up tells the callee so.
import { describe, expect, it } from 'vitest';
import { Actor, ActorSystem, type Reply } from './kernel.js';

type Msg = { type: 'hold'; until: Promise<void> } | { type: 'add'; n: number } | { type: 'get'; reply: Reply<number> };

class Summer extends Actor<Msg> {
  readonly seen: number[] = [];
  total = 0;
  /** What each `get` answer's resolve returned. */
  readonly answered: boolean[] = [];
  async receive(m: Msg): Promise<void> {
    switch (m.type) {
      case 'hold':
        await m.until;
        return;
      case 'add':
        this.seen.push(m.n);
        this.total += m.n;
        return;
      case 'get':
        this.answered.push(m.reply.resolve(this.total));
        return;
    }
  }
}

function gate(): { until: Promise<void>; open: () => void } {
  let open!: () => void;
  const until = new Promise<void>((r) => { open = r; });
  return { until, open };
}

describe('a full mailbox', () => {
  it('drops told messages, refuses asks with overloaded, and takes delivered ones past the bound, in order', async () => {
    const sys = new ActorSystem('mb1');
    let actor: Summer | undefined;
    const ref = sys.spawn<Msg>('s', () => (actor = new Summer()), { mailbox: 4 });
    const g = gate();
    ref.tell({ type: 'hold', until: g.until });
    for (let i = 1; i <= 4; i++) expect(ref.tell({ type: 'add', n: i })).toBe(true);
    expect(ref.mailboxSize).toBe(4);
    expect(ref.tell({ type: 'add', n: 100 })).toBe(false);
    await expect(ref.ask<number>((reply) => ({ type: 'get', reply }))).rejects.toMatchObject({ kind: 'overloaded', retryAfterMs: 1000 });
    // Balancing messages are never refused for room: 20 past a bound of 4.
    for (let i = 5; i <= 24; i++) expect(ref.deliver({ type: 'add', n: i })).toBe(true);
    expect(ref.mailboxSize).toBe(24);
    g.open();
    while (ref.mailboxSize > 0) await new Promise((r) => setTimeout(r, 1));
    await expect(ref.ask<number>((reply) => ({ type: 'get', reply }))).resolves.toBe((24 * 25) / 2);
    expect(actor?.seen).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    // Past the burst the bound holds again for ordinary messages.
    const g2 = gate();
    ref.tell({ type: 'hold', until: g2.until });
    for (let i = 0; i < 4; i++) expect(ref.tell({ type: 'add', n: 0 })).toBe(true);
    expect(ref.tell({ type: 'add', n: 0 })).toBe(false);
    g2.open();
    await sys.stop();
    // A stopped actor's state is gone: nothing to balance any more.
    expect(ref.deliver({ type: 'add', n: 1 })).toBe(false);
  });

  it('an answer that comes after the ask timed out is reported as not taken', async () => {
    const sys = new ActorSystem('mb2');
    let actor: Summer | undefined;
    const ref = sys.spawn<Msg>('s', () => (actor = new Summer()));
    const g = gate();
    ref.tell({ type: 'hold', until: g.until });
    await expect(ref.ask<number>((reply) => ({ type: 'get', reply }), 20)).rejects.toMatchObject({ kind: 'internal' });
    g.open();
    await expect(ref.ask<number>((reply) => ({ type: 'get', reply }))).resolves.toBe(0);
    expect(actor?.answered).toEqual([false, true]);
    await sys.stop();
  });
});
