/*
 * The reference model runtime: a Llama-family decoder (Llama 2/3, Mistral,
 * Qwen2) on the CPU, used for calibration capture (GPTQ Hessians, AWQ input
 * features and block forwards), evaluation (perplexity, KL divergence, top-1
 * agreement, per-layer error), token input (raw/npy/JSON token files and
 * text through the model's tokenizer.json) and the generated demo model.
 *
 * Every linear layer of the forward pass goes through one hook
 * (qf_rt_set_linear) so a quantized model can route its linears to a
 * plugin's linear_forward; the default hook computes y = x · Wᵀ in float32
 * with OpenBLAS from the checkpoint's weights (f32 / f16 / bf16, converted to
 * f32 lazily, per tensor, within a cache budget).
 *
 * Threading: a qf_rt_model (and everything built on it) is used by one thread
 * at a time; the forward pass itself is multithreaded (OpenBLAS and a
 * pthread pool for attention).
 *
 * Ownership follows qforge.h: objects returned through `**out` belong to the
 * caller and are released with the matching *_free; pointers returned through
 * `const T **` are borrowed, with the lifetime stated on each function.
 */
#ifndef QFORGE_RUNTIME_H
#define QFORGE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qforge/plugin.h"
#include "qforge/dtype.h"
#include "qforge/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

/* ================================================================ config */

typedef enum qf_rt_rope_type {
  QF_RT_ROPE_DEFAULT = 0, /* rope_scaling null / "default" */
  QF_RT_ROPE_LINEAR = 1,  /* positions divided by factor */
  QF_RT_ROPE_LLAMA3 = 2   /* Llama 3.1 frequency-dependent scaling */
} qf_rt_rope_type;

/* The architecture fields of config.json the runtime uses. */
typedef struct qf_rt_config {
  char model_type[32];          /* "llama", "mistral", "qwen2" */
  int64_t hidden;               /* hidden_size */
  int64_t intermediate;         /* intermediate_size */
  int64_t n_layers;             /* num_hidden_layers */
  int64_t n_heads;              /* num_attention_heads */
  int64_t n_kv_heads;           /* num_key_value_heads (default n_heads) */
  int64_t head_dim;             /* head_dim (default hidden / n_heads) */
  int64_t vocab;                /* vocab_size */
  int64_t max_position;         /* max_position_embeddings */
  int64_t sliding_window;       /* 0 = none */
  double rms_eps;               /* rms_norm_eps */
  double rope_theta;            /* default 10000 */
  qf_rt_rope_type rope_type;
  double rope_factor;           /* linear / llama3 */
  double rope_low_freq_factor;  /* llama3 */
  double rope_high_freq_factor; /* llama3 */
  int64_t rope_original_max_position; /* llama3 */
  int tie_word_embeddings;      /* default 0 */
  int64_t bos_token_id;         /* -1 when absent */
  int64_t eos_token_id;         /* -1 when absent (first of a list) */
} qf_rt_config;

/* Parse config.json text. Unknown model types, non-"silu" hidden_act,
 * unsupported rope_scaling types and missing/ill-typed fields are errors
 * naming the field. */
QF_API qf_status qf_rt_config_parse(const char *json, qf_rt_config *out,
                                    qf_error *err);

/* ================================================================ model */

typedef struct qf_rt_model qf_rt_model;

typedef struct qf_rt_options {
  size_t struct_size;
  /* Threads for attention and, when > 0, OpenBLAS (openblas_set_num_threads
   * is process-wide). 0 = number of online CPUs, OpenBLAS untouched. */
  int n_threads;
  /* Bytes of converted (f16/bf16 → f32) weights kept cached; least recently
   * used tensors are dropped beyond it. 0 = default (2 GiB). f32 tensors are
   * read in place and cost nothing. */
  uint64_t cache_bytes;
} qf_rt_options;

/* Open an HF folder (config.json + safetensors, sharded or not). The model
 * owns the checkpoint. `opt` may be NULL. Linear weights may be absent (a
 * quantized checkpoint): they must then be served by a linear hook. */
