import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SseParser } from './sse.js';

const enc = new TextEncoder();

describe('SseParser', () => {
  it('parses events split anywhere, with CRLF, comments and event names', () => {
    const text = ': ping\r\nevent: message_start\r\ndata: {"a":1}\r\n\r\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n';
    const bytes = enc.encode(text);
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: bytes.length }), { maxLength: 8 }), (cuts) => {
      const p = new SseParser();
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const events = [];
      let prev = 0;
      for (const c of [...points, bytes.length]) {
        events.push(...p.push(bytes.subarray(prev, c)));
        prev = c;
      }
      events.push(...p.end());
      expect(events).toEqual([
        { event: 'message_start', data: '{"a":1}' },
        { event: undefined, data: 'line1\nline2' },
        { event: undefined, data: '[DONE]' },
      ]);
    }));
  });

  it('keeps multi-byte characters split across chunks intact', () => {
    const bytes = enc.encode('data: héllo 🦊\n\n');
    const p = new SseParser();
    const out = [...p.push(bytes.subarray(0, 9)), ...p.push(bytes.subarray(9, 14)), ...p.push(bytes.subarray(14))];
    expect(out).toEqual([{ event: undefined, data: 'héllo 🦊' }]);
  });

  it('decodes multi-byte text cut at any byte, events in any number of chunks', () => {
    const bytes = enc.encode('data: ünï 🦊 çödé\n\ndata: 日本語\r\ndata: ✓\r\n\n');
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
      const p = new SseParser();
      const events = [];
      let prev = 0;
      for (const c of [...[...new Set(cuts)].sort((a, b) => a - b), bytes.length]) {
        events.push(...p.push(bytes.subarray(prev, c)));
        prev = c;
      }
      events.push(...p.end());
      expect(events).toEqual([{ event: undefined, data: 'ünï 🦊 çödé' }, { event: undefined, data: '日本語\n✓' }]);
    }));
  });

  it('flushes a final event without a trailing blank line', () => {
    const p = new SseParser();
    expect([...p.push(enc.encode('data: x')), ...p.end()]).toEqual([{ event: undefined, data: 'x' }]);
  });
});
