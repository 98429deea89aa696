// Module entry of inference_native.node: installs the process hooks (ggml abort ->
// ContextPoisoned fault, log filter), and exports inventory() and the Engine class.
#include <napi.h>

#include "chat_wrap.h"
#include "engine_wrap.h"
#include "inventory.h"
#include "process_hooks.h"
#include "text_stream.h"

namespace inference {
namespace {

Napi::Value InventoryJs(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const Inventory inv = collectInventory();
    Napi::Object o = Napi::Object::New(env);
    o.Set("backend", Napi::String::New(env, inv.backend));
    Napi::Array gpus = Napi::Array::New(env, inv.gpus.size());
    for (size_t i = 0; i < inv.gpus.size(); ++i) {
        const GpuInfo & g = inv.gpus[i];
        Napi::Object j = Napi::Object::New(env);
        j.Set("id", Napi::Number::New(env, g.id));
        j.Set("name", Napi::String::New(env, g.name));
        j.Set("description", Napi::String::New(env, g.description));
        j.Set("totalMemory", Napi::Number::New(env, static_cast<double>(g.totalMemory)));
        j.Set("freeMemory", Napi::Number::New(env, static_cast<double>(g.freeMemory)));
        j.Set("computeCapability",
              g.computeCapability ? Napi::Value(Napi::String::New(env, *g.computeCapability)) : env.Null());
        gpus.Set(static_cast<uint32_t>(i), j);
    }
    o.Set("gpus", gpus);
    o.Set("cpuThreads", Napi::Number::New(env, inv.cpuThreads));
    o.Set("totalRam", Napi::Number::New(env, static_cast<double>(inv.totalRam)));
    o.Set("freeRam", Napi::Number::New(env, static_cast<double>(inv.freeRam)));
    return o;
}

// Test hook: runs byte pieces through a TextStream, so the UTF-8 and stop-string
// rules are tested without depending on what a model happens to generate.
// testing.textStream(pieces: Uint8Array[], stops: string[]) -> { chunks: string[], stopped, rest }
Napi::Value TextStreamProbe(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray()) {
        throw Napi::TypeError::New(env, "textStream(pieces: Uint8Array[], stops: string[])");
    }
    std::vector<std::string> stops;
    Napi::Array s = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < s.Length(); ++i) stops.push_back(s.Get(i).ToString().Utf8Value());
    TextStream stream(std::move(stops));
    Napi::Array pieces = info[0].As<Napi::Array>();
    Napi::Array chunks = Napi::Array::New(env);
    bool stopped = false;
    for (uint32_t i = 0; i < pieces.Length() && !stopped; ++i) {
        Napi::Value v = pieces.Get(i);
        if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "pieces must be Uint8Arrays");
        auto bytes = v.As<Napi::Uint8Array>();
        TextStream::Output out = stream.push(std::string(reinterpret_cast<const char *>(bytes.Data()), bytes.ElementLength()));
        chunks.Set(chunks.Length(), Napi::String::New(env, out.text));
        stopped = out.stopped;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("chunks", chunks);
    o.Set("stopped", Napi::Boolean::New(env, stopped));
    o.Set("rest", Napi::String::New(env, stopped ? std::string() : stream.flush()));
    return o;
}

}  // namespace
}  // namespace inference

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    using namespace inference;
    installProcessHooks();
    exports.Set("inventory", Napi::Function::New(env, InventoryJs, "inventory"));
    exports.Set("Engine", EngineWrap::Define(env));
    exports.Set("ChatTemplates", ChatTemplatesWrap::Define(env));
    exports.Set("ChatParser", ChatParserWrap::Define(env));
    exports.Set("builtinChatTemplates", Napi::Function::New(env, BuiltinChatTemplatesJs, "builtinChatTemplates"));
    exports.Set("systemInfo", Napi::String::New(env, llama_print_system_info()));
    Napi::Object testing = Napi::Object::New(env);
    testing.Set("textStream", Napi::Function::New(env, TextStreamProbe, "textStream"));
    exports.Set("testing", testing);
    return exports;
}

NODE_API_MODULE(inference_native, Init)
