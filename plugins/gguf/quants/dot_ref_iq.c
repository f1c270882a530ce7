/* dot_ref_iq.c — scalar reference dot products: ternary and lattice weight types x Q8_K.
 *
 * Purpose: faithful scalar versions of ggml's generic vec_dot kernels for TQ1_0, TQ2_0,
 * IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M against Q8_K activations: grid
 * lookups and sign masks as in the dequantizers, integer sums per 32-element group scaled by
 * the odd integer sub-scale, then one float scaling per super-block, with ggml's final
 * constant factors (0.125 for IQ2, 0.25 for IQ3_XXS, the 0.125 delta terms of IQ1).
 */
#include "dot_ref.h"
#include "quants_internal.h"

float qf_gguf_dot_tq1_0_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_tq1_0 *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        int sum = 0;
        for (int l = 0; l < 5; ++l) {
            for (int m = 0; m < 32; ++m) {
                const uint8_t q = (uint8_t)(x[i].qs[m] * pow3[l]);
                const int xi = ((uint16_t)q * 3) >> 8;
                sum += (xi - 1) * y[i].qs[l * 32 + m];
            }
        }
        for (int l = 0; l < 5; ++l) {
            for (int m = 0; m < 16; ++m) {
                const uint8_t q = (uint8_t)(x[i].qs[32 + m] * pow3[l]);
                const int xi = ((uint16_t)q * 3) >> 8;
                sum += (xi - 1) * y[i].qs[160 + l * 16 + m];
            }
        }
        for (int l = 0; l < 4; ++l) {
            for (int j = 0; j < 4; ++j) {
                const uint8_t q = (uint8_t)(x[i].qh[j] * pow3[l]);
                const int xi = ((uint16_t)q * 3) >> 8;
                sum += (xi - 1) * y[i].qs[240 + l * 4 + j];
            }
        }
        sumf += (float)sum * (qf_fp16_to_fp32(x[i].d) * y[i].d);
    }
    return sumf;
}

float qf_gguf_dot_tq2_0_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_tq2_0 *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        int32_t sumi = 0;
        for (int j = 0; j < 64; j += 32) {
            for (int l = 0; l < 4; ++l) {
                for (int k = 0; k < 32; ++k) {
                    sumi += y[i].qs[j * 4 + l * 32 + k] * (((x[i].qs[j + k] >> (l * 2)) & 3) - 1);
                }
            }
        }
        const float d = y[i].d * qf_fp16_to_fp32(x[i].d);
        sumf += (float)sumi * d;
    }
    return sumf;
}

static inline int sgn(uint8_t signs, int j) { return signs & qf_gguf_kmask_iq2xs[j] ? -1 : 1; }

float qf_gguf_dot_iq2_xxs_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq2_xxs *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    uint32_t aux32[2];
    const uint8_t *aux8 = (const uint8_t *)aux32;
    float sumf = 0.f;
    for (int i = 0; i < nb; ++i) {
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        const uint16_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            memcpy(aux32, q2, 2 * sizeof(uint32_t));
            q2 += 4;
            const int32_t ls = (int32_t)(2 * (aux32[1] >> 28) + 1);
            int32_t sumi = 0;
            for (int l = 0; l < 4; ++l) {
                const uint8_t *grid = (const uint8_t *)(qf_gguf_iq2xxs_grid + aux8[l]);
                const uint8_t signs = qf_gguf_ksigns_iq2xs[(aux32[1] >> 7 * l) & 127];
                for (int j = 0; j < 8; ++j) sumi += grid[j] * q8[j] * sgn(signs, j);
                q8 += 8;
            }
            bsum += sumi * ls;
        }
        sumf += d * bsum;
    }
    return 0.125f * sumf;
}

