/* quants_k.c — ggml's K-quants (Q2_K .. Q6_K) without an importance matrix, and Q8_K.
 *
 * Purpose: bit-exact scalar versions of quantize_row_q{2..6}_K_ref (per sub-block scale/min
 * search with make_qkx2_quants, make_q3_quants or make_qx_quants, 4/6/8-bit super-block
 * scales, then requantization with the fp16-decoded scales), their dequantizers, the Q8_K
 * activation quantizer and the chunk entry points that pick the reference path (whole chunk)
 * or the importance path of quants_k_imatrix.c (row by row), as ggml_quantize_chunk does.
 */
#include "quants_k_pack.h"

/* ---- Q2_K --------------------------------------------------------------------------------- */

static void ref_q2_K(const float *x, qf_block_q2_K *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    uint8_t L[QF_QK_K];
    uint8_t Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = qf_gguf_make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j,
                                                 &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; ++j) y[i].scales[j] = (uint8_t)qf_nearest_int(iscale * scales[j]);
            y[i].d = qf_fp32_to_fp16(max_scale / q4scale);
        } else {
            for (int j = 0; j < 16; ++j) y[i].scales[j] = 0;
            y[i].d = qf_fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; ++j) {
                const int l = qf_nearest_int(iscale * mins[j]);
                y[i].scales[j] = (uint8_t)(y[i].scales[j] | ((unsigned)l << 4));
            }
            y[i].dmin = qf_fp32_to_fp16(max_min / q4scale);
        } else {
            y[i].dmin = qf_fp32_to_fp16(0.f);
        }
        qf_requant_q2_K(x, &y[i], L);
        qf_pack_2bit(L, y[i].qs);
    }
}

void qf_gguf_dequantize_q2_K(const void *src, float *y, int64_t k) {
    const qf_block_q2_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const float min = qf_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n = 0; n < QF_QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                uint8_t sc = x[i].scales[is++];
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l] >> shift) & 3)) - ml;
                sc = x[i].scales[is++];
                dl = d * (sc & 0xF);
                ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3)) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}

/* ---- Q3_K --------------------------------------------------------------------------------- */

static void ref_q3_K(const float *x, qf_block_q3_K *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    int8_t L[QF_QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            scales[j] = qf_gguf_make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                int8_t l = (int8_t)qf_nearest_int(iscale * scales[j]);
                l = (int8_t)(QF_MAX(-32, QF_MIN(31, l)) + 32);
                qf_q3_set_scale(y[i].scales, j, l);
            }
            y[i].d = qf_fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = qf_fp32_to_fp16(0.f);
        }
        qf_finish_q3_K(x, &y[i], L);
    }
}

void qf_gguf_dequantize_q3_K(const void *src, float *y, int64_t k) {
    const qf_block_q3_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d_all = qf_fp16_to_fp32(x[i].d);
        int8_t scales[16];
        for (int j = 0; j < 16; ++j) {
            const int lo = j < 8 ? x[i].scales[j] & 0xF : x[i].scales[j - 8] >> 4;
            const int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (int8_t)(lo | (hi << 4));
        }
        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < QF_QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                float dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * ((int8_t)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
                dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                }
                shift += 2;
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

/* ---- Q4_K / Q5_K -------------------------------------------------------------------------- */

/* Shared reference body: nmax 15 (Q4_K: rmin -1, nstep 20) or 31 (Q5_K: rmin -0.5, nstep 15).
 * Fills the scale bytes, d and dmin, and leaves the requantized levels in L. */
static void ref_k4_block(const float *x, int nmax, float rmin, int nstep, uint8_t *scales_out,
                         uint16_t *hd, uint16_t *hdmin, uint8_t *L) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = qf_gguf_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j,
                                             &mins[j], Laux, rmin, 0.1f, nstep, false);
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
    qf_requant_k4(x, *hd, *hdmin, scales_out, nmax, L);
}

