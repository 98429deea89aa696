// See process_hooks.h.
#include "process_hooks.h"

#include <algorithm>
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

ggml_log_level g_minLevel = GGML_LOG_LEVEL_ERROR;

void onGgmlAbort(const char * message) {
    std::fprintf(stderr, "[inference_native] ggml abort: %s\n", message);
    std::fflush(stderr);
    std::vector<Engine *> engines;
    {
        std::lock_guard<std::mutex> lk(registryMutex());
        engines = registry();
    }
    for (Engine * e : engines) e->reportAbort(message);
    // ggml_abort calls abort() when this returns.
}

void onLog(ggml_log_level level, const char * text, void *) {
    // GGML_LOG_LEVEL_CONT continues the previous line: follow the last decision.
    static bool lastShown = false;
    if (level == GGML_LOG_LEVEL_CONT) {
        if (lastShown) std::fputs(text, stderr);
        return;
    }
    lastShown = level >= g_minLevel && level != GGML_LOG_LEVEL_NONE;
    if (lastShown) std::fputs(text, stderr);
}

}  // namespace

void installProcessHooks() {
    const char * lvl = std::getenv("INFERENCE_NATIVE_LOG");
    if (lvl != nullptr) {
        if (std::strcmp(lvl, "debug") == 0) g_minLevel = GGML_LOG_LEVEL_DEBUG;
        else if (std::strcmp(lvl, "info") == 0) g_minLevel = GGML_LOG_LEVEL_INFO;
        else if (std::strcmp(lvl, "warn") == 0) g_minLevel = GGML_LOG_LEVEL_WARN;
    }
    llama_log_set(onLog, nullptr);
    ggml_set_abort_callback(onGgmlAbort);
    llama_backend_init();
}

void registerEngine(Engine * engine) {
    std::lock_guard<std::mutex> lk(registryMutex());
    registry().push_back(engine);
}

void unregisterEngine(Engine * engine) {
    std::lock_guard<std::mutex> lk(registryMutex());
    auto & r = registry();
    r.erase(std::remove(r.begin(), r.end(), engine), r.end());
}

}  // namespace inference
