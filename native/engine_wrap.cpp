// See engine_wrap.h.
#include "engine_wrap.h"

#include <cmath>
#include <limits>

#include "chat_wrap.h"
#include "vocab_ops.h"

namespace inference {

namespace {

int32_t intOption(const Napi::Object & o, const char * key, int32_t fallback, int32_t min, int32_t max) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return fallback;
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || d < min || d > max) {
        throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer in [" + std::to_string(min) + ", " +
                                                 std::to_string(max) + "]");
    }
    return static_cast<int32_t>(d);
}

std::string stringOption(const Napi::Object & o, const char * key) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return {};
    if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

float floatOption(const Napi::Object & o, const char * key, float fallback) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return fallback;
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) throw Napi::RangeError::New(o.Env(), std::string(key) + " must be finite");
    return static_cast<float>(d);
}

std::vector<llama_token> tokensArg(const Napi::Value & v, const char * what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an Int32Array");
    }
    auto arr = v.As<Napi::Int32Array>();
    return std::vector<llama_token>(arr.Data(), arr.Data() + arr.ElementLength());
}

Napi::Int32Array toInt32Array(Napi::Env env, const std::vector<llama_token> & tokens) {
    auto out = Napi::Int32Array::New(env, tokens.size());
    std::copy(tokens.begin(), tokens.end(), out.Data());
    return out;
}

Napi::Error errorWithCode(Napi::Env env, const std::string & code, const std::string & message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    return e;
}

Napi::Object itemToJs(Napi::Env env, const StepItem & it) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, it.id));
    o.Set("text", Napi::String::New(env, it.text));
    o.Set("n", Napi::Number::New(env, it.n));
    if (it.done) o.Set("done", Napi::String::New(env, finishReasonName(*it.done)));
    if (it.error) {
        Napi::Object e = Napi::Object::New(env);
        e.Set("kind", Napi::String::New(env, it.error->kind));
        e.Set("message", Napi::String::New(env, it.error->message));
        if (!it.error->field.empty()) e.Set("field", Napi::String::New(env, it.error->field));
        o.Set("error", e);
    }
    if (it.promptTokens) o.Set("promptTokens", Napi::Number::New(env, *it.promptTokens));
    if (it.cachedTokens) o.Set("cachedTokens", Napi::Number::New(env, *it.cachedTokens));
    if (it.completionTokens) o.Set("completionTokens", Napi::Number::New(env, *it.completionTokens));
    if (!it.probs.empty()) o.Set("lp", probsToJs(env, it.probs));
    return o;
}

}  // namespace

Napi::Function EngineWrap::Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&EngineWrap::Ready>("ready"),
                           InstanceMethod<&EngineWrap::GetModelInfo>("modelInfo"),
                           InstanceMethod<&EngineWrap::Tokenize>("tokenize"),
                           InstanceMethod<&EngineWrap::Detokenize>("detokenize"),
                           InstanceMethod<&EngineWrap::ApplyChatTemplate>("applyChatTemplate"),
                           InstanceMethod<&EngineWrap::MakeChatTemplates>("chatTemplates"),
                           InstanceMethod<&EngineWrap::Submit>("submit"),
                           InstanceMethod<&EngineWrap::Cancel>("cancel"),
                           InstanceMethod<&EngineWrap::Pause>("pause"),
                           InstanceMethod<&EngineWrap::Resume>("resume"),
                           InstanceMethod<&EngineWrap::Embed>("embed"),
                           InstanceMethod<&EngineWrap::Stats>("stats"),
                           InstanceMethod<&EngineWrap::InjectFault>("injectFault"),
                           InstanceMethod<&EngineWrap::Close>("close"),
                       });
}

