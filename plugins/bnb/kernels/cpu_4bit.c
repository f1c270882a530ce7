/*
 * CPU kernels for bitsandbytes 4-bit weights: dequantization
 * (fl32(LUT[q] * absmax), spec 2.5), a fused dequantize+GEMV for batch 1 and
 * a tiled dequantize + OpenBLAS sgemm for larger batches. Each kernel has a
 * scalar reference, an AVX2 path and an AVX-512 path chosen at run time with
 * __builtin_cpu_supports; the SIMD paths perform the same float operations
 * in the same order (per-element products, a fixed 32-lane accumulation and
 * reduction tree, no FMA), so all give identical bits. The SIMD functions
 * are compiled with target attributes; the file itself needs no -mavx2.
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
#define AVX512_FN __attribute__((target("avx512f")))

static inline uint32_t load_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* 8 codes packed in the 4 bytes at p -> 8 floats from the 16-entry table
 * l0|l1, in flat element order. The bytes are broadcast to all lanes and each
 * lane shifts its own nibble into place: a right shift puts the code in bits
 * 0..3 (vpermps reads only bits 0..2), a left shift puts its bit 3 in the
 * sign bit that blendv reads. No AND and no byte shuffles are needed. */
AVX2_FN static inline __m256 lookup8(const uint8_t *p, __m256i sr, __m256i sl,
                                     __m256 l0, __m256 l1) {
  __m256i v = _mm256_set1_epi32((int)load_u32(p));
  __m256i idx = _mm256_srlv_epi32(v, sr);
  __m256 sel = _mm256_castsi256_ps(_mm256_sllv_epi32(v, sl));
  __m256 a = _mm256_permutevar8x32_ps(l0, idx);
  __m256 b = _mm256_permutevar8x32_ps(l1, idx);
  return _mm256_blendv_ps(a, b, sel);
}

#define AVX2_SHIFTS                                                         \
  const __m256i sr = _mm256_setr_epi32(4, 0, 12, 8, 20, 16, 28, 24);        \
  const __m256i sl = _mm256_setr_epi32(24, 28, 16, 20, 8, 12, 0, 4)

/* Dequantize the 32-aligned chunk at flat index f (inside one block). */
AVX2_FN static inline void chunk_weights(const float *lut, const uint8_t *packed,
                                         float a, int64_t f, __m256i sr,
                                         __m256i sl, __m256 w[4]) {
  __m256 va = _mm256_set1_ps(a);
  __m256 l0 = _mm256_mul_ps(_mm256_loadu_ps(lut), va);
  __m256 l1 = _mm256_mul_ps(_mm256_loadu_ps(lut + 8), va);
  const uint8_t *p = packed + (f >> 1);
  w[0] = lookup8(p, sr, sl, l0, l1);
  w[1] = lookup8(p + 4, sr, sl, l0, l1);
  w[2] = lookup8(p + 8, sr, sl, l0, l1);
  w[3] = lookup8(p + 12, sr, sl, l0, l1);
}

AVX2_FN static void dequant4_avx2(const float *lut, const uint8_t *packed,
                                  const float *absmax, int sh, int64_t start,
                                  int64_t count, float *out) {
  AVX2_SHIFTS;
  int64_t end = start + count;
  int64_t a0 = (start + 31) & ~(int64_t)31;
  if (a0 > end) a0 = end;
  dequant4_scalar(lut, packed, absmax, sh, start, a0 - start, out);
  int64_t f = a0;
  for (; f + 32 <= end; f += 32) {
    __m256 w[4];
    chunk_weights(lut, packed, absmax[f >> sh], f, sr, sl, w);
    float *o = out + (f - start);
    _mm256_storeu_ps(o, w[0]);
    _mm256_storeu_ps(o + 8, w[1]);
    _mm256_storeu_ps(o + 16, w[2]);
    _mm256_storeu_ps(o + 24, w[3]);
  }
  dequant4_scalar(lut, packed, absmax, sh, f, end - f, out + (f - start));
}

