/* quants_avx2_k.c — AVX2 kernels for Q4_K, Q5_K and Q6_K (same bytes as the scalar path).
 *
 * Purpose: the K-quant quantizers spend their time in per-sub-block searches
 * (make_qkx2/qkx3_quants for Q4_K and Q5_K, make_qx_quants for Q6_K) whose float sums must
 * keep ggml's sequential order. So instead of vectorising inside a sub-block, each AVX2 lane
 * runs one whole sub-block (quants_avx2_lanes.h): Q4_K/Q5_K's eight 32-element sub-blocks
 * fill one vector, Q6_K's sixteen 16-element sub-blocks take two. Both the reference path and
 * the importance-matrix path are vectorised; the cheap super-block steps (make_qp_quants on
 * eight values, scale packing, requantization, bit packing) reuse the scalar helpers, and the
 * one sequential sum of squares per super-block stays scalar. Super-blocks holding NaN or Inf
 * run the scalar code. Also vectorised dequantizers for Q4_K and Q6_K.
 */
#include "quants_avx2_lanes.h"

#if QF_GGUF_X86_SIMD

/* ---- Q4_K / Q5_K ------------------------------------------------------------------------------ */

/* Levels and scale bytes of one Q4_K (nmax 15) or Q5_K (nmax 31) super-block, reference path
 * (qw == NULL: make_qkx2_quants with weights av_x + |x|) or importance path (make_qkx3_quants
 * with weights qw * sqrt(sigma2 + x^2), then make_qp_quants on the scales and mins). */
QF_AVX2 static void k4_block(const float *x, const float *qw, int nmax, uint8_t *scales_out,
                             uint16_t *hd, uint16_t *hdmin, uint8_t *L) {
    __m256 X[32], W[32];
    load_lanes(x, 32, 32, X);
    __m256i Lv[32];
    __m256 vs, vm;
    float scales[8], mins[8];
    if (!qw) {
        __m256 sum_x2 = _mm256_setzero_ps();
        for (int l = 0; l < 32; ++l) sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(X[l], X[l]));
        const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(32.f)));
        for (int l = 0; l < 32; ++l) W[l] = _mm256_add_ps(av_x, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), X[l]));
        if (nmax == 15) qkx_lanes(X, W, 32, 15, -1.f, 0.1f, 20, false, Lv, &vs, &vm);
        else qkx_lanes(X, W, 32, 31, -0.5f, 0.1f, 15, false, Lv, &vs, &vm);
        _mm256_storeu_ps(scales, vs);
        _mm256_storeu_ps(mins, vm);
        store_levels(Lv, 32, 32, (int8_t *)L);
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; ++j) {
            uint8_t ls = (uint8_t)qf_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)qf_nearest_int(inv_min * mins[j]);
            ls = QF_MIN(63, ls);
            lm = QF_MIN(63, lm);
            qf_pack_scale_min_k4(scales_out, j, ls, lm);
        }
        *hd = qf_fp32_to_fp16(max_scale / 63.f);
        *hdmin = qf_fp32_to_fp16(max_min / 63.f);
    } else {
        float sum_x2 = 0; /* one sequential sum over the super-block, as in ggml */
        for (int l = 0; l < QF_QK_K; ++l) sum_x2 += x[l] * x[l];
        const __m256 sigma2 = _mm256_set1_ps(2 * sum_x2 / QF_QK_K);
        load_lanes(qw, 32, 32, W);
        __m256 sw = _mm256_setzero_ps();
        for (int l = 0; l < 32; ++l) {
            W[l] = _mm256_mul_ps(W[l], _mm256_sqrt_ps(_mm256_add_ps(sigma2, _mm256_mul_ps(X[l], X[l]))));
            sw = _mm256_add_ps(sw, W[l]);
        }
        qkx_lanes(X, W, 32, nmax, -0.9f, 0.05f, 36, false, Lv, &vs, &vm);
        float swf[8];
        uint8_t Ls[8], Lm[8];
        _mm256_storeu_ps(scales, vs);
        _mm256_storeu_ps(mins, vm);
        _mm256_storeu_ps(swf, sw);
        store_levels(Lv, 32, 32, (int8_t *)L);
        const float d_block = qf_gguf_make_qp_quants(8, 63, scales, Ls, swf);
        const float m_block = qf_gguf_make_qp_quants(8, 63, mins, Lm, swf);
        for (int j = 0; j < 8; ++j) {
            qf_pack_scale_min_k4(scales_out, j, QF_MIN(63, Ls[j]), QF_MIN(63, Lm[j]));
        }
        *hd = qf_fp32_to_fp16(d_block);
        *hdmin = qf_fp32_to_fp16(m_block);
    }
    qf_requant_k4(x, *hd, *hdmin, scales_out, nmax, L);
}

QF_AVX2 static void q4_K_block(const float *x, const float *qw, qf_block_q4_K *y) {
    uint8_t L[QF_QK_K];
    k4_block(x, qw, 15, y->scales, &y->d, &y->dmin, L);
    qf_pack_q4_K(L, y->qs);
}

