/* quants_k_imatrix.c — ggml's K-quants with an importance matrix (quantize_row_*_impl).
 *
 * Purpose: bit-exact scalar versions of the importance-weighted Q2_K..Q6_K row quantizers.
 * Per super-block of 256 the element weight is imatrix[j] * sqrt(sigma2 + x[j]^2) with
 * sigma2 = sum(x^2)/256 (Q2_K) or 2*sum(x^2)/256 (Q3_K, Q4_K, Q5_K); sub-block scales and mins
 * come from make_qkx3_quants / make_qx_quants, the super-block scales from make_qp_quants or
 * make_qx_quants weighted by the sub-block weight sums, and the elements are requantized with
 * the fp16-decoded scales. Q6_K uses the raw imatrix as weights. One call handles one row
 * (n values, n a multiple of 256) with qw pointing at the row's n importance weights.
 */
#include "quants_k_pack.h"

void qf_gguf_impl_q2_K(const float *x, void *vy, int64_t n, const float *quant_weights) {
    qf_block_q2_K *y = vy;
    const int64_t nb = n / QF_QK_K;
    uint8_t L[QF_QK_K];
    uint8_t Laux[16];
    float mins[16], scales[16], sw[16], weight[16];
    uint8_t Ls[16], Lm[16];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        memset(sw, 0, sizeof(sw));
        float sumx2 = 0;
        for (int j = 0; j < QF_QK_K; ++j) sumx2 += x[j] * x[j];
        const float sigma2 = sumx2 / QF_QK_K;
        for (int j = 0; j < 16; ++j) {
            const float *qw = quant_weights + QF_QK_K * i + 16 * j;
            for (int l = 0; l < 16; ++l) {
                weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            }
            for (int l = 0; l < 16; ++l) sw[j] += weight[l];
            scales[j] = qf_gguf_make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j,
                                                 &mins[j], Laux, -0.9f, 0.05f, 36, false);
        }
        const float dm = qf_gguf_make_qp_quants(16, 15, scales, Ls, sw);
        const float mm = qf_gguf_make_qp_quants(16, 15, mins, Lm, sw);
        y[i].d = qf_fp32_to_fp16(dm);
        y[i].dmin = qf_fp32_to_fp16(mm);
        for (int j = 0; j < 16; ++j) y[i].scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
        qf_requant_q2_K(x, &y[i], L);
        qf_pack_2bit(L, y[i].qs);
    }
}

void qf_gguf_impl_q3_K(const float *x, void *vy, int64_t n, const float *quant_weights) {
    qf_block_q3_K *y = vy;
    const int64_t nb = n / QF_QK_K;
    int8_t L[QF_QK_K];
    float scales[16], weight[16], sw[16];
    int8_t Ls[16];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QF_QK_K; ++j) sumx2 += x[j] * x[j];
        const float sigma2 = 2 * sumx2 / QF_QK_K;
        for (int j = 0; j < 16; ++j) {
            if (quant_weights) {
                const float *qw = quant_weights + QF_QK_K * i + 16 * j;
                for (int l = 0; l < 16; ++l) {
                    weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                }
            } else {
                for (int l = 0; l < 16; ++l) weight[l] = x[16 * j + l] * x[16 * j + l];
            }
            float sumw = 0;
            for (int l = 0; l < 16; ++l) sumw += weight[l];
            sw[j] = sumw;
            scales[j] = qf_gguf_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
        }
        memset(y[i].scales, 0, 12);
        const float d_block = qf_gguf_make_qx_quants(16, 32, scales, Ls, 1, sw);
        for (int j = 0; j < 16; ++j) qf_q3_set_scale(y[i].scales, j, Ls[j]);
        y[i].d = qf_fp32_to_fp16(d_block);
        qf_finish_q3_K(x, &y[i], L);
    }
}

/* Shared body of the Q4_K (nmax 15) and Q5_K (nmax 31) importance paths. */
static void impl_k4_block(const float *x, const float *quant_weights, int nmax,
                          uint8_t *scales_out, uint16_t *hd, uint16_t *hdmin, uint8_t *L) {
    uint8_t Laux[32], Ls[8], Lm[8];
    float weights[32], sw[8], mins[8], scales[8];
    float sum_x2 = 0;
    for (int l = 0; l < QF_QK_K; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / QF_QK_K;
    const float av_x = sqrtf(sigma2);
    for (int j = 0; j < 8; ++j) {
        if (quant_weights) {
            const float *qw = quant_weights + 32 * j;
            for (int l = 0; l < 32; ++l) {
                weights[l] = qw[l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
            }
        } else {
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        }
        float sumw = 0;
        for (int l = 0; l < 32; ++l) sumw += weights[l];
        sw[j] = sumw;
        scales[j] = qf_gguf_make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j,
                                             &mins[j], Laux, -0.9f, 0.05f, 36, false);
    }
    const float d_block = qf_gguf_make_qp_quants(8, 63, scales, Ls, sw);
    const float m_block = qf_gguf_make_qp_quants(8, 63, mins, Lm, sw);
    for (int j = 0; j < 8; ++j) {
        /* Q5_K clamps to 63 here, Q4_K does not; make_qp_quants already caps at 63. */
        const uint8_t ls = QF_MIN(63, Ls[j]);
        const uint8_t lm = QF_MIN(63, Lm[j]);
        qf_pack_scale_min_k4(scales_out, j, ls, lm);
    }
    *hd = qf_fp32_to_fp16(d_block);
    *hdmin = qf_fp32_to_fp16(m_block);
    qf_requant_k4(x, *hd, *hdmin, scales_out, nmax, L);
}

void qf_gguf_impl_q4_K(const float *x, void *vy, int64_t n, const float *quant_weights) {
    qf_block_q4_K *y = vy;
    const int64_t nb = n / QF_QK_K;
    uint8_t L[QF_QK_K];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        const float *qw = quant_weights ? quant_weights + QF_QK_K * i : NULL;
        impl_k4_block(x, qw, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        qf_pack_q4_K(L, y[i].qs);
    }
}

void qf_gguf_impl_q5_K(const float *x, void *vy, int64_t n, const float *quant_weights) {
    qf_block_q5_K *y = vy;
    const int64_t nb = n / QF_QK_K;
    uint8_t L[QF_QK_K];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        const float *qw = quant_weights ? quant_weights + QF_QK_K * i : NULL;
        impl_k4_block(x, qw, 31, y[i].scales, &y[i].d, &y[i].dmin, L);
        qf_pack_q5_K(L, y[i].qh, y[i].qs);
    }
}

void qf_gguf_impl_q6_K(const float *x, void *vy, int64_t n, const float *quant_weights) {
    qf_block_q6_K *y = vy;
    const int64_t nb = n / QF_QK_K;
    int8_t L[QF_QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += QF_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            const float *qw = quant_weights ? quant_weights + QF_QK_K * i + 16 * ib : NULL;
            const float scale = qf_gguf_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
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
