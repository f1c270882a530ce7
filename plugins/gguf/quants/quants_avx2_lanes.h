/* quants_avx2_lanes.h — lane-parallel scale searches for the AVX2 K-quant kernels.
 *
 * Purpose: AVX2 versions of ggml's make_qkx2/qkx3_quants, make_qx_quants and make_q3_quants
 * in which each of the eight lanes runs one complete sub-block, performing the scalar
 * function's IEEE operations in its exact order (branches become per-lane blends, nearest_int
 * is the same integer trick), so every lane's result is bit-identical to a scalar call. Also
 * the transposition that puts element i of eight sub-blocks into vector i, and the way back.
 * Included only by the quants_avx2_k*.c files; inputs must be finite (callers check).
 */
#ifndef QF_GGUF_QUANTS_AVX2_LANES_H
#define QF_GGUF_QUANTS_AVX2_LANES_H

#include "quants_k_pack.h"

#if QF_GGUF_X86_SIMD
#include <immintrin.h>

#define QF_AVX2 __attribute__((target("avx2,fma,f16c")))

QF_AVX2 static inline void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* X[i] (i < n) lane j = x[stride*j + i]: eight sub-blocks of n (a multiple of 8) elements. */
QF_AVX2 static inline void load_lanes(const float *x, int stride, int n, __m256 *X) {
    for (int b = 0; b < n; b += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(x + stride * j + b);
        transpose8(r);
        for (int i = 0; i < 8; ++i) X[b + i] = r[i];
    }
}

QF_AVX2 static inline __m256i nearest_int_v(__m256 f) {
    const __m256i i = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)),
                            _mm256_set1_epi32(0x00400000));
}

QF_AVX2 static inline __m256i clamp_epi32(__m256i v, int lo, int hi) {
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), v));
}

QF_AVX2 static inline __m256 blend(__m256 a, __m256 b, __m256 mask) {
    return _mm256_blendv_ps(a, b, mask);
}

QF_AVX2 static inline bool any_nonfinite(const float *x, int n) {
    __m256i bad = _mm256_setzero_si256();
    for (int i = 0; i < n; i += 8) {
        const __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)),
                                           _mm256_set1_epi32(0x7fffffff));
        bad = _mm256_or_si256(bad, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f7fffff)));
    }
    return !_mm256_testz_si256(bad, bad);
}

/* squared error, or absolute error when use_mad */
QF_AVX2 static inline __m256 err_v(__m256 diff, bool use_mad) {
    return use_mad ? _mm256_andnot_ps(_mm256_set1_ps(-0.0f), diff) : _mm256_mul_ps(diff, diff);
}

/* ---- make_qkx2_quants / make_qkx3_quants (weights given), one sub-block per lane -------------
 * For finite inputs the two differ only in the degenerate test (max == min vs max <= min),
 * which agree because max >= min always holds after min is clamped to <= 0.               */

QF_AVX2 static inline void qkx_lanes(const __m256 *X, const __m256 *W, int n, int nmax, float rmin,
                                     float rdelta, int nstep, bool use_mad, __m256i *L,
                                     __m256 *out_scale, __m256 *out_the_min) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 min = X[0], max = X[0];
    __m256 sum_w = W[0];
    __m256 sum_x = _mm256_mul_ps(sum_w, X[0]);
    for (int i = 1; i < n; ++i) {
        min = _mm256_min_ps(X[i], min); /* x < min ? x : min */
        max = _mm256_max_ps(X[i], max); /* x > max ? x : max */
        sum_w = _mm256_add_ps(sum_w, W[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(W[i], X[i]));
    }
    min = blend(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
    const __m256 deg = _mm256_cmp_ps(max, min, _CMP_EQ_OQ);
    const __m256 min_deg = min;
    __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)nmax), _mm256_sub_ps(max, min));
    __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
    __m256 best_error = zero;
    for (int i = 0; i < n; ++i) {
        const __m256i l = clamp_epi32(nearest_int_v(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], min))), 0, nmax);
        L[i] = l;
        const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(l)), min), X[i]);
        best_error = _mm256_add_ps(best_error, _mm256_mul_ps(W[i], err_v(diff, use_mad)));
    }
    __m256i Laux[32];
    for (int is = 0; is <= nstep; ++is) {
        /* as in ggml, min is the running (possibly updated) minimum */
        const float num = rmin + rdelta * is + nmax;
        iscale = _mm256_div_ps(_mm256_set1_ps(num), _mm256_sub_ps(max, min));
        __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; ++i) {
            const __m256i l = clamp_epi32(nearest_int_v(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], min))), 0, nmax);
            Laux[i] = l;
            const __m256 wl = _mm256_mul_ps(W[i], _mm256_cvtepi32_ps(l));
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, _mm256_cvtepi32_ps(l)));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, X[i]));
        }
        const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
        const __m256 ok = _mm256_cmp_ps(D, zero, _CMP_GT_OQ);
        if (_mm256_testz_ps(ok, ok)) continue;
        __m256 this_scale = _mm256_div_ps(
            _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
        __m256 this_min = _mm256_div_ps(
            _mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
        const __m256 pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
        this_min = blend(this_min, zero, pos);
        this_scale = blend(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
        __m256 cur_error = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 diff = _mm256_sub_ps(
                _mm256_add_ps(_mm256_mul_ps(this_scale, _mm256_cvtepi32_ps(Laux[i])), this_min), X[i]);
            cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(W[i], err_v(diff, use_mad)));
        }
        const __m256 acc = _mm256_and_ps(ok, _mm256_cmp_ps(cur_error, best_error, _CMP_LT_OQ));
        if (_mm256_testz_ps(acc, acc)) continue;
        const __m256i acci = _mm256_castps_si256(acc);
        for (int i = 0; i < n; ++i) L[i] = _mm256_blendv_epi8(L[i], Laux[i], acci);
        best_error = blend(best_error, cur_error, acc);
        scale = blend(scale, this_scale, acc);
        min = blend(min, this_min, acc);
    }
    /* degenerate lanes (max == min): L = 0, scale 0, the_min = -min */
    const __m256i degi = _mm256_castps_si256(deg);
    for (int i = 0; i < n; ++i) L[i] = _mm256_andnot_si256(degi, L[i]);
    scale = blend(scale, zero, deg);
    min = blend(min, min_deg, deg);
    *out_scale = scale;
    *out_the_min = _mm256_xor_ps(min, _mm256_set1_ps(-0.0f));
}