EngineWrap::EngineWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<EngineWrap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
        throw Napi::TypeError::New(env, "new Engine(options, onEvents): options must be an object, onEvents a function");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    EngineOptions opts;
    Napi::Value path = o.Get("modelPath");
    if (!path.IsString()) throw Napi::TypeError::New(env, "modelPath must be a string");
    opts.modelPath = path.As<Napi::String>().Utf8Value();
    opts.contextSize = intOption(o, "contextSize", 4096, 16, 1 << 24);
    opts.maxSequences = intOption(o, "maxSequences", 1, 1, 256);
    opts.gpuLayers = intOption(o, "gpuLayers", 0, -1, 100000);
    opts.threads = intOption(o, "threads", 1, 1, 1024);
    opts.batchTokens = intOption(o, "batchTokens", 512, 1, 1 << 20);
    Napi::Value emb = o.Get("embeddings");
    opts.embeddings = emb.IsUndefined() || emb.ToBoolean().Value();
    opts.kvUnified = o.Get("kvUnified").ToBoolean().Value();
    Napi::Value pc = o.Get("promptCacheBytes");
    if (!pc.IsUndefined()) {
        const double bytes = pc.IsNumber() ? pc.As<Napi::Number>().DoubleValue() : -1;
        if (!std::isfinite(bytes) || bytes < 0 || bytes != std::floor(bytes) || bytes > 9007199254740991.0) {
            throw Napi::RangeError::New(env, "promptCacheBytes must be an integer >= 0");
        }
        opts.promptCacheBytes = static_cast<size_t>(bytes);
    }
    Napi::Value gf = o.Get("gatherFloorUs");
    if (!gf.IsUndefined()) opts.gatherFloorUs = intOption(o, "gatherFloorUs", 0, 0, 10'000'000);
    Napi::Value fa = o.Get("flashAttention");
    if (fa.IsUndefined() || fa.IsNull()) {
        opts.flashAttention = opts.gpuLayers == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED : LLAMA_FLASH_ATTN_TYPE_AUTO;
    } else {
        const std::string s = fa.ToString().Utf8Value();
        if (s == "on") opts.flashAttention = LLAMA_FLASH_ATTN_TYPE_ENABLED;
        else if (s == "off") opts.flashAttention = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        else if (s == "auto") opts.flashAttention = LLAMA_FLASH_ATTN_TYPE_AUTO;
        else throw Napi::TypeError::New(env, "flashAttention must be 'auto' | 'on' | 'off'");
    }
    Napi::Value prog = o.Get("onProgress");
    if (prog.IsFunction()) onProgress_ = Napi::Persistent(prog.As<Napi::Function>());
    onEvents_ = Napi::Persistent(info[1].As<Napi::Function>());
    const int32_t eventQueue = intOption(o, "eventQueue", kDefaultEventQueue, 1, 1 << 16);

    tsfn_ = Tsfn::New(env, "inference_native.Engine", static_cast<size_t>(eventQueue), 1, this, [](Napi::Env, void *, EngineWrap * self) {
        self->Unref();  // queued events are all delivered: the object may be collected now
    });
    Ref();
    napi_add_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
    hookInstalled_ = true;
    engine_ = std::make_unique<Engine>(std::move(opts), *this);
}

EngineWrap::~EngineWrap() {
    if (engine_) engine_->close();
    if (hookInstalled_) napi_remove_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
}

void EngineWrap::CleanupHook(void * arg) {
    // Process exit without close(): stop the engine thread before the runtime unloads.
    auto * self = static_cast<EngineWrap *>(arg);
    self->hookInstalled_ = false;
    self->abortEvents();  // first: the engine thread may be waiting for room in the queue
    if (self->engine_) self->engine_->close();
}

// ---- engine thread -> event loop ------------------------------------------------------

void EngineWrap::post(NativeMessage && msg, bool mayWait) {
    auto owned = std::make_unique<NativeMessage>(std::move(msg));
    // Only the engine thread waits for room: the JS thread waiting on its own queue would
    // never wake, and the abort hook's reporter holds the engine registry's lock. Both
    // calls answer napi_closing once abortEvents() ran; the thread-safe function is only
    // freed by the event loop after close() returned, when the engine thread is joined
    // and the engine unregistered (nothing posts any more).
    const napi_status s = mayWait ? tsfn_.BlockingCall(owned.get()) : tsfn_.NonBlockingCall(owned.get());
    if (s == napi_ok) owned.release();  // CallJs takes ownership
}

