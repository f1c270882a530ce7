/* quants_avx2_iq4.c — AVX2 kernels for IQ4_NL and IQ4_XS (same bytes as the scalar path).
 *
 * Purpose: ggml's quantize_row_iq4_nl_impl searches 16 candidate scales per 32-element block,
 * each pass mapping every element to the nearest of the 16 non-linear levels. Here each AVX2
 * lane runs one 32-element block (eight IQ4_NL blocks, or the eight sub-blocks of one IQ4_XS
 * super-block, per vector) with the scalar operation order. The level search replaces the
 * scalar binary search by an equivalent count: for x strictly between the end levels, the
 * binary search stops at ml = #{k in 1..14 : level[k] <= x}, then picks ml or ml+1 by the
 * same strict float comparison; x at or beyond an end level, and NaN (which the binary search
 * sends to 15), are handled as in the scalar code. Groups holding NaN or Inf (input or
 * imatrix) and trailing IQ4_NL blocks that do not fill a vector run the scalar code.
 */
#include "quants_avx2_lanes.h"

#if QF_GGUF_X86_SIMD

typedef struct {
    __m256 lo, hi; /* levels 0..7 and 8..15 as floats */
} levels_v;

QF_AVX2 static inline levels_v levels_load(void) {
    levels_v t;
    float f[16];
    for (int i = 0; i < 16; ++i) f[i] = qf_gguf_kvalues_iq4nl[i];
    t.lo = _mm256_loadu_ps(f);
    t.hi = _mm256_loadu_ps(f + 8);
    return t;
}

QF_AVX2 static inline __m256 levels_at(const levels_v *t, __m256i idx) {
    const __m256 a = _mm256_permutevar8x32_ps(t->lo, idx);
    const __m256 b = _mm256_permutevar8x32_ps(t->hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7))));
}

/* best_index_int8(16, kvalues_iq4nl, x) for every lane */
QF_AVX2 static inline __m256i best_index_v(const levels_v *t, const float *lv, __m256 x) {
    __m256i cnt = _mm256_setzero_si256();
    for (int k = 1; k < 15; ++k) {
        const __m256 le = _mm256_cmp_ps(_mm256_set1_ps(lv[k]), x, _CMP_LE_OQ);
        cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(le));
    }
    const __m256i ml = cnt, mu = _mm256_add_epi32(cnt, _mm256_set1_epi32(1));
    const __m256 lower = _mm256_cmp_ps(_mm256_sub_ps(x, levels_at(t, ml)),
                                       _mm256_sub_ps(levels_at(t, mu), x), _CMP_LT_OQ);
    __m256i r = _mm256_blendv_epi8(mu, ml, _mm256_castps_si256(lower));
    const __m256 top = _mm256_or_ps(_mm256_cmp_ps(x, _mm256_set1_ps(lv[15]), _CMP_GE_OQ),
                                    _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(15), _mm256_castps_si256(top));
    const __m256 bottom = _mm256_cmp_ps(x, _mm256_set1_ps(lv[0]), _CMP_LE_OQ);
    return _mm256_andnot_si256(_mm256_castps_si256(bottom), r);
}