/* ---- make_qx_quants(n, nmax, x, L, rmse_type 1, W), one sub-block per lane -------------------
 * W holds the weights (x*x for the no-imatrix case). Returns the scales; L gets l + nmax. */

QF_AVX2 static inline __m256 qx_lanes(const __m256 *X, const __m256 *W, int n, int nmax,
                                      __m256i *L) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 max = zero, amax = zero;
    for (int i = 0; i < n; ++i) {
        const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), X[i]);
        const __m256 m = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = blend(amax, ax, m);
        max = blend(max, X[i], m);
    }
    const __m256 allzero = _mm256_cmp_ps(amax, _mm256_set1_ps(QF_GROUP_MAX_EPS), _CMP_LT_OQ);
    __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)-nmax), max);
    __m256 sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; ++i) {
        const __m256i l = clamp_epi32(nearest_int_v(_mm256_mul_ps(iscale, X[i])), -nmax, nmax - 1);
        L[i] = _mm256_add_epi32(l, _mm256_set1_epi32(nmax));
        const __m256 lf = _mm256_cvtepi32_ps(l);
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(W[i], X[i]), lf));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(W[i], lf), lf));
    }
    /* scale = suml2 ? sumlx/suml2 : 0 (a NaN suml2 counts as true, as in C) */
    __m256 scale = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_NEQ_UQ), _mm256_div_ps(sumlx, suml2));
    __m256 best = _mm256_mul_ps(scale, sumlx);
    __m256i Lc[32];
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        const float num = -(nmax + 0.1f * is);
        iscale = _mm256_div_ps(_mm256_set1_ps(num), max);
        sumlx = suml2 = zero;
        for (int i = 0; i < n; ++i) {
            const __m256i l = clamp_epi32(nearest_int_v(_mm256_mul_ps(iscale, X[i])), -nmax, nmax - 1);
            Lc[i] = l;
            const __m256 lf = _mm256_cvtepi32_ps(l);
            sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(W[i], X[i]), lf));
            suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(W[i], lf), lf));
        }
        const __m256 acc = _mm256_and_ps(
            _mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
            _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
        if (_mm256_testz_ps(acc, acc)) continue;
        const __m256i acci = _mm256_castps_si256(acc);
        for (int i = 0; i < n; ++i) {
            L[i] = _mm256_blendv_epi8(L[i], _mm256_add_epi32(Lc[i], _mm256_set1_epi32(nmax)), acci);
        }
        scale = blend(scale, _mm256_div_ps(sumlx, suml2), acc);
        best = blend(best, _mm256_mul_ps(scale, sumlx), acc);
    }
    const __m256i zi = _mm256_castps_si256(allzero);
    for (int i = 0; i < n; ++i) L[i] = _mm256_andnot_si256(zi, L[i]);
    return blend(scale, zero, allzero);
}

/* ---- make_q3_quants(n, nmax, x, L, do_rmse = true), one sub-block per lane -------------------
 * A lane whose pass changed nothing would change nothing in any later pass (the pass is a
 * function of its unchanged state), so running passes until no lane changes is exact. */

