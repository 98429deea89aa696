// Sentence embeddings from a second llama_context over the same model, created on
// first use: mean pooling of the last hidden states, L2-normalised. For a generative
// model (no pooling metadata) this is a hidden-state embedding, not a trained one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llama_handles.h"

namespace inference {

class Embedder {
  public:
    Embedder(llama_model * model, int32_t contextSize, int32_t threads);

    struct Result {
        std::vector<float> vector;
        std::string errorKind;  // empty on success
        std::string message;
    };
    Result embed(const std::vector<llama_token> & tokens);

  private:
    llama_model * model_;
    int32_t contextSize_;
    int32_t threads_;
    ContextPtr ctx_;  // created by the first embed()
};

}  // namespace inference
