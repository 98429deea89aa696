// The engine: one native thread that loads the model, then runs the scheduler and the
// embedder. The JS thread only posts commands into the inbox (never blocks on a
// decode) and reads snapshots; results leave through an EventSink, which the binding
// implements with a thread-safe function.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "embedder.h"
#include "events.h"
#include "llama_handles.h"
#include "scheduler.h"
#include "sequence.h"

namespace inference {

struct EngineOptions {
    std::string modelPath;
    int32_t contextSize = 4096;
    int32_t maxSequences = 1;
    int32_t gpuLayers = 0;
    int32_t threads = 1;
    int32_t batchTokens = 512;
    bool embeddings = true;
    bool kvUnified = false;  // see scheduler.h
    size_t promptCacheBytes = 0;  // host-memory prompt cache (prompt_cache.h); 0: off
    // Test hook: the least an idle engine waits for the rest of a burst (see Engine::gather); 0: adaptive only.
    int64_t gatherFloorUs = 0;
    // Flash attention: measured 2x SLOWER on CPU for stories260K, so the binding
    // defaults to off when nothing is offloaded (gpuLayers == 0) and to auto otherwise.
    llama_flash_attn_type flashAttention = LLAMA_FLASH_ATTN_TYPE_AUTO;
};

struct EmbeddingResult {
    uint64_t requestId = 0;
    std::vector<float> vector;
    std::optional<SequenceError> error;
};

/**
 * Called on the engine thread, which may wait there for the consumer to catch up
 * (back-pressure: the binding's queue is bounded) as long as close() can wake it;
 * except onFaultReport, which any thread may call and which must not wait.
 */
class EventSink {
  public:
    virtual ~EventSink() = default;
    virtual void onProgress(float fraction) = 0;
    virtual void onLoaded(std::optional<std::string> error) = 0;
    virtual void onStep(StepEvent && ev) = 0;
    virtual void onEmbedding(EmbeddingResult && r) = 0;
    /** A fault reported by the abort hook, from any thread, under the engine registry's lock. */
    virtual void onFaultReport(StepEvent && ev) { onStep(std::move(ev)); }
};

class Engine {
  public:
    Engine(EngineOptions opts, EventSink & sink);
    ~Engine();
    Engine(const Engine &) = delete;
    Engine & operator=(const Engine &) = delete;

    /** Stops the thread (aborting a load or a decode in progress) and frees the model. Idempotent. */
    void close();

    bool loaded() const { return loaded_.load(std::memory_order_acquire); }
    /** Valid once loaded() (the model is immutable from then on). */
    const llama_model * model() const { return model_.get(); }
    const llama_vocab * vocab() const { return llama_model_get_vocab(model_.get()); }
    ModelInfo info() const;

    void submit(GenerateRequest req);
    /**
     * Gathering (docs/benchmarks.md, "Requests that arrive together"): while held, an idle engine
     * thread does not start a step, so every request submitted before release() is admitted
     * to the same first step. A busy engine is not held: it takes what has arrived at its next step.
     */
    void hold();
    void release();
    void cancel(uint32_t id);
    /** Back-pressure: keeps the sequence out of the batch while paused (see Scheduler::setPaused). */
    void setPaused(uint32_t id, bool paused);
    void embed(uint64_t requestId, std::vector<llama_token> tokens);
    void injectFault(FaultKind kind);
    /** Test hook: the engine thread calls GGML_ABORT, exercising the abort -> fault path. */
    void injectAbort();
    EngineStats stats() const;

    /** From the ggml abort hook: report a ContextPoisoned fault before the process dies. */
    void reportAbort(const std::string & message);
    /** Posts a ContextPoisoned fault event (what reportAbort sends), nothing else. */
    void postFault(const std::string & message);
    bool isEngineThread() const { return std::this_thread::get_id() == threadId_.load(std::memory_order_acquire); }

  private:
    struct Inbox {
        std::vector<GenerateRequest> submits;
        std::vector<uint32_t> cancels;
        std::vector<std::pair<uint32_t, bool>> pauses;
        std::vector<std::pair<uint64_t, std::vector<llama_token>>> embeds;
        std::optional<FaultKind> fault;
        bool abort = false;
        bool empty() const { return submits.empty() && cancels.empty() && pauses.empty() && embeds.empty() && !fault && !abort; }
    };

    void run();
    /** An idle engine woken by a submit waits a little for the rest of its burst (engine.cpp). */
    void gather(std::unique_lock<std::mutex> & lk);
    bool load();
    void publishStats();

    const EngineOptions opts_;
    EventSink & sink_;

    ModelPtr model_;
    ContextPtr ctx_;
    std::unique_ptr<Scheduler> scheduler_;
    std::unique_ptr<Embedder> embedder_;
    int32_t nCtx_ = 0;
    int32_t nCtxSeq_ = 0;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    Inbox inbox_;
    bool held_ = false;  // see hold()
    // Engine thread only: a moving average of step durations; the most sequences a step held
    // since the engine was last idle, and that figure for the busy period that ended last
    // (the size of the burst their clients may send next).
    double stepUs_ = 0;
    size_t peak_ = 0;
    size_t lastBurst_ = 0;
    EngineStats stats_;
    bool closed_ = false;

    std::atomic<bool> stop_{false};
    std::atomic<bool> loaded_{false};
    std::atomic<bool> aborting_{false};
    float lastProgress_ = -1.0f;
    std::atomic<std::thread::id> threadId_{};  // set by the thread itself: thread_ is assigned after it starts
    std::thread thread_;
};

}  // namespace inference
