// The few helpers that the parts of llama.cpp's common library compiled into the addon
// (the chat layer: Jinja engine, chat template handlers and output parsers; and the
// JSON-schema converter) take from common/common.cpp and common/log.cpp. They are
// defined here with the same behaviour (the bodies follow common.cpp of the vendored
// source), so the addon compiles those parts alone instead of the whole common
// library, whose other half (argument parsing, downloads, model fitting, speculative
// decoding) the addon has no use for. See docs/chat-templates.md.
#include <cctype>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"
#include "ggml.h"
#include "llama.h"

std::string string_format(const char * fmt, ...) {
    va_list ap;
    va_list ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    const int size = vsnprintf(nullptr, 0, fmt, ap);
    GGML_ASSERT(size >= 0 && size < INT_MAX);
    std::vector<char> buf(static_cast<size_t>(size) + 1);
    const int size2 = vsnprintf(buf.data(), static_cast<size_t>(size) + 1, fmt, ap2);
    GGML_ASSERT(size2 == size);
    va_end(ap2);
    va_end(ap);
    return std::string(buf.data(), static_cast<size_t>(size));
}

std::string string_strip(const std::string & str) {
    size_t start = 0;
    size_t end = str.size();
    while (start < end && std::isspace(static_cast<unsigned char>(str[start]))) start++;
    while (end > start && std::isspace(static_cast<unsigned char>(str[end - 1]))) end--;
    return str.substr(start, end - start);
}

void string_replace_all(std::string & s, const std::string & search, const std::string & replace) {
    if (search.empty()) return;
    std::string builder;
    builder.reserve(s.length());
    size_t pos = 0;
    size_t last = 0;
    while ((pos = s.find(search, last)) != std::string::npos) {
        builder.append(s, last, pos - last);
        builder.append(replace);
        last = pos + search.length();
    }
    builder.append(s, last, std::string::npos);
    s = std::move(builder);
}

std::string regex_escape(const std::string & s) {
    static const std::regex special("[.^$|()*+?\\[\\]{}\\\\]");
    return std::regex_replace(s, special, "\\$&");
}

std::string string_join(const std::vector<std::string> & values, const std::string & separator) {
    std::ostringstream result;
    for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) result << separator;
        result << values[i];
    }
    return result.str();
}

std::vector<std::string> string_split(const std::string & str, const std::string & delimiter) {
    std::vector<std::string> parts;
    size_t start = 0;
    size_t end = str.find(delimiter);
    while (end != std::string::npos) {
        parts.push_back(str.substr(start, end - start));
        start = end + delimiter.length();
        end = str.find(delimiter, start);
    }
    parts.push_back(str.substr(start));
    return parts;
}

std::string string_repeat(const std::string & str, size_t n) {
    std::string result;
    result.reserve(str.length() * n);
    for (size_t i = 0; i < n; ++i) result += str;
    return result;
}

std::vector<llama_token> common_tokenize(const struct llama_vocab * vocab, const std::string & text, bool add_special,
                                         bool parse_special) {
    int n = static_cast<int>(text.length()) + 2 * add_special;
    std::vector<llama_token> result(static_cast<size_t>(n));
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.length()), result.data(),
                       static_cast<int32_t>(result.size()), add_special, parse_special);
    if (n == std::numeric_limits<int32_t>::min()) throw std::runtime_error("tokenization failed: input too large");
    if (n < 0) {
        result.resize(static_cast<size_t>(-n));
        const int check = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.length()), result.data(),
                                         static_cast<int32_t>(result.size()), add_special, parse_special);
        GGML_ASSERT(check == -n);
    } else {
        result.resize(static_cast<size_t>(n));
    }
    return result;
}

std::string common_token_to_piece(const struct llama_vocab * vocab, llama_token token, bool special) {
    std::string piece;
    piece.resize(piece.capacity());
    const int n = llama_token_to_piece(vocab, token, &piece[0], static_cast<int32_t>(piece.size()), 0, special);
    if (n < 0) {
        piece.resize(static_cast<size_t>(-n));
        const int check = llama_token_to_piece(vocab, token, &piece[0], static_cast<int32_t>(piece.size()), 0, special);
        GGML_ASSERT(check == -n);
    } else {
        piece.resize(static_cast<size_t>(n));
    }
    return piece;
}
