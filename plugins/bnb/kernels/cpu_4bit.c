/*
 * CPU kernels for bitsandbytes 4-bit weights: dequantization
 * (fl32(LUT[q] * absmax), spec 2.5), a fused dequantize+GEMV for batch 1 and
 * a tiled dequantize + OpenBLAS sgemm for larger batches. Each kernel has a
 * scalar reference and an AVX2 path chosen at run time with
 * __builtin_cpu_supports; the AVX2 path performs the same float operations
 * in the same order (per-element products, a fixed 32-lane accumulation and
 * reduction tree, no FMA), so both give identical bits. The AVX2 functions
 * are compiled with a target attribute; the file itself needs no -mavx2.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QF_BNB_X86 1
#endif

#include "../bnb.h"

int qf_bnb_cpu_has_avx2(void) {
#ifdef QF_BNB_X86
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  return cached;
#else
  return 0;
#endif
}

static inline unsigned nibble(const uint8_t *p, int64_t i) {
  uint8_t b = p[i >> 1];
  return (i & 1) ? (b & 15u) : (unsigned)(b >> 4);
}

static inline int log2_bs(int64_t bs) { return __builtin_ctzll((unsigned long long)bs); }

/* ------------------------------------------------------------ scalar */

static void dequant4_scalar(const float *lut, const uint8_t *packed,
                            const float *absmax, int sh, int64_t start,
                            int64_t count, float *out) {
  for (int64_t j = 0; j < count; j++) {
    int64_t i = start + j;
    out[j] = lut[nibble(packed, i)] * absmax[i >> sh];
  }
}

/* Reduce 32 lane accumulators exactly as the AVX2 path does. */
static inline float reduce32(const float acc[32]) {
  float t[8];
  for (int l = 0; l < 8; l++)
    t[l] = (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]);
  float u0 = t[0] + t[4], u1 = t[1] + t[5], u2 = t[2] + t[6], u3 = t[3] + t[7];
  return (u0 + u2) + (u1 + u3);
}

static void gemv4_scalar(const float *lut, const uint8_t *packed,
                         const float *absmax, int sh, int64_t K,
                         const float *x, float *y, int64_t n0, int64_t n1) {
  int64_t k32 = K - K % 32;
  for (int64_t n = n0; n < n1; n++) {
    int64_t base = n * K;
    float acc[32] = {0};
    for (int64_t k0 = 0; k0 < k32; k0 += 32) {
      for (int l = 0; l < 32; l++) {
        int64_t i = base + k0 + l;
        float w = lut[nibble(packed, i)] * absmax[i >> sh];
        acc[l] = acc[l] + x[k0 + l] * w;
      }
    }
    float s = reduce32(acc);
    for (int64_t k = k32; k < K; k++) {
      int64_t i = base + k;
      float w = lut[nibble(packed, i)] * absmax[i >> sh];
      s = s + x[k] * w;
    }
    y[n] = s;
  }
}

/* ------------------------------------------------------------ AVX2 */
#ifdef QF_BNB_X86

#define AVX2_FN __attribute__((target("avx2")))

/* 16 packed bytes -> two vectors of 16 codes each, in flat element order. */
AVX2_FN static inline void codes32(const uint8_t *p, __m128i *c0, __m128i *c1) {
  const __m128i m = _mm_set1_epi8(0x0f);
  __m128i b = _mm_loadu_si128((const __m128i *)p);
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  __m128i lo = _mm_and_si128(b, m);
  *c0 = _mm_unpacklo_epi8(hi, lo);
  *c1 = _mm_unpackhi_epi8(hi, lo);
}

/* 8 codes (low 8 bytes of c) -> 8 floats from the 16-entry table l0|l1. */
AVX2_FN static inline __m256 lookup8(__m128i c, __m256 l0, __m256 l1) {
  __m256i idx = _mm256_cvtepu8_epi32(c);
  __m256 a = _mm256_permutevar8x32_ps(l0, idx);
  __m256 b = _mm256_permutevar8x32_ps(l1, idx);
  __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
  return _mm256_blendv_ps(a, b, sel);
}

/* Dequantize the 32-aligned chunk at flat index f (inside one block). */
AVX2_FN static inline void chunk_weights(const float *lut, const uint8_t *packed,
                                         float a, int64_t f, __m256 w[4]) {
  __m256 va = _mm256_set1_ps(a);
  __m256 l0 = _mm256_mul_ps(_mm256_loadu_ps(lut), va);
  __m256 l1 = _mm256_mul_ps(_mm256_loadu_ps(lut + 8), va);
  __m128i c0, c1;
  codes32(packed + (f >> 1), &c0, &c1);
  w[0] = lookup8(c0, l0, l1);
  w[1] = lookup8(_mm_srli_si128(c0, 8), l0, l1);
  w[2] = lookup8(c1, l0, l1);
  w[3] = lookup8(_mm_srli_si128(c1, 8), l0, l1);
}

AVX2_FN static void dequant4_avx2(const float *lut, const uint8_t *packed,
                                  const float *absmax, int sh, int64_t start,
                                  int64_t count, float *out) {
  int64_t end = start + count;
  int64_t a0 = (start + 31) & ~(int64_t)31;
  if (a0 > end) a0 = end;
  dequant4_scalar(lut, packed, absmax, sh, start, a0 - start, out);
  int64_t f = a0;
  for (; f + 32 <= end; f += 32) {
    __m256 w[4];
    chunk_weights(lut, packed, absmax[f >> sh], f, w);
    float *o = out + (f - start);
    _mm256_storeu_ps(o, w[0]);
    _mm256_storeu_ps(o + 8, w[1]);
    _mm256_storeu_ps(o + 16, w[2]);
    _mm256_storeu_ps(o + 24, w[3]);
  }
  dequant4_scalar(lut, packed, absmax, sh, f, end - f, out + (f - start));
}

