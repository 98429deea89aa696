// Constrained decoding: JSON schema -> GBNF (llama.cpp's converter) and the grammar
// sampler that a sequence's chain starts with. Both report a bad input as a value,
// never by throwing or aborting, so one request fails and the engine keeps serving.
#pragma once

#include <string>
#include <variant>

#include <vector>

#include "llama_handles.h"
#include "sequence.h"

namespace inference {

/** Why a grammar input was refused; `field` names the request field at fault. */
struct GrammarError {
    std::string field;  // "jsonSchema" | "grammar"
    std::string message;
};

/** GBNF for a JSON schema given as JSON text, or why it cannot be converted. */
std::variant<std::string, GrammarError> jsonSchemaToGrammar(const std::string & schemaJson);

/** The grammar sampler (root rule "root"), or why the GBNF does not parse. */
std::variant<SamplerPtr, GrammarError> makeGrammarSampler(const llama_vocab * vocab, const std::string & gbnf);

/**
 * The grammar sampler of a chat-template constrained request (tool calls), as
 * llama-server builds it: lazy ones apply from the first trigger on (a trigger word
 * that is one preserved token triggers on that token); a non-lazy one first accepts
 * the tokens of `req.grammarPrefill`.
 */
std::variant<SamplerPtr, GrammarError> makeChatGrammarSampler(const llama_vocab * vocab, const GenerateRequest & req,
                                                              const std::vector<llama_token> & preserved);

}  // namespace inference
