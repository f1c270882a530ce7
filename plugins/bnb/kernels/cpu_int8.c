/*
 * CPU kernels for LLM.int8() (spec 5.2): an exact int8 x int8 -> int32
 * matmul C = A . B^T (scalar reference and an AVX2 path using
 * maddubs/madd, which is exact for A in [-127, 127]), and the whole linear
 * layer: activations quantized row-wise with outlier columns split off,
 * the int32 product dequantized with bitsandbytes' formula
 * fmaf((acc * SCA[m]) * SCB[n], 1/127^2, bias), plus the outlier columns
 * computed in float32 against the dequantized weight columns. Integer
 * results are exact in both paths, so the float epilogue (shared) gives
 * identical bits whichever path ran.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QF_BNB_X86 1
#endif

#include "../bnb.h"

static int32_t dot_i8_scalar(const int8_t *a, const int8_t *b, int64_t K) {
  int32_t s = 0;
  for (int64_t k = 0; k < K; k++) s += (int32_t)a[k] * (int32_t)b[k];
  return s;
}

static void gemm_i8_scalar(const int8_t *a, int64_t M, const int8_t *b,
                           int64_t N, int64_t K, int32_t *c, int64_t n0,
                           int64_t n1) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = n0; n < n1; n++)
      c[m * N + n] = dot_i8_scalar(a + m * K, b + n * K, K);
}

#ifdef QF_BNB_X86
#define AVX2_FN __attribute__((target("avx2")))

/* 32 products summed into 8 int32 lanes: |b| as unsigned times a with b's
 * sign; pairs stay below 2*128*127 so maddubs never saturates. */
AVX2_FN static inline __m256i madd32(__m256i a, __m256i b, __m256i ones) {
  __m256i ub = _mm256_abs_epi8(b);
  __m256i sa = _mm256_sign_epi8(a, b);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ub, sa), ones);
}

AVX2_FN static inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
                            _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

AVX2_FN static void gemm_i8_avx2(const int8_t *a, int64_t M, const int8_t *b,
                                 int64_t N, int64_t K, int32_t *c, int64_t n0,
                                 int64_t n1) {
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t k32 = K - K % 32;
  int64_t n = n0;
  /* four weight rows at a time share each activation load */
  for (; n + 4 <= n1; n += 4) {
    const int8_t *b0 = b + n * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
    for (int64_t m = 0; m < M; m++) {
      const int8_t *ar = a + m * K;
      __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
      for (int64_t k = 0; k < k32; k += 32) {
        __m256i va = _mm256_loadu_si256((const __m256i *)(ar + k));
        s0 = _mm256_add_epi32(s0, madd32(va, _mm256_loadu_si256((const __m256i *)(b0 + k)), ones));
        s1 = _mm256_add_epi32(s1, madd32(va, _mm256_loadu_si256((const __m256i *)(b1 + k)), ones));
        s2 = _mm256_add_epi32(s2, madd32(va, _mm256_loadu_si256((const __m256i *)(b2 + k)), ones));
        s3 = _mm256_add_epi32(s3, madd32(va, _mm256_loadu_si256((const __m256i *)(b3 + k)), ones));
      }
      int32_t r0 = hsum_i32(s0), r1 = hsum_i32(s1), r2 = hsum_i32(s2),
              r3 = hsum_i32(s3);
      for (int64_t k = k32; k < K; k++) {
        int32_t av = ar[k];
        r0 += av * b0[k];
        r1 += av * b1[k];
        r2 += av * b2[k];
        r3 += av * b3[k];
      }
      int32_t *cr = c + m * N + n;
      cr[0] = r0;
      cr[1] = r1;
      cr[2] = r2;
      cr[3] = r3;
    }
  }
  for (; n < n1; n++) {
    const int8_t *br = b + n * K;
    for (int64_t m = 0; m < M; m++) {
      const int8_t *ar = a + m * K;
      __m256i s0 = _mm256_setzero_si256();
      for (int64_t k = 0; k < k32; k += 32)
        s0 = _mm256_add_epi32(
            s0, madd32(_mm256_loadu_si256((const __m256i *)(ar + k)),
                       _mm256_loadu_si256((const __m256i *)(br + k)), ones));
      int32_t r = hsum_i32(s0);
      for (int64_t k = k32; k < K; k++) r += (int32_t)ar[k] * br[k];
      c[m * N + n] = r;
    }
  }
}
#endif

