// See chat_wrap.h.
#include "chat_wrap.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "text_stream.h"

namespace inference {

namespace {

Napi::FunctionReference & templatesCtor() {
    // One constructor per process (the engine host has one JS environment); never
    // destroyed, so no reference is deleted after its environment is gone.
    static auto * ref = new Napi::FunctionReference();
    return *ref;
}

Napi::Error codedError(Napi::Env env, const char * code, const std::string & message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    return e;
}

std::string str(const Napi::Object & o, const char * key, const std::string & fallback = {}) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return fallback;
    if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

bool flag(const Napi::Object & o, const char * key, bool fallback) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return fallback;
    if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
}

std::vector<std::string> strings(const Napi::Object & o, const char * key) {
    std::vector<std::string> out;
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value s = a.Get(i);
        if (!s.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
        out.push_back(s.As<Napi::String>().Utf8Value());
    }
    return out;
}

Napi::Array toArray(Napi::Env env, const std::vector<std::string> & v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, v[i]));
    return a;
}

const char * triggerTypeName(GrammarTrigger::Type t) {
    switch (t) {
        case GrammarTrigger::Type::Word: return "word";
        case GrammarTrigger::Type::Pattern: return "pattern";
        case GrammarTrigger::Type::PatternFull: return "pattern_full";
    }
    return "word";
}

Napi::Value bytesOf(Napi::Env env, const std::string & piece) {
    Napi::Array b = Napi::Array::New(env, piece.size());
    for (size_t i = 0; i < piece.size(); ++i) {
        b.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<unsigned char>(piece[i])));
    }
    return b;
}

/** The token's text as llama-server shows it: the piece cut to whole UTF-8 characters. */
Napi::String textOf(Napi::Env env, const std::string & piece) {
    return Napi::String::New(env, piece.substr(0, utf8CompletePrefix(piece)));
}

}  // namespace

// ---- ChatTemplates ---------------------------------------------------------------------

Napi::Function ChatTemplatesWrap::Define(Napi::Env env) {
    Napi::Function f = DefineClass(env, "ChatTemplates",
                                   {
                                       InstanceMethod<&ChatTemplatesWrap::Apply>("apply"),
                                       InstanceMethod<&ChatTemplatesWrap::Source>("source"),
                                       InstanceMethod<&ChatTemplatesWrap::SupportsTools>("supportsTools"),
                                   });
    templatesCtor() = Napi::Persistent(f);
    return f;
}

Napi::Value ChatTemplatesWrap::Create(Napi::Env env, const llama_model * model, const Napi::Value & options) {
    std::string source;
    bool jinja = true;
    if (options.IsObject()) {
        const Napi::Object o = options.As<Napi::Object>();
        source = str(o, "source");
        jinja = flag(o, "jinja", true);
    } else if (!options.IsUndefined() && !options.IsNull()) {
        throw Napi::TypeError::New(env, "chatTemplates(options?: { source?: string, jinja?: boolean })");
    }
    std::unique_ptr<ChatTemplates> t;
    try {
        t = std::make_unique<ChatTemplates>(model, source, jinja);
    } catch (const std::exception & e) {
        throw codedError(env, "chat_template", std::string("the chat template does not parse: ") + e.what());
    }
    auto * raw = t.release();
    Napi::Object obj = templatesCtor().New({Napi::External<ChatTemplates>::New(env, raw)});
    return obj;
}

ChatTemplatesWrap::ChatTemplatesWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ChatTemplatesWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
        throw Napi::TypeError::New(info.Env(), "ChatTemplates are made by engine.chatTemplates()");
    }
    t_.reset(info[0].As<Napi::External<ChatTemplates>>().Data());
}