void EngineWrap::onProgress(float fraction) { post(ProgressMessage{fraction}, true); }
void EngineWrap::onLoaded(std::optional<std::string> error) { post(LoadedMessage{std::move(error)}, true); }
void EngineWrap::onStep(StepEvent && ev) { post(std::move(ev), true); }
void EngineWrap::onEmbedding(EmbeddingResult && r) { post(std::move(r), true); }
void EngineWrap::onFaultReport(StepEvent && ev) { post(std::move(ev), false); }

void EngineWrap::CallJs(Napi::Env env, Napi::Function, EngineWrap * self, NativeMessage * raw) {
    std::unique_ptr<NativeMessage> msg(raw);
    if (env == nullptr || self == nullptr) return;  // torn down: drop
    Napi::HandleScope scope(env);
    try {
        self->deliver(env, *msg);
    } catch (const Napi::Error & e) {
        e.ThrowAsJavaScriptException();  // surfaces as an uncaught exception in JS
    }
}

void EngineWrap::deliver(Napi::Env env, NativeMessage & msg) {
    if (auto * p = std::get_if<ProgressMessage>(&msg)) {
        if (!onProgress_.IsEmpty() && state_ == LoadState::Loading) {
            onProgress_.Call({Napi::Number::New(env, p->fraction)});
        }
    } else if (auto * l = std::get_if<LoadedMessage>(&msg)) {
        if (state_ != LoadState::Loading) return;
        if (l->error) {
            state_ = LoadState::Failed;
            loadError_ = *l->error;
        } else {
            state_ = LoadState::Ready;
        }
        settleReady(env);
    } else if (auto * ev = std::get_if<StepEvent>(&msg)) {
        if (state_ == LoadState::Closed) return;
        Napi::Object o = Napi::Object::New(env);
        o.Set("step", Napi::Number::New(env, static_cast<double>(ev->step)));
        o.Set("seqs", Napi::Number::New(env, ev->seqs));
        o.Set("tokens", Napi::Number::New(env, ev->tokens));
        Napi::Array items = Napi::Array::New(env, ev->items.size());
        for (size_t i = 0; i < ev->items.size(); ++i) items.Set(static_cast<uint32_t>(i), itemToJs(env, ev->items[i]));
        o.Set("items", items);
        if (ev->fault) {
            Napi::Object f = Napi::Object::New(env);
            f.Set("kind", Napi::String::New(env, faultKindName(ev->fault->kind)));
            f.Set("message", Napi::String::New(env, ev->fault->message));
            o.Set("fault", f);
        }
        onEvents_.Call({o});
    } else if (auto * r = std::get_if<EmbeddingResult>(&msg)) {
        auto it = embedWaiters_.find(r->requestId);
        if (it == embedWaiters_.end()) return;
        Napi::Promise::Deferred d = it->second;
        embedWaiters_.erase(it);
        if (r->error) {
            d.Reject(errorWithCode(env, r->error->kind, r->error->message).Value());
        } else {
            auto out = Napi::Float32Array::New(env, r->vector.size());
            std::copy(r->vector.begin(), r->vector.end(), out.Data());
            d.Resolve(out);
        }
    }
}

void EngineWrap::settleReady(Napi::Env env) {
    for (auto & d : readyWaiters_) {
        if (state_ == LoadState::Ready) d.Resolve(env.Undefined());
        else d.Reject(errorWithCode(env, "load_failed", state_ == LoadState::Closed ? "engine closed" : loadError_).Value());
    }
    readyWaiters_.clear();
}

// ---- JS methods -------------------------------------------------------------------------

