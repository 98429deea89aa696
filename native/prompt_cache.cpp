// See prompt_cache.h.
#include "prompt_cache.h"

#include <algorithm>

namespace inference {

bool PromptCache::covers(const std::vector<llama_token> & tokens) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const Entry & e) {
        return e.tokens.size() >= tokens.size() && commonPrefix(e.tokens, tokens) == tokens.size();
    });
}

std::optional<PromptCache::Match> PromptCache::best(const std::vector<llama_token> & prompt) {
    std::optional<Match> m;
    // Most recently used first: among equal prefixes the fresher entry wins.
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        const size_t n = commonPrefix(it->tokens, prompt);
        if (n > 0 && (!m || n > m->prefix)) m = Match{it, n};
    }
    return m;
}

void PromptCache::touch(Handle entry) { entries_.splice(entries_.begin(), entries_, entry); }

bool PromptCache::put(std::vector<llama_token> tokens, std::vector<uint8_t> state) {
    Entry e{std::move(tokens), std::move(state)};
    const size_t need = e.bytes();
    if (!fits(need)) return false;
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->tokens.size() <= e.tokens.size() && commonPrefix(it->tokens, e.tokens) == it->tokens.size()) {
            bytes_ -= it->bytes();
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    while (bytes_ + need > capacity_ && !entries_.empty()) {
        bytes_ -= entries_.back().bytes();
        entries_.pop_back();
        ++evictions_;
    }
    bytes_ += need;
    entries_.push_front(std::move(e));
    return true;
}

void PromptCache::erase(Handle entry) {
    bytes_ -= entry->bytes();
    entries_.erase(entry);
}

}  // namespace inference