float qf_gguf_dot_iq2_xs_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq2_xs *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0.f;
    for (int i = 0; i < nb; ++i) {
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        const uint16_t *q2 = x[i].qs;
        const uint8_t *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            const int ls[2] = {2 * (sc[ib32] & 0xf) + 1, 2 * (sc[ib32] >> 4) + 1};
            for (int h = 0; h < 2; ++h) {
                int32_t sumi = 0;
                for (int l = 2 * h; l < 2 * h + 2; ++l) {
                    const uint8_t *grid = (const uint8_t *)(qf_gguf_iq2xs_grid + (q2[l] & 511));
                    const uint8_t signs = qf_gguf_ksigns_iq2xs[q2[l] >> 9];
                    for (int j = 0; j < 8; ++j) sumi += grid[j] * q8[j] * sgn(signs, j);
                    q8 += 8;
                }
                bsum += sumi * ls[h];
            }
            q2 += 4;
        }
        sumf += d * bsum;
    }
    return 0.125f * sumf;
}

float qf_gguf_dot_iq2_s_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq2_s *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        const int8_t *q8 = y[i].qs;
        const uint8_t *qs = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const uint8_t *signs = qs + QF_QK_K / 8;
        int bsum = 0;
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            const int ls1 = 1 + 2 * (x[i].scales[ib32] & 0xf);
            const int ls2 = 1 + 2 * (x[i].scales[ib32] >> 4);
            int sumi1 = 0, sumi2 = 0;
            for (int l = 0; l < 4; ++l) {
                const int idx = qs[l] | ((qh[ib32] << (8 - 2 * l)) & 0x300);
                const uint8_t *grid = (const uint8_t *)(qf_gguf_iq2s_grid + idx);
                int s = 0;
                for (int j = 0; j < 8; ++j) s += q8[j] * grid[j] * sgn(signs[l], j);
                if (l < 2) sumi1 += s; else sumi2 += s;
                q8 += 8;
            }
            bsum += ls1 * sumi1 + ls2 * sumi2;
            qs += 4;
            signs += 4;
        }
        sumf += d * bsum;
    }
    return 0.125f * sumf;
}

float qf_gguf_dot_iq3_xxs_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq3_xxs *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    uint32_t aux32;
    float sumf = 0.f;
    for (int i = 0; i < nb; ++i) {
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        const uint8_t *q3 = x[i].qs;
        const uint8_t *gas = x[i].qs + QF_QK_K / 4;
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            memcpy(&aux32, gas, sizeof(uint32_t));
            gas += sizeof(uint32_t);
            const int32_t ls = (int32_t)(2 * (aux32 >> 28) + 1);
            int32_t sumi = 0;
            for (int l = 0; l < 4; ++l) {
                const uint8_t *grid1 = (const uint8_t *)(qf_gguf_iq3xxs_grid + q3[2 * l + 0]);
                const uint8_t *grid2 = (const uint8_t *)(qf_gguf_iq3xxs_grid + q3[2 * l + 1]);
                const uint8_t signs = qf_gguf_ksigns_iq2xs[(aux32 >> 7 * l) & 127];
                for (int j = 0; j < 4; ++j) {
                    sumi += grid1[j] * q8[j + 0] * sgn(signs, j);
                    sumi += grid2[j] * q8[j + 4] * sgn(signs, j + 4);
                }
                q8 += 8;
            }
            q3 += 8;
            bsum += sumi * ls;
        }
        sumf += d * bsum;
    }
    return 0.25f * sumf;
}

