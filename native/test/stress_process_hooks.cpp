// Stress test of the process hooks (docs/flow-control.md, "Native races"): one
// thread opens and closes engines (some while their model loads, some once it is
// loaded; the engine and its event sink are freed right after close) while another
// reports aborts to every live engine, as the ggml abort hook does. Built by the
// targets inference_native_stress (plain), _tsan and _asan; under a sanitizer, a
// report that reaches an engine or sink being freed is a data race or a use after
// free, and the sanitizer fails the run.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "../engine.h"
#include "../process_hooks.h"

namespace {

class CountingSink : public inference::EventSink {
  public:
    std::atomic<int> faults{0};
    std::atomic<bool> loaded{false};
    void onProgress(float) override {}
    void onLoaded(std::optional<std::string>) override { loaded.store(true); }
    void onStep(inference::StepEvent && ev) override {
        if (ev.fault) faults.fetch_add(1);
    }
    void onEmbedding(inference::EmbeddingResult &&) override {}
};

}  // namespace

int main(int argc, char ** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [ROUNDS]\n", argv[0]);
        return 2;
    }
    const std::string model = argv[1];
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 60;
    inference::installProcessHooks();
    std::atomic<bool> done{false};
    std::atomic<long> reports{0};
    std::thread reporter([&] {
        while (!done.load()) {
            inference::reportFaultToEnginesForTest("stress: reported abort");
            reports.fetch_add(1);
        }
    });
    long delivered = 0;
    int loadedRounds = 0;
    for (int i = 0; i < rounds; ++i) {
        auto sink = std::make_unique<CountingSink>();
        inference::EngineOptions o;
        o.modelPath = model;
        o.contextSize = 256;
        o.maxSequences = 2;
        o.embeddings = false;
        auto engine = std::make_unique<inference::Engine>(o, *sink);
        if (i % 2 == 1) {
            while (!sink->loaded.load()) std::this_thread::yield();
            ++loadedRounds;
        }
        engine->close();
        engine.reset();
        delivered += sink->faults.load();
        sink.reset();
    }
    done.store(true);
    reporter.join();
    std::printf("rounds %d (%d closed once loaded), reports %ld, fault events delivered %ld\n", rounds, loadedRounds,
                reports.load(), delivered);
    if (delivered == 0) {
        std::fprintf(stderr, "no report reached a live engine: the run exercised nothing\n");
        return 1;
    }
    return 0;
}
