/* quants_internal.h — block layouts and numeric helpers shared by the ggml quant files.
 *
 * Purpose: the private half of the qf_gguf_quants library. It declares the on-disk block
 * structs of every ggml quantization type (field order and sizes exactly as in
 * ggml-common.h, checked by static asserts), the bit-exact scalar conversions ggml uses
 * (fp32<->fp16 in software, fp32<->bf16, E8M0, round-half-even nearest_int), the
 * K-quant scale search helpers, and the per-type row kernels that quants_table.c wires into
 * the public API of gguf_quants.h. Nothing here depends on the plugin ABI. All multi-byte
 * fields are little-endian; like ggml, the code assumes a little-endian host.
 */
#ifndef QF_GGUF_QUANTS_INTERNAL_H
#define QF_GGUF_QUANTS_INTERNAL_H

#include "gguf_quants.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* x86 SIMD kernels are built unless the target is not x86 or QF_GGUF_NO_SIMD is defined;
 * otherwise their entry points forward to the scalar kernels. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(QF_GGUF_NO_SIMD)
#define QF_GGUF_X86_SIMD 1
#else
#define QF_GGUF_X86_SIMD 0
#endif

#define QF_QK_K 256
#define QF_K_SCALE_SIZE 12
#define QF_GROUP_MAX_EPS 1e-15f
#define QF_IQ1S_DELTA 0.125f
#define QF_IQ1M_DELTA 0.125f

#define QF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QF_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- block layouts (ggml-common.h) ---------------------------------------------------- */

typedef struct { uint16_t d; uint8_t qs[16]; } qf_block_q4_0;
typedef struct { uint16_t d; uint16_t m; uint8_t qs[16]; } qf_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } qf_block_q5_0;
typedef struct { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[16]; } qf_block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } qf_block_q8_0;
typedef struct { uint16_t d; uint16_t s; int8_t qs[32]; } qf_block_q8_1;
typedef struct { uint8_t e; uint8_t qs[16]; } qf_block_mxfp4;
typedef struct { uint16_t d; uint8_t qs[16]; } qf_block_iq4_nl;

typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d; uint16_t dmin; } qf_block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } qf_block_q3_K;
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; } qf_block_q4_K;
typedef struct {
    uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128];
} qf_block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } qf_block_q6_K;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } qf_block_q8_K;

typedef struct { uint16_t d; uint16_t qs[32]; } qf_block_iq2_xxs;
typedef struct { uint16_t d; uint16_t qs[32]; uint8_t scales[8]; } qf_block_iq2_xs;
typedef struct { uint16_t d; uint8_t qs[64]; uint8_t qh[8]; uint8_t scales[8]; } qf_block_iq2_s;
typedef struct { uint16_t d; uint8_t qs[96]; } qf_block_iq3_xxs;
typedef struct {
    uint16_t d; uint8_t qs[64]; uint8_t qh[8]; uint8_t signs[32]; uint8_t scales[4];
} qf_block_iq3_s;
typedef struct { uint16_t d; uint8_t qs[32]; uint16_t qh[8]; } qf_block_iq1_s;
typedef struct { uint8_t qs[32]; uint8_t qh[16]; uint8_t scales[8]; } qf_block_iq1_m;
typedef struct {
    uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128];
} qf_block_iq4_xs;
typedef struct { uint8_t qs[48]; uint8_t qh[4]; uint16_t d; } qf_block_tq1_0;
typedef struct { uint8_t qs[64]; uint16_t d; } qf_block_tq2_0;