Engine & EngineWrap::loadedEngine(Napi::Env env) {
    if (state_ == LoadState::Closed || !engine_) throw errorWithCode(env, "closed", "engine closed");
    if (state_ != LoadState::Ready) throw errorWithCode(env, "not_ready", "the model is not loaded");
    return *engine_;
}

Napi::Value EngineWrap::Ready(const Napi::CallbackInfo & info) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    readyWaiters_.push_back(d);
    if (state_ != LoadState::Loading) settleReady(info.Env());
    return d.Promise();
}

Napi::Value EngineWrap::GetModelInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const inference::ModelInfo mi = loadedEngine(env).info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", Napi::String::New(env, mi.name));
    o.Set("chatTemplate", mi.chatTemplate ? Napi::Value(Napi::String::New(env, *mi.chatTemplate)) : env.Null());
    o.Set("nCtxTrain", Napi::Number::New(env, mi.nCtxTrain));
    o.Set("nVocab", Napi::Number::New(env, mi.nVocab));
    o.Set("nEmbd", Napi::Number::New(env, mi.nEmbd));
    o.Set("bos", Napi::Number::New(env, mi.bos));
    o.Set("eos", Napi::Number::New(env, mi.eos));
    o.Set("hasEncoder", Napi::Boolean::New(env, mi.hasEncoder));
    o.Set("contextSize", Napi::Number::New(env, mi.contextSize));
    o.Set("sequenceContext", Napi::Number::New(env, mi.sequenceContext));
    return o;
}

Napi::Value EngineWrap::Tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Engine & e = loadedEngine(env);
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "tokenize(text, addSpecial, parseSpecial)");
    const bool addSpecial = info.Length() < 2 || info[1].ToBoolean().Value();
    const bool parseSpecial = info.Length() >= 3 && info[2].ToBoolean().Value();
    return toInt32Array(env, tokenize(e.vocab(), info[0].As<Napi::String>().Utf8Value(), addSpecial, parseSpecial));
}

Napi::Value EngineWrap::Detokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Engine & e = loadedEngine(env);
    if (info.Length() < 1) throw Napi::TypeError::New(env, "detokenize(tokens: Int32Array)");
    const auto tokens = tokensArg(info[0], "tokens");
    const int32_t nVocab = llama_vocab_n_tokens(e.vocab());
    for (llama_token t : tokens) {
        if (t < 0 || t >= nVocab) throw Napi::RangeError::New(env, "token id out of vocabulary");
    }
    return Napi::String::New(env, detokenize(e.vocab(), tokens));
}

Napi::Value EngineWrap::ApplyChatTemplate(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Engine & e = loadedEngine(env);
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "applyChatTemplate(messages, addAssistant)");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<ChatMessage> messages;
    messages.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value v = arr.Get(i);
        if (!v.IsObject()) throw Napi::TypeError::New(env, "each message must be { role, content }");
        Napi::Object m = v.As<Napi::Object>();
        Napi::Value role = m.Get("role");
        Napi::Value content = m.Get("content");
        if (!role.IsString() || !content.IsString()) throw Napi::TypeError::New(env, "each message must be { role, content }");
        messages.push_back({role.As<Napi::String>().Utf8Value(), content.As<Napi::String>().Utf8Value()});
    }
    const bool addAssistant = info.Length() < 2 || info[1].ToBoolean().Value();
    auto out = applyChatTemplate(e.model(), messages, addAssistant);
    return out ? Napi::Value(Napi::String::New(env, *out)) : env.Null();
}

Napi::Value EngineWrap::MakeChatTemplates(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return ChatTemplatesWrap::Create(env, loadedEngine(env).model(), info.Length() > 0 ? info[0] : env.Undefined());
}

