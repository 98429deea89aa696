// The logger of llama.cpp's common library (common/log.h), as the chat layer compiled
// into the addon uses it: the LOG_* macros ask for the verbosity threshold, then call
// common_log_add. Only errors are formatted (to stderr, like the addon's own llama.cpp
// log filter by default); nothing starts the worker thread of common/log.cpp.
#include <cstdarg>
#include <cstdio>

#include "log.h"

int common_log_get_verbosity_thold(void) { return LOG_LEVEL_ERROR; }

struct common_log * common_log_main() { return nullptr; }

void common_log_add(struct common_log *, enum ggml_log_level level, const char * fmt, ...) {
    if (level != GGML_LOG_LEVEL_ERROR) return;
    std::fputs("[inference_native] ", stderr);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
}
