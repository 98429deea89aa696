// Turns the byte pieces of sampled tokens into text that is safe to emit:
//  - never a split multi-byte UTF-8 character (incomplete tails wait for the next piece);
//  - never a stop string, nor text that may still become one (a suffix that is a prefix
//    of some stop string is held back until it is disambiguated).
// Invariant: everything in `held_` is complete UTF-8 and contains no stop string.
#pragma once

#include <string>
#include <vector>

namespace inference {

/** Length of the longest prefix of `bytes` that ends on a UTF-8 character boundary. */
size_t utf8CompletePrefix(const std::string & bytes);

class TextStream {
  public:
    explicit TextStream(std::vector<std::string> stops);

    struct Output {
        std::string text;      // safe to emit now
        bool stopped = false;  // a stop string was found; `text` ends right before it
    };

    /** Appends the bytes of one token. After `stopped`, the stream must not be used again. */
    Output push(const std::string & piece);

    /** Everything still held back (end of generation without a stop); incomplete bytes are dropped. */
    std::string flush();

  private:
    std::vector<std::string> stops_;
    size_t maxStop_ = 0;
    std::string pendingBytes_;  // an incomplete UTF-8 character
    std::string held_;          // complete text that may be the start of a stop string
};

}  // namespace inference
