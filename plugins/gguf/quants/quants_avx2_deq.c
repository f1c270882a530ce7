/* quants_avx2_deq.c — AVX2 dequantizers for the remaining quantizable types.
 *
 * Purpose: vectorised to_float for Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL, IQ4_XS and
 * MXFP4 (F16, BF16, Q4_0, Q8_0, Q4_K and Q6_K live with their quantizers). Each output value
 * is formed by the scalar dequantizer's float operations in the same order — the integer
 * level converted exactly to float, times the block or sub-block scale computed in scalar
 * float as ggml does (d * sc first), minus or plus the min as a separate operation (no fused
 * multiply-add) — so the floats are bit-identical to the scalar path.
 */
#include "quants_internal.h"

#if QF_GGUF_X86_SIMD
#include <immintrin.h>

#define QF_AVX2 __attribute__((target("avx2,fma,f16c")))

/* 8 bytes at p -> 8 int32 lanes (unsigned) */
QF_AVX2 static inline __m256i u8x8(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* (d * q) [+ m] for 8 int32 levels q */
QF_AVX2 static inline void store_dq(float *y, __m256i q, float d) {
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(d)));
}
QF_AVX2 static inline void store_dqm(float *y, __m256i q, float d, float m) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(d)),
                                      _mm256_set1_ps(m)));
}
/* dl * q - ml */
QF_AVX2 static inline void store_dq_sub(float *y, __m256i q, float dl, float ml) {
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(dl), _mm256_cvtepi32_ps(q)),
                                      _mm256_set1_ps(ml)));
}

/* levels of a 32-element block stored as nibbles (low: elements 0..15, high: 16..31) plus an
 * optional 5th bit from the 32-bit qh word; e is the element offset (0, 8, 16, 24) */
QF_AVX2 static inline __m256i nib32(const uint8_t *qs, int e, const uint32_t *qh) {
    __m256i q = u8x8(qs + (e & 15));
    q = e < 16 ? _mm256_and_si256(q, _mm256_set1_epi32(0xF)) : _mm256_srli_epi32(q, 4);
    if (qh) {
        const __m256i sh = _mm256_add_epi32(_mm256_set1_epi32(e), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)*qh), sh), _mm256_set1_epi32(1));
        q = _mm256_or_si256(q, _mm256_slli_epi32(bit, 4));
    }
    return q;
}

QF_AVX2 void qf_gguf_dequantize_q4_1_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q4_1 *x = src;
    for (int64_t i = 0; i < k / 32; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d), m = qf_fp16_to_fp32(x[i].m);
        for (int e = 0; e < 32; e += 8) store_dqm(y + e, nib32(x[i].qs, e, NULL), d, m);
    }
}

QF_AVX2 void qf_gguf_dequantize_q5_0_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q5_0 *x = src;
    for (int64_t i = 0; i < k / 32; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int e = 0; e < 32; e += 8) {
            store_dq(y + e, _mm256_sub_epi32(nib32(x[i].qs, e, &qh), _mm256_set1_epi32(16)), d);
        }
    }
}

QF_AVX2 void qf_gguf_dequantize_q5_1_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q5_1 *x = src;
    for (int64_t i = 0; i < k / 32; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d), m = qf_fp16_to_fp32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int e = 0; e < 32; e += 8) store_dqm(y + e, nib32(x[i].qs, e, &qh), d, m);
    }
}

QF_AVX2 void qf_gguf_dequantize_q2_K_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q2_K *x = src;
    const __m256i m3 = _mm256_set1_epi32(3);
    for (int64_t i = 0; i < k / QF_QK_K; i++) {
        const float d = qf_fp16_to_fp32(x[i].d), min = qf_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n = 0; n < QF_QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int h = 0; h < 2; ++h) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int e = 0; e < 16; e += 8) {
                        const __m256i v = _mm256_and_si256(_mm256_srli_epi32(u8x8(q + 16 * h + e), shift), m3);
                        store_dq_sub(y + e, v, dl, ml);
                    }
                    y += 16;
                }
            }
        }
    }
}

QF_AVX2 void qf_gguf_dequantize_q3_K_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q3_K *x = src;
    const __m256i m3 = _mm256_set1_epi32(3), four = _mm256_set1_epi32(4);
    for (int64_t i = 0; i < k / QF_QK_K; i++) {
        const float d_all = qf_fp16_to_fp32(x[i].d);
        int8_t scales[16];
        for (int j = 0; j < 16; ++j) {
            const int lo = j < 8 ? x[i].scales[j] & 0xF : x[i].scales[j - 8] >> 4;
            const int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (int8_t)(lo | (hi << 4));
        }
        const uint8_t *q = x[i].qs;
        int is = 0, bitpos = 0;
        for (int n = 0; n < QF_QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, ++bitpos) {
                for (int h = 0; h < 2; ++h) {
                    const float dl = d_all * (scales[is++] - 32);
                    for (int e = 0; e < 16; e += 8) {
                        const int l0 = 16 * h + e;
                        const __m256i v = _mm256_and_si256(_mm256_srli_epi32(u8x8(q + l0), shift), m3);
                        const __m256i hb = _mm256_and_si256(_mm256_srli_epi32(u8x8(x[i].hmask + l0), bitpos),
                                                            _mm256_set1_epi32(1));
                        /* subtract 4 where the high bit is clear */
                        const __m256i sub = _mm256_andnot_si256(_mm256_slli_epi32(hb, 2), four);
                        store_dq(y + e, _mm256_sub_epi32(v, sub), dl);
                    }
                    y += 16;
                }
            }
        }
    }
}

