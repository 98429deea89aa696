// The JS-visible chat objects and the conversions of the generation fields that the
// chat layer adds (constrained tool-call decoding, logit bias, log-probabilities):
//  - `ChatTemplates` (made by engine.chatTemplates(): it needs the loaded model) renders
//    a conversation and returns how to constrain and parse the output;
//  - `ChatParser` (new addon.ChatParser(...)) turns generated text into content,
//    reasoning and tool-call deltas.
// Only N-API conversions here; the logic is in chat_templates.cpp.
#pragma once

#include <memory>
#include <vector>

#include <napi.h>

#include "chat_templates.h"
#include "events.h"
#include "sequence.h"

namespace inference {

class ChatTemplatesWrap : public Napi::ObjectWrap<ChatTemplatesWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    /** A new JS ChatTemplates over the model; throws a JS Error (code 'chat_template') if it cannot be made. */
    static Napi::Value Create(Napi::Env env, const llama_model * model, const Napi::Value & options);

    explicit ChatTemplatesWrap(const Napi::CallbackInfo & info);

  private:
    Napi::Value Apply(const Napi::CallbackInfo & info);
    Napi::Value Source(const Napi::CallbackInfo & info);
    Napi::Value SupportsTools(const Napi::CallbackInfo & info);

    std::unique_ptr<ChatTemplates> t_;
};

class ChatParserWrap : public Napi::ObjectWrap<ChatParserWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit ChatParserWrap(const Napi::CallbackInfo & info);

  private:
    Napi::Value Push(const Napi::CallbackInfo & info);
    Napi::Value Message(const Napi::CallbackInfo & info);

    std::unique_ptr<ChatOutputParser> p_;
};

/** Reads the submit fields of chat-constrained decoding, logit bias and logprobs into `r`. */
void readChatSubmitOptions(const Napi::Object & o, GenerateRequest & r);

/** A step item's log-probabilities as JS: [{ id, t, b, lp, top: [{ id, t, b, lp }] }]. */
Napi::Array probsToJs(Napi::Env env, const std::vector<TokenProb> & probs);

/** llama.cpp's built-in template names (engine.chatTemplate may name one). */
Napi::Value BuiltinChatTemplatesJs(const Napi::CallbackInfo & info);

}  // namespace inference
