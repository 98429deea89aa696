// Stress test of the host-memory prompt cache (docs/architecture.md, "Host-memory prompt
// cache"): an engine with a cache far smaller than its traffic runs rounds of requests
// that cycle over more prompts than it has slots, with some cancelled mid-way, so that
// saves, restores, replacements and evictions all happen many times. Built by the targets
// inference_native_cache_stress (plain) and _asan; under the sanitizer a state copied
// past its buffer or an entry used after its eviction fails the run. It also fails when
// the cache was not exercised or held more than its bound.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../engine.h"
#include "../process_hooks.h"

namespace {

class WaitingSink : public inference::EventSink {
  public:
    void onProgress(float) override {}
    void onLoaded(std::optional<std::string> error) override {
        std::lock_guard<std::mutex> lk(mu_);
        loaded_ = true;
        failed_ = error.has_value();
        cv_.notify_all();
    }
    void onStep(inference::StepEvent && ev) override {
        std::lock_guard<std::mutex> lk(mu_);
        for (const auto & item : ev.items) {
            if (item.done || item.error) finished_.insert(item.id);
        }
        if (ev.fault) fault_ = true;
        cv_.notify_all();
    }
    void onEmbedding(inference::EmbeddingResult &&) override {}

    bool waitLoaded() {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return loaded_; });
        return !failed_;
    }
    /** Waits until every id has ended; false on an engine fault. */
    bool waitAll(const std::vector<uint32_t> & ids) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] {
            if (fault_) return true;
            for (uint32_t id : ids) {
                if (finished_.count(id) == 0) return false;
            }
            return true;
        });
        return !fault_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool loaded_ = false;
    bool failed_ = false;
    bool fault_ = false;
    std::set<uint32_t> finished_;
};

}  // namespace

int main(int argc, char ** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [ROUNDS]\n", argv[0]);
        return 2;
    }
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 60;
    inference::installProcessHooks();  // the addon's log filter and abort hook
    WaitingSink sink;
    inference::EngineOptions o;
    o.modelPath = argv[1];
    o.contextSize = 1024;
    o.maxSequences = 2;
    o.embeddings = false;
    o.promptCacheBytes = 192 * 1024;  // a few states of stories260K's prompts below
    inference::Engine engine(o, sink);
    if (!sink.waitLoaded()) {
        std::fprintf(stderr, "the model did not load\n");
        return 2;
    }
    // 7 prompts of 20 to 140 tokens over 2 slots; some continue another (a longer prefix).
    std::vector<std::vector<llama_token>> prompts;
    uint32_t x = 12345;
    for (int p = 0; p < 7; ++p) {
        std::vector<llama_token> t{1};
        const int n = 20 + 20 * p;
        for (int i = 0; i < n; ++i) {
            x = x * 1103515245u + 12345u;
            t.push_back(static_cast<llama_token>(10 + (x >> 8) % 490));
        }
        prompts.push_back(std::move(t));
    }
    prompts.push_back(prompts[3]);
    prompts.back().insert(prompts.back().end(), prompts[1].begin() + 1, prompts[1].end());
    uint32_t id = 0;
    size_t maxBytes = 0;
    for (int r = 0; r < rounds; ++r) {
        std::vector<uint32_t> ids;
        for (int k = 0; k < 3; ++k) {
            inference::GenerateRequest req;
            req.id = ++id;
            req.prompt = prompts[static_cast<size_t>(r * 3 + k) % prompts.size()];
            req.maxTokens = 2 + (r + k) % 6;
            req.temperature = 0.0f;
            engine.submit(std::move(req));
            ids.push_back(id);
        }
        if (r % 5 == 4) engine.cancel(ids[1]);
        if (!sink.waitAll(ids)) {
            std::fprintf(stderr, "the engine faulted in round %d\n", r);
            return 1;
        }
        maxBytes = std::max<size_t>(maxBytes, engine.stats().promptCacheBytes);
    }
    const inference::EngineStats s = engine.stats();
    engine.close();
    std::printf("rounds %d, requests %u, cache hits %llu (%llu tokens), saves %llu, evictions %llu, max bytes %zu of %zu\n",
                rounds, id, static_cast<unsigned long long>(s.promptCacheHits),
                static_cast<unsigned long long>(s.promptTokensRestored), static_cast<unsigned long long>(s.promptCacheSaves),
                static_cast<unsigned long long>(s.promptCacheEvictions), maxBytes, o.promptCacheBytes);
    if (s.promptCacheHits == 0 || s.promptCacheSaves == 0 || s.promptCacheEvictions == 0) {
        std::fprintf(stderr, "the prompt cache was not exercised (no hit, save or eviction)\n");
        return 1;
    }
    if (maxBytes > o.promptCacheBytes) {
        std::fprintf(stderr, "the prompt cache held more than its bound\n");
        return 1;
    }
    return 0;
}
