// One generation request while the scheduler owns it: its prompt, its sampler chain,
// how far its prompt has been decoded into its slot's KV cells, and its text stream.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "llama_handles.h"
#include "text_stream.h"

namespace inference {

/** GenerateRequest::maxTokens when the client set no limit: generate until end of generation or a full context. */
constexpr int32_t kUntilContextFull = -1;

/** When a lazy grammar starts to apply (llama.cpp's common_grammar_trigger, resolved by the scheduler). */
struct GrammarTrigger {
    enum class Type { Word, Pattern, PatternFull };
    Type type = Type::Word;
    std::string value;  // the word, or the regex (PatternFull: must match the whole output so far)
};

/** A validated-by-the-binding generation request (token ids are checked by the scheduler). */
struct GenerateRequest {
    uint32_t id = 0;
    std::vector<llama_token> prompt;
    int32_t maxTokens = kUntilContextFull;
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
    // Chat-template constrained decoding (tool calls, see chat.h): the grammar applies
    // from the first trigger on when lazy, and a non-lazy one first consumes the tokens
    // of `grammarPrefill` (the generation prompt the template already placed).
    bool grammarLazy = false;
    std::vector<GrammarTrigger> grammarTriggers;
    std::string grammarPrefill;
    /** Texts of special tokens that are emitted as text (tool-call markers); one token each or ignored. */
    std::vector<std::string> preservedTokens;
    /** OpenAI logit_bias: added to the token's logit; -INFINITY bans it. Ids are checked at submit. */
    std::vector<llama_logit_bias> logitBias;
    /** < 0: no log-probabilities; else the sampled token's and this many alternatives' (0..20). */
    int32_t nProbs = -1;
};

/**
 * logit bias (when given) -> grammar (when given) -> penalties -> top_k -> top_p -> min_p -> temperature -> seeded
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
    std::vector<llama_token> preserved;  // sorted; rendered with their special text

    bool isPreserved(llama_token t) const;

    bool prefilling() const { return nPast < req.prompt.size(); }
    int32_t promptTokens() const { return static_cast<int32_t>(req.prompt.size()); }
};

}  // namespace inference
