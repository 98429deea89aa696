// See sequence.h.
#include "sequence.h"

namespace inference {

SamplerPtr makeSamplerChain(const GenerateRequest & req, const llama_vocab * vocab, SamplerPtr grammar) {
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    SamplerPtr chain(llama_sampler_chain_init(cp));
    // The chain takes ownership of every sampler added to it.
    if (!req.logitBias.empty()) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_logit_bias(llama_vocab_n_tokens(vocab),
                                                                           static_cast<int32_t>(req.logitBias.size()),
                                                                           req.logitBias.data()));
    }
    if (grammar) llama_sampler_chain_add(chain.get(), grammar.release());
    if (req.presencePenalty != 0.0f || req.frequencyPenalty != 0.0f) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), 64, 1.0f,
                                                                          req.frequencyPenalty, req.presencePenalty));
    }
    if (req.temperature <= 0.0f) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
        return chain;
    }
    if (req.topK > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(req.topK));
    if (req.topP < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(req.topP, 1));
    if (req.minP > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(req.minP, 1));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(req.temperature));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(req.seed));
    return chain;
}

Sequence::Sequence(GenerateRequest r, const llama_vocab * vocab, uint64_t ord, SamplerPtr grammar)
    : req(std::move(r)), sampler(makeSamplerChain(req, vocab, std::move(grammar))), text(req.stop), order(ord) {}

bool Sequence::isPreserved(llama_token t) const { return std::binary_search(preserved.begin(), preserved.end(), t); }

}  // namespace inference
