/*
 * The GPTQ core: pure functions on plain arrays, shared by the plugin, its
 * tests and its benchmark (static library qf_gptq_core). It covers the
 * Hessian accumulation as AutoGPTQ's add_batch does it (hessian.c), the
 * per-row min/max quantizer with its optional MSE grid search (quantizer.c),
 * GPTQ's fasterquant with act_order, static groups, lazy batch updates and
 * damping retries (gptq.c), the AutoGPTQ/GPTQModel checkpoint layout for 2,
 * 3, 4 and 8 bits with the v1 (zero − 1) and v2 zero conventions (pack.c),
 * checkpoint validation (checkpoint.c) and GPTQConfig JSON (config.c).
 * Nothing here knows the plugin ABI beyond its status codes and error
 * struct; every function reports failure through a qf_error and never
 * aborts. Layout conventions: a weight W is [rows = N outputs, cols = K
 * inputs] row-major; integer matrices follow the same [N][K] order unless
 * stated otherwise.
 */
#ifndef QF_GPTQ_H
#define QF_GPTQ_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "qforge/plugin.h"

#define QF_GPTQ_PLUGIN "gptq"

/* Log sink for long operations (damping retries). `user` is passed back. */
typedef void (*qf_gptq_log_fn)(void *user, qf_log_level level,
                               const char *msg);

/* ------------------------------------------------------------ quantizer.c */

/* The per-row quantizer of AutoGPTQ's quantizer.py in weight mode. */
typedef struct qf_gptq_qcfg {
  int bits;             /* 2, 3, 4 or 8 */
  int sym;              /* symmetric: zero fixed at (maxq + 1) / 2 */
  float mse_norm;       /* 0 = off; > 0 = MSE grid search with this norm (2.4) */
  int mse_grid;         /* grid steps (100) */
  float mse_maxshrink;  /* maximal shrink (0.8) */
} qf_gptq_qcfg;

/* maxq = 2^bits − 1 as float. */
static inline float qf_gptq_maxq(int bits) { return (float)((1u << bits) - 1u); }

/* The integer for x: clamp(rne(x / scale) + zero, 0, maxq), as a float. */
static inline float qf_gptq_qint(float x, float scale, float zero, float maxq) {
  float q = rintf(x / scale) + zero;
  if (q < 0.0f) q = 0.0f;
  if (q > maxq) q = maxq;
  return q;
}

/* The fake-quantized value scale · (q − zero). */
static inline float qf_gptq_qdq(float x, float scale, float zero, float maxq) {
  return scale * (qf_gptq_qint(x, scale, zero, maxq) - zero);
}

/* find_params over a column slice given k-major: element (row r, col j) is
 * xt[j * ld + r], r < rows, j < cols. Writes scale[r], zero[r] (zero is a
 * float holding an integer). `work` is caller scratch of 2 * rows floats
 * (only used by the MSE search; may be NULL when mse_norm == 0). */
void qf_gptq_find_params(const qf_gptq_qcfg *cfg, const float *xt,
                         int64_t rows, int64_t cols, int64_t ld, float *scale,
                         float *zero, float *work);

/* ---------------------------------------------------------------- hessian.c */

/* Running H = 2/nsamples · Σ x xᵀ, accumulated exactly like AutoGPTQ's
 * add_batch (rescale by ns/(ns+B), then add sqrt(2/ns)·X products). */
typedef struct qf_gptq_hessian {
  int64_t k;
  int64_t nsamples; /* sequences seen (AutoGPTQ counts sequences) */
  float *h;         /* [k][k], owned */
} qf_gptq_hessian;

/* Allocate a zero Hessian of size k×k. Free with qf_gptq_hessian_free. */
qf_status qf_gptq_hessian_init(qf_gptq_hessian *hs, int64_t k, qf_error *err);
/* Add one batch of `batch` sequences holding `tokens` rows of k inputs
 * (x is [tokens][k], borrowed). */
qf_status qf_gptq_hessian_add_batch(qf_gptq_hessian *hs, const float *x,
                                    int64_t tokens, int64_t batch,
                                    qf_error *err);
void qf_gptq_hessian_free(qf_gptq_hessian *hs);

/* ------------------------------------------------------------------ gptq.c */

typedef struct qf_gptq_opts {
  int bits;                  /* 2, 3, 4, 8 */
  int group_size;            /* -1 or > 0 */
  int sym;
  int desc_act;              /* act_order */
  int static_groups;
  int blocksize;             /* lazy-batch block (128) */
  float damp_percent;        /* 0 < x < 1 (0.01) */
  float damp_auto_increment; /* retry step when Cholesky fails; 0 = no retry */
  float mse_norm;            /* 0 = plain min/max */
  int n_threads;             /* >= 1 */
} qf_gptq_opts;