/* Requires K % 32 == 0 (chunks are 32-aligned and inside one block). */
AVX2_FN static void gemv4_avx2(const float *lut, const uint8_t *packed,
                               const float *absmax, int sh, int64_t K,
                               const float *x, float *y, int64_t n0,
                               int64_t n1) {
  for (int64_t n = n0; n < n1; n++) {
    int64_t base = n * K;
    __m256 v0 = _mm256_setzero_ps(), v1 = v0, v2 = v0, v3 = v0;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      __m256 w[4];
      int64_t f = base + k0;
      chunk_weights(lut, packed, absmax[f >> sh], f, w);
      v0 = _mm256_add_ps(v0, _mm256_mul_ps(_mm256_loadu_ps(x + k0), w[0]));
      v1 = _mm256_add_ps(v1, _mm256_mul_ps(_mm256_loadu_ps(x + k0 + 8), w[1]));
      v2 = _mm256_add_ps(v2, _mm256_mul_ps(_mm256_loadu_ps(x + k0 + 16), w[2]));
      v3 = _mm256_add_ps(v3, _mm256_mul_ps(_mm256_loadu_ps(x + k0 + 24), w[3]));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 0x1));
    y[n] = _mm_cvtss_f32(s1);
  }
}
#endif /* QF_BNB_X86 */

/* ------------------------------------------------------------ dispatch */

static int use_avx2(qf_bnb_isa isa) {
  if (isa == QF_BNB_ISA_SCALAR) return 0;
  return qf_bnb_cpu_has_avx2();
}

void qf_bnb_dequant4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                     const float *absmax, int64_t bs, int64_t start,
                     int64_t count, float *out) {
  const float *lut = qf_bnb_lut(t);
  int sh = log2_bs(bs);
#ifdef QF_BNB_X86
  if (use_avx2(isa) && bs >= 32) {
    dequant4_avx2(lut, packed, absmax, sh, start, count, out);
    return;
  }
#endif
  dequant4_scalar(lut, packed, absmax, sh, start, count, out);
}

void qf_bnb_gemv4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                  const float *absmax, int64_t bs, int64_t N, int64_t K,
                  const float *x, float *y, int64_t n0, int64_t n1) {
  (void)N;
  const float *lut = qf_bnb_lut(t);
  int sh = log2_bs(bs);
#ifdef QF_BNB_X86
  if (use_avx2(isa) && K % 32 == 0 && bs >= 32) {
    gemv4_avx2(lut, packed, absmax, sh, K, x, y, n0, n1);
    return;
  }
#endif
  gemv4_scalar(lut, packed, absmax, sh, K, x, y, n0, n1);
}

/* ------------------------------------------------------------ linear */

typedef struct gemv_args {
  qf_bnb_isa isa;
  qf_bnb_qtype t;
  const uint8_t *packed;
  const float *absmax;
  int64_t bs, N, K;
  const float *x;
  float *y;
} gemv_args;

static void gemv_range(void *p, int64_t lo, int64_t hi) {
  gemv_args *a = (gemv_args *)p;
  qf_bnb_gemv4(a->isa, a->t, a->packed, a->absmax, a->bs, a->N, a->K, a->x,
               a->y, lo, hi);
}

typedef struct deq_args {
  qf_bnb_isa isa;
  qf_bnb_qtype t;
  const uint8_t *packed;
  const float *absmax;
  int64_t bs, K, row0;
  float *tile;
} deq_args;

static void deq_range(void *p, int64_t lo, int64_t hi) {
  deq_args *a = (deq_args *)p;
  qf_bnb_dequant4(a->isa, a->t, a->packed, a->absmax, a->bs,
                  (a->row0 + lo) * a->K, (hi - lo) * a->K, a->tile + lo * a->K);
}

int qf_bnb_linear4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                   const float *absmax, int64_t bs, int64_t N, int64_t K,
                   const float *x, int64_t M, float *y, int threads) {
  if (M <= 0 || N <= 0) return 0;
  if (K <= 0) {
    memset(y, 0, (size_t)(M * N) * sizeof(float));
    return 0;
  }
  if (M == 1) {
    gemv_args a = {isa, t, packed, absmax, bs, N, K, x, y};
    qf_bnb_parallel_for(threads, N, 16, gemv_range, &a);
    return 0;
  }
  /* tiles of about 4 MiB of dequantized weights */
  int64_t tile_rows = ((int64_t)1 << 20) / K;
  if (tile_rows < 1) tile_rows = 1;
  if (tile_rows > N) tile_rows = N;
  float *tile = (float *)malloc((size_t)(tile_rows * K) * sizeof(float));
  if (!tile) return -1;
  for (int64_t n0 = 0; n0 < N; n0 += tile_rows) {
    int64_t rows = N - n0 < tile_rows ? N - n0 : tile_rows;
    deq_args d = {isa, t, packed, absmax, bs, K, n0, tile};
    qf_bnb_parallel_for(threads, rows, 8, deq_range, &d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)rows,
                (int)K, 1.0f, x, (int)K, tile, (int)K, 0.0f, y + n0, (int)N);
  }
  free(tile);
  return 0;
}
