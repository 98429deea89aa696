// See scheduler.h for the policy; this file is its mechanics.
#include "scheduler.h"

#include <algorithm>
#include <string>
#include <variant>

#include "grammar.h"
#include "logprobs.h"
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

Scheduler::Scheduler(const llama_model * model, llama_context * ctx, SchedulerConfig cfg)
    : model_(model),
      vocab_(llama_model_get_vocab(model)),
      ctx_(ctx),
      mem_(llama_get_memory(ctx)),
      cfg_(cfg),
      nCtx_(static_cast<int32_t>(llama_n_ctx(ctx))),
      nCtxSeq_(static_cast<int32_t>(llama_n_ctx_seq(ctx))),
      nVocab_(llama_vocab_n_tokens(vocab_)),
      shareKv_(!cfg.unified && cfg.maxSequences > 1),
      cache_(!cfg.unified && cfg.promptCacheBytes > 0 ? std::make_unique<PromptCache>(cfg.promptCacheBytes) : nullptr),
      slots_(static_cast<size_t>(cfg.maxSequences)) {
    const auto cap = static_cast<size_t>(std::max(cfg.batchTokens, cfg.maxSequences));
    bTokens_.reserve(cap);
    bPos_.reserve(cap);
    bNSeq_.reserve(cap);
    bSeq_.reserve(cap);
    bSeqPtr_.reserve(cap);
    bLogits_.reserve(cap);
    stats_.kvCellsTotal = nCtx_;
}

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

void Scheduler::setPaused(uint32_t id, bool paused) {
    if (!paused) {
        paused_.erase(id);
        return;
    }
    // A pause can arrive after its sequence has ended (the client fell behind on its last
    // tokens); marking a dead id would keep it for ever, so only live sequences are marked.
    if (live(id)) paused_.insert(id);
}

bool Scheduler::live(uint32_t id) const {
    for (const auto & seq : queue_) {
        if (seq->req.id == id) return true;
    }
    for (const Slot & slot : slots_) {
        if (slot.seq && slot.seq->req.id == id) return true;
    }
    return false;
}

int32_t Scheduler::pausedActive() const {
    if (paused_.empty()) return 0;
    int32_t n = 0;
    for (const Slot & slot : slots_) {
        if (slot.seq && paused_.count(slot.seq->req.id) > 0) ++n;
    }
    return n;
}

void Scheduler::cancel(uint32_t id) {
    paused_.erase(id);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if ((*it)->req.id != id) continue;
        StepItem item;
        item.id = id;
        item.done = FinishReason::Cancelled;
        item.promptTokens = (*it)->promptTokens();
        item.cachedTokens = 0;
        item.completionTokens = 0;
        pending_.push_back(std::move(item));
        queue_.erase(it);
        return;
    }
    for (size_t s = 0; s < slots_.size(); ++s) {
        Sequence * seq = slots_[s].seq.get();
        if (seq == nullptr || seq->req.id != id) continue;
        StepItem item;
        item.id = id;
        item.done = FinishReason::Cancelled;
        item.promptTokens = seq->promptTokens();
        item.cachedTokens = seq->cached;
        item.completionTokens = seq->generated;
        pending_.push_back(std::move(item));
        releaseSlot(static_cast<int>(s), false);  // its KV cells are freed now
        return;
    }
}

void Scheduler::releaseSlot(int s, bool keepCache) {
    Slot & slot = slots_[static_cast<size_t>(s)];
    if (!keepCache) {
        llama_memory_seq_rm(mem_, s, -1, -1);
        slot.kv.clear();
    }
    if (slot.seq) --active_;
    slot.seq.reset();
    slot.lastUsed = ++clock_;
}

