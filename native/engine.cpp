// See engine.h. Everything that touches the llama_context happens on thread_.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "ggml.h"
#include "process_hooks.h"

namespace inference {

Engine::Engine(EngineOptions opts, EventSink & sink) : opts_(std::move(opts)), sink_(sink) {
    registerEngine(this);
    thread_ = std::thread([this] { run(); });
}

Engine::~Engine() { close(); }

void Engine::close() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (closed_) return;
        closed_ = true;
        stop_.store(true);
    }
    cv_.notify_all();
    unregisterEngine(this);
    if (aborting_.load()) {
        // The thread is inside ggml's abort hook and the process is about to die.
        thread_.detach();
        return;
    }
    if (thread_.joinable()) thread_.join();
    embedder_.reset();
    scheduler_.reset();
    ctx_.reset();
    loaded_.store(false, std::memory_order_release);
    model_.reset();
}

void Engine::submit(GenerateRequest req) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        inbox_.submits.push_back(std::move(req));
    }
    cv_.notify_one();
}

void Engine::hold() {
    std::lock_guard<std::mutex> lk(mu_);
    held_ = true;
}

void Engine::release() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        held_ = false;
    }
    cv_.notify_one();
}

void Engine::cancel(uint32_t id) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        inbox_.cancels.push_back(id);
    }
    cv_.notify_one();
}

void Engine::setPaused(uint32_t id, bool paused) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        inbox_.pauses.emplace_back(id, paused);
    }
    cv_.notify_one();
}

void Engine::embed(uint64_t requestId, std::vector<llama_token> tokens) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        inbox_.embeds.emplace_back(requestId, std::move(tokens));
    }
    cv_.notify_one();
}

void Engine::injectFault(FaultKind kind) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        inbox_.fault = kind;
    }
    cv_.notify_one();
}

void Engine::injectAbort() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        inbox_.abort = true;
    }
    cv_.notify_one();
}

EngineStats Engine::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
}

ModelInfo Engine::info() const {
    ModelInfo mi;
    const llama_model * m = model_.get();
    const llama_vocab * v = llama_model_get_vocab(m);
    char buf[256];
    if (llama_model_meta_val_str(m, "general.name", buf, sizeof buf) >= 0) mi.name = buf;
    if (const char * t = llama_model_chat_template(m, nullptr)) mi.chatTemplate = std::string(t);
    mi.nCtxTrain = llama_model_n_ctx_train(m);
    mi.nVocab = llama_vocab_n_tokens(v);
    mi.nEmbd = llama_model_n_embd(m);
    mi.bos = llama_vocab_bos(v);
    mi.eos = llama_vocab_eos(v);
    mi.hasEncoder = llama_model_has_encoder(m);
    mi.contextSize = nCtx_;
    mi.sequenceContext = nCtxSeq_;
    return mi;
}

bool Engine::load() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(opts_.modelPath, ec)) {
        sink_.onLoaded("model file not found: " + opts_.modelPath);
        return false;
    }
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = opts_.gpuLayers;
    mp.progress_callback = [](float p, void * self) {
        auto * e = static_cast<Engine *>(self);
        if (e->stop_.load()) return false;  // close() during load aborts it
        if (p >= 1.0f || p - e->lastProgress_ >= 0.01f) {
            e->lastProgress_ = p;
            e->sink_.onProgress(p);
        }
        return true;
    };
    mp.progress_callback_user_data = this;
    model_.reset(llama_model_load_from_file(opts_.modelPath.c_str(), mp));
    if (!model_) {
        sink_.onLoaded(stop_.load() ? std::string("model load aborted")
                                    : "failed to load model " + opts_.modelPath + " (not a valid GGUF model?)");
        return false;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(opts_.contextSize);
    cp.n_batch = static_cast<uint32_t>(std::max(opts_.batchTokens, opts_.maxSequences));
    cp.n_ubatch = cp.n_batch;  // one ubatch per step
    cp.n_seq_max = static_cast<uint32_t>(opts_.maxSequences);
    cp.n_threads = opts_.threads;
    cp.n_threads_batch = opts_.threads;
    cp.kv_unified = opts_.kvUnified;  // see scheduler.h
    cp.no_perf = true;
    cp.embeddings = false;
    cp.flash_attn_type = opts_.flashAttention;
    cp.abort_callback = [](void * self) { return static_cast<Engine *>(self)->stop_.load(); };
    cp.abort_callback_data = this;
    ctx_.reset(llama_init_from_model(model_.get(), cp));
    if (!ctx_) {
        sink_.onLoaded("failed to create a context of " + std::to_string(opts_.contextSize) +
                       " tokens (out of memory?)");
        return false;
    }
    nCtx_ = static_cast<int32_t>(llama_n_ctx(ctx_.get()));
    nCtxSeq_ = static_cast<int32_t>(llama_n_ctx_seq(ctx_.get()));
    SchedulerConfig sc;
    sc.maxSequences = opts_.maxSequences;
    sc.batchTokens = static_cast<int32_t>(cp.n_batch);
    sc.unified = opts_.kvUnified;
    sc.promptCacheBytes = opts_.promptCacheBytes;
    scheduler_ = std::make_unique<Scheduler>(model_.get(), ctx_.get(), sc);
    return true;
}

