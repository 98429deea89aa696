// See scheduler.h for the policy; this file is its mechanics: the step loop (batch plan,
// decode, sampling), cancellation, faults and stats. Admission (submit, slot choice,
// prefix sharing, the host-memory prompt cache) is in scheduler_admission.cpp.
#include "scheduler.h"

#include <algorithm>
#include <string>

#include "logprobs.h"
#include "vocab_ops.h"

namespace inference {

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
