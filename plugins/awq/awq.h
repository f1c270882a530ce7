/*
 * qf_awq_core: the AWQ algorithm and the AutoAWQ on-disk layouts as pure
 * functions on plain arrays. Nothing here knows the plugin ABI beyond the
 * qf_status codes and DLTensor (used by the checkpoint validator), so every
 * piece can be tested without a host.
 *
 * Pieces (one file each):
 *  - pseudo_quant.c   AutoAWQ `pseudo_quantize_tensor` (zero point or not).
 *  - clip_search.c    `_compute_best_clip`: per-group clipping thresholds,
 *                     from calibration tokens or from a Gram/Hessian matrix.
 *  - scale_search.c   `_compute_best_scale`: the activation-aware per-input-
 *                     channel scales, with the loss computed through a
 *                     caller-supplied forward callback.
 *  - pack.c           GEMM / GEMV layouts, AWQ GEMM <-> GPTQ conversion,
 *                     dequantization.
 *  - validate.c       structural checks of a loaded AWQ module.
 *  - config.c         AwqConfig JSON (quantization_config) in and out.
 *  - kernels/cpu_*.c  4-bit linear forward on the CPU.
 *
 * Conventions: a weight W is [N, K] row-major (N outputs, K inputs); a group
 * is `g` consecutive inputs of one output row; `ng = K / g` groups per row.
 * Functions never abort: they return a qf_status (QF_ERR_INVALID_ARGUMENT for
 * shapes that do not fit, QF_ERR_NO_MEMORY, QF_ERR_NUMERIC for NaN input).
 * Unless stated, every pointer argument is borrowed for the duration of the
 * call and every output buffer is caller-owned and caller-sized.
 */
#ifndef QF_AWQ_H
#define QF_AWQ_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QF_AWQ_PACK_NUM 8 /* 4-bit values per int32 */

/* AutoAWQ's nibble interleave for the GEMM layout: nibble i of a word holds
 * column 8c + QF_AWQ_ORDER[i]; column 8c + m lives in nibble
 * QF_AWQ_REVERSE_ORDER[m]. */
extern const int qf_awq_order[8];
extern const int qf_awq_reverse_order[8];

/* ------------------------------------------------------------ pseudo_quant.c */

/* AutoAWQ pseudo_quantize_tensor on a [rows, cols] weight viewed as groups of
 * `group_size` consecutive columns (cols % group_size must be 0). float32
 * arithmetic, one IEEE operation per torch op, round-half-even.
 *  zero_point=1: scale = max(max-min, 1e-5) / (2^bits-1),
 *                zero = clamp(-rint(min/scale), 0, 2^bits-1),
 *                deq = (clamp(rint(w/scale) + zero, 0, 2^bits-1) - zero)*scale
 *  zero_point=0: scale = max(absmax, 1e-5) / (2^(bits-1)-1),
 *                deq = clamp(rint(w/scale), -2^(bits-1), 2^(bits-1)-1)*scale
 * `deq` (rows*cols, may alias `w`), `scales` and `zeros` (rows*cols/group,
 * either may be NULL; zeros is left untouched when zero_point=0) are
 * caller-owned. NaN in `w` is QF_ERR_NUMERIC (AutoAWQ asserts). */
qf_status qf_awq_pseudo_quantize(const float *w, int64_t rows, int64_t cols,
                                 int64_t group_size, int bits, int zero_point,
                                 float *deq, float *scales, float *zeros);

/* One group of `n` values (the inner step of the above; no NaN check). */
void qf_awq_pseudo_quantize_group(const float *w, int64_t n, int bits,
                                  int zero_point, float *deq, float *scale,
                                  float *zero);

/* ------------------------------------------------------------- clip_search.c */

typedef struct qf_awq_clip_opts {
  int n_grid;              /* 20 */
  double max_shrink;       /* 0.5 */
  int64_t n_sample_token;  /* 512 */
  int bits;                /* 4 */
  int zero_point;          /* 1 */
} qf_awq_clip_opts;

/* Defaults of AutoAWQ's _compute_best_clip. */
qf_awq_clip_opts qf_awq_clip_opts_default(void);

