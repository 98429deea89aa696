// What an endpoint produces and what it is given. Endpoints are pure functions from a
// parsed JSON body to a Rendered answer; the server decides how (and whether) the answer
// reaches the socket, which is where every fault is applied. An SSE answer is a list of
// complete events so the delivery layer can pace them or cut the stream after N of them.

export type Rendered =
  | { readonly kind: 'json'; readonly body: string }
  | { readonly kind: 'sse'; readonly events: readonly string[] };

export interface RenderContext {
  /** Unique per request; endpoints prefix it (`chatcmpl-`, `msg_`, ...). */
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  /** The behavior's `tokens`, if any. */
  readonly behaviorTokens: number | undefined;
}

export type Endpoint = (body: unknown, ctx: RenderContext) => Rendered;

export const SSE_DONE = 'data: [DONE]\n\n';

/** OpenAI's usage object, as JSON text (it is spliced into hand-built chunks). */
export function openaiUsageJson(promptTokens: number, completionTokens: number): string {
  return (
    `{"prompt_tokens":${promptTokens},"completion_tokens":${completionTokens},"total_tokens":${promptTokens + completionTokens},` +
    `"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
    `"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
  );
}
