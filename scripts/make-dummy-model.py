# Writes a GGUF model with Llama-3.2-1B's shapes and random weights (what vLLM's
# `--load-format dummy` does), for throughput measurements: its speed is a real 1B
# model's, its text is noise. Called by scripts/make-dummy-model.mjs, which documents
# the choices (docs/benchmarks.md, "A model shaped like a real one").
#
#   python3 make-dummy-model.py GGUF_PY_DIR TOKENIZER_GGUF OUT QTYPE SEED DESCRIPTION
#
# Deterministic: the same arguments write the same bytes (one seeded generator, tensors
# in a fixed order, drawn in fixed-size row chunks).
import sys

sys.path.insert(0, sys.argv[1])

import numpy as np  # noqa: E402
from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFWriter, GGMLQuantizationType, TokenType, quants  # noqa: E402

tokenizer_path, out, qtype_name, seed, description = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
QTYPE = {'q8_0': GGMLQuantizationType.Q8_0, 'q4_0': GGMLQuantizationType.Q4_0}[qtype_name]

# Llama-3.2-1B (config.json of meta-llama/Llama-3.2-1B).
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 2048, 16, 32, 8, 8192, 128256
HEAD_DIM = HIDDEN // HEADS
CTX_TRAIN, ROPE_BASE, RMS_EPS = 131072, 500000.0, 1e-5
STD = 0.02  # the usual initializer range: activations stay finite through 16 layers
ROWS_PER_CHUNK = 4096

# Tokenizer: the small model's SentencePiece vocabulary (512 pieces), padded to Llama-3.2's
# 128256 entries with pieces no text tokenizes into (so the output layer, the embedding
# table and sampling cost what they cost on the real model, and prompts tokenize as on
# the small model). The padded pieces are plain text (" w12345"), so a sampled one
# streams visible text.
src = GGUFReader(tokenizer_path)


def field(name):
    f = src.get_field(name)
    if f is None:
        raise SystemExit(f'{tokenizer_path}: no {name}')
    return f


tokens = [t.encode() for t in field('tokenizer.ggml.tokens').contents()]
scores = [float(x) for x in field('tokenizer.ggml.scores').contents()]
types = [int(x) for x in field('tokenizer.ggml.token_type').contents()]
if len(tokens) > VOCAB:
    raise SystemExit(f'{tokenizer_path}: {len(tokens)} tokens, more than {VOCAB}')
base = len(tokens)
for i in range(base, VOCAB):
    tokens.append(f'\u2581w{i}'.encode())
    scores.append(-1e6)
    types.append(int(TokenType.NORMAL))

w = GGUFWriter(out, 'llama')
w.add_name('dummy-llama-3.2-1b')
w.add_description(description)
w.add_context_length(CTX_TRAIN)
w.add_embedding_length(HIDDEN)
w.add_block_count(LAYERS)
w.add_feed_forward_length(FFN)
w.add_head_count(HEADS)
w.add_head_count_kv(KV_HEADS)
w.add_rope_dimension_count(HEAD_DIM)
w.add_rope_freq_base(ROPE_BASE)
w.add_layer_norm_rms_eps(RMS_EPS)
w.add_vocab_size(VOCAB)
w.add_file_type({GGMLQuantizationType.Q8_0: 7, GGMLQuantizationType.Q4_0: 2}[QTYPE])
w.add_tokenizer_model('llama')
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
for key, setter in (('tokenizer.ggml.bos_token_id', w.add_bos_token_id), ('tokenizer.ggml.eos_token_id', w.add_eos_token_id),
                    ('tokenizer.ggml.unknown_token_id', w.add_unk_token_id)):
    f = src.get_field(key)
    if f is not None:
        setter(int(f.contents()))

# (name, rows, columns, quantized). GGUF shapes are (columns, rows): ne0 is the row length.
# No output.weight: Llama-3.2-1B ties the output layer to the token embeddings.
plan = [('token_embd.weight', VOCAB, HIDDEN, True), ('output_norm.weight', 1, HIDDEN, False)]
for b in range(LAYERS):
    p = f'blk.{b}.'
    plan += [
        (p + 'attn_norm.weight', 1, HIDDEN, False),
        (p + 'attn_q.weight', HIDDEN, HIDDEN, True),
        (p + 'attn_k.weight', KV_HEADS * HEAD_DIM, HIDDEN, True),
        (p + 'attn_v.weight', KV_HEADS * HEAD_DIM, HIDDEN, True),
        (p + 'attn_output.weight', HIDDEN, HIDDEN, True),
        (p + 'ffn_norm.weight', 1, HIDDEN, False),
        (p + 'ffn_gate.weight', FFN, HIDDEN, True),
        (p + 'ffn_up.weight', FFN, HIDDEN, True),
        (p + 'ffn_down.weight', HIDDEN, FFN, True),
    ]

block_size, type_size = GGML_QUANT_SIZES[QTYPE]
for name, rows, cols, quantized in plan:
    if quantized:
        w.add_tensor_info(name, (rows, cols), np.dtype(np.float32), rows * (cols // block_size) * type_size, raw_dtype=QTYPE)
    else:
        w.add_tensor_info(name, (cols,), np.dtype(np.float32), cols * 4)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_ti_data_to_file()

rng = np.random.default_rng(seed)
total = 0
for name, rows, cols, quantized in plan:
    if not quantized:
        w.write_tensor_data(np.ones(cols, dtype=np.float32))  # RMS norm weights: identity
        continue
    parts = []
    for r0 in range(0, rows, ROWS_PER_CHUNK):
        n = min(ROWS_PER_CHUNK, rows - r0)
        x = rng.standard_normal((n, cols), dtype=np.float32)
        x *= STD
        parts.append(quants.quantize(x, QTYPE))
    w.write_tensor_data(np.concatenate(parts, axis=0))
    total += rows * cols
w.close()
print(f'{out}: {total / 1e9:.3f} B quantized weights ({qtype_name}), vocab {VOCAB} ({base} real pieces), seed {seed}')
