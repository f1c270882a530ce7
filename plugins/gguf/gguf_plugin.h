/*
 * gguf_plugin.h — the internal interfaces between the files of the GGUF
 * plugin (gguf-cpu.so, gguf-cuda.so, gguf-hip.so).
 *
 * Purpose: plugin.c is the only file that knows the qforge lifecycle table;
 * everything else works on plain C data declared here: the Llama-family
 * hyper-parameters (convert_meta.c), HF <-> llama.cpp tensor names and the
 * Q/K row permutation (convert_names.c), llama-quantize's file types and
 * per-tensor type policy (ftype_policy.c), multithreaded row quantization
 * (quantize_mt.c), HF folder -> GGUF export and GGUF -> GGUF requantization
 * (convert_export.c), GGUF -> HF import (convert_import.c), tokenizer
 * metadata (convert_tokenizer.c) and the describe JSON (describe.c).
 * Errors use the SDK's qf_error (through qf_fail) and always name the file,
 * the field or tensor, and what was expected.
 */
#ifndef QF_GGUF_PLUGIN_H
#define QF_GGUF_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf_file.h"
#include "gguf_imatrix.h"
#include "qforge/plugin.h"

#define QF_GGUF_PLUGIN "gguf"
/* GGML_QNT_VERSION, written as general.quantization_version. */
#define QF_GGUF_QNT_VERSION 2u

/* ------------------------------------------------------------ environment */

/* Callbacks and limits for long operations (filled by plugin.c from the host
 * table). Any callback may be NULL. */
typedef struct qf_gguf_env {
  int n_threads; /* >= 1 */
  void *user;
  void (*log)(void *user, qf_log_level level, const char *msg);
  void (*progress)(void *user, const char *what, uint64_t done, uint64_t total);
} qf_gguf_env;

/* printf-style log line through env->log (no-op when env or log is NULL). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void qf_gguf_logf(const qf_gguf_env *env, qf_log_level level, const char *fmt, ...);

/* ------------------------------------------------------------ hyper-parameters */

typedef enum qf_gguf_arch {
  QF_GGUF_ARCH_UNKNOWN = 0,
  QF_GGUF_ARCH_LLAMA = 1, /* llama and mistral (llama.cpp's "llama") */
  QF_GGUF_ARCH_QWEN2 = 2
} qf_gguf_arch;

/* What the converters need to know about a Llama-family model. Integer
 * fields are -1 / 0 when unknown as stated. */
typedef struct qf_gguf_hparams {
  qf_gguf_arch arch;
  char arch_name[16];  /* general.architecture: "llama" or "qwen2" */
  char model_type[16]; /* HF model_type: "llama", "mistral" or "qwen2" */
  char name[128];      /* general.name ("" if unknown) */
  int64_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx, n_vocab, head_dim;
  int64_t n_expert; /* 0 for dense models */
  float rope_theta, rms_eps;
  /* rope scaling ("" = none): "linear", "yarn", "llama3", ... */
  char rope_type[16];
  float rope_factor, rope_low_freq, rope_high_freq;
  int64_t rope_orig_ctx;                  /* 0 = unknown */
  int tie_embeddings;                     /* 1 / 0 */
  int64_t bos_id, eos_id, pad_id, unk_id; /* -1 = none */
} qf_gguf_hparams;

/* Parse an HF config.json text (`what` names it in messages). Llama,
 * Mistral and Qwen2 (model_type) are supported; QF_ERR_UNSUPPORTED for
 * others, QF_ERR_FORMAT for missing / ill-typed fields. */
qf_status qf_gguf_hparams_from_hf(const char *config_json, const char *what, qf_gguf_hparams *hp,
                                  qf_error *err);
/* Read the hyper-parameters of a GGUF file (llama / qwen2 architectures). */
qf_status qf_gguf_hparams_from_gguf(const qf_gguf_file *f, qf_gguf_hparams *hp, qf_error *err);
/* Set general.* and <arch>.* keys as llama.cpp's converter writes them
 * (u32 integers, f32 floats, rope scaling keys when present). */
