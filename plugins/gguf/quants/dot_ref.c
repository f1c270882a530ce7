/* dot_ref.c — scalar reference dot products: plain, legacy and K-quant weight types.
 *
 * Purpose: faithful scalar versions of ggml's generic vec_dot kernels for F32, F16, BF16,
 * Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4 x Q8_0, Q4_1/Q5_1 x Q8_1 and Q2_K..Q6_K/IQ4_XS x Q8_K. Integer
 * products are summed per block (per sub-block with the integer scale for the K-quants,
 * which fold their mins in through Q8_K's bsums), then scaled in float in ggml's order; the
 * K-quant kernels keep ggml's eight float lane accumulators so rounding matches the generic
 * C path. These are the reference for linear_forward, not tuned kernels.
 */
#include "dot_ref.h"
#include "quants_internal.h"

float qf_gguf_dot_f32(int n, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double sumf = 0.0;
    for (int i = 0; i < n; ++i) sumf += (double)(x[i] * y[i]);
    return (float)sumf;
}

float qf_gguf_dot_f16(int n, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sumf = 0.0;
    for (int i = 0; i < n; ++i) sumf += (double)(qf_fp16_to_fp32(x[i]) * qf_fp16_to_fp32(y[i]));
    return (float)sumf;
}

float qf_gguf_dot_bf16(int n, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sumf = 0.0;
    for (int i = 0; i < n; ++i) sumf += (double)(qf_bf16_to_fp32(x[i]) * qf_bf16_to_fp32(y[i]));
    return (float)sumf;
}

float qf_gguf_dot_q4_0_q8_0(int n, const void *vx, const void *vy) {
    const qf_block_q4_0 *x = vx;
    const qf_block_q8_0 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < 16; ++j) {
            const int v0 = (x[ib].qs[j] & 0x0F) - 8;
            const int v1 = (x[ib].qs[j] >> 4) - 8;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + 16];
        }
        const int sumi = sumi0 + sumi1;
        sumf += sumi * qf_fp16_to_fp32(x[ib].d) * qf_fp16_to_fp32(y[ib].d);
    }
    return sumf;
}

float qf_gguf_dot_q4_1_q8_1(int n, const void *vx, const void *vy) {
    const qf_block_q4_1 *x = vx;
    const qf_block_q8_1 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < 16; ++j) {
            const int v0 = x[ib].qs[j] & 0x0F;
            const int v1 = x[ib].qs[j] >> 4;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + 16];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (qf_fp16_to_fp32(x[ib].d) * qf_fp16_to_fp32(y[ib].d)) * sumi +
                qf_fp16_to_fp32(x[ib].m) * qf_fp16_to_fp32(y[ib].s);
    }
    return sumf;
}

float qf_gguf_dot_q5_0_q8_0(int n, const void *vx, const void *vy) {
    const qf_block_q5_0 *x = vx;
    const qf_block_q8_0 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        uint32_t qh;
        memcpy(&qh, x[ib].qh, sizeof(qh));
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < 16; ++j) {
            const uint8_t xh_0 = (uint8_t)(((qh & (1u << j)) >> j) << 4);
            const uint8_t xh_1 = (uint8_t)((qh & (1u << (j + 16))) >> (j + 12));
            const int32_t x0 = (int8_t)(((x[ib].qs[j] & 0x0F) | xh_0) - 16);
            const int32_t x1 = (int8_t)(((x[ib].qs[j] >> 4) | xh_1) - 16);
            sumi0 += x0 * y[ib].qs[j];
            sumi1 += x1 * y[ib].qs[j + 16];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (qf_fp16_to_fp32(x[ib].d) * qf_fp16_to_fp32(y[ib].d)) * sumi;
    }
    return sumf;
}

float qf_gguf_dot_q5_1_q8_1(int n, const void *vx, const void *vy) {
    const qf_block_q5_1 *x = vx;
    const qf_block_q8_1 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        uint32_t qh;
        memcpy(&qh, x[ib].qh, sizeof(qh));
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < 16; ++j) {
            const uint8_t xh_0 = (uint8_t)(((qh >> j) << 4) & 0x10);
            const uint8_t xh_1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            const int32_t x0 = (x[ib].qs[j] & 0xF) | xh_0;
            const int32_t x1 = (x[ib].qs[j] >> 4) | xh_1;
            sumi0 += x0 * y[ib].qs[j];
            sumi1 += x1 * y[ib].qs[j + 16];
        }
        const int sumi = sumi0 + sumi1;
        sumf += (qf_fp16_to_fp32(x[ib].d) * qf_fp16_to_fp32(y[ib].d)) * sumi +
                qf_fp16_to_fp32(x[ib].m) * qf_fp16_to_fp32(y[ib].s);
    }
    return sumf;
}

