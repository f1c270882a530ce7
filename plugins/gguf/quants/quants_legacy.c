/* quants_legacy.c — F16, BF16 and ggml's legacy 32-element block types.
 *
 * Purpose: bit-exact scalar reimplementation of ggml's quantizers and dequantizers for F16,
 * BF16, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, plus the Q8_0 / Q8_1 activation quantizers. Without
 * an importance matrix each type runs ggml's `_ref` recipe over the whole chunk (find the
 * block's max, store fp16(d), quantize with the fp32 reciprocal); with one, Q4_0/Q5_0 use the
 * weighted make_qx_quants search and Q4_1/Q5_1 the weighted make_qkx3_quants search with
 * sigma2 taken over the whole row, exactly as ggml's quantize_row_*_impl. Q8_0 ignores the
 * imatrix. Evaluation order follows ggml statement by statement; the library is compiled
 * with -ffp-contract=off so no multiply-add is fused.
 */
#include "quants_internal.h"

#include <float.h>

/* ---- F16 / BF16 -------------------------------------------------------------------------- */

void qf_gguf_quantize_f16(const float *src, void *dst, int64_t nrows, int64_t ncols,
                          const float *imatrix) {
    (void)imatrix;
    uint16_t *y = dst;
    const int64_t n = nrows * ncols;
    for (int64_t i = 0; i < n; ++i) y[i] = qf_fp32_to_fp16(src[i]);
}

void qf_gguf_quantize_bf16(const float *src, void *dst, int64_t nrows, int64_t ncols,
                           const float *imatrix) {
    (void)imatrix;
    uint16_t *y = dst;
    const int64_t n = nrows * ncols;
    for (int64_t i = 0; i < n; ++i) y[i] = qf_fp32_to_bf16(src[i]);
}

void qf_gguf_dequantize_f16(const void *src, float *dst, int64_t k) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < k; ++i) dst[i] = qf_fp16_to_fp32(x[i]);
}

void qf_gguf_dequantize_bf16(const void *src, float *dst, int64_t k) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < k; ++i) dst[i] = qf_bf16_to_fp32(x[i]);
}

/* ---- references (no imatrix) ------------------------------------------------------------- */

