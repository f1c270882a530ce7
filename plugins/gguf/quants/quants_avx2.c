/* quants_avx2.c — AVX2 kernels for F16, BF16, Q4_0 and Q8_0 (same bytes as the scalar path).
 *
 * Purpose: vectorised conversions, quantizers and dequantizers for the hot simple types,
 * compiled per function for AVX2+FMA+F16C and chosen at run time (quants_table.c) when
 * __builtin_cpu_supports reports all three. Every lane performs the scalar reference's IEEE
 * operations in the scalar order (no fused multiply-add: the library is built with
 * -ffp-contract=off), maxima are order-independent, ties follow the scalar rule (first index
 * of the largest magnitude), roundf is emulated exactly (truncate, then step away from zero
 * when the exact remainder is >= 0.5), and fp16 rounding uses F16C's round-to-nearest-even.
 * Blocks containing NaN or Inf, blocks whose scale is subnormal (where C's float-to-int8
 * conversion would be out of range) and row tails shorter than a vector go to the scalar code,
 * so the output is byte-identical to the scalar reference for every input.
 */
#include "quants_internal.h"

#include <float.h>
#include <stdatomic.h>

#if QF_GGUF_X86_SIMD
#include <cpuid.h>
#include <immintrin.h>

#define QF_AVX2 __attribute__((target("avx2,fma,f16c")))

/* F16C: CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c"). The OS
 * support for the YMM state is part of __builtin_cpu_supports("avx2"). */
static bool cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

/* The answer is cached (0 unknown, 1 no, 2 yes); racing first calls store the same value. */
static atomic_int g_has_avx2;

bool qf_gguf_cpu_has_avx2(void) {
    int v = atomic_load_explicit(&g_has_avx2, memory_order_relaxed);
    if (!v) {
        __builtin_cpu_init();
        const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         cpu_has_f16c();
        v = yes ? 2 : 1;
        atomic_store_explicit(&g_has_avx2, v, memory_order_relaxed);
    }
    return v == 2;
}

/* ---- helpers --------------------------------------------------------------------------------- */

/* all-ones lanes where the float is NaN or +-Inf */
QF_AVX2 static inline __m256i nonfinite_mask(__m256 v) {
    const __m256i a = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
    return _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f7fffff));
}

QF_AVX2 static inline __m256 abs_ps(__m256 v) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

QF_AVX2 static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* roundf (half away from zero) of every lane, exactly. */
QF_AVX2 static inline __m256 roundf_ps(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 rem = abs_ps(_mm256_sub_ps(v, t)); /* exact */
    const __m256 step = _mm256_or_ps(_mm256_set1_ps(1.0f),
                                     _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
    const __m256 need = _mm256_cmp_ps(rem, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(need, step));
}

/* 32 int32 lanes (in element order across four vectors) -> 32 int8 with saturation. */
QF_AVX2 static inline __m256i pack_i32x32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i p = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ---- F16 / BF16 ------------------------------------------------------------------------------ */

QF_AVX2 void qf_gguf_quantize_f16_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                       const float *imatrix) {
    (void)imatrix;
    uint16_t *y = dst;
    const int64_t n = nrows * ncols;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(src + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            for (int j = 0; j < 8; ++j) y[i + j] = qf_fp32_to_fp16(src[i + j]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; ++i) y[i] = qf_fp32_to_fp16(src[i]);
}

QF_AVX2 void qf_gguf_quantize_bf16_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    (void)imatrix;
    uint16_t *y = dst;
    const int64_t n = nrows * ncols;
    int64_t i = 0;
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; ++h) {
            const __m256i u = _mm256_loadu_si256((const __m256i *)(src + i + 8 * h));
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
            const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
            const __m256i rne = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, odd)), 16);
            const __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
            r[h] = _mm256_blendv_epi8(rne, qn, nan);
        }
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; ++i) y[i] = qf_fp32_to_bf16(src[i]);
}

QF_AVX2 void qf_gguf_dequantize_f16_avx2(const void *src, float *dst, int64_t k) {
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    }
    for (; i < k; ++i) dst[i] = qf_fp16_to_fp32(x[i]);
}

QF_AVX2 void qf_gguf_dequantize_bf16_avx2(const void *src, float *dst, int64_t k) {
    const uint16_t *x = src;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(w, 16));
    }
    for (; i < k; ++i) dst[i] = qf_bf16_to_fp32(x[i]);
}

/* ---- Q8_0 ------------------------------------------------------------------------------------ */

