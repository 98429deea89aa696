// See embedder.h.
#include "embedder.h"

#include <cmath>

namespace inference {

Embedder::Embedder(llama_model * model, int32_t contextSize, int32_t threads)
    : model_(model), contextSize_(contextSize), threads_(threads) {}

Embedder::Result Embedder::embed(const std::vector<llama_token> & tokens) {
    Result r;
    const int32_t nVocab = llama_vocab_n_tokens(llama_model_get_vocab(model_));
    if (tokens.empty()) return {{}, "invalid_request", "the input has no tokens"};
    for (llama_token t : tokens) {
        if (t < 0 || t >= nVocab) return {{}, "invalid_request", "token id out of vocabulary"};
    }
    if (!ctx_) {
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = static_cast<uint32_t>(contextSize_);
        cp.n_batch = cp.n_ctx;
        cp.n_ubatch = cp.n_ctx;  // pooling needs the whole input in one ubatch
        cp.n_seq_max = 1;
        cp.n_threads = threads_;
        cp.n_threads_batch = threads_;
        cp.embeddings = true;
        cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
        cp.no_perf = true;
        ctx_.reset(llama_init_from_model(model_, cp));
        if (!ctx_) return {{}, "OutOfMemory", "could not create the embedding context"};
    }
    if (tokens.size() > llama_n_ctx(ctx_.get())) {
        return {{}, "context_length_exceeded",
                "input of " + std::to_string(tokens.size()) + " tokens exceeds the context of " +
                    std::to_string(llama_n_ctx(ctx_.get())) + " tokens"};
    }
    llama_memory_clear(llama_get_memory(ctx_.get()), true);
    std::vector<llama_token> tok(tokens);
    std::vector<llama_pos> pos(tokens.size());
    std::vector<int32_t> nSeq(tokens.size(), 1);
    std::vector<llama_seq_id> seq(tokens.size(), 0);
    std::vector<llama_seq_id *> seqPtr(tokens.size());
    std::vector<int8_t> out(tokens.size(), 1);
    for (size_t i = 0; i < tokens.size(); ++i) {
        pos[i] = static_cast<llama_pos>(i);
        seqPtr[i] = &seq[i];
    }
    llama_batch batch{};
    batch.n_tokens = static_cast<int32_t>(tokens.size());
    batch.token = tok.data();
    batch.pos = pos.data();
    batch.n_seq_id = nSeq.data();
    batch.seq_id = seqPtr.data();
    batch.logits = out.data();
    const int32_t rc = llama_decode(ctx_.get(), batch);
    if (rc != 0) return {{}, rc == 1 || rc == -2 ? "OutOfMemory" : "Unrecoverable", "embedding decode failed"};
    const float * e = llama_get_embeddings_seq(ctx_.get(), 0);
    if (e == nullptr) return {{}, "Unrecoverable", "the model produced no embedding"};
    const auto nEmbd = static_cast<size_t>(llama_model_n_embd(model_));
    r.vector.assign(e, e + nEmbd);
    double norm = 0;
    for (float v : r.vector) norm += static_cast<double>(v) * v;
    norm = std::sqrt(norm);
    if (norm > 0) {
        for (float & v : r.vector) v = static_cast<float>(v / norm);
    }
    return r;
}

}  // namespace inference