/* _compute_best_clip from calibration inputs x [t, k] (all tokens; sampled
 * here with step max(1, t / n_sample_token) as AutoAWQ does). Writes the
 * chosen symmetric threshold per (row, group) into best_max [n, k/g]. */
qf_status qf_awq_clip_search_x(const float *w, int64_t n, int64_t k,
                               int64_t g, const float *x, int64_t t,
                               const qf_awq_clip_opts *opts, float *best_max);

/* The same search with the per-group error taken from a K x K Gram matrix
 * (any positive multiple of Xᵀ X, e.g. GPTQ's Hessian 2/T·XᵀX): for a
 * candidate, err = Δw_gᵀ · H_gg · Δw_g, which is the token-mean of the
 * squared per-group partial output error up to that constant factor. */
qf_status qf_awq_clip_search_gram(const float *w, int64_t n, int64_t k,
                                  int64_t g, const float *gram,
                                  const qf_awq_clip_opts *opts,
                                  float *best_max);

/* W[n, grp, :] = clamp(W[n, grp, :], -best_max, +best_max) in place. */
void qf_awq_apply_clip(float *w, int64_t n, int64_t k, int64_t g,
                       const float *best_max);

/* Does AutoAWQ skip clipping for this module name (q/k projections)? */
int qf_awq_clip_skipped(const char *name);

/* ------------------------------------------------------------ scale_search.c */

/* Per-input-channel mean over rows of |w| / (group absmax + 1e-6) for the
 * concatenation of `n_layers` weights (rows[l] x k each). w_mean: k floats. */
qf_status qf_awq_w_mean(const float *const *w, const int64_t *rows,
                        int n_layers, int64_t k, int64_t g, float *w_mean);

/* x_mean[c] = mean over t tokens of |x[t, c]| (float32 sums, as AutoAWQ). */
void qf_awq_x_mean(const float *x, int64_t t, int64_t k, float *x_mean);

/* Candidate r of the grid: ratio = r / n_grid;
 * duo: s = max(x_mean^ratio / (w_mean^(1-ratio) + 1e-4), 1e-4)
 * else: s = max(x_mean^ratio, 1e-4); then s /= sqrt(max(s)·min(s)) and
 * inf/nan entries become 1. */
void qf_awq_scale_candidate(const float *x_mean, const float *w_mean,
                            int64_t k, int r, int n_grid, int duo_scaling,
                            float *s);

/* The loss callback: given the trial weights of the scaled linears
 * (trial_w[l] = Q(W_l·diag(s))·diag(s)^-1, rows[l] x k, borrowed for the
 * call) write the inspected module's output (out_len floats) into `out`.
 * `scales` is the candidate s (k floats) and `r` its grid index, for callers
 * that need them; r = -1 asks for the reference output with the original
 * weights. Return QF_OK or an error (which aborts the search). */
typedef qf_status (*qf_awq_forward_fn)(void *ctx, int n_layers,
                                       const float *const *trial_w,
                                       const float *scales, int r, float *out);

typedef struct qf_awq_scale_problem {
  int n_layers;              /* linears sharing the input (q,k,v / gate,up) */
  const float *const *w;     /* n_layers weights, rows[l] x k */
  const int64_t *rows;
  int64_t k;
  int64_t group_size;
  int bits;                  /* 4 */
  int zero_point;            /* 1 */
  const float *x_mean;       /* k floats (qf_awq_x_mean of the input) */
  const float *w_mean;       /* k floats, or NULL to compute it */
  int n_grid;                /* 0 = 20 */
  int duo_scaling;           /* 1 = AutoAWQ default */
  qf_awq_forward_fn forward;
  void *ctx;
  int64_t out_len;           /* floats written by forward */
  const float *ref_out;      /* reference output, or NULL: forward(r = -1) */
} qf_awq_scale_problem;

/* _compute_best_scale: try every grid candidate, keep the strictly smallest
 * mean squared output error (outputs clamped to the finite float range, the
 * squares summed in double). best_scales: k floats (caller-owned);
 * best_ratio / best_loss / losses (n_grid doubles, NaN where not finite)
 * may be NULL. Every loss NaN → QF_ERR_NUMERIC. */