static void ref_q4_K(const float *x, qf_block_q4_K *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    uint8_t L[QF_QK_K];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        ref_k4_block(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        qf_pack_q4_K(L, y[i].qs);
    }
}

static void ref_q5_K(const float *x, qf_block_q5_K *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    uint8_t L[QF_QK_K];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        ref_k4_block(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        qf_pack_q5_K(L, y[i].qh, y[i].qs);
    }
}

void qf_gguf_dequantize_q4_K(const void *src, float *y, int64_t k) {
    const qf_block_q4_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = qf_fp16_to_fp32(x[i].d);
        const float min = qf_fp16_to_fp32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < QF_QK_K; j += 64) {
            qf_get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            qf_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

void qf_gguf_dequantize_q5_K(const void *src, float *y, int64_t k) {
    const qf_block_q5_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = qf_fp16_to_fp32(x[i].d);
        const float min = qf_fp16_to_fp32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QF_QK_K; j += 64) {
            qf_get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            qf_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

/* ---- Q6_K --------------------------------------------------------------------------------- */

static void ref_q6_K(const float *x, qf_block_q6_K *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    int8_t L[QF_QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            const float scale = qf_gguf_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, NULL);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < QF_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = qf_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < 16; ++ib) {
            y[i].scales[ib] = (int8_t)QF_MIN(127, qf_nearest_int(iscale * scales[ib]));
        }
        qf_finish_q6_K(x, &y[i], L);
    }
}

void qf_gguf_dequantize_q6_K(const void *src, float *y, int64_t k) {
    const qf_block_q6_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QF_QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int8_t q1 = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                const int8_t q2 = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                const int8_t q3 = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                const int8_t q4 = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ---- Q8_K (activations) ------------------------------------------------------------------- */

void qf_gguf_ref_q8_K(const float *x, void *vy, int64_t k) {
    qf_block_q8_K *y = vy;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QF_QK_K; ++j) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            /* ggml leaves bsums untouched here; we zero them so output never depends on
             * uninitialised memory (they are only read multiplied by d == 0). */
            y[i].d = 0;
            memset(y[i].qs, 0, QF_QK_K);
            memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QF_QK_K; ++j) {
            const int v = qf_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)QF_MIN(127, v);
        }
        for (int j = 0; j < QF_QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void qf_gguf_quantize_row_q8_K(const float *x, void *y, int64_t k) { qf_gguf_ref_q8_K(x, y, k); }

void qf_gguf_dequantize_q8_K(const void *src, float *y, int64_t k) {
    const qf_block_q8_K *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        for (int j = 0; j < QF_QK_K; ++j) *y++ = x[i].d * x[i].qs[j];
    }
}

/* ---- chunk entry points ------------------------------------------------------------------- */

#define QF_K_CHUNK(NAME, BLOCK, REF, IMPL)                                                   \
    void qf_gguf_quantize_##NAME(const float *src, void *dst, int64_t nrows, int64_t ncols,  \
                                 const float *imatrix) {                                     \
        if (!imatrix) {                                                                      \
            REF(src, (BLOCK *)dst, nrows * ncols);                                           \
            return;                                                                          \
        }                                                                                    \
        BLOCK *y = dst;                                                                      \
        for (int64_t r = 0; r < nrows; ++r) {                                                \
            IMPL(src + r * ncols, y + r * (ncols / QF_QK_K), ncols, imatrix);                \
        }                                                                                    \
    }

QF_K_CHUNK(q2_K, qf_block_q2_K, ref_q2_K, qf_gguf_impl_q2_K)
QF_K_CHUNK(q3_K, qf_block_q3_K, ref_q3_K, qf_gguf_impl_q3_K)
QF_K_CHUNK(q4_K, qf_block_q4_K, ref_q4_K, qf_gguf_impl_q4_K)
QF_K_CHUNK(q5_K, qf_block_q5_K, ref_q5_K, qf_gguf_impl_q5_K)
QF_K_CHUNK(q6_K, qf_block_q6_K, ref_q6_K, qf_gguf_impl_q6_K)