QF_API qf_status qf_rt_open(const char *path, const qf_rt_options *opt,
                            qf_rt_model **out, qf_error *err);
/* Same over an opened checkpoint, which is borrowed and must outlive the
 * model. */
QF_API qf_status qf_rt_new(const qf_checkpoint *ckpt,
                           const qf_rt_options *opt, qf_rt_model **out,
                           qf_error *err);
/* Free the model (and its checkpoint when it owns it). NULL is a no-op. */
QF_API void qf_rt_free(qf_rt_model *m);
/* Borrowed; lives as long as the model. */
QF_API const qf_rt_config *qf_rt_get_config(const qf_rt_model *m);
QF_API const qf_checkpoint *qf_rt_checkpoint(const qf_rt_model *m);
QF_API int qf_rt_n_threads(const qf_rt_model *m);

/* The linear modules of a decoder block, in forward (true-sequential)
 * order. */
typedef enum qf_rt_module {
  QF_RT_Q = 0, QF_RT_K, QF_RT_V, QF_RT_O, QF_RT_GATE, QF_RT_UP, QF_RT_DOWN,
  QF_RT_MODULE_COUNT
} qf_rt_module;

/* "self_attn.q_proj", … (static string). */
QF_API const char *qf_rt_module_name(qf_rt_module mod);
/* "model.layers.<layer>.<module>.weight" into buf (always NUL-terminated). */
QF_API void qf_rt_linear_name(int layer, qf_rt_module mod, char *buf,
                              size_t n);
/* Parse "model.layers.<i>.<module>.<suffix>" (suffix "weight", "qweight",
 * …, or none). Returns 1 and fills layer/mod on a match, else 0. */
QF_API int qf_rt_parse_linear_name(const char *name, int *layer,
                                   qf_rt_module *mod);
/* A sort key putting tensor names in forward order (embeddings, then block
 * by block, modules in true-sequential order, then final norm and lm_head).
 * A host that feeds a sequential calibration should process tensors in this
 * order; other orders are correct but recompute blocks. */
QF_API int64_t qf_rt_forward_rank(const char *name);

/* ---- the linear hook ----
 * y[M,N] = x[M,K] · Wᵀ for the linear whose weight is `weight_name`
 * ("model.layers.3.mlp.up_proj.weight", or "lm_head.weight" — also when the
 * embeddings are tied). x and y are compact row-major float32 buffers owned
 * by the runtime, valid for the call. Returns QF_OK or fills err. */
typedef qf_status (*qf_rt_linear_fn)(void *user, qf_rt_model *m,
                                     const char *weight_name, const float *x,
                                     int64_t M, int64_t K, float *y,
                                     int64_t N, qf_error *err);
/* The hook adds the module's bias itself (else the runtime adds the
 * checkpoint's "<module>.bias" when it exists). */
#define QF_RT_LINEAR_ADDS_BIAS 1u
/* Route every linear through fn (NULL restores the float default). */
QF_API void qf_rt_set_linear(qf_rt_model *m, qf_rt_linear_fn fn, void *user,
                             unsigned flags);
/* The float default: W from the checkpoint, converted to f32, cblas_sgemm.
 * `user` is ignored. A hook may call it for modules it does not handle. */
QF_API qf_status qf_rt_linear_float(void *user, qf_rt_model *m,
                                    const char *weight_name, const float *x,
                                    int64_t M, int64_t K, float *y, int64_t N,
                                    qf_error *err);
/* A checkpoint tensor as float32 (any of f32/f16/bf16), by name. *w is
 * borrowed: valid until the next call into the model (cache eviction). */
QF_API qf_status qf_rt_tensor_f32(qf_rt_model *m, const char *name,
                                  const float **w, int64_t *numel,
                                  qf_error *err);

/* ================================================================ forward */

/* KV cache for incremental decoding of `batch` sequences up to max_len. */
typedef struct qf_rt_kv qf_rt_kv;
QF_API qf_status qf_rt_kv_new(const qf_rt_model *m, int64_t batch,
                              int64_t max_len, qf_rt_kv **out,
                              qf_error *err);
