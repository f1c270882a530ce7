/*
 * AVX2 versions of the AWQ CPU kernels (chosen at run time; see
 * cpu_kernels.h). One 256-bit lane group = the 8 columns of one GEMM word:
 * the word is broadcast and shifted per lane by 4·reverse_order[m]
 * (_mm256_srlv_epi32), so the interleave costs nothing. Every lane performs
 * the scalar reference's operations in the same order with separate
 * multiply and add (no FMA), hence identical bytes. Compiled for the
 * baseline ISA with per-function target attributes; on other
 * architectures the entry points fall back to the scalar code.
 */
#include <string.h>

#include "cpu_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define QF_AVX2 __attribute__((target("avx2")))

int qf_awq_cpu_has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? 1 : 0;
}

/* One word of 8 columns: q - z as floats. */
#define QF_AWQ_DEQ(word, zv) \
  _mm256_cvtepi32_ps(_mm256_sub_epi32( \
      _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shifts), mask), zv))

/* Partial sums of one group for 4 words (32 columns) starting at word c0,
 * held in named registers (an array of __m256 would live on the stack and
 * serialise on store forwarding), then acc[0..31] += part · scale. */
QF_AVX2 static inline void group4(const qf_awq_cpu_weights *w, const float *x, int64_t gi,
                                  int64_t c0, float *acc) {
  const int64_t n = w->n, g = w->g, nc = n / 8;
  const __m256i shifts = _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28);
  const __m256i mask = _mm256_set1_epi32(15);
  const int32_t *zp = w->zeros + gi * n + c0 * 8;
  const __m256i z0 = _mm256_loadu_si256((const __m256i *)zp);
  const __m256i z1 = _mm256_loadu_si256((const __m256i *)(zp + 8));
  const __m256i z2 = _mm256_loadu_si256((const __m256i *)(zp + 16));
  const __m256i z3 = _mm256_loadu_si256((const __m256i *)(zp + 24));
  __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
  const int32_t *row = w->qweight + gi * g * nc + c0;
  for (int64_t kk = gi * g; kk < (gi + 1) * g; kk++, row += nc) {
    const __m256 xv = _mm256_set1_ps(x[kk]);
    p0 = _mm256_add_ps(p0, _mm256_mul_ps(xv, QF_AWQ_DEQ(row[0], z0)));
    p1 = _mm256_add_ps(p1, _mm256_mul_ps(xv, QF_AWQ_DEQ(row[1], z1)));
    p2 = _mm256_add_ps(p2, _mm256_mul_ps(xv, QF_AWQ_DEQ(row[2], z2)));
    p3 = _mm256_add_ps(p3, _mm256_mul_ps(xv, QF_AWQ_DEQ(row[3], z3)));
  }
  const float *sp = w->scales + gi * n + c0 * 8;
  _mm256_storeu_ps(acc, _mm256_add_ps(_mm256_loadu_ps(acc), _mm256_mul_ps(p0, _mm256_loadu_ps(sp))));
  _mm256_storeu_ps(acc + 8, _mm256_add_ps(_mm256_loadu_ps(acc + 8),
                                          _mm256_mul_ps(p1, _mm256_loadu_ps(sp + 8))));
  _mm256_storeu_ps(acc + 16, _mm256_add_ps(_mm256_loadu_ps(acc + 16),
                                           _mm256_mul_ps(p2, _mm256_loadu_ps(sp + 16))));
  _mm256_storeu_ps(acc + 24, _mm256_add_ps(_mm256_loadu_ps(acc + 24),
                                           _mm256_mul_ps(p3, _mm256_loadu_ps(sp + 24))));
}

/* 16 words (128 columns: one 64-byte line of every qweight row): for each
 * group the four 4-word passes reuse the group's lines from L1. */
