// How an engine host process ended, as the parent reports it (docs/metrics.md,
// `inference_engine_host_exits_total`; docs/architecture.md, Supervision): the exit
// code or signal, a reason from a small closed set (a metric label), and the last
// bytes the host wrote to stderr (llama.cpp's and the host's own log lines).

import {
  EXIT_CLOSED, EXIT_CONTEXT_POISONED, EXIT_LOAD_FAILED, EXIT_UNRECOVERABLE,
} from './protocol.js';

/** The bound of the stderr tail kept per host. */
export const STDERR_TAIL_BYTES = 4096;

/** Why a host ended: its own exit codes (protocol.ts), another code, or a signal (crash or kill). */
export const HOST_EXIT_REASONS = [
  'closed', 'load_failed', 'context_poisoned', 'unrecoverable', 'exit_code',
  'SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGKILL', 'SIGTERM', 'signal',
] as const;
export type HostExitReason = (typeof HOST_EXIT_REASONS)[number];

export interface HostExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly reason: HostExitReason;
  /** The host's last stderr output (at most STDERR_TAIL_BYTES, cut at a line start when possible). */
  readonly stderrTail: string;
}

/** The signals named in a reason; any other is 'signal'. */
const NAMED_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGKILL', 'SIGTERM']);

/** The host's own exit codes (protocol.ts); any other is 'exit_code'. */
const CODE_REASONS: ReadonlyMap<number, HostExitReason> = new Map([
  [EXIT_CLOSED, 'closed'],
  [EXIT_LOAD_FAILED, 'load_failed'],
  [EXIT_CONTEXT_POISONED, 'context_poisoned'],
  [EXIT_UNRECOVERABLE, 'unrecoverable'],
]);

export function exitReason(code: number | null, signal: NodeJS.Signals | null): HostExitReason {
  if (signal !== null) return NAMED_SIGNALS.has(signal) ? (signal as HostExitReason) : 'signal';
  return (code === null ? undefined : CODE_REASONS.get(code)) ?? 'exit_code';
}

/** The last `limit` bytes written to a stream, kept as chunks (bounded memory). */
export class StderrTail {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly limit = STDERR_TAIL_BYTES) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - (this.chunks[0]?.length ?? 0) >= this.limit) {
      this.bytes -= this.chunks.shift()?.length ?? 0;
    }
  }

  text(): string {
    let all = Buffer.concat(this.chunks);
    if (all.length > this.limit) {
      all = all.subarray(all.length - this.limit);
      const nl = all.indexOf(0x0a);
      if (nl >= 0 && nl < all.length - 1) all = all.subarray(nl + 1);
    }
    return all.toString('utf8');
  }
}

/** The parent's log line for a host that ended without being closed. */
export function exitLine(label: string, pid: number, exit: HostExit): string {
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  const tail = exit.stderrTail.trimEnd();
  const last = tail === '' ? ' (no stderr output)' : `; last stderr:\n${tail.replace(/^/gm, '  | ')}`;
  return `engine host ${label} (pid ${String(pid)}) ${how} [reason=${exit.reason}]${last}\n`;
}
