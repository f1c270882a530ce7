/* gguf_quants.h — ggml quantization types as a pure C library (qf_gguf_quants).
 *
 * Purpose: everything the GGUF plugin needs to know about ggml's tensor types, with no
 * dependency on the plugin ABI: the ggml_type table (id <-> name, block size, bytes per
 * block, row size), quantization of float rows with the exact semantics of
 * ggml_quantize_chunk (byte-exact with ggml built with -ffp-contract=off, importance matrix
 * honoured by the same types and in the same way), dequantization bit-exact with ggml's
 * to_float, the activation quantizers Q8_0 / Q8_1 / Q8_K and scalar reference dot products of
 * every weight type with its activation partner (ggml's vec_dot_type pairing).
 *
 * Threading and memory: every function is pure on caller-owned arrays, allocates nothing,
 * keeps no state except a lazily computed, thread-safe CPU-feature choice, and may be called
 * concurrently on disjoint outputs. Rows are independent, so callers parallelise by rows.
 * AVX2 kernels (F16, BF16, Q4_0, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS and MXFP4 quantization with
 * and without imatrix, the imatrix paths of Q4_1/Q5_0/Q5_1, and the dequantizers of all of
 * these types) are picked at run time when the CPU has AVX2+FMA+F16C; they produce the
 * same bytes and float bits as the scalar reference (apart from which NaN a NaN-producing
 * dequantization returns), and the environment variable QF_FORCE_SCALAR=1 forces the scalar
 * path. Not provided: quantization of the lattice types IQ2_XXS/IQ2_XS/IQ2_S/IQ3_XXS/IQ3_S/
 * IQ1_S/IQ1_M (dequantization and dot products are), and NVFP4/Q1_0/Q2_0 kernels (table only).
 */
#ifndef QF_GGUF_QUANTS_H
#define QF_GGUF_QUANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ggml_type ids (ggml.h). Ids 4, 5, 31-33 and 36-38 are removed types (block size 0). */
enum qf_gguf_type {
    QF_GGUF_TYPE_F32 = 0,
    QF_GGUF_TYPE_F16 = 1,
    QF_GGUF_TYPE_Q4_0 = 2,
    QF_GGUF_TYPE_Q4_1 = 3,
    QF_GGUF_TYPE_Q5_0 = 6,
    QF_GGUF_TYPE_Q5_1 = 7,
    QF_GGUF_TYPE_Q8_0 = 8,
    QF_GGUF_TYPE_Q8_1 = 9,
    QF_GGUF_TYPE_Q2_K = 10,
    QF_GGUF_TYPE_Q3_K = 11,
    QF_GGUF_TYPE_Q4_K = 12,
    QF_GGUF_TYPE_Q5_K = 13,
    QF_GGUF_TYPE_Q6_K = 14,
    QF_GGUF_TYPE_Q8_K = 15,
    QF_GGUF_TYPE_IQ2_XXS = 16,
    QF_GGUF_TYPE_IQ2_XS = 17,
    QF_GGUF_TYPE_IQ3_XXS = 18,
    QF_GGUF_TYPE_IQ1_S = 19,
    QF_GGUF_TYPE_IQ4_NL = 20,
    QF_GGUF_TYPE_IQ3_S = 21,
    QF_GGUF_TYPE_IQ2_S = 22,
    QF_GGUF_TYPE_IQ4_XS = 23,
    QF_GGUF_TYPE_I8 = 24,
    QF_GGUF_TYPE_I16 = 25,
    QF_GGUF_TYPE_I32 = 26,
    QF_GGUF_TYPE_I64 = 27,
    QF_GGUF_TYPE_F64 = 28,
    QF_GGUF_TYPE_IQ1_M = 29,
    QF_GGUF_TYPE_BF16 = 30,
    QF_GGUF_TYPE_TQ1_0 = 34,
    QF_GGUF_TYPE_TQ2_0 = 35,
    QF_GGUF_TYPE_MXFP4 = 39,
    QF_GGUF_TYPE_NVFP4 = 40,
    QF_GGUF_TYPE_Q1_0 = 41,
    QF_GGUF_TYPE_Q2_0 = 42,
    QF_GGUF_TYPE_COUNT = 43
};