QF_API void qf_rt_kv_free(qf_rt_kv *kv);
/* Tokens already in the cache (the position of the next token). */
QF_API int64_t qf_rt_kv_len(const qf_rt_kv *kv);
QF_API void qf_rt_kv_reset(qf_rt_kv *kv);

/* Only the logits of the last position of each sequence ([batch, vocab]). */
#define QF_RT_LOGITS_LAST 1u

/* Forward `batch` sequences of `len` tokens (tokens[b * len + t]), causal,
 * positions continuing from the cache (0 without one). logits (caller-owned)
 * receives [batch, len, vocab] float32, or [batch, vocab] with
 * QF_RT_LOGITS_LAST. kv may be NULL; with a cache, batch must match it and
 * the tokens are appended to it. Token ids are checked against the vocab. */
QF_API qf_status qf_rt_forward(qf_rt_model *m, const int32_t *tokens,
                               int64_t batch, int64_t len, qf_rt_kv *kv,
                               float *logits, unsigned flags, qf_error *err);

/* ---- building blocks (one block at a time: calibration, evaluation) ---- */

/* Inputs seen by the linear layers of a block; q/k/v share one input, and so
 * do gate/up. */
typedef enum qf_rt_site {
  QF_RT_SITE_ATTN_IN = 0, /* input_layernorm output → q, k, v */
  QF_RT_SITE_O_IN,        /* attention output → o_proj */
  QF_RT_SITE_MLP_IN,      /* post_attention_layernorm output → gate, up */
  QF_RT_SITE_DOWN_IN,     /* silu(gate) * up → down_proj */
  QF_RT_SITE_COUNT
} qf_rt_site;
/* The site feeding a module. */
QF_API qf_rt_site qf_rt_module_site(qf_rt_module mod);

/* Called with the input x[M,K] of each site as the block computes it
 * (M = batch·len rows, sequence-major). Borrowed for the call. A non-OK
 * status aborts the block. */
typedef qf_status (*qf_rt_observer_fn)(void *user, int layer, qf_rt_site site,
                                       const float *x, int64_t M, int64_t K,
                                       qf_error *err);

/* A float tensor replacing a block's checkpoint tensor for one call (AWQ
 * trials): a linear weight ("model.layers.i.<module>.weight", [N, K]), a
 * linear bias ("….bias", [N]) or a norm weight
 * ("model.layers.i.input_layernorm.weight", [hidden]). */
typedef struct qf_rt_override {
  const char *name;
  const float *w;    /* f32, borrowed, shaped as the tensor it replaces */
} qf_rt_override;

typedef struct qf_rt_block_opts {
  size_t struct_size;
  qf_rt_observer_fn observe;  /* may be NULL */
  void *user;
  /* Stop once this site's input has been observed (x is then left in an
   * unspecified state); QF_RT_SITE_COUNT = run the whole block. */
  qf_rt_site stop_after;
  /* 1 = bypass the model's hook and use float weights (AWQ's float
   * propagation); 0 = the hook. */
  int float_weights;
  const qf_rt_override *overrides; /* checked before the hook; may be NULL */
  size_t n_overrides;
} qf_rt_block_opts;

/* x[n, hidden] = embedding rows of tokens[n] (caller-owned x). */
QF_API qf_status qf_rt_embed(qf_rt_model *m, const int32_t *tokens,
                             int64_t n, float *x, qf_error *err);
/* Run decoder block `layer` in place on x[batch·len, hidden] (positions
 * 0..len-1 in every sequence). `o` may be NULL (whole block, hook). */
QF_API qf_status qf_rt_block(qf_rt_model *m, int layer, float *x,
                             int64_t batch, int64_t len,
                             const qf_rt_block_opts *o, qf_error *err);
/* Attention part only: out[M, hidden] = o_proj(attn(q,k,v of n1)) where
 * n1[batch·len, hidden] is the ATTN_IN site input. Residual not added. */