qf_status qf_gguf_write_hparams(qf_gguf_writer *w, const qf_gguf_hparams *hp, qf_error *err);
/* An HF config.json object (JSON text, malloc'd, caller frees) describing
 * the model in `f`; torch_dtype as given ("float32", "float16", ...). */
char *qf_gguf_hf_config_json(const qf_gguf_file *f, const qf_gguf_hparams *hp,
                             const char *torch_dtype, int has_output);
/* Write tokenizer.ggml.* keys from an HF tokenizer.json (and, when present
 * beside it, tokenizer_config.json). Best effort: unsupported tokenizer kinds
 * are skipped with a warning; malformed files are errors naming the file. */
qf_status qf_gguf_write_tokenizer(qf_gguf_writer *w, const char *tokenizer_json,
                                  const qf_gguf_hparams *hp, const qf_gguf_env *env, qf_error *err);

/* ------------------------------------------------------------ names */

/* HF checkpoint name -> llama.cpp name ("model.layers.3.mlp.up_proj.weight"
 * -> "blk.3.ffn_up.weight"). Returns 1 when mapped, 0 when the name is not a
 * Llama-family tensor (out is then a copy of `hf`), -1 when the tensor is one
 * llama.cpp drops (rotary inv_freq). */
int qf_gguf_name_hf_to_gguf(const char *hf, char *out, size_t out_size);
/* llama.cpp name -> HF name; 1 when mapped, 0 otherwise (out = copy). */
int qf_gguf_name_gguf_to_hf(const char *gguf, char *out, size_t out_size);
/* Layer number of "blk.N.…", -1 for global tensors. */
int qf_gguf_name_layer(const char *gguf);
/* Heads to use for llama.cpp's Q/K row permutation of this (GGUF-named)
 * tensor: n_head for attn_q, n_head_kv for attn_k (weights and biases) of
 * the llama architecture; 0 when the tensor is not permuted. */
int64_t qf_gguf_qk_heads(const char *gguf, const qf_gguf_hparams *hp);
/* Source row of destination row `row` under the permutation with `n_head`
 * heads over `rows` rows. to_gguf = 1: HF -> GGUF (the converter's permute);
 * 0: GGUF -> HF (transformers' reverse permute). Identity when n_head <= 0
 * or rows is not a multiple of 2 * n_head. */
int64_t qf_gguf_qk_src_row(int64_t row, int64_t rows, int64_t n_head, int to_gguf);

/* ------------------------------------------------------------ file types */

typedef struct qf_gguf_ftype {
  const char *name; /* llama-quantize spelling: "Q4_K_M" */
  int id;           /* LLAMA_FTYPE value (general.file_type) */
  int base_type;    /* ggml type of most tensors */
} qf_gguf_ftype;

/* Case-insensitive file-type name (or its decimal id) -> entry; NULL if none. */
const qf_gguf_ftype *qf_gguf_ftype_find(const char *name);
/* By LLAMA_FTYPE id; NULL if unknown. */
const qf_gguf_ftype *qf_gguf_ftype_by_id(int id);
/* The file type whose tensors are "mostly" ggml type `type` (used for
 * general.file_type of a pure file); NULL if none. */
const qf_gguf_ftype *qf_gguf_ftype_for_type(int type);
/* Comma-separated list of every file-type name (static). */
const char *qf_gguf_ftype_names(void);

/* Model facts the per-tensor policy looks at. */
typedef struct qf_gguf_policy_ctx {
  qf_gguf_arch arch;
  int64_t n_layer, n_head, n_head_kv, n_expert;
  int has_output;  /* the model has output.weight (else token_embd is the head) */
  int has_imatrix; /* an importance matrix is in use */
} qf_gguf_policy_ctx;

/* Type of one 2-D weight under llama-quantize's rules (llama_tensor_get_type,
 * Feb 2025): `gguf_name` is the llama.cpp name, ne0 the row length. Quantized
 * file types only (for F32/F16/BF16 every weight gets the base type). The
 * fallback for rows that are not a multiple of the block size is applied. */
