// Continuous batching over one llama_context, driven by the engine thread only.
//
// Each step builds ONE llama_batch: a token for every decoding sequence first, then
// prompt chunks of prefilling sequences (oldest first) under the per-step token budget,
// so a long prompt never stalls the sequences that are already generating.
//
// Slots are llama sequence ids [0, maxSequences). A slot keeps the tokens of its last
// sequence in the KV cells (`Slot::kv`, an exact mirror of what the cells hold) so a
// later request with a common prefix decodes only the rest (prompt caching, as in
// llama-server).
//
// Two KV layouts (EngineOptions::kvUnified):
//  - split (default): each slot owns contextSize / maxSequences cells. Attention of a
//    token only spans its own sequence, which is what makes batched decoding fast for
//    independent sequences. llama.cpp batches split streams only across CONSECUTIVE
//    sequence ids, so among empty slots a new request takes the lowest, keeping the
//    active slots packed.
//
// Which free slot a request takes: the one whose cache holds the longest useful prefix
// of its prompt (at least a tenth of the prompt, or the whole cache); failing that, an
// empty slot; failing that, the least recently used free slot whose cache another slot
// mostly holds too (at least half of it); failing that, the least recently used one.
// The chosen slot's cache is evicted.
// Prefix sharing (split layout): when another slot, busy or not, holds a longer prefix
// (by at least a tenth of the prompt), that slot's cells are copied into the chosen one
// (llama_memory_seq_cp) and only the rest of the prompt is decoded. Requests of one
// system prompt that run at once then all start from it, not just the first. A request
// whose prefix a running prefill is about to hold waits for it (a step or a few) instead
// of decoding the same tokens beside it.
// Host-memory prompt cache (split layout, SchedulerConfig::promptCacheBytes > 0): before
// a free slot's cache is overwritten or cut short, its sequence state is copied to host
// memory (PromptCache, LRU by bytes). A request whose prompt shares a longer prefix with
// a saved state than with any slot (by a tenth of the prompt) has it restored into the
// slot it takes, and decodes only the rest (docs/architecture.md, "Host-memory prompt cache").
//  - unified: one pool of contextSize cells; a sequence may use all of it. Idle slots'
//    caches are evicted least-recently-used first when cells run short, and when active
//    sequences alone exhaust them the youngest one fails with OutOfMemory. Every token
//    attends over all used cells (masked), so large batches of long sequences cost more.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "events.h"
#include "llama_handles.h"
#include "prompt_cache.h"
#include "sequence.h"

namespace inference {

struct SchedulerConfig {
    int32_t maxSequences = 1;
    int32_t batchTokens = 512;
    size_t maxQueued = 1024;
    bool unified = false;
    // Host-memory prompt cache (prompt_cache.h); 0: off. Split layout only.
    size_t promptCacheBytes = 0;
};

class Scheduler {
  public:
    Scheduler(const llama_model * model, llama_context * ctx, SchedulerConfig cfg);

    /** Queues a request, or records an error item for it (reported by the next step()). */
    void submit(GenerateRequest req);
    /** Frees the sequence (and its KV cells) now; reported as done 'cancelled' by the next step(). */
    void cancel(uint32_t id);
    /** Test hook: the next decode behaves as if that native error happened. */
    void injectFault(FaultKind kind) { injected_ = kind; }

    bool hasWork() const { return !pending_.empty() || !queue_.empty() || active_ > pausedActive(); }
    /**
     * Back-pressure (docs/flow-control.md): a paused sequence stays out of the batch
     * (its KV cells kept) until resumed; its client has not read what it produced.
     */
    void setPaused(uint32_t id, bool paused);
    /** Whether `id` is queued or holds a slot. */
    bool live(uint32_t id) const;
    bool faulted() const { return faulted_; }

    /** Admits, decodes one batch and samples; returns what to report (possibly empty). */
    StepEvent step();
    /** Ends every sequence with a fault (the engine cannot continue). */
    StepEvent fail(const Fault & fault);

    EngineStats stats() const;
    int32_t sequenceContext() const { return nCtxSeq_; }

  private:
    struct Slot {
        std::vector<llama_token> kv;
        std::unique_ptr<Sequence> seq;
        uint64_t lastUsed = 0;
    };
    struct BatchEntry {
        Sequence * seq;
        int32_t first;   // index of its first token in the batch
        int32_t count;   // tokens it contributes
        bool output;     // whether its last token produces logits
    };

    void admit();
    void preserve(int slot, size_t keep);
    bool restore(int slot, PromptCache::Handle entry);
    int victimSlot() const;
    bool redundant(size_t slot) const;
    void plan();
    void resync();
    Sequence * youngest(bool inBatchOnly);
    bool makeRoom(int32_t needed);
    void failSequence(Sequence & seq, const char * kind, const std::string & message);
    void releaseSlot(int slot, bool keepCache);
    void sample(StepEvent & ev);
    void finish(Sequence & seq, StepItem & item, FinishReason reason);
    int32_t kvUsed() const;

    const llama_model * model_;
    const llama_vocab * vocab_;
    llama_context * ctx_;
    llama_memory_t mem_;
    const SchedulerConfig cfg_;
    const int32_t nCtx_;
    const int32_t nCtxSeq_;
    const int32_t nVocab_;
    // Whether a slot may start from a copy of another slot's cells. Split layout only:
    // unified cells would be shared, not copied, and kvUsed() counts each slot's cells.
    const bool shareKv_;
    // Saved states of overwritten slots (nullptr: off, or the unified layout, whose cells
    // are one pool: a restore could need cells that running sequences hold).
    std::unique_ptr<PromptCache> cache_;

    std::vector<Slot> slots_;
    std::deque<std::unique_ptr<Sequence>> queue_;
    std::vector<StepItem> pending_;  // items produced between steps (errors, cancels)
    std::unordered_set<uint32_t> paused_;  // ids of paused requests (queued or active)
    int32_t pausedActive() const;
    int32_t active_ = 0;
    uint64_t order_ = 0;
    uint64_t clock_ = 0;
    std::optional<FaultKind> injected_;
    bool faulted_ = false;
    FaultKind faultKind_ = FaultKind::Unrecoverable;

    // The batch of the current step, in storage owned here (llama_batch only points to it).
    std::vector<llama_token> bTokens_;
    std::vector<llama_pos> bPos_;
    std::vector<int32_t> bNSeq_;
    std::vector<llama_seq_id> bSeq_;
    std::vector<llama_seq_id *> bSeqPtr_;
    std::vector<int8_t> bLogits_;
    std::vector<BatchEntry> entries_;

    EngineStats stats_;
};

}  // namespace inference
