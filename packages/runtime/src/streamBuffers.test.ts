import { describe, expect, it } from 'vitest';
import { BufferedStream, StreamBuffers } from './streamBuffers.js';

class Fake extends BufferedStream {
  constructor(public buffered: number, public congested = false) {
    super();
  }
}

/** The gauge values of a render, by metric name. */
function gauges(b: StreamBuffers): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of b.render().split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    if (name !== undefined && value !== undefined) out[name] = Number(value);
  }
  return out;
}

describe('StreamBuffers', () => {
  it('sums the open streams and counts the congested ones, whichever order they leave in', () => {
    const b = new StreamBuffers();
    const s0 = new Fake(10);
    const s1 = new Fake(200, true);
    const s2 = new Fake(3000);
    const s3 = new Fake(40_000, true);
    for (const x of [s0, s1, s2, s3]) b.add(x);
    expect(b.size).toBe(4);
    expect(gauges(b)).toMatchObject({ inference_gateway_stream_buffered_bytes: 43_210, inference_gateway_streams_held: 2 });
    // A middle one, the newest (the list's head), the oldest (its tail), then the last.
    const expected = [[s1, 43_010, 1], [s3, 3010, 0], [s0, 3000, 0], [s2, 0, 0]] as const;
    for (const [x, bytes, held] of expected) {
      b.remove(x);
      expect(gauges(b)).toMatchObject({ inference_gateway_stream_buffered_bytes: bytes, inference_gateway_streams_held: held });
    }
    expect(b.size).toBe(0);
  });

  it('takes a stream once however often it is added, and ignores removing one it does not hold', () => {
    const b = new StreamBuffers();
    const a = new Fake(5);
    const c = new Fake(7);
    b.remove(a);
    b.add(a);
    b.add(a);
    b.add(c);
    b.add(a);
    expect(b.size).toBe(2);
    expect(gauges(b).inference_gateway_stream_buffered_bytes).toBe(12);
    b.remove(a);
    b.remove(a);
    expect(b.size).toBe(1);
    expect(gauges(b).inference_gateway_stream_buffered_bytes).toBe(7);
    // Removed streams can come back.
    b.add(a);
    expect(gauges(b).inference_gateway_stream_buffered_bytes).toBe(12);
  });

  it('keeps the peak one stream held, and counts stalls', () => {
    const b = new StreamBuffers();
    const a = new Fake(100);
    b.add(a);
    b.sample(a);
    a.buffered = 50;
    b.sample(a);
    b.stalled();
    expect(gauges(b)).toMatchObject({ inference_gateway_stream_buffered_peak_bytes: 100, inference_gateway_stream_stalls_total: 1 });
  });
});
