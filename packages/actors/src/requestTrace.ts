// What a request's spans say, in the OpenTelemetry GenAI semantic conventions
// (docs/tracing.md): the request span's name and attributes, a finished
// request's outcome, and the provider name of a runtime. Called only where a
// span exists; with tracing off nothing here runs.

import type { EmbeddingRequest, GenerateRequest, TraceAttrs, TraceSpan, Tokens } from '@inference/core';
import type { Endpoint } from './metricsActor.js';

/** `gen_ai.operation.name` of an endpoint. */
export function genAiOperation(endpoint: Endpoint): string {
  switch (endpoint) {
    case 'chat':
    case 'messages':
    case 'responses':
      return 'chat';
    case 'completion':
      return 'text_completion';
    case 'embedding':
      return 'embeddings';
    default: {
      const never: never = endpoint;
      throw new Error(`unknown endpoint ${String(never)}`);
    }
  }
}

/** `gen_ai.provider.name` of a deployment runtime (well-known values where the conventions have one). */
export function genAiProvider(runtime: string): string {
  return runtime === 'llama' ? 'llama.cpp' : runtime;
}

/** The request span's name (`{operation} {model}`) and its request attributes. */
export function requestSpan(endpoint: Endpoint, req: GenerateRequest | EmbeddingRequest, requestId: string): { name: string; attrs: TraceAttrs } {
  const op = genAiOperation(endpoint);
  const attrs: Record<string, TraceAttrs[string]> = {
    'gen_ai.operation.name': op,
    'gen_ai.request.model': req.model,
    'inference.request.id': requestId,
    'inference.endpoint': endpoint,
  };
  if ('sampling' in req) {
    const s = req.sampling;
    attrs['gen_ai.request.max_tokens'] = s.maxTokens;
    attrs['gen_ai.request.temperature'] = s.temperature;
    attrs['gen_ai.request.top_p'] = s.topP;
    attrs['gen_ai.request.top_k'] = s.topK;
    attrs['gen_ai.request.seed'] = s.seed;
    attrs['gen_ai.request.presence_penalty'] = s.presencePenalty;
    attrs['gen_ai.request.frequency_penalty'] = s.frequencyPenalty;
    if (s.n !== 1) attrs['gen_ai.request.choice.count'] = s.n;
    attrs['inference.request.stream'] = req.stream;
  }
  return { name: `${op} ${req.model}`, attrs };
}

/** The outcome of a generation on the request span. */
export function traceGenerated(
  span: TraceSpan,
  deployment: string,
  runtime: string | undefined,
  tokens: Tokens,
  retries: number,
  ttftMs: number | undefined,
): void {
  span.set({
    'gen_ai.response.model': deployment,
    'gen_ai.provider.name': runtime === undefined ? undefined : genAiProvider(runtime),
    'gen_ai.usage.input_tokens': tokens.usage.promptTokens,
    'gen_ai.usage.output_tokens': tokens.usage.completionTokens,
    'gen_ai.response.finish_reasons': tokens.choices.map((c) => c.finishReason),
    'inference.deployment': deployment,
    'inference.retries': retries,
    'inference.ttft_ms': ttftMs,
  });
}

/** The outcome of an embedding on the request span. */
export function traceEmbedded(span: TraceSpan, deployment: string, runtime: string | undefined, promptTokens: number, retries: number): void {
  span.set({
    'gen_ai.response.model': deployment,
    'gen_ai.provider.name': runtime === undefined ? undefined : genAiProvider(runtime),
    'gen_ai.usage.input_tokens': promptTokens,
    'inference.deployment': deployment,
    'inference.retries': retries,
  });
}
