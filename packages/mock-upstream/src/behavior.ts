// Behavior: what one request suffers (latency, an error, a hang, a cut stream, a short
// answer), and the FIFO script of behaviors consumed one per API request. parseBehavior
// is the only way untrusted JSON (control endpoints, the x-mock-behavior header) becomes
// a Behavior; unknown keys are errors, so a typo in a test fails loudly instead of
// silently injecting nothing.

import { isObject } from './fields.js';

/** Error statuses a behavior may inject (rendered in the provider's error envelope). */
export const ERROR_STATUSES = [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529] as const;
export type MockErrorStatus = (typeof ERROR_STATUSES)[number];

export interface Behavior {
  /** Delay before the response headers (applies to errors too). */
  readonly latencyMs?: number;
  /** Delay between SSE events of a streamed answer. */
  readonly chunkDelayMs?: number;
  /** Streamed with chunkDelayMs: this many SSE events (the role chunk counts) go at once, the pacing starts after them. */
  readonly burstChunks?: number;
  /** Answer with this error status, in the provider's envelope. */
  readonly status?: MockErrorStatus;
  /** `retry-after` header (seconds) on the injected error. */
  readonly retryAfterSeconds?: number;
  /** `retry-after-ms` header on the injected error. */
  readonly retryAfterMs?: number;
  /** Never answer; the request stays open until the client gives up. */
  readonly hang?: boolean;
  /**
   * Streamed: send this many SSE events (the role chunk counts), then drop the
   * connection. Not streamed: send the headers and half the body, then drop it.
   */
  readonly disconnectAfterChunks?: number;
  /** Words to generate; wins over max_tokens when smaller (finish `stop`). */
  readonly tokens?: number;
  /** OpenAI error `code` / Anthropic `error.type`; with no `status`, the status is 400. */
  readonly errorType?: string;
  /** The injected error's message instead of the status's default; with no `status`, the status is 400. */
  readonly errorMessage?: string;
  /** OpenAI `error.param` of the injected error (Anthropic's envelope has no such field); with no `status`, the status is 400. */
  readonly errorParam?: string;
}

export class BehaviorError extends Error {
  override readonly name = 'BehaviorError';
}

const NUMBER_KEYS = ['latencyMs', 'chunkDelayMs', 'retryAfterSeconds', 'retryAfterMs'] as const;
const INTEGER_KEYS = ['disconnectAfterChunks', 'tokens', 'burstChunks'] as const;
const STRING_KEYS = ['errorType', 'errorMessage', 'errorParam'] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set([...NUMBER_KEYS, ...INTEGER_KEYS, ...STRING_KEYS, 'status', 'hang']);
const STATUS_SET: ReadonlySet<number> = new Set(ERROR_STATUSES);

function isErrorStatus(value: unknown): value is MockErrorStatus {
  return typeof value === 'number' && STATUS_SET.has(value);
}

/** A validated copy of `value`, or BehaviorError saying what is wrong with it. */
export function parseBehavior(value: unknown, where = 'behavior'): Behavior {
  if (!isObject(value)) throw new BehaviorError(`${where} must be an object`);
  const input = value;
  const out: { -readonly [K in keyof Behavior]: Behavior[K] } = {};
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.has(key)) throw new BehaviorError(`${where}: unknown key '${key}'`);
  }
  for (const key of NUMBER_KEYS) {
    const v = input[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BehaviorError(`${where}.${key} must be a number >= 0`);
    out[key] = v;
  }
  for (const key of INTEGER_KEYS) {
    const v = input[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new BehaviorError(`${where}.${key} must be an integer >= 0`);
    out[key] = v;
  }
  if (input.status !== undefined) {
    if (!isErrorStatus(input.status)) throw new BehaviorError(`${where}.status must be one of ${ERROR_STATUSES.join(', ')}`);
    out.status = input.status;
  }
  if (input.hang !== undefined) {
    if (typeof input.hang !== 'boolean') throw new BehaviorError(`${where}.hang must be a boolean`);
    out.hang = input.hang;
  }
  for (const key of STRING_KEYS) {
    const v = input[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length === 0) throw new BehaviorError(`${where}.${key} must be a non-empty string`);
    out[key] = v;
  }
  return out;
}

export function parseScript(value: unknown): Behavior[] {
  if (!Array.isArray(value)) throw new BehaviorError('script must be an array of behaviors');
  return value.map((item, i) => parseBehavior(item, `script[${i}]`));
}

/** The status an injected error is sent with, or undefined when the behavior injects none. */
export function injectedStatus(behavior: Behavior): number | undefined {
  const detailed = behavior.errorType !== undefined || behavior.errorMessage !== undefined || behavior.errorParam !== undefined;
  return behavior.status ?? (detailed ? 400 : undefined);
}

/** FIFO of scripted behaviors; `next()` is O(1) and the queue forgets consumed entries. */
export class ScriptQueue {
  private items: readonly Behavior[] = [];
  private head = 0;

  /** Replaces whatever is still queued. */
  replace(items: readonly Behavior[]): void {
    this.items = items.slice();
    this.head = 0;
  }

  next(): Behavior | undefined {
    if (this.head >= this.items.length) return undefined;
    const behavior = this.items[this.head];
    this.head++;
    if (this.head === this.items.length) this.replace([]);
    return behavior;
  }

  get remaining(): number {
    return this.items.length - this.head;
  }
}
