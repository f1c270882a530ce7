/*
 * Internal interface of the bitsandbytes plugin (qf_bnb_core): the pure
 * algorithm functions (NF4/FP4 blockwise 4-bit, the signed dynamic map and
 * its 8-bit blockwise quantizer, double quantization of absmax, LLM.int8()
 * row-wise quantization), the on-disk format (checkpoint keys, the packed
 * quant_state JSON, BitsAndBytesConfig) and the CPU kernels (dequantize,
 * fused GEMV, GEMM through OpenBLAS, int8 matmul with outlier
 * decomposition). Everything works on plain arrays; only plugin.c knows the
 * plugin ABI. Numerics follow bitsandbytes' CUDA code as described in the
 * project's bitsandbytes spec (section numbers are quoted next to each
 * function). Unless stated otherwise, arrays are caller-owned and borrowed
 * for the duration of the call, and functions never allocate.
 */
#ifndef QF_BNB_H
#define QF_BNB_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ 4-bit types */

typedef enum qf_bnb_qtype { QF_BNB_NF4 = 0, QF_BNB_FP4 = 1 } qf_bnb_qtype;

#define QF_BNB_BLOCKSIZE_MIN 32
#define QF_BNB_BLOCKSIZE_MAX 4096
#define QF_BNB_BLOCKSIZE_DEFAULT 64
#define QF_BNB_NESTED_BLOCKSIZE 256

/* Dequantization tables (spec 1.1/1.2). The FP4 table holds -0.0 at index 8
 * as the CUDA dequantizer does. Static data. */
extern const float qf_bnb_nf4_lut[16];
extern const float qf_bnb_fp4_lut[16];
/* The FP4 table as get_4bit_type("fp4") serializes it (+0.0 at index 8). */
extern const float qf_bnb_fp4_quant_map[16];
/* Dequant LUT of a type (static data). */
const float *qf_bnb_lut(qf_bnb_qtype t);
/* Table written as `weight.quant_map` (static data). */
const float *qf_bnb_quant_map(qf_bnb_qtype t);
/* "nf4" / "fp4"; parse returns -1 for anything else. */
const char *qf_bnb_qtype_name(qf_bnb_qtype t);
int qf_bnb_qtype_parse(const char *s);

/* CUDA dQuantizeNF4 / dQuantizeFP4 on a normalised value (spec 1.3/1.4):
 * strict '>' against the float literals, ties to the lower code, NaN -> 0. */
uint8_t qf_bnb_nf4_code(float x);
uint8_t qf_bnb_fp4_code(float x);
uint8_t qf_bnb_4bit_code(qf_bnb_qtype t, float x);

/* 1 if bs is a power of two in [32, 4096]. */
int qf_bnb_blocksize_valid(int64_t bs);
static inline int64_t qf_bnb_nblocks(int64_t n, int64_t bs) {
  return (n + bs - 1) / bs;
}
static inline int64_t qf_bnb_packed_bytes(int64_t n) { return (n + 1) / 2; }

/* Blockwise 4-bit quantization of n floats (spec 2.2): absmax[nblocks]
 * float32 and packed[(n+1)/2] (even element in the high nibble, odd n
 * padded through the same code path as the kernel's 0.0 padding). */
void qf_bnb_quantize_4bit(qf_bnb_qtype t, const float *x, int64_t n,
                          int64_t bs, uint8_t *packed, float *absmax);
/* Same with an explicit code path (a qf_bnb_isa value): the AVX2 code
 * picker gives the same bytes as the scalar one. */
void qf_bnb_quantize_4bit_isa(int isa, qf_bnb_qtype t, const float *x,
                              int64_t n, int64_t bs, uint8_t *packed,
                              float *absmax);

/* --------------------------------------------- dynamic map and 8-bit blockwise */

/* The signed dynamic map (spec 3.2), built the way torch does it (fmaf
 * linspace model); equals Appendix A bit for bit. Static data, built on
 * first use (thread-safe). */
const float *qf_bnb_dynamic_map(void);
/* Build the map into out[256] (pure). */
void qf_bnb_dynamic_map_build(float out[256]);

/* CUDA dQuantize<0> search over a sorted 256-entry map (spec 4.2). */
uint8_t qf_bnb_code8(const float code[256], float x);