float qf_gguf_dot_q8_0_q8_0(int n, const void *vx, const void *vy) {
    const qf_block_q8_0 *x = vx;
    const qf_block_q8_0 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += sumi * (qf_fp16_to_fp32(x[ib].d) * qf_fp16_to_fp32(y[ib].d));
    }
    return sumf;
}

float qf_gguf_dot_mxfp4_q8_0(int n, const void *vx, const void *vy) {
    const qf_block_mxfp4 *x = vx;
    const qf_block_q8_0 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        const float d = qf_fp16_to_fp32(y[ib].d) * qf_e8m0_to_fp32_half(x[ib].e);
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < 16; ++j) {
            sumi1 += y[ib].qs[j] * qf_gguf_kvalues_mxfp4[x[ib].qs[j] & 0xf];
            sumi2 += y[ib].qs[j + 16] * qf_gguf_kvalues_mxfp4[x[ib].qs[j] >> 4];
        }
        sumf += d * (sumi1 + sumi2);
    }
    return sumf;
}

float qf_gguf_dot_iq4_nl_q8_0(int n, const void *vx, const void *vy) {
    const qf_block_iq4_nl *x = vx;
    const qf_block_q8_0 *y = vy;
    const int nb = n / 32;
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        const float d = qf_fp16_to_fp32(y[ib].d) * qf_fp16_to_fp32(x[ib].d);
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < 16; ++j) {
            sumi1 += y[ib].qs[j] * qf_gguf_kvalues_iq4nl[x[ib].qs[j] & 0xf];
            sumi2 += y[ib].qs[j + 16] * qf_gguf_kvalues_iq4nl[x[ib].qs[j] >> 4];
        }
        sumf += d * (sumi1 + sumi2);
    }
    return sumf;
}

/* ---- K-quants x Q8_K ------------------------------------------------------------------------ */

float qf_gguf_dot_q2_K_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_q2_K *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * qf_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * qf_fp16_to_fp32(x[i].dmin);
        int isum = 0, is = 0;
        for (int k = 0; k < QF_QK_K / 128; ++k) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                int d = sc[is++] & 0xF;
                int isuml = 0;
                for (int l = 0; l < 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                d = sc[is++] & 0xF;
                isuml = 0;
                for (int l = 16; l < 32; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                shift += 2;
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * isum - dmin * summs;
    }
    return sumf;
}

/* The eight-lane accumulation shared by the Q3_K..Q6_K generic kernels: a[] holds the signed
 * levels, scale(j) the integer scale of 16-element group j. */
static inline void lanes_accumulate(const int8_t *q8, const int8_t *a, const int *scales16,
                                    int32_t aux32[8]) {
    int16_t aux16[8];
    memset(aux32, 0, 8 * sizeof(int32_t));
    for (int j = 0; j < QF_QK_K / 16; ++j) {
        for (int half = 0; half < 2; ++half) {
            for (int l = 0; l < 8; ++l) aux16[l] = (int16_t)(q8[l] * a[l]);
            for (int l = 0; l < 8; ++l) aux32[l] += scales16[j] * aux16[l];
            q8 += 8;
            a += 8;
        }
    }
}

float qf_gguf_dot_q3_K_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_q3_K *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    int8_t aux8[QF_QK_K];
    int32_t aux32[8];
    float sums[8] = {0};
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q3 = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        int8_t *a = aux8;
        uint8_t m = 1;
        for (int j = 0; j < QF_QK_K; j += 128) {
            for (int s = 0; s < 8; s += 2) {
                for (int l = 0; l < 32; ++l) {
                    a[l] = (int8_t)(((q3[l] >> s) & 3) - (hm[l] & m ? 0 : 4));
                }
                a += 32;
                m = (uint8_t)(m << 1);
            }
            q3 += 32;
        }
        int scales[16];
        for (int j = 0; j < 16; ++j) {
            const int lo = j < 8 ? x[i].scales[j] & 0xF : x[i].scales[j - 8] >> 4;
            const int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (lo | (hi << 4)) - 32;
        }
        lanes_accumulate(y[i].qs, aux8, scales, aux32);
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