qf_status qf_awq_search_scale(const qf_awq_scale_problem *p,
                              float *best_scales, int *best_ratio,
                              double *best_loss, double *losses);

/* A ready-made forward for "the inspected module is the linears
 * themselves": out = [x·W_0ᵀ | x·W_1ᵀ | …] row by row, out_len = t·ΣN_l.
 * x [t, k] is borrowed by the context. */
typedef struct qf_awq_linear_ctx {
  const float *x;
  int64_t t;
  int64_t k;
  const int64_t *rows;
} qf_awq_linear_ctx;
qf_status qf_awq_forward_linears(void *ctx, int n_layers,
                                 const float *const *trial_w,
                                 const float *scales, int r, float *out);

/* ------------------------------------------------------------------ pack.c */

/* GEMM packing of integer matrices with AutoAWQ's OR-of-shifted-int32
 * semantics (values outside 0..15 spill into higher nibbles exactly as
 * torch's `|=` of `x << 4i` does). iw [k, n]; iz [k/g, n] (may be NULL to
 * skip qzeros); qweight [k, n/8]; qzeros [k/g, n/8]. */
qf_status qf_awq_gemm_pack_ints(const int32_t *iw, const int32_t *iz,
                                int64_t n, int64_t k, int64_t g,
                                int32_t *qweight, int32_t *qzeros);

/* WQLinear_GEMM.from_linear: deq [n,k], scales/zeros [n,k/g] float32 (the
 * pseudo_quantize outputs) → qweight [k, n/8], qzeros [k/g, n/8], scales_f16
 * [k/g, n]. Needs n % 8 == 0 and k % g == 0. */
qf_status qf_awq_gemm_pack(const float *deq, const float *scales,
                           const float *zeros, int64_t n, int64_t k, int64_t g,
                           int32_t *qweight, int32_t *qzeros,
                           uint16_t *scales_f16);

/* Unpack the GEMM layout to natural order nibbles: q [k, n], z [k/g, n]
 * (either may be NULL). */
qf_status qf_awq_gemm_unpack(const int32_t *qweight, const int32_t *qzeros,
                             int64_t n, int64_t k, int64_t g, uint8_t *q,
                             uint8_t *z);

/* Dequantize a GEMM module into w [n, k] float32: (q - z) · scale, with the
 * scale given as float32 [k/g, n] (convert f16/bf16 scales first). The
 * product is exact in float32. */
qf_status qf_awq_gemm_dequantize(const int32_t *qweight, const int32_t *qzeros,
                                 const float *scales, int64_t n, int64_t k,
                                 int64_t g, float *w);

/* GEMV layout (WQLinear_GEMV): width of qzeros in int32 words (ZW), or -1
 * when g is unsupported (g must be >= 128, 64 or 32). */
int64_t qf_awq_gemv_zeros_width(int64_t k, int64_t g);

/* WQLinear_GEMV.from_linear: qweight [n, k/8] (natural nibble order along
 * k), qzeros [n, ZW], scales_f16 [n, 8·ZW] (first k/g used, rest 0). */
qf_status qf_awq_gemv_pack(const float *deq, const float *scales,
                           const float *zeros, int64_t n, int64_t k, int64_t g,
                           int32_t *qweight, int32_t *qzeros,
                           uint16_t *scales_f16);

/* Dequantize a GEMV module (scales as float32 [n, 8·ZW]) into w [n, k]. */
qf_status qf_awq_gemv_dequantize(const int32_t *qweight, const int32_t *qzeros,
                                 const float *scales, int64_t n, int64_t k,
                                 int64_t g, float *w);

/* GEMV → GEMM words (same integers, for the kernels): qweight_gemm [k, n/8],
 * qzeros_gemm [k/g, n/8]; scales must be re-laid out by the caller. */
qf_status qf_awq_gemv_to_gemm(const int32_t *qweight, const int32_t *qzeros,
                              int64_t n, int64_t k, int64_t g,
                              int32_t *qweight_gemm, int32_t *qzeros_gemm);

