// Constrained decoding: JSON schema -> GBNF (llama.cpp's converter) and the grammar
// sampler that a sequence's chain starts with. Both report a bad input as a value,
// never by throwing or aborting, so one request fails and the engine keeps serving.
#pragma once

#include <string>
#include <variant>

#include "llama_handles.h"

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

}  // namespace inference