/* One row's 32 lane accumulators a0..a3 += x * w for the chunk at flat f
 * (mul, then add: no FMA). Written as a macro over named vectors so that gcc
 * keeps everything in registers. */
#define AVX2_ROW_STEP(f, a0, a1, a2, a3)                                    \
  do {                                                                      \
    __m256 va_ = _mm256_set1_ps(absmax[(f) >> sh]);                         \
    __m256 l0_ = _mm256_mul_ps(lo8, va_), l1_ = _mm256_mul_ps(hi8, va_);    \
    const uint8_t *p_ = packed + ((f) >> 1);                                \
    a0 = _mm256_add_ps(a0, _mm256_mul_ps(x0, lookup8(p_, sr, sl, l0_, l1_)));      \
    a1 = _mm256_add_ps(a1, _mm256_mul_ps(x1, lookup8(p_ + 4, sr, sl, l0_, l1_)));  \
    a2 = _mm256_add_ps(a2, _mm256_mul_ps(x2, lookup8(p_ + 8, sr, sl, l0_, l1_)));  \
    a3 = _mm256_add_ps(a3, _mm256_mul_ps(x3, lookup8(p_ + 12, sr, sl, l0_, l1_))); \
  } while (0)

AVX2_FN static inline float reduce_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  float acc[32];
  _mm256_storeu_ps(acc, a0);
  _mm256_storeu_ps(acc + 8, a1);
  _mm256_storeu_ps(acc + 16, a2);
  _mm256_storeu_ps(acc + 24, a3);
  return reduce32(acc);
}

/* Requires K % 32 == 0 (chunks are 32-aligned and inside one block). Two rows
 * per pass share the activation loads; each row keeps the scalar reference's
 * 32 lane accumulators and its reduction tree. */
AVX2_FN static void gemv4_avx2(const float *lut, const uint8_t *packed,
                               const float *absmax, int sh, int64_t K,
                               const float *x, float *y, int64_t n0,
                               int64_t n1) {
  AVX2_SHIFTS;
  const __m256 lo8 = _mm256_loadu_ps(lut), hi8 = _mm256_loadu_ps(lut + 8);
  int64_t n = n0;
  for (; n + 2 <= n1; n += 2) {
    int64_t b0 = n * K, b1 = b0 + K;
    __m256 v0 = _mm256_setzero_ps(), v1 = v0, v2 = v0, v3 = v0;
    __m256 u0 = v0, u1 = v0, u2 = v0, u3 = v0;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      __m256 x0 = _mm256_loadu_ps(x + k0), x1 = _mm256_loadu_ps(x + k0 + 8);
      __m256 x2 = _mm256_loadu_ps(x + k0 + 16), x3 = _mm256_loadu_ps(x + k0 + 24);
      AVX2_ROW_STEP(b0 + k0, v0, v1, v2, v3);
      AVX2_ROW_STEP(b1 + k0, u0, u1, u2, u3);
    }
    y[n] = reduce_avx2(v0, v1, v2, v3);
    y[n + 1] = reduce_avx2(u0, u1, u2, u3);
  }
  for (; n < n1; n++) {
    int64_t b0 = n * K;
    __m256 v0 = _mm256_setzero_ps(), v1 = v0, v2 = v0, v3 = v0;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      __m256 x0 = _mm256_loadu_ps(x + k0), x1 = _mm256_loadu_ps(x + k0 + 8);
      __m256 x2 = _mm256_loadu_ps(x + k0 + 16), x3 = _mm256_loadu_ps(x + k0 + 24);
      AVX2_ROW_STEP(b0 + k0, v0, v1, v2, v3);
    }
    y[n] = reduce_avx2(v0, v1, v2, v3);
  }
}

/* ------------------------------------------------------------ AVX-512 */

/* The whole 16-entry table fits one zmm, so a lookup is one vpermps (which
 * reads only bits 0..3 of each index). 16 packed bytes (32 codes) are spread
 * with two vpermd so that lane j holds the dword with code j, then a per-lane
 * right shift brings the code down. Lanes are in flat element order. */