Napi::Value EngineWrap::Submit(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Engine & e = loadedEngine(env);
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "submit(request)");
    Napi::Object o = info[0].As<Napi::Object>();
    GenerateRequest r;
    Napi::Value id = o.Get("id");
    if (!id.IsNumber()) throw Napi::TypeError::New(env, "id must be a uint32");
    r.id = id.As<Napi::Number>().Uint32Value();
    r.prompt = tokensArg(o.Get("prompt"), "prompt");
    r.maxTokens = intOption(o, "maxTokens", kUntilContextFull, 1, std::numeric_limits<int32_t>::max());
    r.temperature = floatOption(o, "temperature", 1.0f);
    r.topP = floatOption(o, "topP", 1.0f);
    r.topK = intOption(o, "topK", 0, 0, std::numeric_limits<int32_t>::max());
    r.minP = floatOption(o, "minP", 0.0f);
    const double seed = o.Get("seed").IsNumber() ? o.Get("seed").As<Napi::Number>().DoubleValue() : -1;
    r.seed = seed < 0 || !std::isfinite(seed) ? LLAMA_DEFAULT_SEED : static_cast<uint32_t>(static_cast<uint64_t>(seed));
    r.presencePenalty = floatOption(o, "presencePenalty", 0.0f);
    r.frequencyPenalty = floatOption(o, "frequencyPenalty", 0.0f);
    Napi::Value stop = o.Get("stop");
    if (stop.IsArray()) {
        Napi::Array a = stop.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
            Napi::Value s = a.Get(i);
            if (!s.IsString()) throw Napi::TypeError::New(env, "stop must be an array of strings");
            r.stop.push_back(s.As<Napi::String>().Utf8Value());
        }
    } else if (!stop.IsUndefined() && !stop.IsNull()) {
        throw Napi::TypeError::New(env, "stop must be an array of strings");
    }
    r.grammar = stringOption(o, "grammar");
    r.jsonSchema = stringOption(o, "jsonSchema");
    if (!r.grammar.empty() && !r.jsonSchema.empty()) throw Napi::TypeError::New(env, "grammar and jsonSchema are exclusive");
    readChatSubmitOptions(o, r);
    gather(env, e);
    e.submit(std::move(r));
    return env.Undefined();
}

void EngineWrap::gather(Napi::Env env, Engine & e) {
    // Requests submitted in one turn of the event loop (a burst of HTTP requests read in one
    // poll phase, a loop of submits) start in the same step: an idle engine thread woken by the
    // first would otherwise decode it alone and the others one step later, their first tokens
    // waiting for its prefill (docs/benchmarks.md, "Requests that arrive together").
    if (gathering_) return;
    Napi::Value setImmediate = env.Global().Get("setImmediate");
    if (!setImmediate.IsFunction()) return;
    e.hold();
    gathering_ = true;
    gatherRef_ = Napi::Persistent(Value());
    auto release = Napi::Function::New(env, [this](const Napi::CallbackInfo &) {
        gathering_ = false;
        if (engine_) engine_->release();
        gatherRef_.Reset();
    });
    setImmediate.As<Napi::Function>().Call({release});
}

Napi::Value EngineWrap::Cancel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "cancel(id)");
    loadedEngine(env).cancel(info[0].As<Napi::Number>().Uint32Value());
    return env.Undefined();
}

Napi::Value EngineWrap::Pause(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "pause(id)");
    loadedEngine(env).setPaused(info[0].As<Napi::Number>().Uint32Value(), true);
    return env.Undefined();
}

Napi::Value EngineWrap::Resume(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "resume(id)");
    loadedEngine(env).setPaused(info[0].As<Napi::Number>().Uint32Value(), false);
    return env.Undefined();
}

Napi::Value EngineWrap::Embed(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Engine & e = loadedEngine(env);
    if (info.Length() < 1) throw Napi::TypeError::New(env, "embed(tokens: Int32Array)");
    auto tokens = tokensArg(info[0], "tokens");
    auto d = Napi::Promise::Deferred::New(env);
    const uint64_t rid = ++nextEmbed_;
    embedWaiters_.emplace(rid, d);
    e.embed(rid, std::move(tokens));
    return d.Promise();
}

