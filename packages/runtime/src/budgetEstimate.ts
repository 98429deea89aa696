// What a request is expected to use, reserved on its budgets before it runs:
// prompt tokens counted with the o200k tokenizer (the remote limiter's count, so
// one estimate serves both), and completion tokens = max_tokens × n, or
// DEFAULT_COMPLETION_ESTIMATE × n when the request sets no max_tokens (then the
// real completion may pass the estimate; docs/config.md says what that means).
// Embeddings: their input tokens, no completion.

import type { TokenEstimate } from '@inference/actors';
import type { EmbeddingRequest, GenerateRequest } from '@inference/core';
import { countPromptTokens, estimateRequestTokens } from '@inference/engine-remote';

export const DEFAULT_COMPLETION_ESTIMATE = 256;

export async function estimateTokens(req: GenerateRequest | EmbeddingRequest): Promise<TokenEstimate> {
  if (!('kind' in req)) return { promptTokens: await countPromptTokens(req.input), completionTokens: 0 };
  const n = Math.max(1, req.sampling.n);
  const completionTokens = (req.sampling.maxTokens ?? DEFAULT_COMPLETION_ESTIMATE) * n;
  // With maxTokens 0 the shared estimator counts the prompt (and per-message overhead) only.
  const promptTokens = await estimateRequestTokens({ ...req, sampling: { ...req.sampling, maxTokens: 0 } });
  return { promptTokens, completionTokens };
}