/* 8-bit blockwise quantization (spec 4.1/4.2): out[n] codes, absmax[nb]. */
void qf_bnb_quantize_blockwise8(const float code[256], const float *x,
                                int64_t n, int64_t bs, uint8_t *out,
                                float *absmax);
/* out[i] = code[q[i]] * absmax[i / bs] (float32). */
void qf_bnb_dequantize_blockwise8(const float code[256], const uint8_t *q,
                                  const float *absmax, int64_t n, int64_t bs,
                                  float *out);

/* ------------------------------------------------------------ double quant */

/* Spec 3.1: offset = float32(mean of absmax computed in double); codes[nb]
 * and nested_absmax[ceil(nb/256)] from the dynamic map, blocksize 256. */
void qf_bnb_double_quant(const float *absmax, int64_t nb, uint8_t *codes,
                         float *nested_absmax, float *offset);
/* Spec 3.3: absmax[b] = fl32(fl32(map[codes[b]] * nested[b/nbs]) + offset). */
void qf_bnb_double_dequant(const float map[256], const uint8_t *codes,
                           const float *nested_absmax, int64_t nested_bs,
                           float offset, int64_t nb, float *absmax);

/* ------------------------------------------------------------ LLM.int8() */

/* fl32(1/(127*127)) and fl32(1/127) (spec 5.2). */
#define QF_BNB_INT8_DEQ_SCALE 6.200012e-05f
#define QF_BNB_INV127 7.874015718698502e-3f

/* Weight quantization (spec 5.1, threshold 0): every value is rounded to
 * float16 first; scb[r] = max |h|; q = rint(h * (127/scb)). Returns 0, or
 * -1 if a value overflows float16 (row index in *bad_row). */
int qf_bnb_int8_quantize_weight(const float *w, int64_t rows, int64_t cols,
                                int8_t *cb, float *scb, int64_t *bad_row);
/* Dequantize CB/SCB to float32: fl32(fl32(cb*scb) * (1/127)). */
void qf_bnb_int8_dequantize(const int8_t *cb, const float *scb, int64_t rows,
                            int64_t cols, float *out);

/* Activation quantization with outlier split (spec 5.1, float32 input, no
 * float16 rounding). Entries with |v| >= threshold (threshold > 0) are left
 * out of the row absmax; every column holding such an entry is an outlier
 * column and is zeroed in ca for all rows. outlier_cols[K] gets 1/0 flags
 * (may be NULL when threshold <= 0). Returns the number of outlier columns. */
int64_t qf_bnb_int8_quantize_act(const float *x, int64_t m, int64_t k,
                                 float threshold, int8_t *ca, float *sca,
                                 uint8_t *outlier_cols);

/* ------------------------------------------------------------ CPU kernels */

/* Which code path a kernel call takes. AUTO picks AVX2 when the CPU has it
 * (__builtin_cpu_supports) and the shape allows; results are identical. */
typedef enum qf_bnb_isa {
  QF_BNB_ISA_AUTO = 0,
  QF_BNB_ISA_SCALAR = 1,
  QF_BNB_ISA_AVX2 = 2
} qf_bnb_isa;
int qf_bnb_cpu_has_avx2(void);

/* out[j] = fl32(LUT[q(start+j)] * absmax[(start+j)/bs]), j < count, where
 * q(i) is the nibble of flat element i of `packed`. */
void qf_bnb_dequant4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                     const float *absmax, int64_t bs, int64_t start,
                     int64_t count, float *out);

/* y[n] = sum_k x[k] * W[n,k] for n in [n0, n1), W [N,K] the 4-bit weight.
 * Accumulation order is fixed (32 lanes, fixed reduction tree, then a
 * sequential tail) so both paths give the same bits. */
void qf_bnb_gemv4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                  const float *absmax, int64_t bs, int64_t N, int64_t K,
                  const float *x, float *y, int64_t n0, int64_t n1);

/* Y[M,N] = X[M,K] . W^T for the 4-bit weight: batch 1 uses the fused GEMV
 * split over `threads`; larger batches dequantize row tiles and call
 * cblas_sgemm. Returns 0, or -1 when out of memory. */
int qf_bnb_linear4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                   const float *absmax, int64_t bs, int64_t N, int64_t K,
                   const float *x, int64_t M, float *y, int threads);

