// What the streamed responses of one process hold in memory (docs/flow-control.md):
// the bytes written to each response that its socket has not taken yet (the socket's
// and the response's buffers, plus the writer's coalesced chunk). Responses are the
// gateway's streams to clients and, in cluster mode, the forwarded runs this node
// streams to a peer (cluster/forwardServer.ts). With back-pressure working, a slow
// client's stream holds at most about one socket buffer (or one HTTP/2 window) plus
// what its engine produced before the pause reached it; these gauges make that visible.
// Bounded: one entry per open streamed response, removed when it closes.

import { METRIC } from '@inference/actors';

/**
 * One streamed response, as the accounting sees it. The open responses form a list
 * threaded through the responses themselves (`prevOpen`/`nextOpen`, StreamBuffers'
 * own): registering one allocates nothing, which matters with thousands of idle
 * streams open (docs/benchmarks.md, "Idle concurrent streams").
 */
export abstract class BufferedStream {
  /** @internal */
  prevOpen: BufferedStream | undefined = undefined;
  /** @internal */
  nextOpen: BufferedStream | undefined = undefined;
  /** Bytes written and not yet handed to the kernel. */
  abstract readonly buffered: number;
  /** Whether its client is behind (the writer waits for 'drain'). */
  abstract readonly congested: boolean;
}

export class StreamBuffers {
  private head: BufferedStream | undefined;
  private count = 0;
  private peak = 0;
  private stalls = 0;

  /** Open streamed responses. */
  get size(): number {
    return this.count;
  }

  /** Registers an open response (a no-op when it already is). */
  add(s: BufferedStream): void {
    if (this.has(s)) return;
    s.nextOpen = this.head;
    if (this.head !== undefined) this.head.prevOpen = s;
    this.head = s;
    this.count++;
  }

  /** Forgets a response (a no-op when it is not registered). */
  remove(s: BufferedStream): void {
    if (!this.has(s)) return;
    const { prevOpen, nextOpen } = s;
    if (prevOpen === undefined) this.head = nextOpen;
    else prevOpen.nextOpen = nextOpen;
    if (nextOpen !== undefined) nextOpen.prevOpen = prevOpen;
    s.prevOpen = undefined;
    s.nextOpen = undefined;
    this.count--;
  }

  private has(s: BufferedStream): boolean {
    return s.prevOpen !== undefined || this.head === s;
  }

  /** After a write: keeps the largest buffer one stream has held. */
  sample(s: BufferedStream): void {
    if (s.buffered > this.peak) this.peak = s.buffered;
  }

  /** A stream was ended because its client read nothing for streamStallMs. */
  stalled(): void {
    this.stalls++;
  }

  /** The gauges in Prometheus text format. */
  render(): string {
    let bytes = 0;
    let held = 0;
    for (let s = this.head; s !== undefined; s = s.nextOpen) {
      bytes += s.buffered;
      if (s.congested) held++;
    }
    return [
      `# HELP ${METRIC.streamBuffered} Bytes written to open streamed responses that their sockets have not taken yet`,
      `# TYPE ${METRIC.streamBuffered} gauge`,
      `${METRIC.streamBuffered} ${bytes}`,
      `# HELP ${METRIC.streamBufferedPeak} The most bytes one streamed response has held unsent since the process started`,
      `# TYPE ${METRIC.streamBufferedPeak} gauge`,
      `${METRIC.streamBufferedPeak} ${this.peak}`,
      `# HELP ${METRIC.streamsHeld} Open streamed responses whose client is behind (their output is paused)`,
      `# TYPE ${METRIC.streamsHeld} gauge`,
      `${METRIC.streamsHeld} ${held}`,
      `# HELP ${METRIC.streamStalls} Streamed responses ended because their client read nothing for server.streamStallMs`,
      `# TYPE ${METRIC.streamStalls} counter`,
      `${METRIC.streamStalls} ${this.stalls}`,
      '',
    ].join('\n');
  }
}