/* Defaults of AutoGPTQ: 4 bits, group 128, sym, no act_order, damp 0.01. */
void qf_gptq_opts_default(qf_gptq_opts *o);

/* The output of one layer. Arrays are owned (free with qf_gptq_out_free). */
typedef struct qf_gptq_out {
  int64_t rows, cols, ngroups;
  uint8_t *qint;   /* [rows][cols] integers in original column order */
  float *scale;    /* [rows][ngroups]; column g is group g of g_idx */
  float *zero;     /* [rows][ngroups]; true zero points (float integers) */
  int32_t *g_idx;  /* [cols] */
  float *deq;      /* [rows][cols] fake-quantized weight, or NULL */
  double loss;     /* Σ (w − q)² / (2 d²), the OBS loss in H units */
  float damp_used; /* damp fraction that factorised */
  int retries;     /* damping retries needed */
} qf_gptq_out;

/* GPTQ one layer. w: [rows][cols] f32, h: [cols][cols] f32 (both borrowed;
 * h is the accumulated Hessian, not modified). With want_deq the
 * fake-quantized weight is returned too. Errors: bad options / shapes /
 * non-finite input (INVALID_ARGUMENT), Cholesky failing after every retry
 * (NUMERIC), allocation (NO_MEMORY). `log` may be NULL. */
qf_status qf_gptq_quantize(const float *w, const float *h, int64_t rows,
                           int64_t cols, const qf_gptq_opts *o, int want_deq,
                           qf_gptq_log_fn log, void *log_user,
                           qf_gptq_out *out, qf_error *err);

/* Round-to-nearest with the same quantizer and groups (no Hessian): the
 * baseline GPTQ must beat. Same output contract (loss = 0, g_idx = k/g). */
qf_status qf_gptq_rtn(const float *w, int64_t rows, int64_t cols,
                      const qf_gptq_opts *o, int want_deq, qf_gptq_out *out,
                      qf_error *err);

void qf_gptq_out_free(qf_gptq_out *out);

/* Check options; fills err naming the offending field. */
qf_status qf_gptq_opts_check(const qf_gptq_opts *o, qf_error *err);

/* ------------------------------------------------------------------ pack.c */

/* A GPTQ module as stored in a checkpoint (AutoGPTQ layout):
 *   qweight [cols*bits/32][rows] int32, qzeros [ngroups][rows*bits/32]
 *   int32, scales [ngroups][rows] f16 bits, g_idx [cols] int32. */
typedef struct qf_gptq_ckpt {
  int bits;
  int v2;              /* 1: qzeros hold the true zero (gptq_v2) */
  int64_t rows, cols, ngroups;
  int32_t *qweight;
  int32_t *qzeros;
  uint16_t *scales;
  int32_t *g_idx;
  int owned;           /* 1: arrays malloc'ed, freed by qf_gptq_ckpt_free */
} qf_gptq_ckpt;

/* Words per packed stream of n values (n·bits/32, n a multiple of 32/
 * gcd: the packers require n*bits % 32 == 0). */
static inline int64_t qf_gptq_words(int64_t n, int bits) {
  return n * bits / 32;
}

/* Bitstream packing of n values of `bits` bits, value i at bits
 * [bits·i, bits·i+bits) of a little-endian stream; element i of the input
 * is vals[i * stride]; word j of the output is words[j * wstride]. Values
 * are masked to `bits`. */
void qf_gptq_bitpack(const int32_t *vals, int64_t stride, int64_t n, int bits,
                     uint32_t *words, int64_t wstride);
/* Field i of such a stream. */
static inline uint32_t qf_gptq_field(const uint32_t *words, int64_t wstride,
                                     int64_t i, int bits) {
  int64_t bit = (int64_t)bits * i;
  int64_t w = bit >> 5;
  int s = (int)(bit & 31);
  uint64_t v = words[w * wstride] >> s;
  if (s + bits > 32) v |= (uint64_t)words[(w + 1) * wstride] << (32 - s);
  return (uint32_t)(v & ((1u << bits) - 1u));
}

/* Pack a quantized layer. q [rows][cols] integers, scale/zero
 * [rows][ngroups] (true zeros), g_idx [cols]. v2 = 0 writes zero − 1 (v1);
 * a true zero of 0 cannot be stored in v1 and is written as maxq (readers
 * that mask (stored + 1) recover 0); *v1_zero_underflow (may be NULL) gets
 * how many such fields were written. out arrays are allocated (owned). */
