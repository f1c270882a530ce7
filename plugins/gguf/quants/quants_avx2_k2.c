/* quants_avx2_k2.c — AVX2 kernels for Q2_K and Q3_K (same bytes as the scalar path).
 *
 * Purpose: lane-parallel versions of the Q2_K and Q3_K quantizers, reference and
 * importance-matrix paths: the sixteen 16-element sub-blocks of a super-block run as two
 * groups of eight lanes through the exact-order scale searches of quants_avx2_lanes.h
 * (make_qkx2_quants with absolute error for the Q2_K reference, make_qkx3_quants for its
 * imatrix path, make_q3_quants with coordinate descent for the Q3_K reference, weighted
 * make_qx_quants for its imatrix path); the super-block scale steps, requantization and
 * packing reuse the scalar helpers. Super-blocks holding NaN or Inf run the scalar code.
 */
#include "quants_avx2_lanes.h"

#if QF_GGUF_X86_SIMD

/* X and importance weights W = qw * sqrt(sigma2 + x^2) of group g, and their lane sums. */
QF_AVX2 static inline __m256 weighted_lanes(const float *x, const float *qw, float sigma2_f,
                                            const __m256 *X, __m256 *W) {
    const __m256 sigma2 = _mm256_set1_ps(sigma2_f);
    load_lanes(qw, 16, 16, W);
    __m256 sw = _mm256_setzero_ps();
    for (int l = 0; l < 16; ++l) {
        W[l] = _mm256_mul_ps(W[l], _mm256_sqrt_ps(_mm256_add_ps(sigma2, _mm256_mul_ps(X[l], X[l]))));
        sw = _mm256_add_ps(sw, W[l]);
    }
    (void)x;
    return sw;
}

static float sum_squares(const float *x) {
    float s = 0;
    for (int j = 0; j < QF_QK_K; ++j) s += x[j] * x[j];
    return s;
}

/* ---- Q2_K ------------------------------------------------------------------------------------ */

QF_AVX2 static void q2_K_block(const float *x, const float *qw, qf_block_q2_K *y) {
    uint8_t L[QF_QK_K];
    float scales[16], mins[16], sw[16];
    const float sigma2 = qw ? sum_squares(x) / QF_QK_K : 0.f;
    for (int g = 0; g < 2; ++g) {
        __m256 X[16], W[16], vs, vm;
        __m256i Lv[16];
        load_lanes(x + 128 * g, 16, 16, X);
        if (qw) {
            _mm256_storeu_ps(sw + 8 * g, weighted_lanes(x, qw + 128 * g, sigma2, X, W));
            qkx_lanes(X, W, 16, 3, -0.9f, 0.05f, 36, false, Lv, &vs, &vm);
        } else {
            for (int l = 0; l < 16; ++l) W[l] = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), X[l]);
            qkx_lanes(X, W, 16, 3, -0.5f, 0.1f, 15, true, Lv, &vs, &vm);
        }
        _mm256_storeu_ps(scales + 8 * g, vs);
        _mm256_storeu_ps(mins + 8 * g, vm);
        store_levels(Lv, 16, 16, (int8_t *)L + 128 * g);
    }
    if (qw) {
        uint8_t Ls[16], Lm[16];
        const float dm = qf_gguf_make_qp_quants(16, 15, scales, Ls, sw);
        const float mm = qf_gguf_make_qp_quants(16, 15, mins, Lm, sw);
        y->d = qf_fp32_to_fp16(dm);
        y->dmin = qf_fp32_to_fp16(mm);
        for (int j = 0; j < 16; ++j) y->scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
    } else {
        const float q4scale = 15.f;
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; ++j) y->scales[j] = (uint8_t)qf_nearest_int(iscale * scales[j]);
            y->d = qf_fp32_to_fp16(max_scale / q4scale);
        } else {
            for (int j = 0; j < 16; ++j) y->scales[j] = 0;
            y->d = qf_fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; ++j) {
                const int l = qf_nearest_int(iscale * mins[j]);
                y->scales[j] = (uint8_t)(y->scales[j] | ((unsigned)l << 4));
            }
            y->dmin = qf_fp32_to_fp16(max_min / q4scale);
        } else {
            y->dmin = qf_fp32_to_fp16(0.f);
        }
    }
    qf_requant_q2_K(x, y, L);
    qf_pack_2bit(L, y->qs);
}

/* ---- Q3_K ------------------------------------------------------------------------------------ */

QF_AVX2 static void q3_K_block(const float *x, const float *qw, qf_block_q3_K *y) {
    int8_t L[QF_QK_K];
    float scales[16], sw[16];
    const float sigma2 = qw ? 2 * sum_squares(x) / QF_QK_K : 0.f;
    for (int g = 0; g < 2; ++g) {
        __m256 X[16], W[16];
        __m256i Lv[16];
        load_lanes(x + 128 * g, 16, 16, X);
        if (qw) {
            _mm256_storeu_ps(sw + 8 * g, weighted_lanes(x, qw + 128 * g, sigma2, X, W));
            _mm256_storeu_ps(scales + 8 * g, qx_lanes(X, W, 16, 4, Lv));
        } else {
            _mm256_storeu_ps(scales + 8 * g, q3_lanes(X, 16, 4, Lv));
        }
        store_levels(Lv, 16, 16, L + 128 * g);
    }
    memset(y->scales, 0, 12);
    if (qw) {
        int8_t Ls[16];
        const float d_block = qf_gguf_make_qx_quants(16, 32, scales, Ls, 1, sw);
        for (int j = 0; j < 16; ++j) qf_q3_set_scale(y->scales, j, Ls[j]);
        y->d = qf_fp32_to_fp16(d_block);
    } else {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                int8_t l = (int8_t)qf_nearest_int(iscale * scales[j]);
                l = (int8_t)(QF_MAX(-32, QF_MIN(31, l)) + 32);
                qf_q3_set_scale(y->scales, j, l);
            }
            y->d = qf_fp32_to_fp16(1 / iscale);
        } else {
            y->d = qf_fp32_to_fp16(0.f);
        }
    }
    qf_finish_q3_K(x, y, L);
}

QF_AVX2 void qf_gguf_quantize_q2_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    QF_K_ROWS(qf_block_q2_K, q2_K_block, qf_gguf_quantize_q2_K)
}

QF_AVX2 void qf_gguf_quantize_q3_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    QF_K_ROWS(qf_block_q3_K, q3_K_block, qf_gguf_quantize_q3_K)
}

#else /* not x86: the scalar kernels stand in */

void qf_gguf_quantize_q2_K_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q2_K(s, d, r, c, im);
}
void qf_gguf_quantize_q3_K_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q3_K(s, d, r, c, im);
}

#endif
