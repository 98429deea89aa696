// What the streamed responses of one process hold in memory (docs/flow-control.md):
// the bytes written to each response that its socket has not taken yet (the socket's
// and the response's buffers, plus the writer's coalesced chunk). Responses are the
// gateway's streams to clients and, in cluster mode, the forwarded runs this node
// streams to a peer (cluster/forwardServer.ts). With back-pressure working, a slow
// client's stream holds at most about one socket buffer (or one HTTP/2 window) plus
// what its engine produced before the pause reached it; these gauges make that visible.
// Bounded: one entry per open streamed response, removed when it ends or closes.

import { METRIC } from '@inference/actors';

/** One streamed response, as the accounting sees it. */
export interface BufferedStream {
  /** Bytes written and not yet handed to the kernel. */
  readonly buffered: number;
  /** Whether its client is behind (the writer waits for 'drain'). */
  readonly congested: boolean;
}

export class StreamBuffers {
  private readonly open = new Set<BufferedStream>();
  private peak = 0;
  private stalls = 0;

  add(s: BufferedStream): void {
    this.open.add(s);
  }

  remove(s: BufferedStream): void {
    this.open.delete(s);
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
    for (const s of this.open) {
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
