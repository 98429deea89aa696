// See grammar.h.
#include "grammar.h"

#include <exception>

#include "json-schema-to-grammar.h"

namespace inference {

std::variant<std::string, GrammarError> jsonSchemaToGrammar(const std::string & schemaJson) {
    try {
        const common_json schema = common_json::parse(schemaJson);
        if (!schema.is_object()) return GrammarError{"jsonSchema", "the JSON schema must be an object"};
        return json_schema_to_grammar(schema, /*force_gbnf=*/true);
    } catch (const std::exception & e) {
        return GrammarError{"jsonSchema", e.what()};
    }
}

std::variant<SamplerPtr, GrammarError> makeGrammarSampler(const llama_vocab * vocab, const std::string & gbnf) {
    // llama.cpp reports a parse error (or a left-recursive rule) as nullptr; its log says where.
    try {
        SamplerPtr s(llama_sampler_init_grammar(vocab, gbnf.c_str(), "root"));
        if (s) return s;
    } catch (const std::exception &) {
    }
    return GrammarError{"grammar", "the grammar does not parse (GBNF with a 'root' rule expected)"};
}

}  // namespace inference
