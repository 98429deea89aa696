// One generation request while the scheduler owns it: its prompt, its sampler chain,
// how far its prompt has been decoded into its slot's KV cells, and its text stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llama_handles.h"
#include "text_stream.h"

namespace inference {

/** A validated-by-the-binding generation request (token ids are checked by the scheduler). */
struct GenerateRequest {
    uint32_t id = 0;
    std::vector<llama_token> prompt;
    int32_t maxTokens = 16;
    float temperature = 1.0f;      // <= 0: greedy
    float topP = 1.0f;             // 1: off
    int32_t topK = 0;              // 0: off
    float minP = 0.0f;             // 0: off
    uint32_t seed = LLAMA_DEFAULT_SEED;  // LLAMA_DEFAULT_SEED: random
    float presencePenalty = 0.0f;
    float frequencyPenalty = 0.0f;
    std::vector<std::string> stop;
    std::string grammar;     // GBNF, root rule "root"; empty: unconstrained
    std::string jsonSchema;  // JSON text, converted to `grammar` at submit; empty: none
};

/**
 * grammar (when given) -> penalties -> top_k -> top_p -> min_p -> temperature -> seeded
 * dist (or greedy). The grammar comes first so every later stage sees only tokens the
 * grammar allows (EOG only once the grammar is complete).
 */
SamplerPtr makeSamplerChain(const GenerateRequest & req, const llama_vocab * vocab, SamplerPtr grammar);

class Sequence {
  public:
    Sequence(GenerateRequest req, const llama_vocab * vocab, uint64_t order, SamplerPtr grammar = nullptr);

    const GenerateRequest req;
    SamplerPtr sampler;
    TextStream text;
    const uint64_t order;  // admission order: younger sequences are failed first on KV exhaustion

    int slot = -1;
    size_t nPast = 0;          // prompt tokens already in the KV cells
    int32_t cached = 0;        // prompt tokens reused from the slot's previous sequence
    int32_t generated = 0;     // tokens sampled so far
    llama_token last = -1;     // last sampled token, not yet in the KV cells
    bool announced = false;    // promptTokens/cachedTokens already reported

    bool prefilling() const { return nPast < req.prompt.size(); }
    int32_t promptTokens() const { return static_cast<int32_t>(req.prompt.size()); }
};

}  // namespace inference
