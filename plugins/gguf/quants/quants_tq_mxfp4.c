/* quants_tq_mxfp4.c — ggml's ternary types (TQ1_0, TQ2_0) and OCP MXFP4.
 *
 * Purpose: bit-exact scalar quantizers and dequantizers for TQ1_0 (five base-3 digits per
 * byte stored as ceil(v*256/243), the last 16 elements four per byte), TQ2_0 (2-bit digits
 * t = q+1) and MXFP4 (32-element blocks of E2M1 codes with a shared E8M0 exponent chosen
 * from floor(log2(amax)) - 2, each element mapped to the nearest doubled E2M1 value, lowest
 * index on ties). All three ignore the importance matrix, as in ggml.
 */
#include "quants_internal.h"

const int8_t qf_gguf_kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* ---- TQ1_0 -------------------------------------------------------------------------------- */

static inline uint8_t tq1_ceil_div(uint8_t q) { return (uint8_t)(((uint16_t)q * 256 + (243 - 1)) / 243); }

static void ref_tq1_0(const float *x, qf_block_tq1_0 *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        float amax = 0.0f;
        for (int j = 0; j < QF_QK_K; j++) amax = QF_MAX(amax, fabsf(x[j]));
        const float d = amax;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        /* 5 elements per byte, along 32 bytes */
        for (size_t m = 0; m < 32; ++m) {
            uint8_t q = 0;
            for (size_t n = 0; n < 5; ++n) {
                const int xi = (int)lroundf(x[m + n * 32] * id) + 1;
                q = (uint8_t)(q * 3 + xi);
            }
            y[i].qs[m] = tq1_ceil_div(q);
        }
        x += 5 * 32;
        /* along 16 bytes */
        for (size_t m = 0; m < 16; ++m) {
            uint8_t q = 0;
            for (size_t n = 0; n < 5; ++n) {
                const int xi = (int)lroundf(x[m + n * 16] * id) + 1;
                q = (uint8_t)(q * 3 + xi);
            }
            y[i].qs[32 + m] = tq1_ceil_div(q);
        }
        x += 5 * 16;
        /* 4 elements per byte, the fifth trit zero */
        for (size_t j = 0; j < 4; ++j) {
            uint8_t q = 0;
            for (size_t m = 0; m < 4; ++m) {
                const int xi = (int)lroundf(x[j + m * 4] * id) + 1;
                q = (uint8_t)(q * 3 + xi);
            }
            q = (uint8_t)(q * 3);
            y[i].qh[j] = tq1_ceil_div(q);
        }
        x += 4 * 4;
    }
}

void qf_gguf_quantize_tq1_0(const float *src, void *dst, int64_t nrows, int64_t ncols,
                            const float *imatrix) {
    (void)imatrix;
    ref_tq1_0(src, dst, nrows * ncols);
}

static inline float tq1_trit(uint8_t b, uint8_t pow3, float d) {
    const uint8_t q = (uint8_t)(b * pow3);
    const int16_t xi = (int16_t)(((uint16_t)q * 3) >> 8);
    return (float)(xi - 1) * d;
}

void qf_gguf_dequantize_tq1_0(const void *src, float *y, int64_t k) {
    const qf_block_tq1_0 *x = src;
    const int64_t nb = k / QF_QK_K;
    static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
    for (int64_t i = 0; i < nb; ++i) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (size_t n = 0; n < 5; ++n) {
            for (size_t m = 0; m < 32; ++m) *y++ = tq1_trit(x[i].qs[m], pow3[n], d);
        }
        for (size_t n = 0; n < 5; ++n) {
            for (size_t m = 0; m < 16; ++m) *y++ = tq1_trit(x[i].qs[32 + m], pow3[n], d);
        }
        for (size_t n = 0; n < 4; ++n) {
            for (size_t j = 0; j < 4; ++j) *y++ = tq1_trit(x[i].qh[j], pow3[n], d);
        }
    }
}

/* ---- TQ2_0 -------------------------------------------------------------------------------- */

static void ref_tq2_0(const float *x, qf_block_tq2_0 *y, int64_t k) {
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        float amax = 0.0f;
        for (int j = 0; j < QF_QK_K; j++) amax = QF_MAX(amax, fabsf(x[j]));
        const float d = amax;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qf_fp32_to_fp16(d);
        for (size_t j = 0; j < 64; j += 32) {
            for (size_t m = 0; m < 32; ++m) {
                uint8_t q = 0;
                for (size_t n = 0; n < 4; ++n) {
                    const int xi = (int)lroundf(x[m + n * 32] * id) + 1;
                    q = (uint8_t)(q + ((xi & 3) << (2 * n)));
                }
                y[i].qs[j + m] = q;
            }
            x += 4 * 32;
        }
    }
}

void qf_gguf_quantize_tq2_0(const float *src, void *dst, int64_t nrows, int64_t ncols,
                            const float *imatrix) {
    (void)imatrix;
    ref_tq2_0(src, dst, nrows * ncols);
}

void qf_gguf_dequantize_tq2_0(const void *src, float *y, int64_t k) {
    const qf_block_tq2_0 *x = src;
    const int64_t nb = k / QF_QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (size_t j = 0; j < 64; j += 32) {
            for (size_t l = 0; l < 4; ++l) {
                for (size_t m = 0; m < 32; ++m) {
                    const int8_t q = (int8_t)((x[i].qs[j + m] >> (l * 2)) & 3);
                    *y++ = (float)(q - 1) * d;
                }
            }
        }
    }
}

/* ---- MXFP4 -------------------------------------------------------------------------------- */

static inline int best_index_mxfp4(float x, float e) {
    int best_index = 0;
    float best_err = fabsf(qf_gguf_kvalues_mxfp4[0] * e - x);
    for (int i = 1; i < 16; i++) {
        const float err = fabsf(qf_gguf_kvalues_mxfp4[i] * e - x);
        if (err < best_err) {
            best_index = i;
            best_err = err;
        }
    }
    return best_index;
}

static void ref_mxfp4(const float *x, qf_block_mxfp4 *y, int64_t k) {
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) amax = fabsf(x[j]);
        }
        const uint8_t e = amax > 0.0f ? (uint8_t)qf_f2i(floorf(log2f(amax)) - 2 + 127) : 0;
        const float d = qf_e8m0_to_fp32_half(e);
        y[i].e = e;
        for (int j = 0; j < 16; ++j) {
            const int x0 = best_index_mxfp4(x[j], d);
            const int x1 = best_index_mxfp4(x[16 + j], d);
            y[i].qs[j] = (uint8_t)(x0 | (x1 << 4));
        }
    }
}

void qf_gguf_quantize_mxfp4(const float *src, void *dst, int64_t nrows, int64_t ncols,
                            const float *imatrix) {
    (void)imatrix;
    ref_mxfp4(src, dst, nrows * ncols);
}

void qf_gguf_dequantize_mxfp4(const void *src, float *y, int64_t k) {
    const qf_block_mxfp4 *x = src;
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = qf_e8m0_to_fp32_half(x[i].e);
        for (int j = 0; j < 16; ++j) {
            const int8_t x0 = qf_gguf_kvalues_mxfp4[x[i].qs[j] & 0x0F];
            const int8_t x1 = qf_gguf_kvalues_mxfp4[x[i].qs[j] >> 4];
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}
