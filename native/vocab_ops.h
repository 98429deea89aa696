// Tokenizer, detokenizer and chat template over a loaded model. The vocabulary is
// immutable after load, so these are safe on any thread while the engine decodes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "llama.h"

namespace inference {

std::vector<llama_token> tokenize(const llama_vocab * vocab, const std::string & text, bool addSpecial,
                                  bool parseSpecial);
std::string detokenize(const llama_vocab * vocab, const std::vector<llama_token> & tokens);
/** The bytes of one generated token (special tokens only when `special`), possibly a partial UTF-8 char. */
std::string tokenPiece(const llama_vocab * vocab, llama_token token, bool special = false);

struct ChatMessage {
    std::string role;
    std::string content;
};
/** The model's own template applied by llama.cpp; nullopt if it has none or llama.cpp cannot apply it. */
std::optional<std::string> applyChatTemplate(const llama_model * model, const std::vector<ChatMessage> & messages,
                                             bool addAssistant);

}  // namespace inference