int qf_gguf_policy_type(const qf_gguf_ftype *ft, const char *gguf_name, int64_t ne0,
                        const qf_gguf_policy_ctx *ctx);
/* llama-quantize's fallback of `type` when ne0 is not a multiple of its block
 * size (then F16 when still indivisible); `type` itself when it fits, -1 when
 * nothing fits (ne0 not even a multiple of 1 cannot happen). */
int qf_gguf_fallback_type(int type, int64_t ne0);
/* 1 when llama-quantize refuses to make this tensor type without an imatrix. */
int qf_gguf_type_needs_imatrix(int type, const qf_gguf_ftype *ft, const char *gguf_name);

/* ------------------------------------------------------------ threaded rows */

/* qf_gguf_quantize_rows split over n_threads (rows are independent, so the
 * bytes do not depend on the thread count). Returns bytes written or 0. */
size_t qf_gguf_quantize_mt(int type, const float *src, void *dst, int64_t nrows, int64_t ncols,
                           const float *imatrix, int n_threads);
/* qf_gguf_dequantize_rows split over n_threads. 0 on success, -1 on error. */
int qf_gguf_dequantize_mt(int type, const void *src, float *dst, int64_t nrows, int64_t ncols,
                          int n_threads);

/* ------------------------------------------------------------ containers */

/* One float tensor of an HF checkpoint (borrowed). */
typedef struct qf_gguf_src_tensor {
  const char *name; /* HF name */
  int type;         /* QF_GGUF_TYPE_F32, _F16 or _BF16 */
  int ndim;
  int64_t shape[4]; /* HF order, outermost first */
  const void *data;
} qf_gguf_src_tensor;

/* What to write. */
typedef struct qf_gguf_export_opts {
  const qf_gguf_ftype *ftype; /* file type (general.file_type); never NULL */
  int pure_type;              /* >= 0: every quantized weight gets this type */
  int output_type;            /* >= 0: type of output.weight (tied: token_embd) */
  int token_embd_type;        /* >= 0: type of token_embd.weight */
  const char *imatrix_file;   /* NULL = none */
  const char *tokenizer_json; /* NULL = no tokenizer metadata */
} qf_gguf_export_opts;

/* HF checkpoint (config.json text + float tensors) -> GGUF at out_path,
 * streamed tensor by tensor and published atomically. */
qf_status qf_gguf_export_hf(const qf_gguf_export_opts *o, const qf_gguf_env *env,
                            const char *config_json, const qf_gguf_src_tensor *tensors, size_t n,
                            const char *out_path, qf_error *err);
/* GGUF in_path -> GGUF out_path with a new file type (llama-quantize). */
qf_status qf_gguf_requantize(const qf_gguf_export_opts *o, const qf_gguf_env *env,
                             const char *in_path, const char *out_path, qf_error *err);

/* Receives one HF tensor of an import: dtype is a safetensors name ("F32",
 * "F16", "BF16", "U8", "I32"), data is compact row-major and borrowed for
 * the call. */
typedef qf_status (*qf_gguf_put_fn)(void *user, const char *name, const char *dtype, int ndim,
                                    const int64_t *shape, const void *data, qf_error *err);
/* GGUF in_path -> HF tensors through `put` and an HF config.json (malloc'd,
 * caller frees) in *config_json. keep_quantized: 2-D quantized weights are
 * emitted as U8 blocks + "<name>.ggml_type" I32 (rows still un-permuted). */
qf_status qf_gguf_import(const char *in_path, int keep_quantized, const qf_gguf_env *env,
                         qf_gguf_put_fn put, void *user, char **config_json, qf_error *err);

/* The describe JSON of plugin.h's container_describe (malloc'd, caller
 * frees). */
qf_status qf_gguf_describe(const char *in_path, char **json_out, qf_error *err);

#endif /* QF_GGUF_PLUGIN_H */