QF_API qf_status qf_rt_attn_part(qf_rt_model *m, int layer, const float *n1,
                                 int64_t batch, int64_t len, float *out,
                                 const qf_rt_block_opts *o, qf_error *err);
/* MLP part only: out[M, hidden] = down(silu(gate(n2)) * up(n2)). */
QF_API qf_status qf_rt_mlp_part(qf_rt_model *m, int layer, const float *n2,
                                int64_t M, float *out,
                                const qf_rt_block_opts *o, qf_error *err);
/* Final norm + lm_head: logits[n, vocab] from x[n, hidden] (x unchanged). */
QF_API qf_status qf_rt_head(qf_rt_model *m, const float *x, int64_t n,
                            float *logits, qf_error *err);

/* ================================================================ tokens */

/* A set of token sequences (possibly of different lengths). Every array is
 * owned by the set; free with qf_tokens_free. */
typedef struct qf_token_set {
  int32_t *ids;      /* all sequences back to back */
  int64_t *offsets;  /* n_seq + 1 entries; sequence s is [offsets[s], offsets[s+1]) */
  int64_t n_seq;
} qf_token_set;

typedef struct qf_tokenizer qf_tokenizer;

/* Load token ids from `path` by extension: ".u32" raw little-endian uint32
 * (one sequence), ".npy" int32/int64/uint32 (1-D: one sequence; 2-D: one per
 * row), ".json" a list of ints or a list of lists; anything else is UTF-8
 * text encoded with `tok` (required then; BOS added per the tokenizer's
 * template). Ids must be in [0, 2^31). */
QF_API qf_status qf_tokens_load(const char *path, const qf_tokenizer *tok,
                                qf_token_set **out, qf_error *err);
/* Whether qf_tokens_load reads `path` as token ids (".u32", ".npy",
 * ".json") rather than as text that needs a tokenizer. */
static inline int qf_tokens_path_is_ids(const char *path) {
  size_t n = strlen(path);
  return (n > 4 && (!strcmp(path + n - 4, ".u32") || !strcmp(path + n - 4, ".npy"))) ||
         (n > 5 && !strcmp(path + n - 5, ".json"));
}
/* Copy n_seq sequences of lens[s] tokens stored back to back in ids. */
QF_API qf_status qf_tokens_from_array(const int32_t *ids, const int64_t *lens,
                                      int64_t n_seq, qf_token_set **out,
                                      qf_error *err);
/* Concatenate all sequences and cut them into floor(total / seq_len)
 * windows of seq_len (at most max_seqs when > 0). */
QF_API qf_status qf_tokens_windows(const qf_token_set *in, int64_t seq_len,
                                   int64_t max_seqs, qf_token_set **out,
                                   qf_error *err);
QF_API int64_t qf_tokens_total(const qf_token_set *t);
/* Largest id + 1 (0 for an empty set). */
QF_API int64_t qf_tokens_max_id(const qf_token_set *t);
/* Write as a 2-D int32 .npy (all sequences must have one length) or a
 * 1-D one when n_seq == 1; atomically. */
QF_API qf_status qf_tokens_write_npy(const char *path, const qf_token_set *t,
                                     qf_error *err);
/* All ids back to back as raw little-endian uint32; atomically. */
QF_API qf_status qf_tokens_write_u32(const char *path, const qf_token_set *t,
                                     qf_error *err);
QF_API void qf_tokens_free(qf_token_set *t);

/* ================================================================ tokenizer */

typedef enum qf_tokenizer_kind {
  QF_TOKENIZER_BYTE_LEVEL = 1,   /* GPT-2 / Llama 3 / Qwen2 byte-level BPE */
  QF_TOKENIZER_SENTENCEPIECE = 2 /* Llama 2 / Mistral: ▁, <0xNN> fallback */
} qf_tokenizer_kind;

/* Load `path`: a tokenizer.json file or a folder holding one. The
 * pre-tokenizer regex must be one of the GPT-2, Llama 3 or Qwen2 patterns
 * (implemented by hand); others are QF_ERR_UNSUPPORTED. Unicode NFC
 * normalizers are treated as identity (input is expected in NFC). */