/* AWQ GEMM → GPTQ (AutoAWQ unpack_reorder_pack): gptq_qweight [k/8, n]
 * packed along k, gptq_qzeros [k/g, n/8] packed along n in natural order.
 * v1 = 1 stores zero-1 as whole-word arithmetic (subtract 0x11111111, the
 * borrow AutoAWQ's packing produces for a zero of 0); v1 = 0 stores the true
 * zero (gptq_v2). Scales are shared ([k/g, n] in both). g_idx (k int32, may
 * be NULL) receives k / g. Needs k % 8 == 0. */
qf_status qf_awq_gemm_to_gptq(const int32_t *qweight, const int32_t *qzeros,
                              int64_t n, int64_t k, int64_t g, int v1,
                              int32_t *gptq_qweight, int32_t *gptq_qzeros,
                              int32_t *g_idx);

/* The inverse (exact: the v1 word offset is undone with the same modular
 * arithmetic). */
qf_status qf_awq_gptq_to_gemm(const int32_t *gptq_qweight,
                              const int32_t *gptq_qzeros, int64_t n, int64_t k,
                              int64_t g, int v1, int32_t *qweight,
                              int32_t *qzeros);

/* ----------------------------------------------------------------- block.c */

/* The seven linears of a Llama-family decoder block, in forward order. */
enum {
  QF_AWQ_Q = 0, QF_AWQ_K, QF_AWQ_V, QF_AWQ_O, QF_AWQ_GATE, QF_AWQ_UP, QF_AWQ_DOWN,
  QF_AWQ_N_LINEAR
};
/* Module names relative to the block prefix ("self_attn.q_proj", …). */
extern const char *const qf_awq_block_linear_names[QF_AWQ_N_LINEAR];

/* One block's float tensors, modified in place by qf_awq_block_run (all
 * arrays caller-owned). w[i] is [rows[i], cols[i]]; norms have `hidden`
 * values; the optional biases (NULL = absent) are those AWQ rescales. */
typedef struct qf_awq_block {
  float *w[QF_AWQ_N_LINEAR];
  int64_t rows[QF_AWQ_N_LINEAR], cols[QF_AWQ_N_LINEAR];
  float *ln1, *ln2;           /* input_layernorm, post_attention_layernorm */
  float *ln1_bias, *ln2_bias; /* optional */
  float *v_bias, *up_bias;    /* optional */
  int64_t hidden;
  /* keep[i] = 1: linear i stays float and untouched (a shape AWQ cannot
   * store, or modules_to_not_convert); every group that would scale it or
   * use it as its previous op is skipped, and it is not clipped. */
  int keep[QF_AWQ_N_LINEAR];
  /* results */
  int scaled_vo;              /* the v -> o group ran (v.shape == o.shape) */
  int ratio[4];               /* chosen grid index per group, -1 = skipped */
  double loss[4];
} qf_awq_block;

/* Access to the calibration of this block. `inputs` gives the captured
 * inputs of a linear (borrowed until the next call of any callback);
 * `block_forward` runs the float block with the `n` listed linears
 * replaced by trial weights (n = 0: the float block) into out (out_len).
 * `part_forward` (optional, NULL = score groups 1 and 3 on block_forward)
 * does the same for one part of the block, QF_CALIB_PART_ATTN (self-attention
 * output from the q/k/v inputs) or QF_CALIB_PART_MLP (MLP output from the
 * gate/up inputs), also tokens × hidden = out_len. */
typedef struct qf_awq_block_io {
  void *ctx;
  qf_status (*inputs)(void *ctx, int linear, const float **x, int64_t *tokens,
                      int64_t *k);
  qf_status (*block_forward)(void *ctx, const int *linears,
                             const float *const *w, int n, float *out);
  int64_t out_len;
  qf_status (*part_forward)(void *ctx, int part, const int *linears,
                            const float *const *w, int n, float *out);
} qf_awq_block_io;

typedef struct qf_awq_block_opts {
  int64_t group_size;      /* 128; -1 = whole rows */
  int duo_scaling;         /* 1 */
  int apply_clip;          /* 1 */
  int n_grid;              /* 20 */
  qf_awq_clip_opts clip;   /* clip search settings (bits used for both) */
} qf_awq_block_opts;

qf_awq_block_opts qf_awq_block_opts_default(void);