QF_AVX2 static void q5_K_block(const float *x, const float *qw, qf_block_q5_K *y) {
    uint8_t L[QF_QK_K];
    k4_block(x, qw, 31, y->scales, &y->d, &y->dmin, L);
    qf_pack_q5_K(L, y->qh, y->qs);
}

QF_AVX2 void qf_gguf_quantize_q4_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    QF_K_ROWS(qf_block_q4_K, q4_K_block, qf_gguf_quantize_q4_K)
}

QF_AVX2 void qf_gguf_quantize_q5_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    QF_K_ROWS(qf_block_q5_K, q5_K_block, qf_gguf_quantize_q5_K)
}

/* ---- Q6_K ------------------------------------------------------------------------------------ */

QF_AVX2 static void q6_K_block(const float *x, const float *qw, qf_block_q6_K *y) {
    int8_t L[QF_QK_K];
    float scales[16];
    for (int g = 0; g < 2; ++g) {
        __m256 X[16], W[16];
        __m256i Lv[16];
        load_lanes(x + 128 * g, 16, 16, X);
        if (qw) {
            load_lanes(qw + 128 * g, 16, 16, W);
        } else {
            for (int i = 0; i < 16; ++i) W[i] = _mm256_mul_ps(X[i], X[i]);
        }
        _mm256_storeu_ps(scales + 8 * g, qx_lanes(X, W, 16, 32, Lv));
        store_levels(Lv, 16, 16, L + 128 * g);
    }
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
        const float abs_scale = fabsf(scales[ib]);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < QF_GROUP_MAX_EPS) {
        memset(y, 0, sizeof(*y));
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = qf_fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y->scales[ib] = (int8_t)QF_MIN(127, qf_nearest_int(iscale * scales[ib]));
    qf_finish_q6_K(x, y, L);
}

QF_AVX2 void qf_gguf_quantize_q6_K_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                        const float *imatrix) {
    QF_K_ROWS(qf_block_q6_K, q6_K_block, qf_gguf_quantize_q6_K)
}

/* ---- dequantizers ------------------------------------------------------------------------------ */

QF_AVX2 void qf_gguf_dequantize_q4_K_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q4_K *x = src;
    const int64_t nb = k / QF_QK_K;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = qf_fp16_to_fp32(x[i].d);
        const float min = qf_fp16_to_fp32(x[i].dmin);
        for (int j = 0; j < 4; ++j, q += 32) {
            uint8_t sc, m;
            for (int h = 0; h < 2; ++h) {
                qf_get_scale_min_k4(2 * j + h, x[i].scales, &sc, &m);
                const __m256 d1 = _mm256_set1_ps(d * sc), m1 = _mm256_set1_ps(min * m);
                for (int part = 0; part < 2; ++part) {
                    __m128i raw = _mm_loadu_si128((const __m128i *)(q + 16 * part));
                    if (h) raw = _mm_srli_epi16(raw, 4);
                    raw = _mm_and_si128(raw, m4);
                    const __m128i halves[2] = {raw, _mm_unpackhi_epi64(raw, raw)};
                    for (int e = 0; e < 2; ++e) {
                        const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(halves[e]));
                        _mm256_storeu_ps(y + 16 * part + 8 * e, _mm256_sub_ps(_mm256_mul_ps(d1, f), m1));
                    }
                }
                y += 32;
            }
        }
    }
}

QF_AVX2 void qf_gguf_dequantize_q6_K_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q6_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QF_QK_K; n += 128) {
            for (int l0 = 0; l0 < 32; l0 += 8) {
                const __m256i vl0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + l0)));
                const __m256i vl1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + l0 + 32)));
                const __m256i vh = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qh + l0)));
                const __m256i m4 = _mm256_set1_epi32(0xF), m3 = _mm256_set1_epi32(3);
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(vl0, m4), _mm256_slli_epi32(_mm256_and_si256(vh, m3), 4)),
                    _mm256_or_si256(_mm256_and_si256(vl1, m4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 2), m3), 4)),
                    _mm256_or_si256(_mm256_srli_epi32(vl0, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 4), m3), 4)),
                    _mm256_or_si256(_mm256_srli_epi32(vl1, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 6), m3), 4)),
                };
                const int is = l0 / 16;
                for (int t = 0; t < 4; ++t) {
                    const __m256 ds = _mm256_set1_ps(d * sc[is + 2 * t]);
                    const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(q[t], _mm256_set1_epi32(32)));
                    _mm256_storeu_ps(y + 32 * t + l0, _mm256_mul_ps(ds, f));
                }
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

#else /* not x86: the scalar kernels stand in */

void qf_gguf_quantize_q4_K_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q4_K(s, d, r, c, im);
}
void qf_gguf_quantize_q6_K_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q6_K(s, d, r, c, im);
}
void qf_gguf_quantize_q5_K_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q5_K(s, d, r, c, im);
}
void qf_gguf_dequantize_q4_K_avx2(const void *s, float *d, int64_t k) { qf_gguf_dequantize_q4_K(s, d, k); }
void qf_gguf_dequantize_q6_K_avx2(const void *s, float *d, int64_t k) { qf_gguf_dequantize_q6_K(s, d, k); }

#endif
