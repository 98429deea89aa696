// Process-wide hooks into ggml/llama: the abort callback that turns a ggml abort into a
// ContextPoisoned fault event for every live engine (the process dies right after),
// and the log filter (llama.cpp logs only errors unless INFERENCE_NATIVE_LOG=warn|info|debug).
#pragma once

namespace inference {

class Engine;

void installProcessHooks();
void registerEngine(Engine * engine);
void unregisterEngine(Engine * engine);

}  // namespace inference
