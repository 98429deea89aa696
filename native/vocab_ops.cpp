// See vocab_ops.h.
#include "vocab_ops.h"

#include <climits>
#include <stdexcept>

namespace inference {

std::vector<llama_token> tokenize(const llama_vocab * vocab, const std::string & text, bool addSpecial,
                                  bool parseSpecial) {
    if (text.size() > static_cast<size_t>(INT32_MAX)) throw std::length_error("text too long to tokenize");
    const auto len = static_cast<int32_t>(text.size());
    std::vector<llama_token> out(text.size() + 2);
    int32_t n = llama_tokenize(vocab, text.data(), len, out.data(), static_cast<int32_t>(out.size()), addSpecial,
                               parseSpecial);
    if (n == INT32_MIN) throw std::length_error("tokenization overflow");
    if (n < 0) {
        out.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.data(), len, out.data(), static_cast<int32_t>(out.size()), addSpecial,
                           parseSpecial);
        if (n < 0) throw std::runtime_error("tokenization failed");
    }
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string detokenize(const llama_vocab * vocab, const std::vector<llama_token> & tokens) {
    std::string out(tokens.size() * 4 + 16, '\0');
    const auto nTok = static_cast<int32_t>(tokens.size());
    int32_t n = llama_detokenize(vocab, tokens.data(), nTok, out.data(), static_cast<int32_t>(out.size()), false, true);
    if (n < 0) {
        out.resize(static_cast<size_t>(-n));
        n = llama_detokenize(vocab, tokens.data(), nTok, out.data(), static_cast<int32_t>(out.size()), false, true);
        if (n < 0) throw std::runtime_error("detokenization failed");
    }
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string tokenPiece(const llama_vocab * vocab, llama_token token, bool special) {
    char buf[64];
    int32_t n = llama_token_to_piece(vocab, token, buf, sizeof buf, 0, special);
    if (n >= 0) return std::string(buf, static_cast<size_t>(n));
    std::string big(static_cast<size_t>(-n), '\0');
    n = llama_token_to_piece(vocab, token, big.data(), static_cast<int32_t>(big.size()), 0, special);
    big.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return big;
}

std::optional<std::string> applyChatTemplate(const llama_model * model, const std::vector<ChatMessage> & messages,
                                             bool addAssistant) {
    const char * tmpl = llama_model_chat_template(model, nullptr);
    if (tmpl == nullptr) return std::nullopt;
    std::vector<llama_chat_message> chat;
    chat.reserve(messages.size());
    size_t total = 0;
    for (const auto & m : messages) {
        chat.push_back({m.role.c_str(), m.content.c_str()});
        total += m.role.size() + m.content.size();
    }
    std::string buf(total * 2 + 256, '\0');
    int32_t n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), addAssistant, buf.data(),
                                          static_cast<int32_t>(buf.size()));
    if (n < 0) return std::nullopt;  // a template llama.cpp does not know
    if (static_cast<size_t>(n) > buf.size()) {
        buf.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), addAssistant, buf.data(),
                                      static_cast<int32_t>(buf.size()));
        if (n < 0) return std::nullopt;
    }
    buf.resize(static_cast<size_t>(n));
    return buf;
}

}  // namespace inference