typedef struct z512_consts {
  __m512i spread0, spread1, shifts;
} z512_consts;

AVX512_FN static inline z512_consts z512_init(void) {
  z512_consts c;
  c.spread0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  c.spread1 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  c.shifts = _mm512_setr_epi32(4, 0, 12, 8, 20, 16, 28, 24, 4, 0, 12, 8, 20, 16, 28, 24);
  return c;
}

AVX512_FN static inline void chunk_weights512(const float *lut,
                                              const uint8_t *packed, float a,
                                              int64_t f, const z512_consts *c,
                                              __m512 w[2]) {
  __m512 tab = _mm512_mul_ps(_mm512_loadu_ps(lut), _mm512_set1_ps(a));
  __m512i raw = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(packed + (f >> 1))));
  __m512i i0 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(c->spread0, raw), c->shifts);
  __m512i i1 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(c->spread1, raw), c->shifts);
  w[0] = _mm512_permutexvar_ps(i0, tab);
  w[1] = _mm512_permutexvar_ps(i1, tab);
}

AVX512_FN static void dequant4_avx512(const float *lut, const uint8_t *packed,
                                      const float *absmax, int sh, int64_t start,
                                      int64_t count, float *out) {
  z512_consts c = z512_init();
  int64_t end = start + count;
  int64_t a0 = (start + 31) & ~(int64_t)31;
  if (a0 > end) a0 = end;
  dequant4_scalar(lut, packed, absmax, sh, start, a0 - start, out);
  int64_t f = a0;
  for (; f + 32 <= end; f += 32) {
    __m512 w[2];
    chunk_weights512(lut, packed, absmax[f >> sh], f, &c, w);
    float *o = out + (f - start);
    _mm512_storeu_ps(o, w[0]);
    _mm512_storeu_ps(o + 16, w[1]);
  }
  dequant4_scalar(lut, packed, absmax, sh, f, end - f, out + (f - start));
}

/* Same contract and results as gemv4_avx2. Here 16 packed bytes are widened
 * with one vpmovzxbd: each lane's low nibble (odd element) feeds vpermps
 * directly, a shift gives the high nibble (even element). The activations are
 * de-interleaved once per call to match (xd: per chunk of 32, the 16 even then
 * the 16 odd elements); the lane sums are re-interleaved before the scalar
 * reference's reduction tree, so every lane still accumulates the same
 * products in the same order. The scaled table is rebuilt only at block
 * starts. Four rows per pass share the activation loads. */
#define Z_ROW_STEP(f, tab, ve, vo)                                           \
  do {                                                                       \
    if (k0 == 0 || ((f) & bmask) == 0)                                       \
      tab = _mm512_mul_ps(l, _mm512_set1_ps(absmax[(f) >> sh]));             \
    __m512i raw_ = _mm512_cvtepu8_epi32(                                     \
        _mm_loadu_si128((const __m128i *)(packed + ((f) >> 1))));            \
    __m512 we_ = _mm512_permutexvar_ps(_mm512_srli_epi32(raw_, 4), tab);     \
    __m512 wo_ = _mm512_permutexvar_ps(raw_, tab);                           \
    ve = _mm512_add_ps(ve, _mm512_mul_ps(xe, we_));                          \
    vo = _mm512_add_ps(vo, _mm512_mul_ps(xo, wo_));                          \
  } while (0)

AVX512_FN static inline float reduce_z(__m512 ve, __m512 vo) {
  float acc[32], ev[16], od[16];
  _mm512_storeu_ps(ev, ve);
  _mm512_storeu_ps(od, vo);
  for (int j = 0; j < 16; j++) {
    acc[2 * j] = ev[j];
    acc[2 * j + 1] = od[j];
  }
  return reduce32(acc);
}