static void ref_q4_0(const float *x, qf_block_q4_0 *y, int64_t k) {
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) {
            const float x0 = x[j] * id;
            const float x1 = x[16 + j] * id;
            const uint8_t xi0 = (uint8_t)QF_MIN(15, (int8_t)qf_f2i(x0 + 8.5f));
            const uint8_t xi1 = (uint8_t)QF_MIN(15, (int8_t)qf_f2i(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

static void ref_q4_1(const float *x, qf_block_q4_1 *y, int64_t k) {
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        y[i].m = qf_fp32_to_fp16(min);
        for (int j = 0; j < 16; ++j) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[16 + j] - min) * id;
            const uint8_t xi0 = (uint8_t)QF_MIN(15, (int8_t)qf_f2i(x0 + 0.5f));
            const uint8_t xi1 = (uint8_t)QF_MIN(15, (int8_t)qf_f2i(x1 + 0.5f));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

static void ref_q5_0(const float *x, qf_block_q5_0 *y, int64_t k) {
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            const float x0 = x[j] * id;
            const float x1 = x[16 + j] * id;
            const uint8_t xi0 = (uint8_t)QF_MIN(31, (int8_t)qf_f2i(x0 + 16.5f));
            const uint8_t xi1 = (uint8_t)QF_MIN(31, (int8_t)qf_f2i(x1 + 16.5f));
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;
            qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

static void ref_q5_1(const float *x, qf_block_q5_1 *y, int64_t k) {
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        y[i].m = qf_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[16 + j] - min) * id;
            /* no clamp at 31 in the reference */
            const uint8_t xi0 = (uint8_t)qf_f2i(x0 + 0.5f);
            const uint8_t xi1 = (uint8_t)qf_f2i(x1 + 0.5f);
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;
            qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

void qf_gguf_ref_q8_0(const float *x, void *vy, int64_t k) {
    qf_block_q8_0 *y = vy;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = QF_MAX(amax, fabsf(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        for (int j = 0; j < 32; ++j) y[i].qs[j] = (int8_t)qf_f2i(roundf(x[j] * id));
    }
}

void qf_gguf_ref_q8_1(const float *x, void *vy, int64_t k) {
    qf_block_q8_1 *y = vy;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = QF_MAX(amax, fabsf(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < 16; ++j) {
            y[i].qs[j] = (int8_t)qf_f2i(roundf(x[j] * id));
            y[i].qs[16 + j] = (int8_t)qf_f2i(roundf(x[16 + j] * id));
            sum += y[i].qs[j];
            sum += y[i].qs[16 + j];
        }
        y[i].s = qf_fp32_to_fp16(sum * d);
    }
}

void qf_gguf_quantize_row_q8_0(const float *x, void *y, int64_t k) { qf_gguf_ref_q8_0(x, y, k); }
void qf_gguf_quantize_row_q8_1(const float *x, void *y, int64_t k) { qf_gguf_ref_q8_1(x, y, k); }

/* ---- importance-weighted paths (quantize_row_*_impl) ------------------------------------- */

static float row_sigma2(const float *x, int64_t n) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / n;
}

static void impl_q4_0(const float *x, qf_block_q4_0 *y, int64_t n, const float *qw_row) {
    float weight[32];
    int8_t L[32];
    const float sigma2 = row_sigma2(x, n);
    const int64_t nb = n / 32;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + 32 * ib;
        const float *qw = qw_row + 32 * ib;
        for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        const float d = qf_gguf_make_qx_quants(32, 8, xb, L, 1, weight);
        y[ib].d = qf_fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

static void impl_q4_1(const float *x, qf_block_q4_1 *y, int64_t n, const float *qw_row) {
    float weight[32];
    uint8_t L[32], Laux[32];
    const float sigma2 = row_sigma2(x, n);
    const int64_t nb = n / 32;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + 32 * ib;
        const float *qw = qw_row + 32 * ib;
        for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        float min;
        const float d = qf_gguf_make_qkx3_quants(32, 15, xb, weight, L, &min, Laux, -0.9f,
                                                 0.05f, 36, false);
        y[ib].d = qf_fp32_to_fp16(d);
        y[ib].m = qf_fp32_to_fp16(-min);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

static void pack_q5(const uint8_t *L, uint8_t *qs, uint8_t *qh_out) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t xi0 = L[j];
        const uint8_t xi1 = L[j + 16];
        qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << j;
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    memcpy(qh_out, &qh, sizeof(qh));
}

static void impl_q5_0(const float *x, qf_block_q5_0 *y, int64_t n, const float *qw_row) {
    float weight[32];
    int8_t L[32];
    const float sigma2 = row_sigma2(x, n);
    const int64_t nb = n / 32;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + 32 * ib;
        const float *qw = qw_row + 32 * ib;
        for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        const float d = qf_gguf_make_qx_quants(32, 16, xb, L, 1, weight);
        y[ib].d = qf_fp32_to_fp16(d);
        uint8_t Lu[32];
        for (int j = 0; j < 32; ++j) Lu[j] = (uint8_t)L[j];
        pack_q5(Lu, y[ib].qs, y[ib].qh);
    }
}

static void impl_q5_1(const float *x, qf_block_q5_1 *y, int64_t n, const float *qw_row) {
    float weight[32];
    uint8_t L[32], Laux[32];
    const float sigma2 = row_sigma2(x, n);
    const int64_t nb = n / 32;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + 32 * ib;
        const float *qw = qw_row + 32 * ib;
        for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        float min;
        const float d = qf_gguf_make_qkx3_quants(32, 31, xb, weight, L, &min, Laux, -0.9f,
                                                 0.05f, 36, false);
        y[ib].d = qf_fp32_to_fp16(d);
        y[ib].m = qf_fp32_to_fp16(-min);
        pack_q5(L, y[ib].qs, y[ib].qh);
    }
}

/* ---- chunk entry points (ggml's quantize_<type>) ----------------------------------------- */

#define QF_LEGACY_CHUNK(NAME, BLOCK, REF, IMPL)                                              \
    void qf_gguf_quantize_##NAME(const float *src, void *dst, int64_t nrows, int64_t ncols,  \
                                 const float *imatrix) {                                     \
        if (!imatrix) {                                                                      \
            REF(src, (BLOCK *)dst, nrows * ncols);                                           \
            return;                                                                          \
        }                                                                                    \
        BLOCK *y = dst;                                                                      \
        for (int64_t r = 0; r < nrows; ++r) {                                                \
            IMPL(src + r * ncols, y + r * (ncols / 32), ncols, imatrix);                     \
        }                                                                                    \
    }

QF_LEGACY_CHUNK(q4_0, qf_block_q4_0, ref_q4_0, impl_q4_0)
QF_LEGACY_CHUNK(q4_1, qf_block_q4_1, ref_q4_1, impl_q4_1)
QF_LEGACY_CHUNK(q5_0, qf_block_q5_0, ref_q5_0, impl_q5_0)
QF_LEGACY_CHUNK(q5_1, qf_block_q5_1, ref_q5_1, impl_q5_1)

void qf_gguf_quantize_q8_0(const float *src, void *dst, int64_t nrows, int64_t ncols,
                           const float *imatrix) {
    (void)imatrix; /* ignored by ggml */
    qf_gguf_ref_q8_0(src, dst, nrows * ncols);
}

/* ---- dequantizers ------------------------------------------------------------------------ */

void qf_gguf_dequantize_q4_0(const void *src, float *y, int64_t k) {
    const qf_block_q4_0 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

void qf_gguf_dequantize_q4_1(const void *src, float *y, int64_t k) {
    const qf_block_q4_1 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const float m = qf_fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; ++j) {
            const int x0 = x[i].qs[j] & 0x0F;
            const int x1 = x[i].qs[j] >> 4;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

void qf_gguf_dequantize_q5_0(const void *src, float *y, int64_t k) {
    const qf_block_q5_0 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < 16; ++j) {
            const uint8_t xh_0 = (uint8_t)(((qh >> j) << 4) & 0x10);
            const uint8_t xh_1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
            const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

void qf_gguf_dequantize_q5_1(const void *src, float *y, int64_t k) {
    const qf_block_q5_1 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        const float m = qf_fp16_to_fp32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < 16; ++j) {
            const uint8_t xh_0 = (uint8_t)(((qh >> j) << 4) & 0x10);
            const uint8_t xh_1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
            const int x1 = (x[i].qs[j] >> 4) | xh_1;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

void qf_gguf_dequantize_q8_0(const void *src, float *y, int64_t k) {
    const qf_block_q8_0 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) y[j] = x[i].qs[j] * d;
    }
}