/* The per-block scale search of quantize_row_iq4_nl_impl with ntry = 7; W are the weights. */
QF_AVX2 static __m256 iq4_scale_lanes(const levels_v *t, const float *lv, const __m256 *X,
                                      const __m256 *W) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 max = zero, amax = zero;
    for (int i = 0; i < 32; ++i) {
        const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), X[i]);
        const __m256 m = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = blend(amax, ax, m);
        max = blend(max, X[i], m);
    }
    const __m256 allzero = _mm256_cmp_ps(amax, _mm256_set1_ps(QF_GROUP_MAX_EPS), _CMP_LT_OQ);
    const __m256 d0 = _mm256_div_ps(_mm256_xor_ps(max, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(lv[0]));
    __m256 id = _mm256_div_ps(_mm256_set1_ps(1.0f), d0);
    __m256 sumqx = zero, sumq2 = zero;
    for (int j = 0; j < 32; ++j) {
        const __m256 q = levels_at(t, best_index_v(t, lv, _mm256_mul_ps(id, X[j])));
        const __m256 wq = _mm256_mul_ps(W[j], q);
        sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wq, X[j]));
        sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(wq, q));
    }
    __m256 d = _mm256_and_ps(_mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ), _mm256_div_ps(sumqx, sumq2));
    __m256 best = _mm256_mul_ps(d, sumqx);
    for (int itry = -7; itry <= 7; ++itry) {
        id = _mm256_div_ps(_mm256_set1_ps((float)(itry + qf_gguf_kvalues_iq4nl[0])), max);
        sumqx = sumq2 = zero;
        for (int j = 0; j < 32; ++j) {
            const __m256 q = levels_at(t, best_index_v(t, lv, _mm256_mul_ps(id, X[j])));
            const __m256 wq = _mm256_mul_ps(W[j], q);
            sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wq, X[j]));
            sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(wq, q));
        }
        const __m256 acc = _mm256_and_ps(
            _mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ),
            _mm256_cmp_ps(_mm256_mul_ps(sumqx, sumqx), _mm256_mul_ps(best, sumq2), _CMP_GT_OQ));
        d = blend(d, _mm256_div_ps(sumqx, sumq2), acc);
        best = blend(best, _mm256_mul_ps(d, sumqx), acc);
    }
    return blend(d, zero, allzero);
}

/* levels of all 32 elements of every lane for per-lane reciprocal scales id */
QF_AVX2 static inline void levels_for(const levels_v *t, const float *lv, const __m256 *X,
                                      __m256 id, uint8_t *L) {
    __m256i Lv[32];
    for (int j = 0; j < 32; ++j) Lv[j] = best_index_v(t, lv, _mm256_mul_ps(id, X[j]));
    store_levels(Lv, 32, 32, (int8_t *)L);
}

static inline void pack_q4(const uint8_t *L, uint8_t *q4) {
    for (int j = 0; j < 16; ++j) q4[j] = (uint8_t)(L[j] | (L[16 + j] << 4));
}

/* X, and W = qw ? qw * sqrt(sigma2 + x^2) : x^2, for eight 32-element blocks at x. */
QF_AVX2 static inline void load_xw(const float *x, const float *qw, __m256 sigma2, __m256 *X,
                                   __m256 *W) {
    load_lanes(x, 32, 32, X);
    if (qw) {
        load_lanes(qw, 32, 32, W);
        for (int i = 0; i < 32; ++i) {
            W[i] = _mm256_mul_ps(W[i], _mm256_sqrt_ps(_mm256_add_ps(sigma2, _mm256_mul_ps(X[i], X[i]))));
        }
    } else {
        for (int i = 0; i < 32; ++i) W[i] = _mm256_mul_ps(X[i], X[i]);
    }
}

/* ---- IQ4_NL: eight independent 32-element blocks per vector ------------------------------------ */

QF_AVX2 static void iq4_nl_group(const float *x, const float *qw, qf_block_iq4_nl *y) {
    const levels_v t = levels_load();
    float lv[16];
    for (int i = 0; i < 16; ++i) lv[i] = qf_gguf_kvalues_iq4nl[i];
    __m256 X[32], W[32];
    load_lanes(x, 32, 32, X);
    /* sigma2 of each block: its own sum of squares times 2/32 (X is reloaded by load_xw) */
    __m256 s2 = _mm256_setzero_ps();
    for (int i = 0; i < 32; ++i) s2 = _mm256_add_ps(s2, _mm256_mul_ps(X[i], X[i]));
    s2 = _mm256_mul_ps(s2, _mm256_set1_ps(2.f / 32));
    load_xw(x, qw, s2, X, W);
    const __m256 d = iq4_scale_lanes(&t, lv, X, W);
    const __m256 nz = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ);
    const __m256 id = _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), d));
    float scales[8];
    uint8_t L[256];
    _mm256_storeu_ps(scales, d);
    levels_for(&t, lv, X, id, L);
    for (int b = 0; b < 8; ++b) {
        y[b].d = qf_fp32_to_fp16(scales[b]);
        pack_q4(L + 32 * b, y[b].qs);
    }
}