qf_status qf_gptq_pack(int bits, int64_t rows, int64_t cols, int64_t ngroups,
                       const uint8_t *q, const float *scale,
                       const float *zero, const int32_t *g_idx, int v2,
                       qf_gptq_ckpt *out, int64_t *v1_zero_underflow,
                       qf_error *err);

/* Integers [rows][cols] from qweight. */
void qf_gptq_unpack_ints(const qf_gptq_ckpt *c, uint8_t *q);
/* True zero points [ngroups][rows] (v1: (stored + 1) & maxq). */
void qf_gptq_unpack_zeros(const qf_gptq_ckpt *c, int32_t *z);
/* Float weight [rows][cols]: scale_f16 · (q − Z). */
void qf_gptq_dequant(const qf_gptq_ckpt *c, float *w);
/* Convert qzeros in place between v1 and v2 (field-wise ±1, masked). */
void qf_gptq_qzeros_convert(int32_t *qzeros, int64_t ngroups, int64_t rows,
                            int bits, int to_v2);
void qf_gptq_ckpt_free(qf_gptq_ckpt *c);

/* ------------------------------------------------------------ checkpoint.c */

/* Tensors of one module of a pre-quantized checkpoint, borrowed. g_idx and
 * bias may be NULL (g_idx then defaults to k / group_size). */
typedef struct qf_gptq_module_tensors {
  const DLTensor *qweight, *qzeros, *scales, *g_idx, *bias;
} qf_gptq_module_tensors;

/* Validate shapes, dtypes, bit width, group count and g_idx range against
 * the config; on success *rows, *cols and *ngroups describe the module. The
 * message names `prefix` and the tensor at fault. */
qf_status qf_gptq_check_module(const char *prefix,
                               const qf_gptq_module_tensors *t, int bits,
                               int group_size, int64_t *rows, int64_t *cols,
                               int64_t *ngroups, qf_error *err);

/* Build a qf_gptq_ckpt view (owned copies, scales converted to f16 bits)
 * from validated tensors. */
qf_status qf_gptq_ckpt_from_tensors(const qf_gptq_module_tensors *t, int bits,
                                    int group_size, int v2, int64_t rows,
                                    int64_t cols, int64_t ngroups,
                                    qf_gptq_ckpt *out, qf_error *err);

/* ---------------------------------------------------------------- config.c */

#define QF_GPTQ_MAX_SKIP 64

/* GPTQConfig (transformers) plus the AutoGPTQ/GPTQModel fields we honour. */
typedef struct qf_gptq_config {
  int bits;
  int group_size;
  double damp_percent;
  double damp_auto_increment;
  int desc_act;
  int sym;
  int true_sequential;
  int static_groups;
  int lm_head;                   /* quantize lm_head too (GPTQModel/vLLM) */
  int v2;                        /* checkpoint_format == "gptq_v2" */
  double mse;                    /* 0 = off, else the norm (true = 2.4) */
  int blocksize;                 /* not a GPTQConfig field; default 128 */
  char *block_name_to_quantize;  /* owned, may be NULL */
  size_t n_skip;                 /* modules_to_not_convert */
  char *skip[QF_GPTQ_MAX_SKIP];  /* owned */
  size_t n_inblock;              /* modules_in_block_to_quantize, flattened */
  char *inblock[QF_GPTQ_MAX_SKIP];
} qf_gptq_config;

/* Parse quantization_config JSON (borrowed). Unknown keys are ignored; a
 * missing `bits` or an ill-typed / out-of-range key is INVALID_ARGUMENT
 * naming the key. Free with qf_gptq_config_free. */
qf_status qf_gptq_config_parse(const char *json, qf_gptq_config *cfg,
                               qf_error *err);
void qf_gptq_config_free(qf_gptq_config *cfg);
/* quantization_config for config.json (the minimal form transformers and
 * vLLM accept, plus checkpoint_format / format). Returns malloc'ed text
 * (caller frees with free) or NULL on allocation failure. */
char *qf_gptq_config_to_json(const qf_gptq_config *cfg);
/* AutoGPTQ's quantize_config.json content; malloc'ed text or NULL. */
char *qf_gptq_config_quantize_config_json(const qf_gptq_config *cfg);
/* Options for qf_gptq_quantize from a config. */
void qf_gptq_config_opts(const qf_gptq_config *cfg, int n_threads,
                         qf_gptq_opts *o);

#endif /* QF_GPTQ_H */
