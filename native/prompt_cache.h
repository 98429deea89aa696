// Host-memory prompt cache (docs/architecture.md, "Host-memory prompt cache"): the KV
// state of sequences whose slot was about to be overwritten, kept in host memory with
// the tokens it holds, so that a later request with the same prefix restores it instead
// of decoding the prefix again. Bounded by bytes, least recently used out first.
//
// Plain data only: the states are byte copies made through llama.cpp's state API
// (llama_state_seq_get_data), never pointers into the KV cache or a device buffer.
// Used by the engine thread alone (Scheduler), so nothing here is locked.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <vector>

#include "llama_handles.h"

namespace inference {

/** How many leading tokens two token lists share (the scheduler's and the cache's prefix measure). */
inline size_t commonPrefix(const std::vector<llama_token> & a, const std::vector<llama_token> & b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
}

class PromptCache {
  public:
    struct Entry {
        std::vector<llama_token> tokens;  // what the state's cells hold, position 0 on
        std::vector<uint8_t> state;       // llama_state_seq_get_data's bytes
        size_t bytes() const { return state.size() + tokens.size() * sizeof(llama_token); }
    };
    using Handle = std::list<Entry>::iterator;
    struct Match {
        Handle entry;
        size_t prefix;  // tokens the entry shares with the prompt, from position 0
    };

    explicit PromptCache(size_t capacityBytes) : capacity_(capacityBytes) {}

    size_t capacity() const { return capacity_; }
    size_t bytes() const { return bytes_; }
    size_t size() const { return entries_.size(); }
    uint64_t evictions() const { return evictions_; }

    /** Whether an entry already holds `tokens` (it or a longer sequence starting with it). */
    bool covers(const std::vector<llama_token> & tokens) const;
    /** Whether an entry of `bytes` could be stored at all. */
    bool fits(size_t bytes) const { return bytes <= capacity_; }
    /** The entry sharing the longest prefix with `prompt` (none when no entry shares a token). */
    std::optional<Match> best(const std::vector<llama_token> & prompt);
    /** Marks an entry as just used (the last to be evicted). */
    void touch(Handle entry);
    /**
     * Stores a state. Entries whose tokens are a prefix of the new one go (it serves every
     * prompt they serve, as far or further); then the least recently used ones, until it fits.
     * Returns false (and stores nothing) when the entry alone exceeds the capacity.
     */
    bool put(std::vector<llama_token> tokens, std::vector<uint8_t> state);
    void erase(Handle entry);

  private:
    const size_t capacity_;
    size_t bytes_ = 0;
    uint64_t evictions_ = 0;
    std::list<Entry> entries_;  // most recently used first
};

}  // namespace inference