QF_API qf_status qf_tokenizer_load(const char *path, qf_tokenizer **out,
                                   qf_error *err);
/* Same from JSON text (`what` names the source in messages; may be NULL). */
QF_API qf_status qf_tokenizer_from_json(const char *json, const char *what,
                                        qf_tokenizer **out, qf_error *err);
QF_API void qf_tokenizer_free(qf_tokenizer *t);
QF_API qf_tokenizer_kind qf_tokenizer_get_kind(const qf_tokenizer *t);
/* Highest id + 1 over the vocab and added tokens. */
QF_API int64_t qf_tokenizer_size(const qf_tokenizer *t);
/* Token text of id (NULL if unknown); borrowed, lives with the tokenizer. */
QF_API const char *qf_tokenizer_token(const qf_tokenizer *t, int32_t id);
/* Id of a token text, or -1. */
QF_API int32_t qf_tokenizer_id(const qf_tokenizer *t, const char *token);
/* Encode `len` bytes of UTF-8 text. Added tokens appearing in the text are
 * matched first. add_special: apply the post-processor template (BOS).
 * *ids is malloc'ed (caller frees), *n its length. */
QF_API qf_status qf_tokenizer_encode(const qf_tokenizer *t, const char *text,
                                     size_t len, int add_special,
                                     int32_t **ids, size_t *n, qf_error *err);
/* Decode ids to UTF-8 text (malloc'ed, NUL-terminated, caller frees). */
QF_API qf_status qf_tokenizer_decode(const qf_tokenizer *t,
                                     const int32_t *ids, size_t n,
                                     char **text, qf_error *err);

/* ================================================================ calibration */

typedef struct qf_capture qf_capture;

typedef enum qf_capture_mode {
  /* GPTQ: block i+1 is fed with the outputs of block i computed through the
   * model's linear hook, i.e. with the weights quantized so far. */
  QF_CAPTURE_QUANTIZED = 0,
  /* AWQ: block i+1 is fed with float outputs of block i. */
  QF_CAPTURE_FLOAT = 1
} qf_capture_mode;

typedef struct qf_capture_options {
  size_t struct_size;
  qf_capture_mode mode;
  /* 1: each site's Hessian is captured when first asked for, with the
   * block's earlier modules as they are then (GPTQ true_sequential).
   * 0: all sites of a block are captured in one pass. */
  int true_sequential;
  int batch_size;     /* sequences per block forward; 0 = 8 */
  int importance;     /* also accumulate mean x² per input column */
} qf_capture_options;

/* Default options: QUANTIZED, true_sequential 1, batch_size 8,
 * importance 1. */
QF_API void qf_capture_options_default(qf_capture_options *o);

/* A sequential capture over `tokens` (copied) on `m` (borrowed; must outlive
 * the capture; its linear hook is used in QUANTIZED mode). Keeps one block's
 * input activations ([total tokens, hidden]) plus the current block's
 * Hessians. */
QF_API qf_status qf_capture_new(qf_rt_model *m, const qf_token_set *tokens,
                                const qf_capture_options *o,
                                qf_capture **out, qf_error *err);
QF_API void qf_capture_free(qf_capture *c);

/* H = 2/nsamples · Σ xxᵀ for the linear whose weight is `name`, accumulated
 * exactly as GPTQ's add_batch (one "batch" per calibration sequence,
 * running rescale, sqrt(2/n)-scaled float32 samples). Advances the capture
 * to the module's block (recomputing from the embeddings when asked for an
 * earlier block). *h is [k, k] float32, borrowed until the next call on the
 * capture; *nsamples (may be NULL) the number of sequences. */
QF_API qf_status qf_capture_hessian(qf_capture *c, const char *name,
                                    const float **h, int64_t *k,
                                    int64_t *nsamples, qf_error *err);
/* Mean of x² per input column over all calibration tokens (imatrix) for the
 * linear `name`; borrowed as above. Needs importance = 1. */
