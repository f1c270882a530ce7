/* quants_iq.c — ggml's non-linear "IQ" types.
 *
 * Purpose: IQ4_NL and IQ4_XS quantization (ggml's quantize_row_iq4_nl_impl: per 32-element
 * block a scale search over 15 candidate reciprocals of the non-linear 16-level codebook,
 * weighted by x^2 or by imatrix * sqrt(sigma2 + x^2); IQ4_XS then re-expresses the block
 * scales as 6-bit multiples of a super-block scale), and bit-exact dequantization of IQ4_NL,
 * IQ4_XS and the lattice types IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M (grids in
 * iq_grids.c / iq1s_grid.c). Like ggml_quantize_chunk, IQ4_NL and IQ4_XS run the searching
 * quantizer (ntry = 7) with or without an imatrix; the lattice quantizers are not provided.
 */
#include "quants_internal.h"

const int8_t qf_gguf_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};
const uint8_t qf_gguf_kmask_iq2xs[8] = {1, 2, 4, 8, 16, 32, 64, 128};

/* One super-block of IQ4_NL (super 32, no sub-scales) or IQ4_XS (super 256, 8 blocks). */
static void iq4_nl_impl(int super_block_size, const float *x, uint16_t *dh, uint8_t *q4,
                        uint16_t *scales_h, uint8_t *scales_l, float *scales, float *weight,
                        uint8_t *L, const float *quant_weights, int ntry) {
    const int block_size = 32;
    const int8_t *values = qf_gguf_kvalues_iq4nl;
    float sigma2 = 0;
    for (int j = 0; j < super_block_size; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / super_block_size;

    memset(q4, 0, (size_t)super_block_size / 2);
    dh[0] = qf_fp32_to_fp16(0.f);

    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super_block_size / block_size; ++ib) {
        const float *xb = x + ib * block_size;
        uint8_t *Lb = L + ib * block_size;
        if (quant_weights) {
            const float *qw = quant_weights + ib * block_size;
            for (int j = 0; j < block_size; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        } else {
            for (int j = 0; j < block_size; ++j) weight[j] = xb[j] * xb[j];
        }
        float amax = 0, max = 0;
        for (int j = 0; j < block_size; ++j) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < QF_GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = ntry > 0 ? -max / values[0] : max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < block_size; ++j) {
            const float al = id * xb[j];
            const int l = qf_best_index_int8(16, values, al);
            Lb[j] = (uint8_t)l;
            const float q = values[l];
            const float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < block_size; ++j) {
                const float al = id * xb[j];
                const int l = qf_best_index_int8(16, values, al);
                const float q = values[l];
                const float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        const float abs_d = fabsf(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if (super_block_size / block_size > 1) {
        const int nb = super_block_size / block_size;
        memset(scales_h, 0, (size_t)((nb + 7) / 8) * sizeof(uint16_t));
        const float d = -max_scale / 32;
        dh[0] = qf_fp32_to_fp16(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nb; ++ib) {
            int l = qf_nearest_int(id * scales[ib]);
            l = QF_MAX(-32, QF_MIN(31, l));
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            uint8_t *Lb = L + ib * block_size;
            const float *xb = x + ib * block_size;
            for (int j = 0; j < block_size; ++j) {
                Lb[j] = (uint8_t)qf_best_index_int8(16, values, idl * xb[j]);
            }
            l += 32;
            const uint8_t l_l = (uint8_t)(l & 0xf);
            const uint8_t l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0) scales_l[ib / 2] = l_l;
            else scales_l[ib / 2] |= (uint8_t)(l_l << 4);
            scales_h[ib / 8] |= (uint16_t)(l_h << 2 * (ib % 8));
        }
    } else {
        dh[0] = qf_fp32_to_fp16(scales[0]);
        if (ntry > 0) {
            const float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < super_block_size; ++j) {
                L[j] = (uint8_t)qf_best_index_int8(16, values, id * x[j]);
            }
        }
    }

    for (int i = 0; i < super_block_size / 32; ++i) {
        for (int j = 0; j < 16; ++j) {
            q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
        }
    }
}

void qf_gguf_quantize_iq4_nl(const float *src, void *dst, int64_t nrows, int64_t ncols,
                             const float *imatrix) {
    const int64_t nblock = ncols / 32;
    uint8_t L[32];
    float weight[32];
    uint16_t unused_h;
    float scale;
    qf_block_iq4_nl *y = dst;
    for (int64_t row = 0; row < nrows; ++row, src += ncols, y += nblock) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            const float *qw = imatrix ? imatrix + 32 * ibl : NULL;
            iq4_nl_impl(32, src + 32 * ibl, &y[ibl].d, y[ibl].qs, &unused_h, NULL, &scale,
                        weight, L, qw, 7);
        }
    }
}