Napi::Value ChatTemplatesWrap::Apply(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "apply(input)");
    const Napi::Object o = info[0].As<Napi::Object>();
    ChatInput in;
    in.messagesJson = str(o, "messages");
    in.toolsJson = str(o, "tools");
    in.toolChoice = str(o, "toolChoice", "auto");
    in.parallelToolCalls = flag(o, "parallelToolCalls", true);
    in.jsonSchema = str(o, "jsonSchema");
    in.templateKwargsJson = str(o, "templateKwargs");
    in.reasoningEffort = str(o, "reasoningEffort");
    ChatPrompt p;
    try {
        p = t_->apply(in);
    } catch (const std::exception & e) {
        throw codedError(env, "invalid_request", e.what());
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("prompt", Napi::String::New(env, p.prompt));
    r.Set("format", Napi::String::New(env, p.format));
    r.Set("generationPrompt", Napi::String::New(env, p.generationPrompt));
    r.Set("parser", Napi::String::New(env, p.parser));
    r.Set("grammar", Napi::String::New(env, p.grammar));
    r.Set("grammarLazy", Napi::Boolean::New(env, p.grammarLazy));
    Napi::Array triggers = Napi::Array::New(env, p.grammarTriggers.size());
    for (size_t i = 0; i < p.grammarTriggers.size(); ++i) {
        Napi::Object t = Napi::Object::New(env);
        t.Set("type", Napi::String::New(env, triggerTypeName(p.grammarTriggers[i].type)));
        t.Set("value", Napi::String::New(env, p.grammarTriggers[i].value));
        triggers.Set(static_cast<uint32_t>(i), t);
    }
    r.Set("grammarTriggers", triggers);
    r.Set("preservedTokens", toArray(env, p.preservedTokens));
    r.Set("additionalStops", toArray(env, p.additionalStops));
    r.Set("continuation", Napi::Boolean::New(env, p.continuation));
    return r;
}

Napi::Value ChatTemplatesWrap::Source(const Napi::CallbackInfo & info) { return Napi::String::New(info.Env(), t_->source()); }

Napi::Value ChatTemplatesWrap::SupportsTools(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), t_->supportsTools());
}

// ---- ChatParser ------------------------------------------------------------------------

Napi::Function ChatParserWrap::Define(Napi::Env env) {
    return DefineClass(env, "ChatParser",
                       {
                           InstanceMethod<&ChatParserWrap::Push>("push"),
                           InstanceMethod<&ChatParserWrap::Message>("message"),
                       });
}

ChatParserWrap::ChatParserWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ChatParserWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
        throw Napi::TypeError::New(env, "new ChatParser({ format, generationPrompt, parser, parseToolCalls, continuation })");
    }
    const Napi::Object o = info[0].As<Napi::Object>();
    try {
        p_ = std::make_unique<ChatOutputParser>(str(o, "format", "Content-only"), str(o, "generationPrompt"), str(o, "parser"),
                                                flag(o, "parseToolCalls", true), flag(o, "continuation", false));
    } catch (const std::exception & e) {
        throw codedError(env, "invalid_request", e.what());
    }
}

Napi::Value ChatParserWrap::Push(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
        throw Napi::TypeError::New(env, "push(text: string, partial: boolean)");
    }
    const auto deltas = p_->push(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Boolean>().Value());
    Napi::Array out = Napi::Array::New(env, deltas.size());
    for (size_t i = 0; i < deltas.size(); ++i) {
        const ChatDelta & d = deltas[i];
        Napi::Object o = Napi::Object::New(env);
        if (!d.content.empty()) o.Set("content", Napi::String::New(env, d.content));
        if (!d.reasoning.empty()) o.Set("reasoning", Napi::String::New(env, d.reasoning));
        if (d.toolIndex >= 0) {
            o.Set("toolIndex", Napi::Number::New(env, d.toolIndex));
            if (!d.tool.id.empty()) o.Set("id", Napi::String::New(env, d.tool.id));
            if (!d.tool.name.empty()) o.Set("name", Napi::String::New(env, d.tool.name));
            o.Set("arguments", Napi::String::New(env, d.tool.arguments));
        }
        out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
}

Napi::Value ChatParserWrap::Message(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const ChatMessageOut m = p_->message();
    Napi::Object o = Napi::Object::New(env);
    o.Set("content", Napi::String::New(env, m.content));
    o.Set("reasoning", Napi::String::New(env, m.reasoning));
    Napi::Array calls = Napi::Array::New(env, m.toolCalls.size());
    for (size_t i = 0; i < m.toolCalls.size(); ++i) {
        Napi::Object c = Napi::Object::New(env);
        c.Set("id", Napi::String::New(env, m.toolCalls[i].id));
        c.Set("name", Napi::String::New(env, m.toolCalls[i].name));
        c.Set("arguments", Napi::String::New(env, m.toolCalls[i].arguments));
        calls.Set(static_cast<uint32_t>(i), c);
    }
    o.Set("toolCalls", calls);
    return o;
}

// ---- submit fields and step items ------------------------------------------------------