/* C[m,n] = sum_k A[m,k] * B[n,k] in int32 (exact), for n in [n0,n1). */
void qf_bnb_int8_gemm(qf_bnb_isa isa, const int8_t *a, int64_t M,
                      const int8_t *b, int64_t N, int64_t K, int32_t *c,
                      int64_t n0, int64_t n1);

/* The whole LLM.int8() linear (spec 5.2 in float32): y[M,N] = x . W^T with
 * W = (cb, scb), outlier columns of x (|v| >= threshold) in float32,
 * optional bias[N] (NULL = none). Returns 0, or -1 when out of memory. */
int qf_bnb_linear8(qf_bnb_isa isa, const int8_t *cb, const float *scb,
                   int64_t N, int64_t K, const float *x, int64_t M,
                   float threshold, const float *bias, float *y, int threads);

/* Run fn(arg, lo, hi) over [0, n) split into `threads` contiguous ranges
 * (threads <= 1 or tiny n: one call on the caller's thread). Returns 0, or
 * -1 if a thread could not be started (the work is then done inline). */
int qf_bnb_parallel_for(int threads, int64_t n, int64_t min_chunk,
                        void (*fn)(void *arg, int64_t lo, int64_t hi),
                        void *arg);

/* ------------------------------------------------------------ format */

/* Python repr() of a double (shortest round trip, "1.0", "1e-05"). */
int qf_bnb_py_float_repr(double v, char *buf, size_t size);

/* Non-tensor fields of a 4-bit QuantState (the packed JSON blob, 6.2). */
typedef struct qf_bnb_qmeta {
  qf_bnb_qtype qtype;
  int64_t blocksize;
  char dtype[16]; /* "float16" | "bfloat16" | "float32" */
  int ndim;
  int64_t shape[8];
  int nested;
  int64_t nested_blocksize;
  float nested_offset;
} qf_bnb_qmeta;

/* Write the JSON exactly as json.dumps does; returns its length (without
 * NUL), or -1 if it does not fit in `size`. */
int qf_bnb_qmeta_to_json(const qf_bnb_qmeta *m, char *buf, size_t size);
/* Parse the blob (len bytes, not NUL-terminated). `what` names the tensor in
 * messages. Returns 0 or -1 with msg filled. */
int qf_bnb_qmeta_parse(const char *json, size_t len, const char *what,
                       qf_bnb_qmeta *out, char *msg, size_t msg_size);

/* BitsAndBytesConfig (hf_quantizer 3.4) plus qforge's `blocksize`. */
typedef struct qf_bnb_config {
  int load_in_4bit, load_in_8bit;
  double llm_int8_threshold;
  int skip_is_null;
  char **skip_modules; /* owned, n_skip strings */
  size_t n_skip;
  int fp32_cpu_offload;
  int has_fp16_weight;
  char compute_dtype[16];
  qf_bnb_qtype quant_type;
  int use_double_quant;
  char quant_storage[16];
  int64_t blocksize;
} qf_bnb_config;

/* Parse config JSON into *c (call qf_bnb_config_free later, also on
 * failure). Returns 0 or -1 with msg naming the key. */
int qf_bnb_config_parse(const char *json, qf_bnb_config *c, char *msg,
                        size_t msg_size);
void qf_bnb_config_free(qf_bnb_config *c);
/* BitsAndBytesConfig.to_dict() as JSON (sorted keys, json.dumps
 * separators). Returns a malloc'ed string (caller frees) or NULL. */
char *qf_bnb_config_to_json(const qf_bnb_config *c);

/* dtype <-> torch names. storage names accept the 6 quant_storage values. */
int qf_bnb_dtype_from_name(const char *name, DLDataType *out);
const char *qf_bnb_dtype_name(DLDataType t); /* NULL if unknown */
size_t qf_bnb_dtype_size(DLDataType t);

/* Checkpoint key suffixes of a 4-bit module, relative to the module prefix. */
#define QF_BNB_K_WEIGHT "weight"
#define QF_BNB_K_ABSMAX "weight.absmax"
#define QF_BNB_K_QMAP "weight.quant_map"
#define QF_BNB_K_NABSMAX "weight.nested_absmax"
#define QF_BNB_K_NQMAP "weight.nested_quant_map"
#define QF_BNB_K_QSTATE "weight.quant_state.bitsandbytes__"
#define QF_BNB_K_SCB "SCB"
#define QF_BNB_K_WFMT "weight_format"