void qf_gguf_quantize_iq4_xs(const float *src, void *dst, int64_t nrows, int64_t ncols,
                             const float *imatrix) {
    const int64_t nblock = ncols / QF_QK_K;
    uint8_t L[QF_QK_K];
    float weight[32];
    float scales[QF_QK_K / 32];
    qf_block_iq4_xs *y = dst;
    for (int64_t row = 0; row < nrows; ++row, src += ncols, y += nblock) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            const float *qw = imatrix ? imatrix + QF_QK_K * ibl : NULL;
            iq4_nl_impl(QF_QK_K, src + QF_QK_K * ibl, &y[ibl].d, y[ibl].qs, &y[ibl].scales_h,
                        y[ibl].scales_l, scales, weight, L, qw, 7);
        }
    }
}

void qf_gguf_dequantize_iq4_nl(const void *src, float *y, int64_t k) {
    const qf_block_iq4_nl *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const uint8_t *qs = x[i].qs;
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            y[j] = d * qf_gguf_kvalues_iq4nl[qs[j] & 0xf];
            y[j + 16] = d * qf_gguf_kvalues_iq4nl[qs[j] >> 4];
        }
    }
}

void qf_gguf_dequantize_iq4_xs(const void *src, float *y, int64_t k) {
    const qf_block_iq4_xs *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j] = dl * qf_gguf_kvalues_iq4nl[qs[j] & 0xf];
                y[j + 16] = dl * qf_gguf_kvalues_iq4nl[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}

/* ---- lattice types: dequantization only ---------------------------------------------------- */

static inline float sign_of(uint8_t signs, int j) {
    return signs & qf_gguf_kmask_iq2xs[j] ? -1.f : 1.f;
}

void qf_gguf_dequantize_iq2_xxs(const void *src, float *y, int64_t k) {
    const qf_block_iq2_xxs *x = src;
    const int64_t nb = k / QF_QK_K;
    uint32_t aux32[2];
    const uint8_t *aux8 = (const uint8_t *)aux32;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            memcpy(aux32, x[i].qs + 4 * ib32, 2 * sizeof(uint32_t));
            const float db = d * (0.5f + (aux32[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t *grid = (const uint8_t *)(qf_gguf_iq2xxs_grid + aux8[l]);
                const uint8_t signs = qf_gguf_ksigns_iq2xs[(aux32[1] >> 7 * l) & 127];
                for (int j = 0; j < 8; ++j) y[j] = db * grid[j] * sign_of(signs, j);
                y += 8;
            }
        }
    }
}

void qf_gguf_dequantize_iq2_xs(const void *src, float *y, int64_t k) {
    const qf_block_iq2_xs *x = src;
    const int64_t nb = k / QF_QK_K;
    float db[2];
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            db[0] = d * (0.5f + (x[i].scales[ib32] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (x[i].scales[ib32] >> 4)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const uint16_t q = x[i].qs[4 * ib32 + l];
                const uint8_t *grid = (const uint8_t *)(qf_gguf_iq2xs_grid + (q & 511));
                const uint8_t signs = qf_gguf_ksigns_iq2xs[q >> 9];
                for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid[j] * sign_of(signs, j);
                y += 8;
            }
        }
    }
}

void qf_gguf_dequantize_iq2_s(const void *src, float *y, int64_t k) {
    const qf_block_iq2_s *x = src;
    const int64_t nb = k / QF_QK_K;
    float db[2];
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const uint8_t *signs = qs + QF_QK_K / 8;
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            db[0] = d * (0.5f + (x[i].scales[ib32] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (x[i].scales[ib32] >> 4)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const float dl = db[l / 2];
                const int idx = qs[l] | ((qh[ib32] << (8 - 2 * l)) & 0x300);
                const uint8_t *grid = (const uint8_t *)(qf_gguf_iq2s_grid + idx);
                for (int j = 0; j < 8; ++j) y[j] = dl * grid[j] * sign_of(signs[l], j);
                y += 8;
            }
            qs += 4;
            signs += 4;
        }
    }
}

void qf_gguf_dequantize_iq3_xxs(const void *src, float *y, int64_t k) {
    const qf_block_iq3_xxs *x = src;
    const int64_t nb = k / QF_QK_K;
    uint32_t aux32;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        const uint8_t *scales_and_signs = qs + QF_QK_K / 4;
        for (int ib32 = 0; ib32 < 8; ++ib32) {
            memcpy(&aux32, scales_and_signs + 4 * ib32, sizeof(uint32_t));
            const float db = d * (0.5f + (aux32 >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t signs = qf_gguf_ksigns_iq2xs[(aux32 >> 7 * l) & 127];
                const uint8_t *grid1 = (const uint8_t *)(qf_gguf_iq3xxs_grid + qs[2 * l + 0]);
                const uint8_t *grid2 = (const uint8_t *)(qf_gguf_iq3xxs_grid + qs[2 * l + 1]);
                for (int j = 0; j < 4; ++j) {
                    y[j + 0] = db * grid1[j] * sign_of(signs, j);
                    y[j + 4] = db * grid2[j] * sign_of(signs, j + 4);
                }
                y += 8;
            }
            qs += 8;
        }
    }
}