void readChatSubmitOptions(const Napi::Object & o, GenerateRequest & r) {
    Napi::Env env = o.Env();
    r.grammarLazy = flag(o, "grammarLazy", false);
    r.grammarPrefill = str(o, "grammarPrefill");
    r.preservedTokens = strings(o, "preservedTokens");
    Napi::Value trig = o.Get("grammarTriggers");
    if (trig.IsArray()) {
        Napi::Array a = trig.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
            Napi::Value v = a.Get(i);
            if (!v.IsObject()) throw Napi::TypeError::New(env, "grammarTriggers must be [{ type, value }]");
            const Napi::Object t = v.As<Napi::Object>();
            const std::string type = str(t, "type");
            GrammarTrigger g;
            if (type == "word") g.type = GrammarTrigger::Type::Word;
            else if (type == "pattern") g.type = GrammarTrigger::Type::Pattern;
            else if (type == "pattern_full") g.type = GrammarTrigger::Type::PatternFull;
            else throw Napi::TypeError::New(env, "grammarTriggers[].type must be 'word' | 'pattern' | 'pattern_full'");
            g.value = str(t, "value");
            r.grammarTriggers.push_back(std::move(g));
        }
    } else if (!trig.IsUndefined() && !trig.IsNull()) {
        throw Napi::TypeError::New(env, "grammarTriggers must be [{ type, value }]");
    }
    Napi::Value bias = o.Get("logitBias");
    if (bias.IsArray()) {
        // [[tokenId, bias], ...]; -Infinity bans the token. Ids are checked by the scheduler.
        Napi::Array a = bias.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
            Napi::Value e = a.Get(i);
            if (!e.IsArray() || e.As<Napi::Array>().Length() != 2) {
                throw Napi::TypeError::New(env, "logitBias must be [[tokenId, bias], ...]");
            }
            Napi::Value id = e.As<Napi::Array>().Get(0u);
            Napi::Value b = e.As<Napi::Array>().Get(1u);
            if (!id.IsNumber() || !b.IsNumber()) throw Napi::TypeError::New(env, "logitBias must be [[tokenId, bias], ...]");
            const double tok = id.As<Napi::Number>().DoubleValue();
            const double v = b.As<Napi::Number>().DoubleValue();
            if (!std::isfinite(tok) || tok != std::floor(tok) || std::isnan(v) || v == std::numeric_limits<double>::infinity()) {
                throw Napi::RangeError::New(env, "logitBias: integer token ids, biases finite or -Infinity");
            }
            const double clamped = std::max(tok, static_cast<double>(std::numeric_limits<int32_t>::min()));
            r.logitBias.push_back({static_cast<llama_token>(std::min(clamped, static_cast<double>(std::numeric_limits<int32_t>::max()))),
                                   static_cast<float>(v)});
        }
    } else if (!bias.IsUndefined() && !bias.IsNull()) {
        throw Napi::TypeError::New(env, "logitBias must be [[tokenId, bias], ...]");
    }
    Napi::Value lp = o.Get("logprobs");
    if (!lp.IsUndefined() && !lp.IsNull()) {
        if (!lp.IsNumber()) throw Napi::TypeError::New(env, "logprobs must be a number");
        const double n = lp.As<Napi::Number>().DoubleValue();
        if (!std::isfinite(n) || n != std::floor(n) || n < 0 || n > 20) {
            throw Napi::RangeError::New(env, "logprobs must be an integer in [0, 20]");
        }
        r.nProbs = static_cast<int32_t>(n);
    }
}

Napi::Array probsToJs(Napi::Env env, const std::vector<TokenProb> & probs) {
    Napi::Array out = Napi::Array::New(env, probs.size());
    for (size_t i = 0; i < probs.size(); ++i) {
        const TokenProb & p = probs[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", Napi::Number::New(env, p.id));
        o.Set("t", textOf(env, p.piece));
        o.Set("b", bytesOf(env, p.piece));
        o.Set("lp", Napi::Number::New(env, p.logprob));
        Napi::Array top = Napi::Array::New(env, p.top.size());
        for (size_t j = 0; j < p.top.size(); ++j) {
            Napi::Object t = Napi::Object::New(env);
            t.Set("id", Napi::Number::New(env, p.top[j].id));
            t.Set("t", textOf(env, p.top[j].piece));
            t.Set("b", bytesOf(env, p.top[j].piece));
            t.Set("lp", Napi::Number::New(env, p.top[j].logprob));
            top.Set(static_cast<uint32_t>(j), t);
        }
        o.Set("top", top);
        out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
}

Napi::Value BuiltinChatTemplatesJs(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const int32_t n = llama_chat_builtin_templates(nullptr, 0);
    std::vector<const char *> names(static_cast<size_t>(std::max(n, 0)));
    llama_chat_builtin_templates(names.data(), names.size());
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
    return out;
}

}  // namespace inference
