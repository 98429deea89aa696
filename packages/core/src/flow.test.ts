import { describe, expect, it } from 'vitest';
import { Flow } from './flow.js';

describe('Flow', () => {
  it('tells each listener once per change, in the order they came', () => {
    const flow = new Flow();
    const seen: string[] = [];
    flow.onChange((p) => seen.push(`a:${String(p)}`));
    flow.onChange((p) => seen.push(`b:${String(p)}`));
    flow.onChange((p) => seen.push(`c:${String(p)}`));
    flow.pause();
    flow.pause();
    expect(flow.paused).toBe(true);
    flow.resume();
    flow.resume();
    expect(seen).toEqual(['a:true', 'b:true', 'c:true', 'a:false', 'b:false', 'c:false']);
  });

  it('stops telling a listener removed by its unwatch function or by off(), whichever slot it had', () => {
    const flow = new Flow();
    const seen: string[] = [];
    const a = (): void => { seen.push('a'); };
    const b = (): void => { seen.push('b'); };
    const c = (): void => { seen.push('c'); };
    const unwatchA = flow.onChange(a);
    flow.onChange(b);
    unwatchA();
    // b still listens: c comes after it.
    flow.onChange(c);
    flow.pause();
    expect(seen).toEqual(['b', 'c']);
    flow.off(b);
    flow.off(c);
    flow.onChange(a);
    flow.resume();
    expect(seen).toEqual(['b', 'c', 'a']);
    flow.off(a);
    flow.pause();
    expect(seen).toEqual(['b', 'c', 'a']);
  });

  it('tells every listener of a change even when one removes another during it', () => {
    const flow = new Flow();
    const seen: string[] = [];
    const second = (): void => { seen.push('second'); };
    flow.onChange(() => {
      seen.push('first');
      flow.off(second);
    });
    flow.onChange(second);
    flow.pause();
    flow.resume();
    expect(seen).toEqual(['first', 'second', 'first']);
  });
});