#define QF_AWQ_TILE_WORDS 16
QF_AVX2 static void gemv_tile(const qf_awq_cpu_weights *w, const float *x, float *y,
                              int64_t c0) {
  const int64_t ng = w->k / w->g;
  float acc[QF_AWQ_TILE_WORDS * 8];
  memset(acc, 0, sizeof acc);
  for (int64_t gi = 0; gi < ng; gi++)
    for (int sb = 0; sb < QF_AWQ_TILE_WORDS / 4; sb++) group4(w, x, gi, c0 + 4 * sb, acc + 32 * sb);
  for (int j = 0; j < QF_AWQ_TILE_WORDS * 8; j += 8) {
    __m256 r = _mm256_loadu_ps(acc + j);
    if (w->bias) r = _mm256_add_ps(r, _mm256_loadu_ps(w->bias + c0 * 8 + j));
    _mm256_storeu_ps(y + c0 * 8 + j, r);
  }
}

/* One word (8 columns): the tail of a column range. */
QF_AVX2 static void gemv_block1(const qf_awq_cpu_weights *w, const float *x, float *y,
                                int64_t c0) {
  const int64_t n = w->n, k = w->k, g = w->g, nc = n / 8, ng = k / g;
  const __m256i shifts = _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28);
  const __m256i mask = _mm256_set1_epi32(15);
  __m256 a0 = _mm256_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++) {
    const __m256i z0 = _mm256_loadu_si256((const __m256i *)(w->zeros + gi * n + c0 * 8));
    __m256 p0 = _mm256_setzero_ps();
    const int32_t *row = w->qweight + gi * g * nc + c0;
    for (int64_t kk = gi * g; kk < (gi + 1) * g; kk++, row += nc)
      p0 = _mm256_add_ps(p0, _mm256_mul_ps(_mm256_set1_ps(x[kk]), QF_AWQ_DEQ(row[0], z0)));
    a0 = _mm256_add_ps(a0, _mm256_mul_ps(p0, _mm256_loadu_ps(w->scales + gi * n + c0 * 8)));
  }
  if (w->bias) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(w->bias + c0 * 8));
  _mm256_storeu_ps(y + c0 * 8, a0);
}

QF_AVX2 void qf_awq_gemv_avx2(const qf_awq_cpu_weights *w, const float *x,
                              float *y, int64_t n0, int64_t n1) {
  int64_t c0 = n0 / 8;
  for (; c0 + QF_AWQ_TILE_WORDS <= n1 / 8; c0 += QF_AWQ_TILE_WORDS) gemv_tile(w, x, y, c0);
  for (; c0 < n1 / 8; c0++) gemv_block1(w, x, y, c0);
}

QF_AVX2 void qf_awq_dequant_tile_avx2(const qf_awq_cpu_weights *w, int64_t n0,
                                      int64_t nt, float *tile) {
  const int64_t n = w->n, k = w->k, g = w->g, nc = n / 8;
  const __m256i shifts = _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28);
  const __m256i mask = _mm256_set1_epi32(15);
  for (int64_t kk = 0; kk < k; kk++) {
    const int64_t gi = kk / g;
    const int32_t *row = w->qweight + kk * nc + n0 / 8;
    const int32_t *z = w->zeros + gi * n + n0;
    const float *s = w->scales + gi * n + n0;
    float *out = tile + kk * nt;
    for (int64_t c = 0; c < nt / 8; c++) {
      const __m256i q = _mm256_and_si256(
          _mm256_srlv_epi32(_mm256_set1_epi32(row[c]), shifts), mask);
      const __m256i zv = _mm256_loadu_si256((const __m256i *)(z + c * 8));
      const __m256 d = _mm256_cvtepi32_ps(_mm256_sub_epi32(q, zv));
      _mm256_storeu_ps(out + c * 8, _mm256_mul_ps(d, _mm256_loadu_ps(s + c * 8)));
    }
  }
}

#else /* not x86: no AVX2, scalar stand-ins keep the symbols defined */

int qf_awq_cpu_has_avx2(void) { return 0; }

void qf_awq_gemv_avx2(const qf_awq_cpu_weights *w, const float *x, float *y,
                      int64_t n0, int64_t n1) {
  qf_awq_gemv_scalar(w, x, y, n0, n1);
}

void qf_awq_dequant_tile_avx2(const qf_awq_cpu_weights *w, int64_t n0,
                              int64_t nt, float *tile) {
  qf_awq_dequant_tile_scalar(w, n0, nt, tile);
}

#endif
