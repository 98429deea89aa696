// The provider adapters a remote replica can speak, chosen by the deployment's
// runtime. An adapter only translates wire formats: the replica's actor owns
// admission, sessions, retries and supervision, whatever the provider.

import type { ChunkSink, EmbeddingRequest, EmbeddingResult, GenerateRequest, RuntimeKind, Tokens } from '@inference/core';
import { InferenceError } from '@inference/core';
import * as anthropic from './anthropic.js';
import type { CallOptions } from './http.js';
import * as openai from './openai.js';

export interface Provider {
  generate(o: CallOptions, req: GenerateRequest, sink: ChunkSink): Promise<Tokens>;
  embed(o: CallOptions, req: EmbeddingRequest): Promise<EmbeddingResult>;
}

const OPENAI: Provider = { generate: openai.generate, embed: openai.embed };
const ANTHROPIC: Provider = { generate: anthropic.generate, embed: (o) => anthropic.embed(o) };

export function providerFor(runtime: RuntimeKind): Provider {
  switch (runtime) {
    case 'openai':
      return OPENAI;
    case 'anthropic':
      return ANTHROPIC;
    case 'llama':
    default:
      // llama, or a runtime registered by the user: neither has a remote provider.
      throw new InferenceError('internal', 'internal error', { diagnostic: `runtime ${runtime} has no remote provider` });
  }
}