QF_AVX2 void qf_gguf_quantize_iq4_nl_avx2(const float *src, void *dst, int64_t nrows,
                                          int64_t ncols, const float *imatrix) {
    const int64_t nblock = ncols / 32;
    qf_block_iq4_nl *y = dst;
    for (int64_t r = 0; r < nrows; ++r) {
        const float *xr = src + r * ncols;
        qf_block_iq4_nl *yr = y + r * nblock;
        int64_t b = 0;
        for (; b + 8 <= nblock; b += 8) {
            const float *qw = imatrix ? imatrix + 32 * b : NULL;
            if (any_nonfinite(xr + 32 * b, 256) || (qw && any_nonfinite(qw, 256))) break;
            iq4_nl_group(xr + 32 * b, qw, yr + b);
        }
        /* the rest of the row (a tail, or from a non-finite group on) */
        for (; b < nblock; ++b) {
            const float *qw = imatrix ? imatrix + 32 * b : NULL;
            qf_gguf_quantize_iq4_nl(xr + 32 * b, yr + b, 1, 32, qw);
        }
    }
}

/* ---- IQ4_XS: the eight sub-blocks of one super-block per vector --------------------------------- */

QF_AVX2 static void iq4_xs_block(const float *x, const float *qw, qf_block_iq4_xs *y) {
    const levels_v t = levels_load();
    float lv[16];
    for (int i = 0; i < 16; ++i) lv[i] = qf_gguf_kvalues_iq4nl[i];
    float sigma2 = 0; /* one sequential sum over the super-block, as in ggml */
    for (int j = 0; j < QF_QK_K; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / QF_QK_K;
    __m256 X[32], W[32];
    load_xw(x, qw, _mm256_set1_ps(sigma2), X, W);
    float scales[8];
    _mm256_storeu_ps(scales, iq4_scale_lanes(&t, lv, X, W));
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < 8; ++ib) {
        const float abs_d = fabsf(scales[ib]);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = scales[ib];
        }
    }
    y->scales_h = 0;
    const float d = -max_scale / 32;
    y->d = qf_fp32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    float idl[8];
    for (int ib = 0; ib < 8; ++ib) {
        int l = qf_nearest_int(id * scales[ib]);
        l = QF_MAX(-32, QF_MIN(31, l));
        const float dl = d * l;
        idl[ib] = dl ? 1 / dl : 0.f;
        l += 32;
        const uint8_t l_l = (uint8_t)(l & 0xf), l_h = (uint8_t)(l >> 4);
        if (ib % 2 == 0) y->scales_l[ib / 2] = l_l;
        else y->scales_l[ib / 2] |= (uint8_t)(l_l << 4);
        y->scales_h |= (uint16_t)(l_h << 2 * (ib % 8));
    }
    uint8_t L[QF_QK_K];
    levels_for(&t, lv, X, _mm256_loadu_ps(idl), L);
    for (int i = 0; i < 8; ++i) pack_q4(L + 32 * i, y->qs + 16 * i);
}

QF_AVX2 void qf_gguf_quantize_iq4_xs_avx2(const float *src, void *dst, int64_t nrows,
                                          int64_t ncols, const float *imatrix) {
    QF_K_ROWS(qf_block_iq4_xs, iq4_xs_block, qf_gguf_quantize_iq4_xs)
}

#else /* not x86: the scalar kernels stand in */

void qf_gguf_quantize_iq4_nl_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_iq4_nl(s, d, r, c, im);
}
void qf_gguf_quantize_iq4_xs_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_iq4_xs(s, d, r, c, im);
}

#endif