void qf_bnb_int8_gemm(qf_bnb_isa isa, const int8_t *a, int64_t M,
                      const int8_t *b, int64_t N, int64_t K, int32_t *c,
                      int64_t n0, int64_t n1) {
#ifdef QF_BNB_X86
  if (isa != QF_BNB_ISA_SCALAR && qf_bnb_cpu_has_avx2()) {
    gemm_i8_avx2(a, M, b, N, K, c, n0, n1);
    return;
  }
#endif
  gemm_i8_scalar(a, M, b, N, K, c, n0, n1);
}

typedef struct lin8_args {
  qf_bnb_isa isa;
  const int8_t *cb;
  const float *scb;
  int64_t N, K, M;
  const float *x;
  const int8_t *ca;
  const float *sca;
  const int64_t *ocols; /* outlier column indices */
  int64_t n_out;
  const float *bias;
  int32_t *acc;
  float *y;
} lin8_args;

static void lin8_range(void *p, int64_t lo, int64_t hi) {
  lin8_args *a = (lin8_args *)p;
  qf_bnb_int8_gemm(a->isa, a->ca, a->M, a->cb, a->N, a->K, a->acc, lo, hi);
  for (int64_t m = 0; m < a->M; m++) {
    const float *xr = a->x + m * a->K;
    for (int64_t n = lo; n < hi; n++) {
      float bias = a->bias ? a->bias[n] : 0.0f;
      float v = ((float)a->acc[m * a->N + n] * a->sca[m]) * a->scb[n];
      float out = fmaf(v, QF_BNB_INT8_DEQ_SCALE, bias);
      if (a->n_out > 0) {
        const int8_t *wr = a->cb + n * a->K;
        float s = 0.0f;
        for (int64_t j = 0; j < a->n_out; j++) {
          int64_t k = a->ocols[j];
          float w = ((float)wr[k] * a->scb[n]) * QF_BNB_INV127;
          s = s + xr[k] * w;
        }
        out = out + s;
      }
      a->y[m * a->N + n] = out;
    }
  }
}

int qf_bnb_linear8(qf_bnb_isa isa, const int8_t *cb, const float *scb,
                   int64_t N, int64_t K, const float *x, int64_t M,
                   float threshold, const float *bias, float *y, int threads) {
  if (M <= 0 || N <= 0) return 0;
  int8_t *ca = (int8_t *)malloc((size_t)(M * K) + 1);
  float *sca = (float *)malloc((size_t)M * sizeof(float));
  uint8_t *flags = (uint8_t *)malloc((size_t)K + 1);
  int64_t *ocols = (int64_t *)malloc(((size_t)K + 1) * sizeof(int64_t));
  int32_t *acc = (int32_t *)malloc((size_t)(M * N) * sizeof(int32_t));
  int rc = -1;
  if (!ca || !sca || !flags || !ocols || !acc) goto done;
  int64_t n_out = qf_bnb_int8_quantize_act(x, M, K, threshold, ca, sca,
                                           threshold > 0.0f ? flags : NULL);
  int64_t j = 0;
  if (n_out > 0)
    for (int64_t k = 0; k < K; k++)
      if (flags[k]) ocols[j++] = k;
  lin8_args a = {isa, cb, scb, N, K, M, x, ca, sca, ocols, j, bias, acc, y};
  qf_bnb_parallel_for(threads, N, 16, lin8_range, &a);
  rc = 0;
done:
  free(ca);
  free(sca);
  free(flags);
  free(ocols);
  free(acc);
  return rc;
}