/* Q4_K / Q5_K share everything but the level extraction (hbits NULL for Q4_K). */
static float dot_k4(int n, const qf_block_q4_K *x4, const qf_block_q5_K *x5,
                    const qf_block_q8_K *y) {
    const int nb = n / QF_QK_K;
    int8_t aux8[QF_QK_K];
    int32_t aux32[8];
    float sums[8] = {0};
    float sumf = 0;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q4 = x4 ? x4[i].qs : x5[i].qs;
        const uint8_t *hm = x4 ? NULL : x5[i].qh;
        const uint8_t *sc12 = x4 ? x4[i].scales : x5[i].scales;
        const uint16_t hd = x4 ? x4[i].d : x5[i].d;
        const uint16_t hdmin = x4 ? x4[i].dmin : x5[i].dmin;
        int8_t *a = aux8;
        uint8_t m = 1;
        for (int j = 0; j < QF_QK_K / 64; ++j) {
            for (int l = 0; l < 32; ++l) a[l] = (int8_t)((q4[l] & 0xF) + (hm && (hm[l] & m) ? 16 : 0));
            a += 32;
            m = (uint8_t)(m << 1);
            for (int l = 0; l < 32; ++l) a[l] = (int8_t)((q4[l] >> 4) + (hm && (hm[l] & m) ? 16 : 0));
            a += 32;
            m = (uint8_t)(m << 1);
            q4 += 32;
        }
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; ++j) qf_get_scale_min_k4(j, sc12, &sc[j], &mn[j]);
        int sumi = 0;
        for (int j = 0; j < QF_QK_K / 16; ++j) sumi += y[i].bsums[j] * mn[j / 2];
        int scales[16];
        for (int j = 0; j < 16; ++j) scales[j] = sc[j / 2];
        lanes_accumulate(y[i].qs, aux8, scales, aux32);
        const float d = qf_fp16_to_fp32(hd) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
        const float dmin = qf_fp16_to_fp32(hdmin) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

float qf_gguf_dot_q4_K_q8_K(int n, const void *vx, const void *vy) {
    return dot_k4(n, vx, NULL, vy);
}

float qf_gguf_dot_q5_K_q8_K(int n, const void *vx, const void *vy) {
    return dot_k4(n, NULL, vx, vy);
}

float qf_gguf_dot_q6_K_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_q6_K *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    int8_t aux8[QF_QK_K];
    int32_t aux32[8];
    float sums[8] = {0};
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q4 = x[i].ql;
        const uint8_t *qh = x[i].qh;
        int8_t *a = aux8;
        for (int j = 0; j < QF_QK_K; j += 128) {
            for (int l = 0; l < 32; ++l) {
                a[l + 0] = (int8_t)(((q4[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                a[l + 32] = (int8_t)(((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                a[l + 64] = (int8_t)(((q4[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                a[l + 96] = (int8_t)(((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
            a += 128;
            q4 += 64;
            qh += 32;
        }
        int scales[16];
        for (int j = 0; j < 16; ++j) scales[j] = x[i].scales[j];
        lanes_accumulate(y[i].qs, aux8, scales, aux32);
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

float qf_gguf_dot_iq4_xs_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq4_xs *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0;
    for (int ibl = 0; ibl < nb; ++ibl) {
        const float d4d8 = qf_fp16_to_fp32(x[ibl].d) * y[ibl].d;
        uint16_t h = x[ibl].scales_h;
        const uint8_t *qs = x[ibl].qs;
        const int8_t *q8 = y[ibl].qs;
        for (int ib = 0; ib < QF_QK_K / 32; ib += 2) {
            const uint8_t ls1 = (uint8_t)((x[ibl].scales_l[ib / 2] & 0xf) | ((h << 4) & 0x30));
            const uint8_t ls2 = (uint8_t)((x[ibl].scales_l[ib / 2] >> 4) | ((h << 2) & 0x30));
            h = (uint16_t)(h >> 4);
            const float d1 = d4d8 * (ls1 - 32);
            const float d2 = d4d8 * (ls2 - 32);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; ++j) {
                sumi1 += q8[j] * qf_gguf_kvalues_iq4nl[qs[j] & 0xf];
                sumi2 += q8[j + 16] * qf_gguf_kvalues_iq4nl[qs[j] >> 4];
            }
            sumf += d1 * (sumi1 + sumi2);
            qs += 16;
            q8 += 32;
            sumi1 = sumi2 = 0;
            for (int j = 0; j < 16; ++j) {
                sumi1 += q8[j] * qf_gguf_kvalues_iq4nl[qs[j] & 0xf];
                sumi2 += q8[j + 16] * qf_gguf_kvalues_iq4nl[qs[j] >> 4];
            }
            sumf += d2 * (sumi1 + sumi2);
            qs += 16;
            q8 += 32;
        }
    }
    return sumf;
}