QF_AVX2 static void q8_0_blocks(const float *x, qf_block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        __m256 v[4];
        __m256i bad = _mm256_setzero_si256();
        __m256 amax = _mm256_setzero_ps();
        for (int j = 0; j < 4; ++j) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            bad = _mm256_or_si256(bad, nonfinite_mask(v[j]));
            amax = _mm256_max_ps(amax, abs_ps(v[j]));
        }
        if (!_mm256_testz_si256(bad, bad)) {
            qf_gguf_ref_q8_0(x, &y[i], 32);
            continue;
        }
        const float d = hmax_ps(amax) / ((1 << 7) - 1);
        if (d != 0.0f && d < FLT_MIN) { /* x*id may leave int range: the scalar code decides */
            qf_gguf_ref_q8_0(x, &y[i], 32);
            continue;
        }
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int j = 0; j < 4; ++j) q[j] = _mm256_cvttps_epi32(roundf_ps(_mm256_mul_ps(v[j], vid)));
        _mm256_storeu_si256((__m256i *)y[i].qs, pack_i32x32_to_i8(q[0], q[1], q[2], q[3]));
    }
}

QF_AVX2 void qf_gguf_quantize_q8_0_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    (void)imatrix;
    q8_0_blocks(src, dst, nrows * ncols / 32);
}

QF_AVX2 void qf_gguf_dequantize_q8_0_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q8_0 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const __m256 d = _mm256_set1_ps(qf_fp16_to_fp32(x[i].d));
        for (int j = 0; j < 4; ++j) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].qs + 8 * j)));
            _mm256_storeu_ps(y + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

/* ---- Q4_0 ------------------------------------------------------------------------------------ */

QF_AVX2 static void q4_0_blocks(const float *x, qf_block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        __m256 v[4], a[4];
        __m256i bad = _mm256_setzero_si256();
        __m256 amax = _mm256_setzero_ps();
        for (int j = 0; j < 4; ++j) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            a[j] = abs_ps(v[j]);
            bad = _mm256_or_si256(bad, nonfinite_mask(v[j]));
            amax = _mm256_max_ps(amax, a[j]);
        }
        if (!_mm256_testz_si256(bad, bad)) {
            qf_gguf_quantize_q4_0(x, &y[i], 1, 32, NULL);
            continue;
        }
        const float am = hmax_ps(amax);
        float max = 0.0f;
        if (am > 0.0f) { /* the first element reaching the largest magnitude */
            const __m256 bam = _mm256_set1_ps(am);
            uint32_t hit = 0;
            for (int j = 0; j < 4; ++j) {
                hit |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a[j], bam, _CMP_EQ_OQ)) << (8 * j);
            }
            max = x[__builtin_ctz(hit)];
        }
        const float d = max / -8;
        if (d != 0.0f && fabsf(d) < FLT_MIN) { /* x*id may leave int range */
            qf_gguf_quantize_q4_0(x, &y[i], 1, 32, NULL);
            continue;
        }
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(8.5f);
        const __m256i fifteen = _mm256_set1_epi32(15);
        __m256i q[4];
        for (int j = 0; j < 4; ++j) {
            const __m256 t = _mm256_add_ps(_mm256_mul_ps(v[j], vid), half);
            q[j] = _mm256_min_epi32(_mm256_cvttps_epi32(t), fifteen);
        }
        /* elements 0..15 and 16..31 as int16, then lo | hi << 4 */
        const __m256i lo = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
        const __m256i hi = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xD8);
        const __m256i c = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        const __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
        _mm_storeu_si128((__m128i *)y[i].qs, b);
    }
}

QF_AVX2 void qf_gguf_quantize_q4_0_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    if (imatrix) {
        qf_gguf_quantize_q4_0_avx2_imat(src, dst, nrows, ncols, imatrix);
        return;
    }
    q4_0_blocks(src, dst, nrows * ncols / 32);
}

QF_AVX2 void qf_gguf_dequantize_q4_0_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q4_0 *x = src;
    const int64_t nb = k / 32;
    const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const __m256 d = _mm256_set1_ps(qf_fp16_to_fp32(x[i].d));
        const __m128i raw = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, m4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), eight);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int j = 0; j < 4; ++j) {
            const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[j]));
            _mm256_storeu_ps(y + 8 * j, _mm256_mul_ps(f, d));
        }
    }
}

#else /* not x86: the scalar kernels stand in */

bool qf_gguf_cpu_has_avx2(void) { return false; }
void qf_gguf_quantize_f16_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_f16(s, d, r, c, im);
}
void qf_gguf_quantize_bf16_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_bf16(s, d, r, c, im);
}
void qf_gguf_quantize_q4_0_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q4_0(s, d, r, c, im);
}
void qf_gguf_quantize_q8_0_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q8_0(s, d, r, c, im);
}
void qf_gguf_dequantize_f16_avx2(const void *s, float *d, int64_t k) { qf_gguf_dequantize_f16(s, d, k); }
void qf_gguf_dequantize_bf16_avx2(const void *s, float *d, int64_t k) { qf_gguf_dequantize_bf16(s, d, k); }
void qf_gguf_dequantize_q4_0_avx2(const void *s, float *d, int64_t k) { qf_gguf_dequantize_q4_0(s, d, k); }
void qf_gguf_dequantize_q8_0_avx2(const void *s, float *d, int64_t k) { qf_gguf_dequantize_q8_0(s, d, k); }

#endif
