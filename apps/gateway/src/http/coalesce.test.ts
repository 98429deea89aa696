import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { CoalescedWriter } from './coalesce.js';

/** What CoalescedWriter uses of a response, recording each write. */
function fakeResponse(): { res: ServerResponse; writes: string[]; ended: string[]; destroy: () => void } {
  const writes: string[] = [];
  const ended: string[] = [];
  const r = {
    destroyed: false,
    write(data: string): boolean {
      writes.push(data);
      return true;
    },
    end(data: string): void {
      ended.push(data);
    },
  };
  return { res: r as unknown as ServerResponse, writes, ended, destroy: () => { r.destroyed = true; } };
}

const nextTick = (): Promise<void> => new Promise((r) => { process.nextTick(r); });

describe('CoalescedWriter', () => {
  it('sends the chunks of one tick in a single write on the next tick', async () => {
    const { res, writes } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('a');
    w.write('');
    w.write('b');
    expect(writes).toEqual([]);
    await nextTick();
    expect(writes).toEqual(['ab']);
    w.write('c');
    await nextTick();
    expect(writes).toEqual(['ab', 'c']);
  });

  it('ends with what is pending first, and writes nothing more after', async () => {
    const { res, writes, ended } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('x');
    w.end('[DONE]');
    await nextTick();
    expect(ended).toEqual(['x[DONE]']);
    expect(writes).toEqual([]);
  });

  it('drops what is pending when the response is gone', async () => {
    const { res, writes, destroy } = fakeResponse();
    const w = new CoalescedWriter(res);
    w.write('lost');
    destroy();
    await nextTick();
    expect(writes).toEqual([]);
  });
});