int32_t Scheduler::kvUsed() const {
    size_t used = 0;
    for (const auto & s : slots_) used += s.kv.size();
    return static_cast<int32_t>(used);
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

void Scheduler::plan() {
    bTokens_.clear();
    bPos_.clear();
    bNSeq_.clear();
    bSeq_.clear();
    bLogits_.clear();
    entries_.clear();
    auto add = [&](llama_token t, size_t pos, int slot, bool logits) {
        bTokens_.push_back(t);
        bPos_.push_back(static_cast<llama_pos>(pos));
        bNSeq_.push_back(1);
        bSeq_.push_back(slot);
        bLogits_.push_back(logits ? 1 : 0);
    };
    // Decoding sequences first: one token each, never starved by prefill.
    std::vector<Sequence *> prefill;
    for (size_t s = 0; s < slots_.size(); ++s) {
        Sequence * seq = slots_[s].seq.get();
        if (seq == nullptr) continue;
        if (!paused_.empty() && paused_.count(seq->req.id) > 0) continue;  // its client is behind
        if (seq->prefilling()) {
            prefill.push_back(seq);
            continue;
        }
        entries_.push_back({seq, static_cast<int32_t>(bTokens_.size()), 1, true});
        add(seq->last, slots_[s].kv.size(), static_cast<int>(s), true);
    }
    // Then prompt chunks, oldest request first, under the step's token budget.
    std::sort(prefill.begin(), prefill.end(), [](const Sequence * a, const Sequence * b) { return a->order < b->order; });
    auto budget = static_cast<int64_t>(cfg_.batchTokens) - static_cast<int64_t>(bTokens_.size());
    for (Sequence * seq : prefill) {
        if (budget <= 0) break;
        const size_t remaining = seq->req.prompt.size() - seq->nPast;
        const size_t n = std::min(remaining, static_cast<size_t>(budget));
        const bool completes = n == remaining;
        entries_.push_back({seq, static_cast<int32_t>(bTokens_.size()), static_cast<int32_t>(n), completes});
        for (size_t j = 0; j < n; ++j) {
            add(seq->req.prompt[seq->nPast + j], seq->nPast + j, seq->slot, completes && j + 1 == n);
        }
        budget -= static_cast<int64_t>(n);
    }
    // seq_id pointers last: bSeq_ no longer reallocates.
    bSeqPtr_.clear();
    for (auto & id : bSeq_) bSeqPtr_.push_back(&id);
}

bool Scheduler::makeRoom(int32_t needed) {
    // Split streams: a slot's own cells always fit its sequence (checked at submit).
    if (!cfg_.unified) return true;
    while (needed > nCtx_ - kvUsed()) {
        int victim = -1;
        for (size_t s = 0; s < slots_.size(); ++s) {
            const Slot & slot = slots_[s];
            if (slot.seq || slot.kv.empty()) continue;
            if (victim < 0 || slot.lastUsed < slots_[static_cast<size_t>(victim)].lastUsed) victim = static_cast<int>(s);
        }
        if (victim < 0) return false;
        llama_memory_seq_rm(mem_, victim, -1, -1);
        slots_[static_cast<size_t>(victim)].kv.clear();
    }
    return true;
}

void Scheduler::failSequence(Sequence & seq, const char * kind, const std::string & message) {
    paused_.erase(seq.req.id);
    StepItem item;
    item.id = seq.req.id;
    item.error = SequenceError{kind, message, {}};
    item.promptTokens = seq.promptTokens();
    item.cachedTokens = seq.cached;
    item.completionTokens = seq.generated;
    pending_.push_back(std::move(item));
    releaseSlot(seq.slot, false);
}

StepEvent Scheduler::fail(const Fault & fault) {
    faulted_ = true;
    faultKind_ = fault.kind;
    for (size_t s = 0; s < slots_.size(); ++s) {
        if (slots_[s].seq) failSequence(*slots_[s].seq, faultKindName(fault.kind), fault.message);
    }
    while (!queue_.empty()) {
        StepItem item;
        item.id = queue_.front()->req.id;
        item.error = SequenceError{faultKindName(fault.kind), fault.message, {}};
        pending_.push_back(std::move(item));
        queue_.pop_front();
    }
    StepEvent ev;
    ev.step = stats_.steps;
    ev.items = std::move(pending_);
    pending_.clear();
    ev.fault = fault;
    return ev;
}

void Scheduler::resync() {
    // After a failed decode llama.cpp may have dropped the cells of the failed ubatch:
    // make the mirrors match the memory again.
    for (size_t s = 0; s < slots_.size(); ++s) {
        Slot & slot = slots_[s];
        const auto present = static_cast<size_t>(llama_memory_seq_pos_max(mem_, static_cast<llama_seq_id>(s)) + 1);
        if (present < slot.kv.size()) slot.kv.resize(present);
        if (slot.seq && slot.seq->prefilling() && slot.seq->nPast > slot.kv.size()) slot.seq->nPast = slot.kv.size();
    }
}

Sequence * Scheduler::youngest(bool inBatchOnly) {
    Sequence * y = nullptr;
    auto consider = [&](Sequence * s) {
        if (y == nullptr || s->order > y->order) y = s;
    };
    if (inBatchOnly) {
        for (const auto & e : entries_) consider(e.seq);
    } else {
        for (auto & slot : slots_) {
            if (slot.seq) consider(slot.seq.get());
        }
    }
    return y;
}

StepEvent Scheduler::step() {
    if (faulted_) {
        StepEvent ev;
        ev.step = stats_.steps;
        ev.items = std::move(pending_);
        pending_.clear();
        return ev;
    }
    admit();
    int32_t rc = 0;
    if (active_ > 0) {
        plan();
        while (!makeRoom(static_cast<int32_t>(bTokens_.size()))) {
            failSequence(*youngest(false), "OutOfMemory", "the KV cache is full");
            plan();
        }
        if (!bTokens_.empty()) {
            if (injected_) {
                const FaultKind kind = *injected_;
                injected_.reset();
                if (kind != FaultKind::OutOfMemory) return fail(Fault{kind, "injected fault"});
                rc = 1;
            } else {
                llama_batch batch{};
                batch.n_tokens = static_cast<int32_t>(bTokens_.size());
                batch.token = bTokens_.data();
                batch.pos = bPos_.data();
                batch.n_seq_id = bNSeq_.data();
                batch.seq_id = bSeqPtr_.data();
                batch.logits = bLogits_.data();
                rc = llama_decode(ctx_, batch);
            }
        }
    }
    StepEvent ev;
    if (active_ > 0 && !bTokens_.empty()) {
        if (rc == 0) {
            // Commit: the batch's tokens are now in the KV cells.
            for (const auto & e : entries_) {
                Slot & slot = slots_[static_cast<size_t>(e.seq->slot)];
                slot.kv.insert(slot.kv.end(), bTokens_.begin() + e.first, bTokens_.begin() + e.first + e.count);
                if (e.seq->prefilling()) e.seq->nPast += static_cast<size_t>(e.count);
            }
            ++stats_.steps;
            stats_.lastStepSequences = static_cast<int32_t>(entries_.size());
            stats_.lastStepTokens = static_cast<int32_t>(bTokens_.size());
            stats_.maxStepSequences = std::max(stats_.maxStepSequences, stats_.lastStepSequences);
            stats_.totalDecodedTokens += bTokens_.size();
            ev.seqs = stats_.lastStepSequences;
            ev.tokens = stats_.lastStepTokens;
            sample(ev);
        } else if (rc == 1 || rc == -2) {
            // No KV slot (1) or no memory for the compute buffers (-2): the youngest
            // sequence of the batch fails, the context and the others carry on.
            resync();
            failSequence(*youngest(true), "OutOfMemory",
                         rc == 1 ? "the KV cache is full" : "out of memory while decoding");
        } else if (rc == 2) {
            resync();  // aborted because the engine is closing
        } else if (rc == -1) {
            return fail(Fault{FaultKind::Unrecoverable, "llama_decode rejected the batch"});
        } else {
            return fail(Fault{FaultKind::ContextPoisoned, "llama_decode failed (" + std::to_string(rc) + ")"});
        }
    }
    ev.step = stats_.steps;
    // Errors and cancellations first, then this step's tokens.
    pending_.insert(pending_.end(), std::make_move_iterator(ev.items.begin()), std::make_move_iterator(ev.items.end()));
    ev.items = std::move(pending_);
    pending_.clear();
    return ev;
}

void Scheduler::sample(StepEvent & ev) {
    for (const auto & e : entries_) {
        if (!e.output) continue;
        Sequence & seq = *e.seq;
        const int32_t idx = e.first + e.count - 1;
        const llama_token tok = llama_sampler_sample(seq.sampler.get(), ctx_, idx);
        ++seq.generated;
        ++stats_.totalSampledTokens;
        StepItem item;
        item.id = seq.req.id;
        item.n = 1;
        if (!seq.announced) {
            item.promptTokens = seq.promptTokens();
            item.cachedTokens = seq.cached;
            seq.announced = true;
        }
        if (llama_vocab_is_eog(vocab_, tok)) {
            item.text = seq.text.flush();
            finish(seq, item, FinishReason::Stop);
        } else {
            seq.last = tok;
            std::string piece = tokenPiece(vocab_, tok, seq.isPreserved(tok));
            if (seq.req.nProbs >= 0) item.probs.push_back(tokenProbs(ctx_, vocab_, idx, tok, piece, seq.req.nProbs));
            TextStream::Output out = seq.text.push(piece);
            item.text = std::move(out.text);
            if (out.stopped) {
                finish(seq, item, FinishReason::Stop);
            } else if (seq.generated >= seq.req.maxTokens && seq.req.maxTokens != kUntilContextFull) {
                item.text += seq.text.flush();
                finish(seq, item, FinishReason::Length);
            } else if (seq.promptTokens() + seq.generated >= nCtxSeq_) {
                // The sampled token would need a cell past the sequence's context.
                item.text += seq.text.flush();
                finish(seq, item, FinishReason::Length);
            }
        }
        ev.items.push_back(std::move(item));
    }
}

void Scheduler::finish(Sequence & seq, StepItem & item, FinishReason reason) {
    paused_.erase(seq.req.id);
    item.done = reason;
    item.promptTokens = seq.promptTokens();
    item.cachedTokens = seq.cached;
    item.completionTokens = seq.generated;
    releaseSlot(seq.slot, true);  // the slot keeps prompt + output for prompt caching
}

EngineStats Scheduler::stats() const {
    EngineStats s = stats_;
    s.activeSequences = active_;
    s.queuedSequences = static_cast<int32_t>(queue_.size());
    s.kvCellsUsed = kvUsed();
    s.pausedSequences = static_cast<int32_t>(paused_.size());
    if (cache_) {
        s.promptCacheEvictions = cache_->evictions();
        s.promptCacheEntries = static_cast<int32_t>(cache_->size());
        s.promptCacheBytes = cache_->bytes();
        s.promptCacheCapacity = cache_->capacity();
    }
    return s;
}

}  // namespace inference
