// See logprobs.h. The arithmetic follows llama-server's get_token_probabilities (float
// softmax after subtracting the maximum; log of a probability that underflows to 0 is
// the lowest float), so the values agree with it.
#include "logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "vocab_ops.h"

namespace inference {

namespace {

float logOf(float p) { return p == 0.0f ? std::numeric_limits<float>::lowest() : std::log(p); }

}  // namespace

TokenProb tokenProbs(llama_context * ctx, const llama_vocab * vocab, int32_t idx, llama_token token, const std::string & piece,
                     int32_t nTop) {
    const float * logits = llama_get_logits_ith(ctx, idx);
    const int32_t nVocab = llama_vocab_n_tokens(vocab);
    TokenProb out;
    out.id = token;
    out.piece = piece;
    if (logits == nullptr || nVocab <= 0) return out;
    float maxLogit = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < nVocab; ++i) maxLogit = std::max(maxLogit, logits[i]);
    float sum = 0.0f;
    for (int32_t i = 0; i < nVocab; ++i) sum += std::exp(logits[i] - maxLogit);
    const auto prob = [&](llama_token t) { return std::exp(logits[t] - maxLogit) / sum; };
    out.logprob = logOf(prob(token));
    const auto n = static_cast<size_t>(std::clamp(nTop, 0, nVocab));
    if (n == 0) return out;
    std::vector<llama_token> ids(static_cast<size_t>(nVocab));
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(),
                      [&](llama_token a, llama_token b) { return logits[a] > logits[b]; });
    out.top.reserve(n);
    for (size_t i = 0; i < n; ++i) out.top.push_back({ids[i], tokenPiece(vocab, ids[i]), logOf(prob(ids[i]))});
    return out;
}

}  // namespace inference
