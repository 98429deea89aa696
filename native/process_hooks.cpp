// See process_hooks.h.
#include "process_hooks.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "engine.h"
#include "ggml.h"
#include "llama.h"

namespace inference {

namespace {

std::mutex & registryMutex() {
    static std::mutex mu;
    return mu;
}
std::vector<Engine *> & registry() {
    static std::vector<Engine *> engines;
    return engines;
}

// Written once by installProcessHooks, read by every thread that logs.
std::atomic<int> g_minLevel{GGML_LOG_LEVEL_ERROR};
// Whether the last non-continuation log line was shown (llama.cpp logs from its own threads too).
std::atomic<bool> g_lastShown{false};

/**
 * Reports to every live engine while holding the registry lock: an engine cannot
 * finish close() (which unregisters it first) while it is being reported to, so
 * neither the engine nor its event sink can be freed under the report.
 */
void reportToEngines(const std::string & message, bool dying) {
    std::lock_guard<std::mutex> lk(registryMutex());
    for (Engine * e : registry()) {
        if (dying) e->reportAbort(message);
        else e->postFault(message);
    }
}

void onGgmlAbort(const char * message) {
    std::fprintf(stderr, "[inference_native] ggml abort: %s\n", message);
    std::fflush(stderr);
    reportToEngines(message, true);
    // ggml_abort calls abort() when this returns.
}

void onLog(ggml_log_level level, const char * text, void *) {
    // GGML_LOG_LEVEL_CONT continues the previous line: follow the last decision.
    if (level == GGML_LOG_LEVEL_CONT) {
        if (g_lastShown.load(std::memory_order_relaxed)) std::fputs(text, stderr);
        return;
    }
    const bool shown = level >= g_minLevel.load(std::memory_order_relaxed) && level != GGML_LOG_LEVEL_NONE;
    g_lastShown.store(shown, std::memory_order_relaxed);
    if (shown) std::fputs(text, stderr);
}

}  // namespace

void installProcessHooks() {
    const char * lvl = std::getenv("INFERENCE_NATIVE_LOG");
    if (lvl != nullptr) {
        if (std::strcmp(lvl, "debug") == 0) g_minLevel.store(GGML_LOG_LEVEL_DEBUG);
        else if (std::strcmp(lvl, "info") == 0) g_minLevel.store(GGML_LOG_LEVEL_INFO);
        else if (std::strcmp(lvl, "warn") == 0) g_minLevel.store(GGML_LOG_LEVEL_WARN);
    }
    llama_log_set(onLog, nullptr);
    ggml_set_abort_callback(onGgmlAbort);
    llama_backend_init();
}

void registerEngine(Engine * engine) {
    std::lock_guard<std::mutex> lk(registryMutex());
    registry().push_back(engine);
}

void reportFaultToEnginesForTest(const std::string & message) { reportToEngines(message, false); }

void unregisterEngine(Engine * engine) {
    std::lock_guard<std::mutex> lk(registryMutex());
    auto & r = registry();
    r.erase(std::remove(r.begin(), r.end(), engine), r.end());
}

}  // namespace inference