/* AutoAWQ's token sub-sampling for the clip search: every `step`-th of t
 * tokens, `count` of them. */
void qf_awq_clip_sampling(int64_t t, int64_t n_sample_token, int64_t *step,
                          int64_t *count);

/* Scale search of the four groups, folding, clip search (see block.c).
 * On success b's tensors are the ones to quantize / write. Errors:
 * QF_ERR_INVALID_ARGUMENT for shapes that are not a Llama block,
 * QF_ERR_NUMERIC when every candidate of a group is NaN, or whatever a
 * callback returned. */
qf_status qf_awq_block_run(qf_awq_block *b, const qf_awq_block_io *io,
                           const qf_awq_block_opts *opts);

/* -------------------------------------------------------------- validate.c */

typedef enum qf_awq_layout { QF_AWQ_LAYOUT_GEMM = 0, QF_AWQ_LAYOUT_GEMV = 1 } qf_awq_layout;

/* Shape of a validated module. */
typedef struct qf_awq_module_shape {
  int64_t n;       /* out_features */
  int64_t k;       /* in_features */
  int64_t g;       /* group size actually used */
  int64_t groups;  /* k / g */
} qf_awq_module_shape;

/* Check the tensors of one quantized linear (any pointer may be NULL =
 * missing; bias is optional). `group_size` is the config value (-1 = whole
 * rows). On failure returns QF_ERR_FORMAT (or QF_ERR_UNSUPPORTED for
 * bits != 4) and writes a message naming `prefix`, the tensor and what was
 * expected into msg. Never reads past the declared shapes. */
qf_status qf_awq_validate_module(qf_awq_layout layout, const char *prefix,
                                 const DLTensor *qweight,
                                 const DLTensor *qzeros,
                                 const DLTensor *scales, const DLTensor *bias,
                                 int bits, int64_t group_size,
                                 qf_awq_module_shape *shape, char *msg,
                                 size_t msg_size);

/* Convert a validated scales tensor (f16 / bf16 / f32) to float32. */
void qf_awq_scales_to_f32(const DLTensor *scales, float *out);

/* ---------------------------------------------------------------- config.c */

typedef struct qf_awq_config {
  int bits;                 /* 4 */
  int64_t group_size;       /* 128; -1 = whole row */
  int zero_point;           /* 1 */
  char version[16];         /* lower-cased: gemm, gemv, exllama, ipex */
  qf_awq_layout layout;     /* on-disk layout of that version */
  char **not_convert;       /* modules_to_not_convert (owned), may be NULL */
  size_t n_not_convert;
  int not_convert_is_null;  /* the key was absent or null */
  /* Search options (accepted on input, not written back). */
  int duo_scaling;          /* 1 */
  int apply_clip;           /* 1 */
} qf_awq_config;

/* Parse a quantization_config JSON text. Unknown keys are ignored; accepts
 * AutoAWQ's own names w_bit / q_group_size too. On failure returns
 * QF_ERR_INVALID_ARGUMENT (or QF_ERR_UNSUPPORTED) with msg naming the key.
 * On success *cfg owns its lists: release with qf_awq_config_free. */
qf_status qf_awq_config_parse(const char *json, qf_awq_config *cfg, char *msg,
                              size_t msg_size);
void qf_awq_config_free(qf_awq_config *cfg);

/* to_dict(): {"quant_method":"awq","zero_point":…,"group_size":…,"bits":…,
 * "version":…,"modules_to_not_convert":…}; `extra` names (may be NULL) are
 * appended to modules_to_not_convert. Returns malloc'd text (caller frees
 * with free) or NULL on allocation failure. */
char *qf_awq_config_to_json(const qf_awq_config *cfg, const char *const *extra,
                            size_t n_extra);

/* Does `module` (dotted name without the trailing '.') match one of the
 * config's modules_to_not_convert (substring test, as transformers)? */
int qf_awq_config_skips(const qf_awq_config *cfg, const char *module);

/* printf into msg[msg_size] when msg is non-NULL and msg_size > 0, then
 * return `code` (the messages of validate.c and config.c). */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
qf_status qf__awq_fail(char *msg, size_t msg_size, qf_status code,
                       const char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif /* QF_AWQ_H */