/* Static description of one ggml type; the table lives for the life of the process. */
typedef struct qf_gguf_type_info {
    int id;                 /* ggml_type id */
    const char *name;       /* ggml spelling: "f32", "q4_K", "iq4_nl", "mxfp4", ... */
    int64_t blck_size;      /* elements per block (1 for plain types) */
    size_t type_size;       /* bytes per block */
    bool is_quantized;      /* block-quantized (blck_size > 1 or a quant type) */
    bool can_quantize;      /* qf_gguf_quantize_rows supports it */
    bool can_dequantize;    /* qf_gguf_dequantize_rows supports it */
    bool needs_imatrix;     /* ggml_quantize_requires_imatrix */
    int vec_dot_type;       /* activation type of its dot product, -1 if none */
} qf_gguf_type_info;

/* Type table. Returns NULL for ids out of range or removed (block size 0). Borrowed. */
const qf_gguf_type_info *qf_gguf_type_get(int type);
/* Case-insensitive lookup of a ggml type name ("Q4_K", "q4_k", "IQ4_NL", "bf16").
 * Returns the id, or -1 when unknown. */
int qf_gguf_type_from_name(const char *name);
/* The ggml name, or NULL for unknown / removed ids. Borrowed static string. */
const char *qf_gguf_type_name(int type);
/* Elements per block, or 0 for unknown / removed ids. */
int64_t qf_gguf_blck_size(int type);
/* Bytes per block, or 0 for unknown / removed ids. */
size_t qf_gguf_type_size(int type);
/* Bytes of one row of ncols elements; 0 when the type is unknown, ncols < 0 or ncols is not
 * a multiple of the block size. */
size_t qf_gguf_row_size(int type, int64_t ncols);
bool qf_gguf_can_quantize(int type);
bool qf_gguf_can_dequantize(int type);

/* Instruction-set choice for the kernels. AUTO honours QF_FORCE_SCALAR and the CPU. */
enum qf_gguf_isa { QF_GGUF_ISA_AUTO = 0, QF_GGUF_ISA_SCALAR = 1, QF_GGUF_ISA_AVX2 = 2 };
/* Whether this machine and build can run the given ISA (AUTO and SCALAR: always). */
bool qf_gguf_isa_supported(int isa);
/* The ISA that AUTO resolves to: "avx2" or "scalar". Static string. */
const char *qf_gguf_isa_name(void);

/* Quantize nrows rows of ncols floats (row-major, src[r*ncols + c]) into dst, which must
 * hold nrows * qf_gguf_row_size(type, ncols) bytes. imatrix (may be NULL) holds ncols
 * importance weights shared by all rows; types that ignore it in ggml ignore it here, and a
 * NULL imatrix selects ggml's reference path exactly as ggml_quantize_chunk does. F32 is a
 * copy, F16/BF16 are rounding conversions. Returns the bytes written, or 0 when the type
 * cannot be quantized, ncols is not a multiple of the block size, a size is negative, or a
 * type that requires an imatrix gets NULL. Never aborts. */
size_t qf_gguf_quantize_rows(int type, const float *src, void *dst, int64_t nrows,
                             int64_t ncols, const float *imatrix);
/* Same with an explicit ISA (SCALAR or AVX2; an unsupported ISA returns 0). */
size_t qf_gguf_quantize_rows_isa(int type, int isa, const float *src, void *dst,
                                 int64_t nrows, int64_t ncols, const float *imatrix);

/* Dequantize nrows rows of ncols elements from src (nrows * row_size bytes) into dst
 * (nrows * ncols floats). Returns 0 on success, -1 on an unsupported type or bad sizes. */
int qf_gguf_dequantize_rows(int type, const void *src, float *dst, int64_t nrows, int64_t ncols);
int qf_gguf_dequantize_rows_isa(int type, int isa, const void *src, float *dst, int64_t nrows,
                                int64_t ncols);

/* Activation quantizers (ggml's *_ref): k values (a multiple of 32, or 256 for Q8_K) into
 * k/32 block_q8_0 (34 B) / block_q8_1 (36 B) or k/256 block_q8_K (292 B). */
void qf_gguf_quantize_row_q8_0(const float *x, void *y, int64_t k);
void qf_gguf_quantize_row_q8_1(const float *x, void *y, int64_t k);
void qf_gguf_quantize_row_q8_K(const float *x, void *y, int64_t k);

/* Scalar reference dot product of n elements: x is a row of `type`, y the same n values
 * quantized to qf_gguf_type_get(type)->vec_dot_type (F32 pairs with F32, F16 with F16,
 * BF16 with BF16). Follows ggml's generic C kernels (integer sums per block, float scaling
 * in ggml's order). Returns 0 and writes *out on success, -1 for an unsupported type or an
 * n that is not a multiple of the block size. */
int qf_gguf_vec_dot(int type, int64_t n, const void *x, const void *y, float *out);

#ifdef __cplusplus
}
#endif

#endif /* QF_GGUF_QUANTS_H */