void qf_gguf_dequantize_iq3_s(const void *src, float *y, int64_t k) {
    const qf_block_iq3_s *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const uint8_t *signs = x[i].signs;
        for (int ib32 = 0; ib32 < 8; ib32 += 2) {
            const float db[2] = {d * (1 + 2 * (x[i].scales[ib32 / 2] & 0xf)),
                                 d * (1 + 2 * (x[i].scales[ib32 / 2] >> 4))};
            for (int h = 0; h < 2; ++h) {
                for (int l = 0; l < 4; ++l) {
                    const int i1 = qs[2 * l + 0] | ((qh[h] << (8 - 2 * l)) & 256);
                    const int i2 = qs[2 * l + 1] | ((qh[h] << (7 - 2 * l)) & 256);
                    const uint8_t *grid1 = (const uint8_t *)(qf_gguf_iq3s_grid + i1);
                    const uint8_t *grid2 = (const uint8_t *)(qf_gguf_iq3s_grid + i2);
                    for (int j = 0; j < 4; ++j) {
                        y[j + 0] = db[h] * grid1[j] * sign_of(signs[l], j);
                        y[j + 4] = db[h] * grid2[j] * sign_of(signs[l], j + 4);
                    }
                    y += 8;
                }
                qs += 8;
                signs += 4;
            }
            qh += 2;
        }
    }
}

void qf_gguf_dequantize_iq1_s(const void *src, float *y, int64_t k) {
    const qf_block_iq1_s *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        const uint16_t *qh = x[i].qh;
        for (int ib = 0; ib < 8; ++ib) {
            const float dl = d * (2 * ((qh[ib] >> 12) & 7) + 1);
            const float delta = qh[ib] & 0x8000 ? -QF_IQ1S_DELTA : QF_IQ1S_DELTA;
            for (int l = 0; l < 4; ++l) {
                const int idx = qs[l] | (((qh[ib] >> 3 * l) & 7) << 8);
                const int8_t *grid = (const int8_t *)(qf_gguf_iq1s_grid + idx);
                for (int j = 0; j < 8; ++j) y[j] = dl * (grid[j] + delta);
                y += 8;
            }
            qs += 4;
        }
    }
}

void qf_gguf_dequantize_iq1_m(const void *src, float *y, int64_t k) {
    const qf_block_iq1_m *x = src;
    const int64_t nb = k / QF_QK_K;
    float delta[4];
    uint16_t idx[4];
    for (int64_t i = 0; i < nb; i++) {
        uint16_t sc[4];
        memcpy(sc, x[i].scales, sizeof(sc));
        const uint16_t hd = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                       ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const float d = qf_fp16_to_fp32(hd);
        const uint8_t *qs = x[i].qs;
        const uint8_t *qh = x[i].qh;
        for (int ib = 0; ib < 8; ++ib) {
            const float dl1 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
            const float dl2 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
            idx[0] = (uint16_t)(qs[0] | ((qh[0] << 8) & 0x700));
            idx[1] = (uint16_t)(qs[1] | ((qh[0] << 4) & 0x700));
            idx[2] = (uint16_t)(qs[2] | ((qh[1] << 8) & 0x700));
            idx[3] = (uint16_t)(qs[3] | ((qh[1] << 4) & 0x700));
            delta[0] = qh[0] & 0x08 ? -QF_IQ1M_DELTA : QF_IQ1M_DELTA;
            delta[1] = qh[0] & 0x80 ? -QF_IQ1M_DELTA : QF_IQ1M_DELTA;
            delta[2] = qh[1] & 0x08 ? -QF_IQ1M_DELTA : QF_IQ1M_DELTA;
            delta[3] = qh[1] & 0x80 ? -QF_IQ1M_DELTA : QF_IQ1M_DELTA;
            for (int l = 0; l < 4; ++l) {
                const int8_t *grid = (const int8_t *)(qf_gguf_iq1s_grid + idx[l]);
                const float dl = l < 2 ? dl1 : dl2;
                for (int j = 0; j < 8; ++j) y[j] = dl * (grid[j] + delta[l]);
                y += 8;
            }
            qs += 4;
            qh += 2;
        }
    }
}