_Static_assert(sizeof(qf_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(qf_block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(qf_block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(qf_block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(qf_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(qf_block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(qf_block_mxfp4) == 17, "mxfp4 size");
_Static_assert(sizeof(qf_block_iq4_nl) == 18, "iq4_nl size");
_Static_assert(sizeof(qf_block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(qf_block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(qf_block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(qf_block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(qf_block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(qf_block_q8_K) == 292, "q8_K size");
_Static_assert(sizeof(qf_block_iq2_xxs) == 66, "iq2_xxs size");
_Static_assert(sizeof(qf_block_iq2_xs) == 74, "iq2_xs size");
_Static_assert(sizeof(qf_block_iq2_s) == 82, "iq2_s size");
_Static_assert(sizeof(qf_block_iq3_xxs) == 98, "iq3_xxs size");
_Static_assert(sizeof(qf_block_iq3_s) == 110, "iq3_s size");
_Static_assert(sizeof(qf_block_iq1_s) == 50, "iq1_s size");
_Static_assert(sizeof(qf_block_iq1_m) == 56, "iq1_m size");
_Static_assert(sizeof(qf_block_iq4_xs) == 136, "iq4_xs size");
_Static_assert(sizeof(qf_block_tq1_0) == 54, "tq1_0 size");
_Static_assert(sizeof(qf_block_tq2_0) == 66, "tq2_0 size");

/* ---- lookup tables --------------------------------------------------------------------- */

extern const int8_t qf_gguf_kvalues_iq4nl[16];
extern const int8_t qf_gguf_kvalues_mxfp4[16];
extern const uint8_t qf_gguf_kmask_iq2xs[8];
extern const uint8_t qf_gguf_ksigns_iq2xs[128];
extern const uint64_t qf_gguf_iq2xxs_grid[256];
extern const uint64_t qf_gguf_iq2xs_grid[512];
extern const uint64_t qf_gguf_iq2s_grid[1024];
extern const uint32_t qf_gguf_iq3xxs_grid[256];
extern const uint32_t qf_gguf_iq3s_grid[512];
extern const uint64_t qf_gguf_iq1s_grid[2048];

/* ---- scalar conversions (bit-exact with ggml-impl.h) ------------------------------------ */

static inline uint32_t qf_f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float qf_u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* fp16 -> fp32, ggml's branch-light software routine (exact for every finite value). */
static inline float qf_fp16_to_fp32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = qf_u2f((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = qf_u2f((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t r = sign | (two_w < (1u << 27) ? qf_f2u(denormalized) : qf_f2u(normalized));
    return qf_u2f(r);
}

/* fp32 -> fp16, round to nearest even, overflow to inf, NaN -> 0x7E00 with the sign kept. */
static inline uint16_t qf_fp32_to_fp16(float f) {
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = qf_f2u(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) {
        bias = 0x71000000u;
    }
    base = qf_u2f((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = qf_f2u(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float qf_bf16_to_fp32(uint16_t h) { return qf_u2f((uint32_t)h << 16); }

static inline uint16_t qf_fp32_to_bf16(float f) {
    const uint32_t u = qf_f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 64);
    }
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* E8M0 exponent byte -> 0.5 * 2^(e-127) as ggml's GGML_E8M0_TO_FP32_HALF. */
static inline float qf_e8m0_to_fp32_half(uint8_t e) {
    const uint32_t bits = e < 2 ? (0x00200000u << e) : ((uint32_t)(e - 1) << 23);
    return qf_u2f(bits);
}

/* C's float -> int conversion made total: truncation toward zero, and INT32_MIN for NaN and
 * out-of-range values, which is what x86 (cvttss2si) does for ggml's (int8_t)/(uint8_t)
 * casts of a float; narrowing the result to 8 bits then keeps the low byte. */
static inline int32_t qf_f2i(float f) {
    return (f > -2147483648.f && f < 2147483648.f) ? (int32_t)f : INT32_MIN;
}

/* Round half to even through the 1.5*2^23 trick; valid for |f| <= 4194303. */
static inline int qf_nearest_int(float fval) {
    const float val = fval + 12582912.f;
    int32_t i;
    memcpy(&i, &val, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/* Index of the table value nearest to x (sorted int8 table); ties go to the upper one. */
static inline int qf_best_index_int8(int n, const int8_t *val, float x) {
    if (x <= val[0]) return 0;
    if (x >= val[n - 1]) return n - 1;
    int ml = 0, mu = n - 1;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < val[mav]) mu = mav; else ml = mav;
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

static inline void qf_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ---- K-quant scale searches (quants_k_helpers.c) ---------------------------------------- */

float qf_gguf_make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type,
                             const float *qw);
float qf_gguf_make_q3_quants(int n, int nmax, const float *x, int8_t *L, bool do_rmse);
float qf_gguf_make_qkx2_quants(int n, int nmax, const float *x, const float *weights,
                               uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                               float rdelta, int nstep, bool use_mad);
float qf_gguf_make_qkx3_quants(int n, int nmax, const float *x, const float *weights,
                               uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                               float rdelta, int nstep, bool use_mad);
float qf_gguf_make_qp_quants(int n, int nmax, const float *x, uint8_t *L,
                             const float *quant_weights);

/* ---- per-type kernels -------------------------------------------------------------------
 * quantize_*: (src, dst, nrows, ncols, imatrix) with ggml_quantize_chunk semantics.
 * ref_*: the no-imatrix reference over k contiguous values (k a multiple of the block).
 * dequantize_*: k values from k/blck blocks.                                                */

typedef void (*qf_gguf_quant_fn)(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                 const float *imatrix);
typedef void (*qf_gguf_dequant_fn)(const void *src, float *dst, int64_t k);

void qf_gguf_quantize_f16(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_bf16(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_0(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_1(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_0(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_1(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q8_0(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q2_K(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q3_K(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_K(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_K(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q6_K(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_iq4_nl(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_iq4_xs(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_tq1_0(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_tq2_0(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_mxfp4(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);

/* importance paths of the K-quants, one row of n values (quants_k_imatrix.c) */
void qf_gguf_impl_q2_K(const float *x, void *y, int64_t n, const float *qw);
void qf_gguf_impl_q3_K(const float *x, void *y, int64_t n, const float *qw);
void qf_gguf_impl_q4_K(const float *x, void *y, int64_t n, const float *qw);
void qf_gguf_impl_q5_K(const float *x, void *y, int64_t n, const float *qw);
void qf_gguf_impl_q6_K(const float *x, void *y, int64_t n, const float *qw);

void qf_gguf_ref_q8_0(const float *x, void *y, int64_t k);
void qf_gguf_ref_q8_1(const float *x, void *y, int64_t k);
void qf_gguf_ref_q8_K(const float *x, void *y, int64_t k);

void qf_gguf_dequantize_f16(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_bf16(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q4_0(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q4_1(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q5_0(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q5_1(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q8_0(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q2_K(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q3_K(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q4_K(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q5_K(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q6_K(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q8_K(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq2_xxs(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq2_xs(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq2_s(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq3_xxs(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq3_s(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq1_s(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq1_m(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq4_nl(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq4_xs(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_tq1_0(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_tq2_0(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_mxfp4(const void *src, float *dst, int64_t k);

/* ---- SIMD variants (quants_avx2*.c); same bytes / bits as the scalar ones --------------
 * The quantize_*_avx2 entry points take the same arguments as the scalar ones; when the
 * imatrix is non-NULL they defer to the scalar importance path.                          */

bool qf_gguf_cpu_has_avx2(void);
void qf_gguf_quantize_f16_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_bf16_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_0_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q8_0_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q2_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q3_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_iq4_nl_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_iq4_xs_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_1_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_0_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_1_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_mxfp4_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
/* lane paths of the legacy imatrix quantizers (quants_avx2_legacy.c) */
void qf_gguf_quantize_q4_0_avx2_imat(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_1_avx2_imat(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_0_avx2_imat(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q5_1_avx2_imat(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q4_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_quantize_q6_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols, const float *imatrix);
void qf_gguf_dequantize_f16_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_bf16_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q4_0_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q8_0_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q4_K_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q6_K_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q4_1_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q5_0_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q5_1_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q2_K_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q3_K_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_q5_K_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq4_nl_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_iq4_xs_avx2(const void *src, float *dst, int64_t k);
void qf_gguf_dequantize_mxfp4_avx2(const void *src, float *dst, int64_t k);

#endif /* QF_GGUF_QUANTS_INTERNAL_H */