float qf_gguf_dot_iq3_s_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq3_s *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0.f;
    for (int i = 0; i < nb; ++i) {
        const float d = qf_fp16_to_fp32(x[i].d) * y[i].d;
        const uint8_t *qs = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const uint8_t *signs = x[i].signs;
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib32 = 0; ib32 < 8; ib32 += 2) {
            const int32_t ls[2] = {2 * (x[i].scales[ib32 / 2] & 0xf) + 1,
                                   2 * (x[i].scales[ib32 / 2] >> 4) + 1};
            for (int h = 0; h < 2; ++h) {
                int32_t sumi = 0;
                for (int l = 0; l < 4; ++l) {
                    const int i1 = qs[2 * l + 0] | ((qh[ib32 + h] << (8 - 2 * l)) & 256);
                    const int i2 = qs[2 * l + 1] | ((qh[ib32 + h] << (7 - 2 * l)) & 256);
                    const uint8_t *grid1 = (const uint8_t *)(qf_gguf_iq3s_grid + i1);
                    const uint8_t *grid2 = (const uint8_t *)(qf_gguf_iq3s_grid + i2);
                    for (int j = 0; j < 4; ++j) {
                        sumi += grid1[j] * q8[j + 0] * sgn(signs[l], j);
                        sumi += grid2[j] * q8[j + 4] * sgn(signs[l], j + 4);
                    }
                    q8 += 8;
                }
                qs += 8;
                signs += 4;
                bsum += sumi * ls[h];
            }
        }
        sumf += d * bsum;
    }
    return sumf;
}

float qf_gguf_dot_iq1_s_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq1_s *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const int8_t *q8 = y[i].qs;
        const uint8_t *qs = x[i].qs;
        const uint16_t *qh = x[i].qh;
        int sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = 2 * ((qh[ib] >> 12) & 7) + 1;
            const int delta = qh[ib] & 0x8000 ? -1 : 1;
            int lsum = 0;
            for (int l = 0; l < 4; ++l) {
                const int idx = qs[l] | (((qh[ib] >> 3 * l) & 7) << 8);
                const int8_t *grid = (const int8_t *)(qf_gguf_iq1s_grid + idx);
                for (int j = 0; j < 8; ++j) lsum += q8[j] * grid[j];
                q8 += 8;
            }
            sumi += ls * lsum;
            sumi1 += ls * delta * (y[i].bsums[2 * ib + 0] + y[i].bsums[2 * ib + 1]);
            qs += 4;
        }
        sumf += qf_fp16_to_fp32(x[i].d) * y[i].d * (sumi + QF_IQ1S_DELTA * sumi1);
    }
    return sumf;
}

float qf_gguf_dot_iq1_m_q8_K(int n, const void *vx, const void *vy) {
    const qf_block_iq1_m *x = vx;
    const qf_block_q8_K *y = vy;
    const int nb = n / QF_QK_K;
    int sum1[2], sum2[2], delta[4];
    float sumf = 0;
    for (int i = 0; i < nb; i++) {
        const int8_t *q8 = y[i].qs;
        const uint8_t *qs = x[i].qs;
        const uint8_t *qh = x[i].qh;
        uint16_t sc[4];
        memcpy(sc, x[i].scales, sizeof(sc));
        const uint16_t hd = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                       ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        int sumi1 = 0, sumi2 = 0;
        for (int ib = 0; ib < 8; ++ib) {
            delta[0] = qh[0] & 0x08 ? -1 : 1;
            delta[1] = qh[0] & 0x80 ? -1 : 1;
            delta[2] = qh[1] & 0x08 ? -1 : 1;
            delta[3] = qh[1] & 0x80 ? -1 : 1;
            sum1[0] = sum1[1] = sum2[0] = sum2[1] = 0;
            for (int l = 0; l < 4; ++l) {
                const int idx = qs[l] | (((uint16_t)qh[l / 2] << (8 - 4 * (l % 2))) & 0x700);
                const int8_t *grid = (const int8_t *)(qf_gguf_iq1s_grid + idx);
                int lsum1 = 0, lsum2 = 0;
                for (int j = 0; j < 8; ++j) {
                    lsum1 += q8[j] * grid[j];
                    lsum2 += q8[j];
                }
                q8 += 8;
                sum1[l / 2] += lsum1;
                sum2[l / 2] += lsum2 * delta[l];
            }
            const int ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1;
            const int ls2 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1;
            sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
            sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
            qs += 4;
            qh += 2;
        }
        sumf += qf_fp16_to_fp32(hd) * y[i].d * (sumi1 + QF_IQ1M_DELTA * sumi2);
    }
    return sumf;
}