AVX512_FN static void gemv4_avx512_rows(const float *lut, const uint8_t *packed,
                                        const float *absmax, int sh, int64_t K,
                                        const float *xd, float *y, int64_t n0,
                                        int64_t n1) {
  const int64_t bmask = ((int64_t)1 << sh) - 1;
  const __m512 l = _mm512_loadu_ps(lut);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    int64_t b0 = n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
    __m512 e0 = _mm512_setzero_ps(), e1 = e0, e2 = e0, e3 = e0;
    __m512 o0 = e0, o1 = e0, o2 = e0, o3 = e0;
    __m512 t0 = l, t1 = l, t2 = l, t3 = l;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      __m512 xe = _mm512_loadu_ps(xd + k0), xo = _mm512_loadu_ps(xd + k0 + 16);
      Z_ROW_STEP(b0 + k0, t0, e0, o0);
      Z_ROW_STEP(b1 + k0, t1, e1, o1);
      Z_ROW_STEP(b2 + k0, t2, e2, o2);
      Z_ROW_STEP(b3 + k0, t3, e3, o3);
    }
    y[n] = reduce_z(e0, o0);
    y[n + 1] = reduce_z(e1, o1);
    y[n + 2] = reduce_z(e2, o2);
    y[n + 3] = reduce_z(e3, o3);
  }
  for (; n < n1; n++) {
    int64_t b0 = n * K;
    __m512 e0 = _mm512_setzero_ps(), o0 = e0, t0 = l;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      __m512 xe = _mm512_loadu_ps(xd + k0), xo = _mm512_loadu_ps(xd + k0 + 16);
      Z_ROW_STEP(b0 + k0, t0, e0, o0);
    }
    y[n] = reduce_z(e0, o0);
  }
}

AVX512_FN static void gemv4_avx512(const float *lut, const uint8_t *packed,
                                   const float *absmax, int sh, int64_t K,
                                   const float *x, float *y, int64_t n0,
                                   int64_t n1) {
  float stack_xd[4096];
  float *xd = K <= 4096 ? stack_xd : (float *)malloc((size_t)K * sizeof(float));
  if (!xd) { /* out of memory: the AVX2 path needs no scratch */
    gemv4_avx2(lut, packed, absmax, sh, K, x, y, n0, n1);
    return;
  }
  for (int64_t k0 = 0; k0 < K; k0 += 32)
    for (int j = 0; j < 16; j++) {
      xd[k0 + j] = x[k0 + 2 * j];
      xd[k0 + 16 + j] = x[k0 + 2 * j + 1];
    }
  gemv4_avx512_rows(lut, packed, absmax, sh, K, xd, y, n0, n1);
  if (xd != stack_xd) free(xd);
}

static int cpu_has_avx512(void) {
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
  }
  return cached;
}

/* ------------------------------------------------------------ dispatch */

/* 0 scalar, 1 AVX2, 2 AVX-512. QF_BNB_ISA_AVX2 pins the AVX2 path (so tests
 * cover it on AVX-512 machines); AUTO takes the widest the CPU has. All paths
 * give the same bits. */
static int pick_path(qf_bnb_isa isa) {
  if (isa == QF_BNB_ISA_SCALAR || !qf_bnb_cpu_has_avx2()) return 0;
  if (isa == QF_BNB_ISA_AUTO && cpu_has_avx512()) return 2;
  return 1;
}
#endif /* QF_BNB_X86 */

void qf_bnb_dequant4(qf_bnb_isa isa, qf_bnb_qtype t, const uint8_t *packed,
                     const float *absmax, int64_t bs, int64_t start,
                     int64_t count, float *out) {
  const float *lut = qf_bnb_lut(t);
  int sh = log2_bs(bs);
#ifdef QF_BNB_X86
  int path = bs >= 32 ? pick_path(isa) : 0;
  if (path == 2) {
    dequant4_avx512(lut, packed, absmax, sh, start, count, out);
    return;
  }
  if (path == 1) {
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
  int path = (K % 32 == 0 && bs >= 32) ? pick_path(isa) : 0;
  if (path == 2) {
    gemv4_avx512(lut, packed, absmax, sh, K, x, y, n0, n1);
    return;
  }
  if (path == 1) {
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
