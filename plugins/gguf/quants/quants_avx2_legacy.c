/* quants_avx2_legacy.c — AVX2 importance-matrix paths of Q4_0, Q4_1, Q5_0, Q5_1, and MXFP4.
 *
 * Purpose: with an imatrix, ggml quantizes every 32-element block of the legacy types with a
 * weighted scale search (make_qx_quants for Q4_0/Q5_0, make_qkx3_quants for Q4_1/Q5_1) whose
 * sums must keep their sequential order; here each AVX2 lane runs one block (eight blocks per
 * vector, quants_avx2_lanes.h), with the row's sigma2 computed by the same sequential scalar
 * sum. Row tails shorter than eight blocks call the scalar searches directly, and rows holding
 * NaN or Inf (input or imatrix) run the scalar row code. Without an imatrix these types keep
 * their scalar reference (already fast), except MXFP4, whose per-element nearest-level search
 * is vectorised across elements here (same strict comparison, lowest index on ties).
 */
#include "quants_avx2_lanes.h"

#if QF_GGUF_X86_SIMD

static float row_sigma2(const float *x, int64_t n) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / n;
}

static void pack_nibbles(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 16; ++j) qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

static void pack_q5(const uint8_t *L, uint8_t *qs, uint8_t *qh_out) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = (uint8_t)((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
        qh |= ((L[j] & 0x10u) >> 4) << j;
        qh |= ((L[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    memcpy(qh_out, &qh, sizeof(qh));
}

/* one block's outputs, whichever path computed them */
static void store_block(int type, void *yb, float d, float the_min, const uint8_t *L) {
    switch (type) {
    case QF_GGUF_TYPE_Q4_0: {
        qf_block_q4_0 *y = yb;
        y->d = qf_fp32_to_fp16(d);
        pack_nibbles(L, y->qs);
        break;
    }
    case QF_GGUF_TYPE_Q5_0: {
        qf_block_q5_0 *y = yb;
        y->d = qf_fp32_to_fp16(d);
        pack_q5(L, y->qs, y->qh);
        break;
    }
    case QF_GGUF_TYPE_Q4_1: {
        qf_block_q4_1 *y = yb;
        y->d = qf_fp32_to_fp16(d);
        y->m = qf_fp32_to_fp16(-the_min);
        pack_nibbles(L, y->qs);
        break;
    }
    default: {
        qf_block_q5_1 *y = yb;
        y->d = qf_fp32_to_fp16(d);
        y->m = qf_fp32_to_fp16(-the_min);
        pack_q5(L, y->qs, y->qh);
        break;
    }
    }
}

QF_AVX2 static void legacy_imatrix_row(int type, const float *x, void *yrow, int64_t n,
                                       const float *qw_row) {
    const bool with_min = type == QF_GGUF_TYPE_Q4_1 || type == QF_GGUF_TYPE_Q5_1;
    const int nmax = type == QF_GGUF_TYPE_Q4_0 ? 8 : type == QF_GGUF_TYPE_Q5_0 ? 16
                   : type == QF_GGUF_TYPE_Q4_1 ? 15 : 31;
    const size_t bsz = qf_gguf_type_size(type);
    const float sigma2 = row_sigma2(x, n);
    const __m256 vs2 = _mm256_set1_ps(sigma2);
    const int64_t nb = n / 32;
    int64_t ib = 0;
    for (; ib + 8 <= nb; ib += 8) {
        __m256 X[32], W[32], vd, vm = _mm256_setzero_ps();
        __m256i Lv[32];
        load_lanes(x + 32 * ib, 32, 32, X);
        load_lanes(qw_row + 32 * ib, 32, 32, W);
        for (int i = 0; i < 32; ++i) {
            W[i] = _mm256_mul_ps(W[i], _mm256_sqrt_ps(_mm256_add_ps(vs2, _mm256_mul_ps(X[i], X[i]))));
        }
        if (with_min) qkx_lanes(X, W, 32, nmax, -0.9f, 0.05f, 36, false, Lv, &vd, &vm);
        else vd = qx_lanes(X, W, 32, nmax, Lv);
        float d[8], mins[8];
        uint8_t L[256];
        _mm256_storeu_ps(d, vd);
        _mm256_storeu_ps(mins, vm);
        store_levels(Lv, 32, 32, (int8_t *)L);
        for (int b = 0; b < 8; ++b) {
            store_block(type, (uint8_t *)yrow + (size_t)(ib + b) * bsz, d[b], mins[b], L + 32 * b);
        }
    }
    for (; ib < nb; ++ib) { /* tail: the scalar searches, as in quantize_row_*_impl */
        const float *xb = x + 32 * ib;
        const float *qw = qw_row + 32 * ib;
        float weight[32], d, the_min = 0;
        uint8_t L[32], Laux[32];
        for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        if (with_min) {
            d = qf_gguf_make_qkx3_quants(32, nmax, xb, weight, L, &the_min, Laux, -0.9f, 0.05f, 36, false);
        } else {
            d = qf_gguf_make_qx_quants(32, nmax, xb, (int8_t *)L, 1, weight);
        }
        store_block(type, (uint8_t *)yrow + (size_t)ib * bsz, d, the_min, L);
    }
}

#define QF_LEGACY_AVX2(NAME, TYPE)                                                            \
    QF_AVX2 void qf_gguf_quantize_##NAME##_avx2_imat(const float *src, void *dst, int64_t nrows, \
                                                     int64_t ncols, const float *imatrix) {    \
        const size_t rs = qf_gguf_row_size(TYPE, ncols);                                        \
        const bool bad_im = any_nonfinite_n(imatrix, ncols);                                    \
        for (int64_t r = 0; r < nrows; ++r) {                                                   \
            const float *xr = src + r * ncols;                                                  \
            uint8_t *yr = (uint8_t *)dst + (size_t)r * rs;                                      \
            if (bad_im || any_nonfinite_n(xr, ncols)) {                                         \
                qf_gguf_quantize_##NAME(xr, yr, 1, ncols, imatrix);                             \
            } else {                                                                            \
                legacy_imatrix_row(TYPE, xr, yr, ncols, imatrix);                               \
            }                                                                                   \
        }                                                                                       \
    }

QF_AVX2 static bool any_nonfinite_n(const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if (any_nonfinite(x + i, 8)) return true;
    }
    for (; i < n; ++i) {
        if (!isfinite(x[i])) return true;
    }
    return false;
}

QF_LEGACY_AVX2(q4_0, QF_GGUF_TYPE_Q4_0)
QF_LEGACY_AVX2(q4_1, QF_GGUF_TYPE_Q4_1)
QF_LEGACY_AVX2(q5_0, QF_GGUF_TYPE_Q5_0)
QF_LEGACY_AVX2(q5_1, QF_GGUF_TYPE_Q5_1)

/* The Q4_0 entry point (quants_avx2.c) forwards imatrix requests here; the others dispatch
 * between the scalar reference and the lane path. */
#define QF_LEGACY_ENTRY(NAME)                                                                  \
    void qf_gguf_quantize_##NAME##_avx2(const float *src, void *dst, int64_t nrows,          \
                                        int64_t ncols, const float *imatrix) {                \
        if (imatrix) qf_gguf_quantize_##NAME##_avx2_imat(src, dst, nrows, ncols, imatrix);    \
        else qf_gguf_quantize_##NAME(src, dst, nrows, ncols, NULL);                           \
    }

QF_LEGACY_ENTRY(q4_1)
QF_LEGACY_ENTRY(q5_0)
QF_LEGACY_ENTRY(q5_1)

/* ---- MXFP4: vectorised across the 32 elements of a block ---------------------------------------- */

QF_AVX2 static inline __m256i best_index_mxfp4_v(__m256 x, __m256 e) {
    __m256i best = _mm256_setzero_si256();
    __m256 best_err = _mm256_andnot_ps(_mm256_set1_ps(-0.0f),
                                       _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps((float)qf_gguf_kvalues_mxfp4[0]), e), x));
    for (int i = 1; i < 16; ++i) {
        const __m256 err = _mm256_andnot_ps(_mm256_set1_ps(-0.0f),
                                            _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps((float)qf_gguf_kvalues_mxfp4[i]), e), x));
        const __m256 lt = _mm256_cmp_ps(err, best_err, _CMP_LT_OQ);
        best = _mm256_blendv_epi8(best, _mm256_set1_epi32(i), _mm256_castps_si256(lt));
        best_err = _mm256_blendv_ps(best_err, err, lt);
    }
    return best;
}