QF_AVX2 void qf_gguf_dequantize_q5_K_avx2(const void *src, float *y, int64_t k) {
    const qf_block_q5_K *x = src;
    for (int64_t i = 0; i < k / QF_QK_K; i++) {
        const uint8_t *ql = x[i].qs;
        const float d = qf_fp16_to_fp32(x[i].d), min = qf_fp16_to_fp32(x[i].dmin);
        for (int j = 0; j < 4; ++j, ql += 32) {
            for (int h = 0; h < 2; ++h) {
                uint8_t sc, m;
                qf_get_scale_min_k4(2 * j + h, x[i].scales, &sc, &m);
                const float d1 = d * sc, m1 = min * m;
                const int bit = 2 * j + h;
                for (int e = 0; e < 32; e += 8) {
                    __m256i v = u8x8(ql + e);
                    v = h ? _mm256_srli_epi32(v, 4) : _mm256_and_si256(v, _mm256_set1_epi32(0xF));
                    const __m256i hb = _mm256_and_si256(_mm256_srli_epi32(u8x8(x[i].qh + e), bit),
                                                        _mm256_set1_epi32(1));
                    store_dq_sub(y + e, _mm256_add_epi32(v, _mm256_slli_epi32(hb, 4)), d1, m1);
                }
                y += 32;
            }
        }
    }
}

/* table lookup of 8 nibble codes into int8 values (as int32 lanes) */
QF_AVX2 static inline __m256i lut16(const int8_t *tab, __m256i idx) {
    const __m256i lo = _mm256_setr_epi32(tab[0], tab[1], tab[2], tab[3], tab[4], tab[5], tab[6], tab[7]);
    const __m256i hi = _mm256_setr_epi32(tab[8], tab[9], tab[10], tab[11], tab[12], tab[13], tab[14], tab[15]);
    const __m256i a = _mm256_permutevar8x32_epi32(lo, idx), b = _mm256_permutevar8x32_epi32(hi, idx);
    return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
}

QF_AVX2 void qf_gguf_dequantize_iq4_nl_avx2(const void *src, float *y, int64_t k) {
    const qf_block_iq4_nl *x = src;
    for (int64_t i = 0; i < k / 32; i++, y += 32) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int e = 0; e < 32; e += 8) store_dq(y + e, lut16(qf_gguf_kvalues_iq4nl, nib32(x[i].qs, e, NULL)), d);
    }
}

QF_AVX2 void qf_gguf_dequantize_iq4_xs_avx2(const void *src, float *y, int64_t k) {
    const qf_block_iq4_xs *x = src;
    for (int64_t i = 0; i < k / QF_QK_K; i++) {
        const float d = qf_fp16_to_fp32(x[i].d);
        for (int ib = 0; ib < 8; ++ib, y += 32) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int e = 0; e < 32; e += 8) {
                store_dq(y + e, lut16(qf_gguf_kvalues_iq4nl, nib32(x[i].qs + 16 * ib, e, NULL)), dl);
            }
        }
    }
}

QF_AVX2 void qf_gguf_dequantize_mxfp4_avx2(const void *src, float *y, int64_t k) {
    const qf_block_mxfp4 *x = src;
    for (int64_t i = 0; i < k / 32; i++, y += 32) {
        const float d = qf_e8m0_to_fp32_half(x[i].e);
        for (int e = 0; e < 32; e += 8) store_dq(y + e, lut16(qf_gguf_kvalues_mxfp4, nib32(x[i].qs, e, NULL)), d);
    }
}

#else /* not x86: the scalar kernels stand in */

#define QF_FWD(T)                                                                           \
    void qf_gguf_dequantize_##T##_avx2(const void *s, float *d, int64_t k) {               \
        qf_gguf_dequantize_##T(s, d, k);                                                    \
    }
QF_FWD(q4_1)
QF_FWD(q5_0)
QF_FWD(q5_1)
QF_FWD(q2_K)
QF_FWD(q3_K)
QF_FWD(q5_K)
QF_FWD(iq4_nl)
QF_FWD(iq4_xs)
QF_FWD(mxfp4)

#endif