void Engine::publishStats() {
    EngineStats s = scheduler_->stats();
    std::lock_guard<std::mutex> lk(mu_);
    stats_ = s;
}

void Engine::run() {
    threadId_.store(std::this_thread::get_id(), std::memory_order_release);
    try {
        if (!load()) return;
    } catch (const std::exception & e) {
        sink_.onLoaded(std::string("model load failed: ") + e.what());
        return;
    }
    publishStats();
    loaded_.store(true, std::memory_order_release);
    sink_.onLoaded(std::nullopt);
    for (;;) {
        Inbox in;
        {
            std::unique_lock<std::mutex> lk(mu_);
            const bool idle = !scheduler_->hasWork();
            cv_.wait(lk, [&] { return stop_.load() || (!inbox_.empty() && !held_) || scheduler_->hasWork(); });
            if (stop_.load()) return;
            if (idle && !inbox_.submits.empty()) gather(lk);
            if (stop_.load()) return;
            std::swap(in, inbox_);
        }
        try {
            for (auto & r : in.submits) scheduler_->submit(std::move(r));
            for (const auto & [id, paused] : in.pauses) scheduler_->setPaused(id, paused);
            for (uint32_t id : in.cancels) scheduler_->cancel(id);
            if (in.fault) scheduler_->injectFault(*in.fault);
            if (in.abort) GGML_ABORT("injected abort");
            for (auto & [requestId, tokens] : in.embeds) {
                EmbeddingResult r;
                r.requestId = requestId;
                if (!opts_.embeddings) {
                    r.error = SequenceError{"invalid_request", "embeddings are disabled for this engine", {}};
                } else if (scheduler_->faulted()) {
                    r.error = SequenceError{"Unrecoverable", "the engine context faulted", {}};
                } else {
                    if (!embedder_) embedder_ = std::make_unique<Embedder>(model_.get(), opts_.contextSize, opts_.threads);
                    Embedder::Result er = embedder_->embed(tokens);
                    if (er.errorKind.empty()) r.vector = std::move(er.vector);
                    else r.error = SequenceError{er.errorKind, er.message, {}};
                }
                sink_.onEmbedding(std::move(r));
            }
            const auto t0 = std::chrono::steady_clock::now();
            StepEvent ev = scheduler_->step();
            const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
            if (ev.seqs > 0) stepUs_ = stepUs_ == 0 ? us : stepUs_ * 0.8 + us * 0.2;
            peak_ = std::max(peak_, static_cast<size_t>(std::max(ev.seqs, 0)));
            if (!scheduler_->hasWork()) {
                lastBurst_ = peak_;
                peak_ = 0;
            }
            publishStats();
            if (!ev.empty()) sink_.onStep(std::move(ev));
        } catch (const std::exception & e) {
            StepEvent ev = scheduler_->fail(Fault{FaultKind::Unrecoverable, e.what()});
            publishStats();
            sink_.onStep(std::move(ev));
        }
    }
}

// Requests that arrive together (docs/benchmarks.md): clients whose sequences ran together
// often send their next requests at once, and those requests reach the engine thread a
// little apart (separate reads of the host's event loop), so the first would start a step
// alone and the others wait for its whole prefill. An engine gone idle after running N
// sequences at once waits, when the first new request arrives, for up to N of them, at
// most a small share of what a step costs (kGatherShare, capped at kGatherCapUs): nothing
// for a model whose steps take microseconds, a few milliseconds for one whose prefill
// takes hundreds. After a lone stream (N = 1) the next request never waits.
namespace {
constexpr double kGatherShare = 0.02;
constexpr double kGatherCapUs = 20000;
constexpr double kGatherMinUs = 50;
}  // namespace

void Engine::gather(std::unique_lock<std::mutex> & lk) {
    const size_t burst = std::min(lastBurst_, static_cast<size_t>(opts_.maxSequences));
    const double windowUs = std::max(static_cast<double>(opts_.gatherFloorUs), std::min(kGatherCapUs, stepUs_ * kGatherShare));
    if (burst < 2 || inbox_.submits.size() >= burst || windowUs < kGatherMinUs) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<int64_t>(windowUs));
    cv_.wait_until(lk, until, [&] { return stop_.load() || inbox_.submits.size() >= burst; });
}

void Engine::postFault(const std::string & message) {
    StepEvent ev;
    ev.fault = Fault{FaultKind::ContextPoisoned, message};
    // Reported under the engine registry's lock (process_hooks.cpp): never wait there.
    sink_.onFaultReport(std::move(ev));
}

void Engine::reportAbort(const std::string & message) {
    aborting_.store(true);
    postFault(message);
    if (!isEngineThread()) return;  // the JS thread itself is aborting: nobody would read it
    // Give the event loop a moment to forward the fault before abort() kills the process.
    std::unique_lock<std::mutex> lk(mu_, std::try_to_lock);
    if (!lk.owns_lock()) return;
    cv_.wait_for(lk, std::chrono::seconds(3), [&] { return stop_.load(); });
}

}  // namespace inference