Napi::Value EngineWrap::Stats(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const EngineStats s = loadedEngine(env).stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("activeSequences", Napi::Number::New(env, s.activeSequences));
    o.Set("queuedSequences", Napi::Number::New(env, s.queuedSequences));
    o.Set("steps", Napi::Number::New(env, static_cast<double>(s.steps)));
    o.Set("lastStepSequences", Napi::Number::New(env, s.lastStepSequences));
    o.Set("lastStepTokens", Napi::Number::New(env, s.lastStepTokens));
    o.Set("maxStepSequences", Napi::Number::New(env, s.maxStepSequences));
    o.Set("kvCellsUsed", Napi::Number::New(env, s.kvCellsUsed));
    o.Set("kvCellsTotal", Napi::Number::New(env, s.kvCellsTotal));
    o.Set("promptTokensReused", Napi::Number::New(env, static_cast<double>(s.promptTokensReused)));
    o.Set("promptTokensShared", Napi::Number::New(env, static_cast<double>(s.promptTokensShared)));
    o.Set("admissionsDeferred", Napi::Number::New(env, static_cast<double>(s.admissionsDeferred)));
    o.Set("promptCacheHits", Napi::Number::New(env, static_cast<double>(s.promptCacheHits)));
    o.Set("promptTokensRestored", Napi::Number::New(env, static_cast<double>(s.promptTokensRestored)));
    o.Set("promptCacheSaves", Napi::Number::New(env, static_cast<double>(s.promptCacheSaves)));
    o.Set("promptCacheEvictions", Napi::Number::New(env, static_cast<double>(s.promptCacheEvictions)));
    o.Set("promptCacheEntries", Napi::Number::New(env, s.promptCacheEntries));
    o.Set("promptCacheBytes", Napi::Number::New(env, static_cast<double>(s.promptCacheBytes)));
    o.Set("promptCacheCapacity", Napi::Number::New(env, static_cast<double>(s.promptCacheCapacity)));
    o.Set("pausedSequences", Napi::Number::New(env, s.pausedSequences));
    o.Set("totalDecodedTokens", Napi::Number::New(env, static_cast<double>(s.totalDecodedTokens)));
    o.Set("totalSampledTokens", Napi::Number::New(env, static_cast<double>(s.totalSampledTokens)));
    return o;
}

Napi::Value EngineWrap::InjectFault(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const std::string kind = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    FaultKind k;
    if (kind == "GgmlAbort") {
        loadedEngine(env).injectAbort();
        return env.Undefined();
    }
    if (kind == "ContextPoisoned") k = FaultKind::ContextPoisoned;
    else if (kind == "OutOfMemory") k = FaultKind::OutOfMemory;
    else if (kind == "Unrecoverable") k = FaultKind::Unrecoverable;
    else throw Napi::TypeError::New(env, "injectFault(kind): 'ContextPoisoned' | 'OutOfMemory' | 'Unrecoverable'");
    loadedEngine(env).injectFault(k);
    return env.Undefined();
}

void EngineWrap::abortEvents() {
    if (tsfnAborted_) return;
    tsfnAborted_ = true;
    tsfn_.Abort();
}

void EngineWrap::shutdown(Napi::Env env) {
    if (state_ == LoadState::Closed) return;
    abortEvents();                  // wakes an engine thread waiting for room in the queue
    if (engine_) engine_->close();  // joins the engine thread
    state_ = LoadState::Closed;
    settleReady(env);
    for (auto & [rid, d] : embedWaiters_) d.Reject(errorWithCode(env, "closed", "engine closed").Value());
    embedWaiters_.clear();
    if (hookInstalled_) {
        napi_remove_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
        hookInstalled_ = false;
    }
}

Napi::Value EngineWrap::Close(const Napi::CallbackInfo & info) {
    shutdown(info.Env());
    return info.Env().Undefined();
}

}  // namespace inference