QF_API qf_status qf_capture_importance(qf_capture *c, const char *name,
                                       const float **v, int64_t *k,
                                       qf_error *err);
/* Make `layer` the current block (its input activations ready). */
QF_API qf_status qf_capture_seek(qf_capture *c, int layer, qf_error *err);
/* The current block (-1 before the first call). */
QF_API int qf_capture_layer(const qf_capture *c);
/* The input features x[T, K] of `site` in block `layer` over all T
 * calibration tokens (AWQ). Borrowed until the capture moves to another
 * block or is freed. */
QF_API qf_status qf_capture_inputs(qf_capture *c, int layer, qf_rt_site site,
                                   const float **x, int64_t *T, int64_t *K,
                                   qf_error *err);
/* The block input x[T, hidden] of `layer` (borrowed as above). */
QF_API qf_status qf_capture_block_input(qf_capture *c, int layer,
                                        const float **x, int64_t *T,
                                        qf_error *err);

typedef enum qf_capture_part {
  QF_CAPTURE_PART_ATTN = 0, /* o_proj(attention(ATTN_IN input)) */
  QF_CAPTURE_PART_MLP = 1,  /* down(silu(gate) * up) of the MLP_IN input */
  QF_CAPTURE_PART_BLOCK = 2 /* the whole block from its input */
} qf_capture_part;

/* Run `part` of block `layer` over all calibration tokens with float
 * weights, except the given overrides (trial weights): y[T, hidden]
 * (caller-owned, T = total calibration tokens). A BLOCK trial that touches
 * only the MLP half (gate/up/down, post_attention_layernorm) reuses a cached
 * x + attention(x) of the block (T × hidden floats), halving its cost. */
QF_API qf_status qf_capture_part_forward(qf_capture *c, int layer,
                                         qf_capture_part part,
                                         const qf_rt_override *ov, size_t n_ov,
                                         float *y, qf_error *err);
/* Mean over all elements of (y_trial - y_float)² for the part (the float
 * reference output is cached per layer and part). */
QF_API qf_status qf_capture_part_mse(qf_capture *c, int layer,
                                     qf_capture_part part,
                                     const qf_rt_override *ov, size_t n_ov,
                                     double *mse, qf_error *err);
/* Total calibration tokens. */
QF_API int64_t qf_capture_tokens(const qf_capture *c);

/* Wrap a capture as the ABI's qf_calib: calib_hessian, calib_importance
 * and (ABI 1.1) calib_inputs, calib_block_forward (the whole block on its
 * captured inputs with float weights but the trial tensors, which may be
 * linear weights/biases or norm weights of that block, in f32/f16/bf16) and
 * calib_block_shape are answered by it. The calib takes ownership of the
 * capture (also on failure); qf_calib_free frees both. */
QF_API qf_status qf_calib_new_capture(qf_capture *c, qf_calib **out,
                                      qf_error *err);
/* The capture behind a calib made by qf_calib_new_capture (borrowed), or
 * NULL for other calibs. */
QF_API qf_capture *qf_calib_get_capture(qf_calib *c);

/* ================================================================ evaluation */

/* -log softmax(logits)[target], in double. */
QF_API double qf_eval_nll(const float *logits, int64_t V, int32_t target);
/* KL(P_ref || P) between the softmaxes of two logit rows, in double. */
QF_API double qf_eval_kl(const float *ref_logits, const float *logits,
                         int64_t V);
/* Index of the largest logit (first on ties). */
QF_API int64_t qf_eval_argmax(const float *logits, int64_t V);
/* Σ (x - ref)² and Σ ref² over n values, accumulated into *num, *den. */
QF_API void qf_eval_sq_err(const float *ref, const float *x, int64_t n,
                           double *num, double *den);

/* Perplexity of m over every sequence of t: exp of the mean next-token NLL
 * over positions 1..len-1. batch_size 0 = 4. */
QF_API qf_status qf_eval_perplexity(qf_rt_model *m, const qf_token_set *t,
                                    int batch_size, double *ppl,
                                    qf_error *err);