QF_AVX2 void qf_gguf_quantize_mxfp4_avx2(const float *src, void *dst, int64_t nrows, int64_t ncols,
                                         const float *imatrix) {
    (void)imatrix;
    qf_block_mxfp4 *y = dst;
    const int64_t nb = nrows * ncols / 32;
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        if (any_nonfinite(src, 32)) {
            qf_gguf_quantize_mxfp4(src, &y[i], 1, 32, NULL);
            continue;
        }
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(src[j])) amax = fabsf(src[j]);
        }
        const uint8_t e = amax > 0.0f ? (uint8_t)qf_f2i(floorf(log2f(amax)) - 2 + 127) : 0;
        const __m256 d = _mm256_set1_ps(qf_e8m0_to_fp32_half(e));
        y[i].e = e;
        int32_t idx[32];
        for (int j = 0; j < 4; ++j) {
            _mm256_storeu_si256((__m256i *)(idx + 8 * j), best_index_mxfp4_v(_mm256_loadu_ps(src + 8 * j), d));
        }
        for (int j = 0; j < 16; ++j) y[i].qs[j] = (uint8_t)(idx[j] | (idx[16 + j] << 4));
    }
}

#else /* not x86: the scalar kernels stand in */

void qf_gguf_quantize_q4_0_avx2_imat(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q4_0(s, d, r, c, im);
}
void qf_gguf_quantize_q4_1_avx2_imat(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q4_1(s, d, r, c, im);
}
void qf_gguf_quantize_q5_0_avx2_imat(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q5_0(s, d, r, c, im);
}
void qf_gguf_quantize_q5_1_avx2_imat(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q5_1(s, d, r, c, im);
}
void qf_gguf_quantize_q4_1_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q4_1(s, d, r, c, im);
}
void qf_gguf_quantize_q5_0_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q5_0(s, d, r, c, im);
}
void qf_gguf_quantize_q5_1_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_q5_1(s, d, r, c, im);
}
void qf_gguf_quantize_mxfp4_avx2(const float *s, void *d, int64_t r, int64_t c, const float *im) {
    qf_gguf_quantize_mxfp4(s, d, r, c, im);
}

#endif