QF_AVX2 static inline __m256 q3_lanes(const __m256 *X, int n, int nmax, __m256i *L) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 max = zero, amax = zero;
    for (int i = 0; i < n; ++i) {
        const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), X[i]);
        const __m256 m = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = blend(amax, ax, m);
        max = blend(max, X[i], m);
    }
    const __m256 allzero = _mm256_cmp_ps(amax, _mm256_set1_ps(QF_GROUP_MAX_EPS), _CMP_LT_OQ);
    const __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)-nmax), max);
    __m256 sumlx = zero, suml2 = zero, W[32], Lf[32];
    for (int i = 0; i < n; ++i) {
        const __m256i l = clamp_epi32(nearest_int_v(_mm256_mul_ps(iscale, X[i])), -nmax, nmax - 1);
        L[i] = l;
        Lf[i] = _mm256_cvtepi32_ps(l);
        W[i] = _mm256_mul_ps(X[i], X[i]);
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(W[i], X[i]), Lf[i]));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(W[i], Lf[i]), Lf[i]));
    }
    for (int itry = 0; itry < 5; ++itry) {
        __m256 changed = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 wx = _mm256_mul_ps(W[i], X[i]);
            __m256 slx = _mm256_sub_ps(sumlx, _mm256_mul_ps(wx, Lf[i]));
            const __m256 m1 = _mm256_cmp_ps(slx, zero, _CMP_GT_OQ);
            if (_mm256_testz_ps(m1, m1)) continue;
            __m256 sl2 = _mm256_sub_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(W[i], Lf[i]), Lf[i]));
            const __m256i nl = clamp_epi32(nearest_int_v(_mm256_div_ps(_mm256_mul_ps(X[i], sl2), slx)),
                                           -nmax, nmax - 1);
            const __m256 m2 = _mm256_castsi256_ps(
                _mm256_xor_si256(_mm256_cmpeq_epi32(nl, L[i]), _mm256_set1_epi32(-1)));
            const __m256 nlf = _mm256_cvtepi32_ps(nl);
            slx = _mm256_add_ps(slx, _mm256_mul_ps(wx, nlf));
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(W[i], nlf), nlf));
            const __m256 m3 = _mm256_and_ps(
                _mm256_cmp_ps(sl2, zero, _CMP_GT_OQ),
                _mm256_cmp_ps(_mm256_mul_ps(_mm256_mul_ps(slx, slx), suml2),
                              _mm256_mul_ps(_mm256_mul_ps(sumlx, sumlx), sl2), _CMP_GT_OQ));
            const __m256 acc = _mm256_and_ps(_mm256_and_ps(m1, m2), m3);
            L[i] = _mm256_blendv_epi8(L[i], nl, _mm256_castps_si256(acc));
            Lf[i] = blend(Lf[i], nlf, acc);
            sumlx = blend(sumlx, slx, acc);
            suml2 = blend(suml2, sl2, acc);
            changed = _mm256_or_ps(changed, acc);
        }
        if (_mm256_testz_ps(changed, changed)) break;
    }
    const __m256i zi = _mm256_castps_si256(allzero);
    for (int i = 0; i < n; ++i) {
        L[i] = _mm256_andnot_si256(zi, _mm256_add_epi32(L[i], _mm256_set1_epi32(nmax)));
    }
    const __m256 scale = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ), _mm256_div_ps(sumlx, suml2));
    return blend(scale, zero, allzero);
}

/* lane-major int32 levels back to element order: out[stride*j + i] = L[i] lane j */
QF_AVX2 static inline void store_levels(const __m256i *L, int n, int stride, int8_t *out) {
    int32_t tmp[32][8];
    for (int i = 0; i < n; ++i) _mm256_storeu_si256((__m256i *)tmp[i], L[i]);
    for (int j = 0; j < 8; ++j) {
        for (int i = 0; i < n; ++i) out[stride * j + i] = (int8_t)tmp[i][j];
    }
}

/* Quantize nrows x ncols through PER_BLOCK(x, qw, y) one super-block at a time; the
 * importance weights restart at every row. Non-finite super-blocks use the scalar SCALAR. */
#define QF_K_ROWS(BLOCK, PER_BLOCK, SCALAR)                                                    \
    BLOCK *y = dst;                                                                            \
    const int64_t nbr = ncols / QF_QK_K;                                                       \
    for (int64_t r = 0; r < nrows; ++r) {                                                      \
        for (int64_t i = 0; i < nbr; ++i) {                                                    \
            const float *xb = src + r * ncols + QF_QK_K * i;                                   \
            const float *qw = imatrix ? imatrix + QF_QK_K * i : NULL;                          \
            BLOCK *yb = &y[r * nbr + i];                                                       \
            if (any_nonfinite(xb, QF_QK_K) || (qw && any_nonfinite(qw, QF_QK_K))) {            \
                SCALAR(xb, yb, 1, QF_QK_K, qw);                                                \
            } else {                                                                           \
                PER_BLOCK(xb, qw, yb);                                                         \
            }                                                                                  \
        }                                                                                      \
    }

#endif
#endif /* QF_GGUF_QUANTS_AVX2_LANES_H */
