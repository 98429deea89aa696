// Admission for the Scheduler (policy in scheduler.h): submit() validates a request and
// queues it; admit() gives queued requests free slots, choosing the slot, sharing a
// prefix from another slot, waiting for a running prefill of the same prefix, and saving
// and restoring slot states through the host-memory prompt cache (prompt_cache.h).
// The step loop that decodes admitted sequences is in scheduler.cpp.
#include "scheduler.h"

#include <algorithm>
#include <string>
#include <variant>

#include "grammar.h"
#include "vocab_ops.h"

namespace inference {

namespace {

// A free slot's cache is continued when its common prefix with the prompt is at least
// 1/kReuseShare of the prompt (llama-server's default slot similarity is 0.1).
constexpr size_t kReuseShare = 10;
// A request waits for another's prefill only to save at least this many tokens: every
// prompt shares its first (BOS) token, which is no reason to wait a step.
constexpr size_t kMinDeferTokens = 8;

}  // namespace

void Scheduler::submit(GenerateRequest req) {
    auto reject = [&](const char * kind, std::string message, std::string field = {}) {
        StepItem it;
        it.id = req.id;
        it.error = SequenceError{kind, std::move(message), std::move(field)};
        it.promptTokens = static_cast<int32_t>(req.prompt.size());
        pending_.push_back(std::move(it));
    };
    if (faulted_) return reject(faultKindName(faultKind_), "the engine context faulted");
    if (req.prompt.empty()) return reject("invalid_request", "the prompt has no tokens");
    if (req.maxTokens < 1 && req.maxTokens != kUntilContextFull) {
        return reject("invalid_request", "max_tokens must be at least 1");
    }
    for (llama_token t : req.prompt) {
        if (t < 0 || t >= nVocab_) return reject("invalid_request", "token id " + std::to_string(t) + " out of vocabulary");
    }
    for (const auto & b : req.logitBias) {
        if (b.token < 0 || b.token >= nVocab_) {
            return reject("invalid_request",
                          "logit_bias: token id " + std::to_string(b.token) + " is not in the vocabulary (0.." +
                              std::to_string(nVocab_ - 1) + ")",
                          "logitBias");
        }
    }
    if (req.maxTokens == kUntilContextFull) {
        // Like llama-server: no limit given, the sequence may fill its context; only a
        // prompt that leaves no room for one generated token is refused.
        if (static_cast<int64_t>(req.prompt.size()) >= nCtxSeq_) {
            return reject("context_length_exceeded", "the prompt (" + std::to_string(req.prompt.size()) +
                                                         " tokens) does not fit the context of " +
                                                         std::to_string(nCtxSeq_) + " tokens");
        }
    } else if (static_cast<int64_t>(req.prompt.size()) + req.maxTokens > nCtxSeq_) {
        return reject("context_length_exceeded", "prompt (" + std::to_string(req.prompt.size()) + " tokens) + max_tokens (" +
                                                     std::to_string(req.maxTokens) + ") exceeds the context of " +
                                                     std::to_string(nCtxSeq_) + " tokens");
    }
    const auto sameId = [&](const std::unique_ptr<Sequence> & s) { return s && s->req.id == req.id; };
    if (std::any_of(queue_.begin(), queue_.end(), sameId) ||
        std::any_of(slots_.begin(), slots_.end(), [&](const Slot & s) { return sameId(s.seq); })) {
        return reject("invalid_request", "sequence id " + std::to_string(req.id) + " is already in use");
    }
    if (queue_.size() >= cfg_.maxQueued) return reject("overloaded", "the engine queue is full");
    if (!req.jsonSchema.empty()) {
        auto g = jsonSchemaToGrammar(req.jsonSchema);
        if (auto * err = std::get_if<GrammarError>(&g)) return reject("invalid_request", err->message, err->field);
        req.grammar = std::move(std::get<std::string>(g));
    }
    std::vector<llama_token> preserved;
    for (const auto & text : req.preservedTokens) {
        const auto ids = tokenize(vocab_, text, false, true);
        if (ids.size() == 1) preserved.push_back(ids[0]);
    }
    std::sort(preserved.begin(), preserved.end());
    preserved.erase(std::unique(preserved.begin(), preserved.end()), preserved.end());
    SamplerPtr grammar;
    if (!req.grammar.empty()) {
        auto g = req.grammarLazy || !req.grammarPrefill.empty() ? makeChatGrammarSampler(vocab_, req, preserved)
                                                                : makeGrammarSampler(vocab_, req.grammar);
        if (auto * err = std::get_if<GrammarError>(&g)) return reject("invalid_request", err->message, err->field);
        grammar = std::move(std::get<SamplerPtr>(g));
    }
    auto seq = std::make_unique<Sequence>(std::move(req), vocab_, ++order_, std::move(grammar));
    seq->preserved = std::move(preserved);
    queue_.push_back(std::move(seq));
}

bool Scheduler::redundant(size_t s) const {
    const std::vector<llama_token> & kv = slots_[s].kv;
    for (size_t t = 0; t < slots_.size(); ++t) {
        if (t != s && commonPrefix(kv, slots_[t].kv) * 2 >= kv.size()) return true;
    }
    return false;
}

int Scheduler::victimSlot() const {
    // The free slot whose cache is worth least: an empty one (lowest id, which keeps
    // active slots packed); else the least recently used of those whose cache another
    // slot mostly holds as well (a second copy of a system prompt goes before the only
    // copy of another); else the least recently used.
    int victim = -1;
    bool victimRedundant = false;
    for (size_t s = 0; s < slots_.size(); ++s) {
        const Slot & slot = slots_[s];
        if (slot.seq) continue;
        if (slot.kv.empty()) return static_cast<int>(s);
        const bool r = redundant(s);
        if (victim < 0 || (r && !victimRedundant) ||
            (r == victimRedundant && slot.lastUsed < slots_[static_cast<size_t>(victim)].lastUsed)) {
            victim = static_cast<int>(s);
            victimRedundant = r;
        }
    }
    return victim;
}

void Scheduler::admit() {
    while (!queue_.empty()) {
        Sequence & seq = *queue_.front();
        const std::vector<llama_token> & prompt = seq.req.prompt;
        int best = -1;
        size_t bestLcp = 0;
        int source = -1;  // the slot, busy or free, holding the longest prefix of the prompt
        size_t sourceLcp = 0;
        size_t pendingLcp = 0;  // the longest prefix a running prefill is about to hold
        for (size_t s = 0; s < slots_.size(); ++s) {
            const Slot & slot = slots_[s];
            const size_t lcp = commonPrefix(slot.kv, prompt);
            if (lcp > sourceLcp) {
                source = static_cast<int>(s);
                sourceLcp = lcp;
            }
            if (slot.seq && slot.seq->prefilling() && (paused_.empty() || paused_.count(slot.seq->req.id) == 0)) {
                pendingLcp = std::max(pendingLcp, commonPrefix(slot.seq->req.prompt, prompt));
            }
            if (slot.seq) continue;
            // A cache is continued when it holds a useful share of the prompt (at least
            // 1/kReuseShare of it, as llama-server's slot similarity), or when continuing it
            // loses nothing. A short accidental match ("Once upon a") does not count: taking
            // that slot would evict a long cache that another request will want.
            const bool reuse = lcp > 0 && (lcp == slot.kv.size() || lcp * kReuseShare >= prompt.size());
            if (reuse && (best < 0 || lcp > bestLcp || (lcp == bestLcp && slot.lastUsed < slots_[static_cast<size_t>(best)].lastUsed))) {
                best = static_cast<int>(s);
                bestLcp = lcp;
            }
        }
        if (best < 0) {
            best = victimSlot();
            if (best < 0) return;  // every slot is busy
            bestLcp = commonPrefix(slots_[static_cast<size_t>(best)].kv, prompt);
        }
        // The host-memory prompt cache: a saved state is worth restoring when it shares a
        // longer prefix than any slot (the chosen one, or one it could copy) by a tenth of
        // the prompt or more, the same rule as prefix sharing.
        const size_t resident = std::max(bestLcp, shareKv_ ? sourceLcp : 0);
        const auto worthRestoring = [&](const std::optional<PromptCache::Match> & m) {
            return m && m->prefix > resident && (m->prefix - resident) * kReuseShare >= prompt.size();
        };
        std::optional<PromptCache::Match> saved;
        if (cache_) {
            saved = cache_->best(prompt);
            if (!worthRestoring(saved)) saved.reset();
        }
        const size_t reachable = std::max({sourceLcp, bestLcp, saved ? saved->prefix : 0});
        // A sequence still prefilling the same prefix (a burst of one system prompt) holds it
        // within a step or a few: the request waits for it (and the queue behind it, in
        // order) and then starts from a copy, instead of decoding the same tokens beside it.
        // It never waits on a paused sequence, whose prefill does not advance, nor to save a
        // few tokens only (kMinDeferTokens).
        if (shareKv_ && pendingLcp >= reachable + kMinDeferTokens && (pendingLcp - reachable) * kReuseShare >= prompt.size()) {
            ++stats_.admissionsDeferred;
            return;
        }
        bool restored = false;
        bool replaced = false;  // the slot's previous cache was already saved, or is still held elsewhere
        if (saved) {
            // Into the free slot whose cache is worth least, saved first when worth keeping
            // (the match made most recently used first, so that saving evicts others); then
            // the best match again, since saving may have replaced or evicted entries.
            cache_->touch(saved->entry);
            best = victimSlot();
            preserve(best, 0);
            saved = cache_->best(prompt);
            replaced = true;
            if (worthRestoring(saved) && restore(best, saved->entry)) {
                bestLcp = saved->prefix;
                restored = true;
            } else {
                bestLcp = commonPrefix(slots_[static_cast<size_t>(best)].kv, prompt);
            }
        }
        // Prefix sharing: when another slot (typically a busy one running the same system
        // prompt) holds a useful prefix longer than the chosen slot's by a tenth of the
        // prompt or more, its cells are copied into the chosen slot instead of decoding
        // them again (docs/benchmarks.md, "Engine slot choice and cache hits").
        if (shareKv_ && source >= 0 && source != best && sourceLcp > bestLcp &&
            (sourceLcp - bestLcp) * kReuseShare >= prompt.size()) {
            preserve(best, 0);
            replaced = true;
            llama_memory_seq_cp(mem_, source, best, -1, -1);
            Slot & dst = slots_[static_cast<size_t>(best)];
            dst.kv = slots_[static_cast<size_t>(source)].kv;
            bestLcp = sourceLcp;
            stats_.promptTokensShared += std::min(sourceLcp, prompt.size() - 1);
        }
        Slot & slot = slots_[static_cast<size_t>(best)];
        // At least the last prompt token is decoded again: its logits start the generation.
        size_t keep = std::min(bestLcp, prompt.size() - 1);
        if (keep < slot.kv.size()) {
            if (!replaced) preserve(best, keep);
            if (!llama_memory_seq_rm(mem_, best, static_cast<llama_pos>(keep), -1)) {
                llama_memory_seq_rm(mem_, best, -1, -1);
                keep = 0;
            }
            slot.kv.resize(keep);
        }
        seq.slot = best;
        seq.nPast = keep;
        seq.cached = static_cast<int32_t>(keep);
        slot.seq = std::move(queue_.front());  // owned by the slot: makeRoom() will not evict it
        queue_.pop_front();
        ++active_;
        // Unified cells: admit only what fits now (evicting idle caches if need be); the
        // rest waits for running sequences to finish instead of failing them or itself.
        const auto rest = static_cast<int32_t>(slot.seq->req.prompt.size() - keep);
        if (active_ > 1 && !makeRoom(rest)) {
            queue_.push_front(std::move(slot.seq));
            --active_;
            return;
        }
        stats_.promptTokensReused += keep;
        if (restored && keep > 0) {
            ++stats_.promptCacheHits;
            stats_.promptTokensRestored += keep;
        }
    }
}

void Scheduler::preserve(int s, size_t keep) {
    // Saves the slot's state before its cells from `keep` on are overwritten, unless what
    // goes is a small part of it (under a tenth) or the cache already holds all of it.
    const std::vector<llama_token> & kv = slots_[static_cast<size_t>(s)].kv;
    if (!cache_ || kv.empty() || keep >= kv.size() || (kv.size() - keep) * kReuseShare < kv.size() || cache_->covers(kv)) return;
    const size_t size = llama_state_seq_get_size(ctx_, s);
    if (size == 0 || !cache_->fits(size + kv.size() * sizeof(llama_token))) return;
    std::vector<uint8_t> state(size);
    if (llama_state_seq_get_data(ctx_, state.data(), state.size(), s) != size) return;
    if (cache_->put(kv, std::move(state))) ++stats_.promptCacheSaves;
}

bool Scheduler::restore(int s, PromptCache::Handle entry) {
    // The state replaces the slot's cells (llama.cpp empties the sequence first). A failed
    // or partial restore leaves the slot empty and drops the entry.
    Slot & slot = slots_[static_cast<size_t>(s)];
    const PromptCache::Entry & e = *entry;
    const size_t read = llama_state_seq_set_data(ctx_, e.state.data(), e.state.size(), s);
    if (read == 0 || llama_memory_seq_pos_max(mem_, s) + 1 != static_cast<llama_pos>(e.tokens.size())) {
        llama_memory_seq_rm(mem_, s, -1, -1);
        slot.kv.clear();
        cache_->erase(entry);
        return false;
    }
    slot.kv = e.tokens;
    cache_->touch(entry);
    return true;
}

}  // namespace inference
