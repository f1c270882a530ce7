/* quants_k_pack.h — bit packing shared by the K-quant reference and imatrix paths.
 *
 * Purpose: the final, purely integer steps of ggml's Q2_K..Q6_K quantizers: packing the
 * 6-bit scale/min pairs of Q4_K/Q5_K into 12 bytes, Q3_K's 6-bit signed scales, the
 * requantization of every element with the fp16-decoded scales, and the element packing
 * (2-bit planes, hmask bits, nibbles plus high bits, Q6_K's ql/qh split). Both
 * quants_k.c (no imatrix) and quants_k_imatrix.c use them so the two paths cannot drift.
 */
#ifndef QF_GGUF_QUANTS_K_PACK_H
#define QF_GGUF_QUANTS_K_PACK_H

#include "quants_internal.h"

/* 2-bit planes of Q2_K / Q3_K: byte 32h+l holds elements 128h+32s+l at bits 2s. */
static inline void qf_pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QF_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
        }
    }
}

/* Q2_K requantization with the decoded d / dmin; sub-blocks whose scale decodes to 0 keep L. */
static inline void qf_requant_q2_K(const float *x, const qf_block_q2_K *y, uint8_t *L) {
    const float dd = qf_fp16_to_fp32(y->d), dm = qf_fp16_to_fp32(y->dmin);
    for (int j = 0; j < QF_QK_K / 16; ++j) {
        const float d = dd * (y->scales[j] & 0xF);
        if (!d) continue;
        const float m = dm * (y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            int l = qf_nearest_int((x[16 * j + ii] + m) / d);
            L[16 * j + ii] = (uint8_t)QF_MAX(0, QF_MIN(3, l));
        }
    }
}

/* Store the 6-bit value l (0..63) of Q3_K sub-block j into the 12 scale bytes (pre-zeroed). */
static inline void qf_q3_set_scale(uint8_t *scales, int j, int l) {
    if (j < 8) {
        scales[j] = (uint8_t)(l & 0xF);
    } else {
        scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
    }
    l >>= 4;
    scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
}

/* Q3_K: requantize with the decoded scales, split off hmask, pack the 2-bit planes. */
static inline void qf_finish_q3_K(const float *x, qf_block_q3_K *y, int8_t *L) {
    const float dd = qf_fp16_to_fp32(y->d);
    for (int j = 0; j < QF_QK_K / 16; ++j) {
        int8_t sc = (int8_t)(j < 8 ? y->scales[j] & 0xF : y->scales[j - 8] >> 4);
        sc = (int8_t)((sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
        const float d = dd * sc;
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = qf_nearest_int(x[16 * j + ii] / d);
            l = QF_MAX(-4, QF_MIN(3, l));
            L[16 * j + ii] = (int8_t)(l + 4);
        }
    }
    memset(y->hmask, 0, QF_QK_K / 8);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < QF_QK_K; ++j) {
        if (L[j] > 3) {
            y->hmask[m] |= hm;
            L[j] = (int8_t)(L[j] - 4);
        }
        if (++m == QF_QK_K / 8) {
            m = 0;
            hm = (uint8_t)(hm << 1);
        }
    }
    qf_pack_2bit((const uint8_t *)L, y->qs);
}

/* Q4_K / Q5_K 12-byte packing of eight (scale, min) 6-bit pairs. */
static inline void qf_pack_scale_min_k4(uint8_t *scales, int j, uint8_t ls, uint8_t lm) {
    if (j < 4) {
        scales[j] = ls;
        scales[j + 4] = lm;
    } else {
        scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
        scales[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* Q4_K / Q5_K requantization with decoded d, dmin and the 6-bit scales; nmax 15 or 31. */
static inline void qf_requant_k4(const float *x, uint16_t hd, uint16_t hdmin,
                                 const uint8_t *scales, int nmax, uint8_t *L) {
    uint8_t sc, m;
    for (int j = 0; j < QF_QK_K / 32; ++j) {
        qf_get_scale_min_k4(j, scales, &sc, &m);
        const float d = qf_fp16_to_fp32(hd) * sc;
        if (!d) continue;
        const float dm = qf_fp16_to_fp32(hdmin) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = qf_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)QF_MAX(0, QF_MIN(nmax, l));
        }
    }
}

static inline void qf_pack_q4_K(const uint8_t *L, uint8_t *q) {
    for (int j = 0; j < QF_QK_K; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

static inline void qf_pack_q5_K(const uint8_t *L, uint8_t *qh, uint8_t *ql) {
    memset(qh, 0, QF_QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QF_QK_K; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            int l2 = L[n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
        ql += 32;
    }
}

/* Q6_K: requantize with fp16 d times the int8 scales, then split into ql / qh. */
static inline void qf_finish_q6_K(const float *x, qf_block_q6_K *y, int8_t *L) {
    const float dd = qf_fp16_to_fp32(y->d);
    for (int j = 0; j < QF_QK_K / 16; ++j) {
        const float d = dd * y->scales[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = qf_nearest_int(x[16 * j + ii] / d);
            l = QF_MAX(-32, QF_MIN(31, l));
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    uint8_t *ql = y->ql;
    uint8_t *qh = y->qh;
    for (int j = 0; j < QF_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l] & 0xF;
            const uint8_t q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF;
            const uint8_t q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

#endif /* QF_GGUF_QUANTS_K_PACK_H */
