// Plain C++ values that the engine thread hands to the binding layer. No JS types:
// the binding (engine_wrap.cpp) turns them into JS objects on the event loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace inference {

enum class FaultKind { ContextPoisoned, OutOfMemory, Unrecoverable };
const char * faultKindName(FaultKind k);

enum class FinishReason { Stop, Length, Cancelled };
const char * finishReasonName(FinishReason r);

/**
 * Why one sequence failed. `kind` is a closed set shared with the TS side:
 * 'context_length_exceeded' | 'invalid_request' | 'overloaded' (queue full) |
 * 'OutOfMemory' (KV cache exhausted) | 'ContextPoisoned' | 'Unrecoverable' (engine faulted).
 */
struct SequenceError {
    std::string kind;
    std::string message;
    std::string field;  // the request field at fault ("grammar" | "jsonSchema" | "logitBias"); empty: none named
};

/** One alternative at a sampled position (see logprobs.h). */
struct TopProb {
    int32_t id = 0;
    std::string piece;  // the token's bytes (possibly part of a UTF-8 character)
    float logprob = 0.0f;
};

/** The log-probability of one sampled token and the most likely tokens at its position. */
struct TokenProb {
    int32_t id = 0;
    std::string piece;
    float logprob = 0.0f;
    std::vector<TopProb> top;
};

/** What one sequence produced in one step. */
struct StepItem {
    uint32_t id = 0;
    std::string text;
    int32_t n = 0;  // tokens sampled for this sequence in this step
    std::optional<FinishReason> done;
    std::optional<SequenceError> error;
    std::optional<int32_t> promptTokens;
    std::optional<int32_t> cachedTokens;
    std::optional<int32_t> completionTokens;
    std::vector<TokenProb> probs;  // one per token sampled in this step, when the request asked for them
};

struct Fault {
    FaultKind kind;
    std::string message;
};

/** One decode step: every sequence that produced output in it, in one message. */
struct StepEvent {
    uint64_t step = 0;
    int32_t seqs = 0;    // sequences in the decoded batch
    int32_t tokens = 0;  // tokens in the decoded batch
    std::vector<StepItem> items;
    std::optional<Fault> fault;

    bool empty() const { return items.empty() && !fault; }
};

struct EngineStats {
    int32_t activeSequences = 0;
    int32_t queuedSequences = 0;
    uint64_t steps = 0;
    int32_t lastStepSequences = 0;
    int32_t lastStepTokens = 0;
    int32_t maxStepSequences = 0;
    int32_t kvCellsUsed = 0;
    int32_t kvCellsTotal = 0;
    uint64_t promptTokensReused = 0;
    // Of those, the tokens whose cells were copied from another slot (prefix sharing).
    uint64_t promptTokensShared = 0;
    // Steps in which the queue's head waited for a running prefill of its prefix.
    uint64_t admissionsDeferred = 0;
    // Host-memory prompt cache (prompt_cache.h): requests that started from a restored
    // state, the prompt tokens they reused from it (also counted in promptTokensReused),
    // states saved, states evicted for room, and what it holds now (capacity 0: off).
    uint64_t promptCacheHits = 0;
    uint64_t promptTokensRestored = 0;
    uint64_t promptCacheSaves = 0;
    uint64_t promptCacheEvictions = 0;
    int32_t promptCacheEntries = 0;
    uint64_t promptCacheBytes = 0;
    uint64_t promptCacheCapacity = 0;
    // Sequences marked paused (back-pressure); only live sequences are ever marked.
    int32_t pausedSequences = 0;
    uint64_t totalDecodedTokens = 0;
    uint64_t totalSampledTokens = 0;
};

struct ModelInfo {
    std::string name;
    std::optional<std::string> chatTemplate;
    int32_t nCtxTrain = 0;
    int32_t nVocab = 0;
    int32_t nEmbd = 0;
    int32_t bos = -1;
    int32_t eos = -1;
    bool hasEncoder = false;
    int32_t contextSize = 0;     // cells in the generation context's KV cache
    int32_t sequenceContext = 0; // the most cells one sequence may use
};

}  // namespace inference
