// Process-wide hooks into ggml/llama: the abort callback that turns a ggml abort into a
// ContextPoisoned fault event for every live engine (the process dies right after),
// and the log filter (llama.cpp logs only errors unless INFERENCE_NATIVE_LOG=warn|info|debug).
// Invariant: an engine is reported to only while it is registered, under the
// registry lock; close() unregisters it before anything it owns is freed.
#pragma once

#include <string>

namespace inference {

class Engine;

void installProcessHooks();
void registerEngine(Engine * engine);
/** Blocks while a report to the engines is in progress; no report reaches `engine` afterwards. */
void unregisterEngine(Engine * engine);
/**
 * What the abort hook does to the live engines (a ContextPoisoned fault event to
 * each), without marking them as dying and without the process ending: for the
 * stress test of engines opened and closed while aborts are reported.
 */
void reportFaultToEnginesForTest(const std::string & message);

}  // namespace inference