/* Is `name` a bnb statistics key (4-bit or 8-bit)? If so and `prefix` is
 * not NULL, the module prefix (with trailing '.') is written there. */
int qf_bnb_is_stat_key(const char *name, char *prefix, size_t prefix_size);

/* Tensor lookup used by the loaders: fill *out and return 1 if `name`
 * exists, 0 if not. The tensor is borrowed (CPU, compact). */
typedef int (*qf_bnb_find_fn)(void *user, const char *name, DLTensor *out);

/* A loaded 4-bit weight, ready for the kernels. */
typedef struct qf_bnb_w4 {
  qf_bnb_qmeta meta;
  int64_t n;          /* elements of the original weight */
  int64_t rows, cols; /* meta.shape folded to a matrix */
  int64_t nblocks;
  const uint8_t *packed; /* borrowed from the checkpoint */
  float *absmax;         /* owned, float32 (de-nested) */
  DLDataType storage;
} qf_bnb_w4;

/* Gather and validate the tensors of the 4-bit module at `prefix`
 * (spec 6.1/6.3, incl. the older [1, B] layout and any quant_storage).
 * Returns 0, or -1 with a message naming the tensor. */
int qf_bnb_load4(const char *prefix, qf_bnb_find_fn find, void *user,
                 qf_bnb_w4 *out, char *msg, size_t msg_size);
void qf_bnb_w4_free(qf_bnb_w4 *w);

/* A loaded 8-bit weight. */
typedef struct qf_bnb_w8 {
  int64_t rows, cols;
  const int8_t *cb; /* borrowed */
  float *scb;       /* owned */
} qf_bnb_w8;
int qf_bnb_load8(const char *prefix, qf_bnb_find_fn find, void *user,
                 qf_bnb_w8 *out, char *msg, size_t msg_size);
void qf_bnb_w8_free(qf_bnb_w8 *w);

/* Every key under `<prefix>weight.` must be a known QuantState component
 * and exactly one quant_state key may exist (QuantState.from_dict). */
int qf_bnb_check_stat_keys(const char *prefix, const char *const *names,
                           size_t n, char *msg, size_t msg_size);

/* ------------------------------------------------------------ modules */

/* "a.b.weight" -> "a.b." and "weight" -> ""; 0 if not a weight name. */
int qf_bnb_weight_prefix(const char *name, char *prefix, size_t size);
/* Module path of a prefix (trailing '.' removed). */
void qf_bnb_module_of(const char *prefix, char *mod, size_t size);
/* replace_with_bnb_linear's test: the module's own name is listed, or
 * key == path, or key + "." occurs in the path. */
int qf_bnb_module_skipped(const char *mod, char *const *skip, size_t n_skip);
/* Embeddings (nn.Embedding, never converted): *embed*, wte, wpe. */
int qf_bnb_is_embedding(const char *mod);

/* Everything a 4-bit module emits, computed from a float weight. */
typedef struct qf_bnb_q4 {
  uint8_t *packed;       /* bytes (storage-unit padded) */
  int64_t bytes;
  float *absmax;         /* float32 [nb] (plain) */
  uint8_t *codes;        /* uint8 [nb] (double quant) */
  float *nested_absmax;  /* float32 [nnb] (double quant) */
  int64_t nb, nnb;
  qf_bnb_qmeta meta;
  char json[512];
  int json_len;
} qf_bnb_q4;

/* Quantize w[n] (original shape/dtype name given for the JSON). `storage`
 * is the quant_storage itemsize: (n+1)/2 must be a multiple of it.
 * Returns 0, -1 with msg (bad size), or -2 when out of memory. Free with
 * qf_bnb_q4_free (also after a failure). */
int qf_bnb_q4_make(qf_bnb_qtype t, int64_t bs, int double_quant,
                   const float *w, int64_t n, const char *dtype_name, int ndim,
                   const int64_t *shape, int64_t storage, qf_bnb_q4 *out,
                   char *msg, size_t msg_size);
void qf_bnb_q4_free(qf_bnb_q4 *q);

/* printf into msg[size] when msg is non-NULL and size > 0 (the messages of
 * format.c and ckpt.c). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void qf__bnb_set_msg(char *msg, size_t size, const char *fmt, ...);

#ifdef __cplusplus
}
#endif
#endif /* QF_BNB_H */
