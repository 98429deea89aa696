// Shared setup for the Anthropic end-to-end tests: the Anthropic-backed deployments
// pointed at the mock, the SDK client, and the event sequence of a text stream.

import Anthropic from '@anthropic-ai/sdk';

/** Two deployments on the mock's Messages API; `claude-strict` never retries and never opens its breaker, so each injected fault reaches the client as it is. */
export function ANTHROPIC_DEPLOYMENTS(mockUrl: string): unknown[] {
  return [
    { name: 'claude', runtime: 'anthropic', endpoint: mockUrl, model: 'claude-3-5-haiku-latest', replicas: 1 },
    { name: 'claude-strict', runtime: 'anthropic', endpoint: mockUrl, model: 'claude-3-5-haiku-latest', replicas: 1, remote: { maxRetries: 0, breaker: { failureThreshold: 1000 } } },
  ];
}

export function anthropicClient(gatewayUrl: string): Anthropic {
  return new Anthropic({ baseURL: gatewayUrl, apiKey: 'unused', maxRetries: 0 });
}

/** Event names of a streamed text answer of `deltas` text deltas, as Anthropic sends them. */
export function STREAM_EVENTS(deltas: number): string[] {
  return [
    'message_start', 'content_block_start', 'ping', ...Array.from({ length: deltas }, () => 'content_block_delta'),
    'content_block_stop', 'message_delta', 'message_stop',
  ];
}