typedef struct qf_eval_report {
  size_t struct_size;
  int64_t n_positions;     /* positions compared (all tokens) */
  int64_t n_predicted;     /* next-token predictions (len - 1 per sequence) */
  double ppl_ref, ppl;     /* perplexities of the reference and the model */
  double kl_mean;          /* mean KL(P_ref || P) per position */
  double top1;             /* fraction of positions with equal argmax */
  int n_layers;
  /* Per block: Σ‖h - h_ref‖² / Σ‖h_ref‖² of the block outputs (errors
   * propagate through the blocks). Owned by the report. */
  double *layer_rel_err;
} qf_eval_report;

/* Compare `m` (e.g. a quantized model through its hook) to `ref` (float) on
 * t, block by block (two activations at a time). Both must share the
 * architecture. *out is filled (free its array with qf_eval_report_clear). */
QF_API qf_status qf_eval_compare(qf_rt_model *ref, qf_rt_model *m,
                                 const qf_token_set *t, int batch_size,
                                 qf_eval_report *out, qf_error *err);
QF_API void qf_eval_report_clear(qf_eval_report *r);

/* ================================================================ demo model */

typedef struct qf_demo_config {
  size_t struct_size;
  const char *model_type;   /* "llama" (default), "mistral", "qwen2" */
  int64_t hidden, intermediate, n_layers, n_heads, n_kv_heads, head_dim;
  int64_t vocab, max_position;
  double rope_theta, rms_eps;
  int rope_llama3;          /* write llama3 rope_scaling */
  double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
  int64_t rope_original_max_position;
  int tie_word_embeddings;
  int qkv_bias;             /* q/k/v biases (Qwen2 style) */
  qf_dtype dtype;           /* F32, F16 or BF16 */
  uint64_t seed;
  int n_outlier_channels;   /* hidden channels with large norm gains */
  double outlier_scale;     /* their gain */
  uint64_t shard_bytes;     /* 0 = one file */
  qf_tokenizer_kind tokenizer; /* 0 = write none */
} qf_demo_config;

/* The demo shape: hidden 256, 6 layers, intermediate 768 (every K a
 * multiple of 128, as group-wise formats need), 8 heads / 4 kv heads
 * (head_dim 32), vocab 2048, bf16, byte-level tokenizer, 4 hidden outlier
 * channels with 8x norm gains. */
QF_API void qf_demo_config_default(qf_demo_config *c);
/* A Llama-3.2-1B shape (hidden 2048, 16 layers, intermediate 8192, 32/8
 * heads, vocab 128256, tied, llama3 rope), bf16, no tokenizer. */
QF_API void qf_demo_config_1b(qf_demo_config *c);
/* Write config.json, the safetensors weights and (per c->tokenizer)
 * tokenizer.json into `dir` (created if missing). Deterministic in c. */
QF_API qf_status qf_demo_write(const char *dir, const qf_demo_config *c,
                               qf_error *err);
/* A generated tokenizer.json (malloc'ed text, caller frees) with exactly
 * `size` ids (merges of common English words, then reserved special tokens;
 * sizes below the base alphabet — 260 byte-level, 336 SentencePiece — are
 * raised to it). */
QF_API char *qf_demo_tokenizer_json(qf_tokenizer_kind kind, int64_t size);
/* Sample n_seq sequences of len tokens from m (temperature 1, KV cache,
 * deterministic in seed); *out owned by the caller. */
QF_API qf_status qf_demo_sample(qf_rt_model *m, int64_t n_seq, int64_t len,
                                uint64_t seed, qf_token_set **out,
                                qf_error *err);
/* Sample and write `<dir>/calib.npy` and `<dir>/eval.npy` (2-D int32) from
 * the model in dir. */
QF_API qf_status qf_demo_write_tokens(const char *dir, int64_t n_calib,
                                      int64_t n_eval, int64_t len,
                                      uint64_t seed, qf_error *err);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_RUNTIME_H */
