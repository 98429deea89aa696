// See grammar.h.
#include "grammar.h"

#include <algorithm>
#include <cctype>
#include <exception>

#include "common.h"
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

std::variant<SamplerPtr, GrammarError> makeChatGrammarSampler(const llama_vocab * vocab, const GenerateRequest & req,
                                                              const std::vector<llama_token> & preserved) {
    std::vector<std::string> patterns;
    std::vector<llama_token> tokens;
    for (const auto & t : req.grammarTriggers) {
        switch (t.type) {
            case GrammarTrigger::Type::Word: {
                const auto ids = common_tokenize(vocab, t.value, false, true);
                if (ids.size() == 1 && std::binary_search(preserved.begin(), preserved.end(), ids[0])) {
                    tokens.push_back(ids[0]);
                } else {
                    patterns.push_back(regex_escape(t.value));
                }
                break;
            }
            case GrammarTrigger::Type::Pattern:
                patterns.push_back(t.value);
                break;
            case GrammarTrigger::Type::PatternFull: {
                const auto & p = t.value;
                patterns.push_back(p.empty() ? "^$" : (p.front() != '^' ? "^" : "") + p + (p.back() != '$' ? "$" : ""));
                break;
            }
        }
    }
    if (req.grammarLazy && patterns.empty() && tokens.empty()) {
        return GrammarError{"grammar", "the chat template gave a lazy grammar without triggers"};
    }
    std::vector<const char *> cpatterns;
    cpatterns.reserve(patterns.size());
    for (const auto & p : patterns) cpatterns.push_back(p.c_str());
    try {
        SamplerPtr s(req.grammarLazy ? llama_sampler_init_grammar_lazy_patterns(vocab, req.grammar.c_str(), "root",
                                                                                 cpatterns.data(), cpatterns.size(),
                                                                                 tokens.data(), tokens.size())
                                     : llama_sampler_init_grammar(vocab, req.grammar.c_str(), "root"));
        if (!s) return GrammarError{"grammar", "the chat template's grammar does not parse"};
        if (!req.grammarLazy && !req.grammarPrefill.empty()) {
            // The template already placed the generation prompt; the grammar starts with it.
            const auto ids = common_tokenize(vocab, req.grammarPrefill, false, true);
            for (size_t i = 0; i < ids.size(); ++i) {
                const std::string piece = common_token_to_piece(vocab, ids[i], true);
                // Some tokenizers add a space before the first special token: not part of the prompt.
                if (i == 0 && !piece.empty() && std::isspace(static_cast<unsigned char>(piece[0])) &&
                    !std::isspace(static_cast<unsigned char>(req.grammarPrefill[0]))) {
                    continue;
                }
                llama_sampler_accept(s.get(), ids[i]);
            }
        }
        return s;
    } catch (const std::exception & e) {
        return GrammarError{"grammar", std::string("the chat template's grammar cannot start: ") + e.what()};
    }
}

}  // namespace inference
