// Every metric name in one place: inference_<subsystem>_<name>_<unit>; counters
// end in _total. Labels are bounded: deployment, replica, kind, endpoint, outcome.
// docs/metrics.md describes each one (type, labels, meaning).

export const METRIC = {
  requests: 'inference_gateway_requests_total',
  errors: 'inference_gateway_errors_total',
  tokensIn: 'inference_tokens_input_total',
  tokensOut: 'inference_tokens_output_total',
  tokensCached: 'inference_tokens_input_cached_total',
  ttft: 'inference_request_ttft_seconds',
  e2e: 'inference_request_duration_seconds',
  inFlight: 'inference_gateway_in_flight_requests',
  retries: 'inference_request_retries_total',
  replicaRequests: 'inference_replica_requests_total',
  replicaRestarts: 'inference_replica_restarts_total',
  engineHostExits: 'inference_engine_host_exits_total',
  replicaState: 'inference_replica_state',
  stepSequences: 'inference_engine_step_sequences',
  maxStepSequences: 'inference_engine_step_sequences_max',
  kvCellsUsed: 'inference_engine_kv_cells_used',
  engineActive: 'inference_engine_active_sequences',
  fallbacks: 'inference_request_fallbacks_total',
  remoteRetries: 'inference_remote_retries_total',
  remoteLimited: 'inference_remote_limiter_refusals_total',
  remoteUpstream429: 'inference_remote_upstream_rate_limited_total',
  breakerState: 'inference_remote_breaker_state',
  breakerRejections: 'inference_remote_breaker_rejections_total',
  interToken: 'inference_request_inter_token_latency_seconds',
  replicaQueued: 'inference_replica_queued_requests',
  replicaOutstanding: 'inference_replica_outstanding_requests',
  replicaCapacity: 'inference_replica_capacity_requests',
  batchOccupancy: 'inference_engine_batch_occupancy_ratio',
  cost: 'inference_cost_usd_total',
  // Routing (DpCoordinatorActor; policy and outcome are closed sets, see prefixRouting.ts).
  routingDecisions: 'inference_routing_decisions_total',
  routingPrefixHits: 'inference_routing_prefix_hits_total',
  // Budgets (BudgetActor; label `name` is a deployment or an API key's configured name).
  budgetSpendTokens: 'inference_budget_spend_tokens',
  budgetSpendUsd: 'inference_budget_spend_usd',
  budgetReservedTokens: 'inference_budget_reserved_tokens',
  budgetRefusals: 'inference_budget_refusals_total',
  // Streamed responses of this process (packages/runtime/src/streamBuffers.ts; docs/flow-control.md).
  streamBuffered: 'inference_gateway_stream_buffered_bytes',
  streamBufferedPeak: 'inference_gateway_stream_buffered_peak_bytes',
  streamsHeld: 'inference_gateway_streams_held',
  streamStalls: 'inference_gateway_stream_stalls_total',
} as const;
