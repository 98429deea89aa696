// What a request is on the request path: the job the gateway hands over, what it
// answers, what every request shares (RequestDeps), and the two rules that decide
// where a failure before any output goes next (another replica, the next
// fallback). The run itself is RequestRun (requestRun.ts).

import {
  type CapacityPolicy, type ChunkSink, type EmbeddingRequest, type EmbeddingResult, type FlowSignal, type GenerateRequest, type InferenceError,
  type PriceSpec, type Tokens, type TraceSpan,
} from '@inference/core';
import { type BudgetGate, BudgetRefusal } from './budget.js';
import type { CoordinatorMsg, Router } from './dpCoordinatorActor.js';
import type { ActorRef } from './kernel.js';
import type { Endpoint, MetricsMsg, MetricsRecorder } from './metricsActor.js';
import type { RequestRun } from './requestRun.js';

/** The runs not yet settled, as their owner keeps them (a Set does): each run adds itself when it starts and leaves when it settles. */
export interface LiveRuns {
  add(run: RequestRun): unknown;
  delete(run: RequestRun): unknown;
}

export interface RequestDeps {
  readonly coordinator: ActorRef<CoordinatorMsg>;
  readonly metrics: ActorRef<MetricsMsg>;
  /** The routing table read in place (localRouter: no mailbox hop per pick); absent: `coordinator` is asked. */
  readonly router?: Router | undefined;
  /** The metrics taken in place (localRecorder: no message per observation); absent: `metrics` is told. */
  readonly recorder?: MetricsRecorder | undefined;
  /** Replicas tried per deployment before giving up (first try included). */
  readonly maxAttempts?: number;
  /** A deployment's fallbacks and capacity policy (absent: no fallbacks). */
  readonly policyOf?: (deployment: string) => DeploymentPolicy | undefined;
  /** Budgets: each deployment tried reserves the request's estimate first (absent: no budgets). */
  readonly budget?: BudgetGate;
  /** Where runs in progress are kept, so that their owner can cancel them when it stops (absent: nowhere). */
  readonly live?: LiveRuns;
}

export interface DeploymentPolicy {
  readonly fallbacks: readonly string[];
  readonly onCapacityExhausted: CapacityPolicy;
  /** What the deployment's tokens cost (for the cost metric). */
  readonly price?: PriceSpec | undefined;
  /** The deployment's runtime (llama, openai, ...), named on its spans. */
  readonly runtime?: string | undefined;
}

/** Who sent the request (an API key, by name): its budget and the deployments it may use. */
export interface Principal {
  readonly name: string;
  /** Absent: every deployment. */
  readonly deployments?: readonly string[] | undefined;
}

/** `trace`: the request's span when tracing is on; the request adds its children and outcome, its creator ends it. */
export type RequestJob =
  | {
      kind: 'generate'; endpoint: Endpoint; req: GenerateRequest; sink: ChunkSink;
      onDeployment?: (deployment: string) => void;
      principal?: Principal | undefined;
      /** The client's back-pressure on the output (a streamed response), handed to the engine. */
      flow?: FlowSignal;
      trace?: TraceSpan | undefined;
    }
  | { kind: 'embed'; req: EmbeddingRequest; principal?: Principal | undefined; trace?: TraceSpan | undefined };

/** `deployment` is the one that served: the requested one or a fallback. */
export type RequestResult =
  | { kind: 'generate'; tokens: Tokens; replica: string; deployment: string }
  | { kind: 'embed'; result: EmbeddingResult; replica: string; deployment: string };

/**
 * Whether a failure before any output may be tried on another replica. Not a rate
 * limit or an open circuit: replicas of one deployment share both.
 */
export function retryElsewhere(e: InferenceError): boolean {
  return e.retryable && e.kind !== 'rate_limited' && e.kind !== 'circuit_open';
}

/**
 * Whether a failure before any output sends the request to the next fallback:
 * transient failures (breaker open, retries spent, upstream down) always; a local
 * capacity refusal only when the deployment says `onCapacityExhausted: fallback`.
 */
export function fallBack(e: InferenceError, policy: CapacityPolicy): boolean {
  // A deployment's exhausted budget falls back only under its `budget.onExceeded: fallback`.
  if (e instanceof BudgetRefusal) return e.fallback;
  if (e.capacity) return policy === 'fallback';
  return e.retryable;
}
