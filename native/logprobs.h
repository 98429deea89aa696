// Token log-probabilities as llama-server reports them (docs/openai-fields.md): a
// softmax over the model's raw logits at the sampled position - before logit bias,
// grammar, penalties or temperature - giving the sampled token's log-probability and
// the `nTop` most likely tokens with theirs.
#pragma once

#include <string>

#include "events.h"
#include "llama.h"

namespace inference {

/** `idx` is the batch position whose logits produced `token`; `piece` is the token's emitted bytes. */
TokenProb tokenProbs(llama_context * ctx, const llama_vocab * vocab, int32_t idx, llama_token token, const std::string & piece,
                     int32_t nTop);

}  // namespace inference
