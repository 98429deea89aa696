// The JS-visible `Engine` class: converts JS arguments into plain C++ values for the
// engine, and engine events into JS objects on the event loop. This is the only file
// (with addon.cpp) that knows N-API types.
//
// Lifetime: the JS object is pinned (Ref) while its thread-safe function lives, so a
// queued event never reaches a collected object; close() (or the env cleanup hook at
// process exit) aborts the thread-safe function, then stops the engine thread.
//
// Back-pressure (docs/flow-control.md): the thread-safe function's queue is bounded
// (`eventQueue` events, default kDefaultEventQueue). The engine thread waits for room
// (a blocking call) when the event loop falls behind, so it decodes no further than
// that many steps ahead of JS. The abort hook's fault report (from any thread, under
// the engine registry's lock) never waits: it is dropped when the queue is full, and
// the process dies right after it either way (the parent reads the signal). Aborting the
// thread-safe function wakes a waiting engine thread (its call answers napi_closing),
// so close() can join it even while the queue is full.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <napi.h>

#include "engine.h"

namespace inference {

struct ProgressMessage {
    float fraction;
};
struct LoadedMessage {
    std::optional<std::string> error;
};
using NativeMessage = std::variant<ProgressMessage, LoadedMessage, StepEvent, EmbeddingResult>;

/** Events the engine thread may have queued for the event loop before it waits (option `eventQueue`). */
constexpr int32_t kDefaultEventQueue = 16;

class EngineWrap : public Napi::ObjectWrap<EngineWrap>, public EventSink {
  public:
    static Napi::Function Define(Napi::Env env);

    explicit EngineWrap(const Napi::CallbackInfo & info);
    ~EngineWrap() override;

    // EventSink (engine thread)
    void onProgress(float fraction) override;
    void onLoaded(std::optional<std::string> error) override;
    void onStep(StepEvent && ev) override;
    void onEmbedding(EmbeddingResult && r) override;
    // EventSink (any thread)
    void onFaultReport(StepEvent && ev) override;

  private:
    static void CallJs(Napi::Env env, Napi::Function, EngineWrap * self, NativeMessage * msg);
    using Tsfn = Napi::TypedThreadSafeFunction<EngineWrap, NativeMessage, &EngineWrap::CallJs>;
    static void CleanupHook(void * self);

    Napi::Value Ready(const Napi::CallbackInfo & info);
    Napi::Value GetModelInfo(const Napi::CallbackInfo & info);
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value Detokenize(const Napi::CallbackInfo & info);
    Napi::Value ApplyChatTemplate(const Napi::CallbackInfo & info);
    Napi::Value MakeChatTemplates(const Napi::CallbackInfo & info);
    Napi::Value Submit(const Napi::CallbackInfo & info);
    Napi::Value Cancel(const Napi::CallbackInfo & info);
    Napi::Value Pause(const Napi::CallbackInfo & info);
    Napi::Value Resume(const Napi::CallbackInfo & info);
    Napi::Value Embed(const Napi::CallbackInfo & info);
    Napi::Value Stats(const Napi::CallbackInfo & info);
    Napi::Value InjectFault(const Napi::CallbackInfo & info);
    Napi::Value Close(const Napi::CallbackInfo & info);

    void post(NativeMessage && msg, bool mayWait);
    void deliver(Napi::Env env, NativeMessage & msg);
    void settleReady(Napi::Env env);
    void shutdown(Napi::Env env);
    /** Closes the queue and wakes a waiting engine thread; events still queued are dropped. Idempotent. */
    void abortEvents();
    Engine & loadedEngine(Napi::Env env);
    /** Holds the engine until this turn of the event loop ends (setImmediate): see Engine::hold. */
    void gather(Napi::Env env, Engine & e);

    enum class LoadState { Loading, Ready, Failed, Closed };

    std::unique_ptr<Engine> engine_;
    Tsfn tsfn_;
    Napi::FunctionReference onEvents_;
    Napi::FunctionReference onProgress_;
    napi_env env_;
    LoadState state_ = LoadState::Loading;
    std::string loadError_;
    std::vector<Napi::Promise::Deferred> readyWaiters_;
    std::unordered_map<uint64_t, Napi::Promise::Deferred> embedWaiters_;
    uint64_t nextEmbed_ = 0;
    bool hookInstalled_ = false;
    bool tsfnAborted_ = false;
    Napi::ObjectReference gatherRef_;  // this object, kept alive while a release is scheduled
    bool gathering_ = false;
};

}  // namespace inference
