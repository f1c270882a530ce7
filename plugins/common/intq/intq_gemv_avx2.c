/*
 * AVX2 tile kernel for the fused dequantize + GEMV (see intq_impl.h).
 * Eight output columns form one vector lane set; each lane performs the
 * same float operations in the same order as the scalar reference:
 * acc = fma(xq, field, acc) over positions (fields taken in place, scaled
 * activations xq undo the bit offset exactly), then y = y + s·(acc − z·Σx)
 * per run — so results are bit-identical to the scalar path. Four lane
 * sets run interleaved to hide the FMA latency. Built with a per-function
 * target attribute and chosen at run time (__builtin_cpu_supports avx2 and
 * fma); on other compilers or ISAs the entry points fall back to scalar.
 */
#include "intq_impl.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

int qf_intq__avx2_available(void) {
  static int cached = -1;
  int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
  }
  return v;
}

#define T_AVX2 __attribute__((target("avx2,fma")))

/* The top field of a word, shifted down (lower fields stay in place). */
#define TOP(w, SH) _mm256_cvtepi32_ps(_mm256_srli_epi32(w, SH))

static T_AVX2 void epilogue(__m256 acc, const float *s, const float *z,
                            __m256 xs, float *yt) {
  const __m256 a = _mm256_mul_ps(_mm256_loadu_ps(z), xs);
  const __m256 u = _mm256_sub_ps(acc, a);
  const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s), u);
  _mm256_storeu_ps(yt, _mm256_add_ps(_mm256_loadu_ps(yt), v));
}

#define LOAD4()                                                          \
  const uint32_t *wr = tile + r * tw + c;                                \
  const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wr + 0));      \
  const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wr + 8));      \
  const __m256i w2 = _mm256_loadu_si256((const __m256i *)(wr + 16));     \
  const __m256i w3 = _mm256_loadu_si256((const __m256i *)(wr + 24))

/* One position for the four lane sets. */
#define P4(I, MSK)                                                 \
  do {                                                             \
    const __m256 x = _mm256_broadcast_ss(xr + I);                  \
    const __m256i mk = _mm256_set1_epi32((int)(MSK));              \
    a0 = _mm256_fmadd_ps(x, _mm256_cvtepi32_ps(_mm256_and_si256(w0, mk)), a0); \
    a1 = _mm256_fmadd_ps(x, _mm256_cvtepi32_ps(_mm256_and_si256(w1, mk)), a1); \
    a2 = _mm256_fmadd_ps(x, _mm256_cvtepi32_ps(_mm256_and_si256(w2, mk)), a2); \
    a3 = _mm256_fmadd_ps(x, _mm256_cvtepi32_ps(_mm256_and_si256(w3, mk)), a3); \
  } while (0)

#define P4TOP(I, SH)                                                 \
  do {                                                               \
    const __m256 x = _mm256_broadcast_ss(xr + I);                    \
    a0 = _mm256_fmadd_ps(x, TOP(w0, SH), a0);                        \
    a1 = _mm256_fmadd_ps(x, TOP(w1, SH), a1);                        \
    a2 = _mm256_fmadd_ps(x, TOP(w2, SH), a2);                        \
    a3 = _mm256_fmadd_ps(x, TOP(w3, SH), a3);                        \
  } while (0)

#define EPI4()                                                  \
  epilogue(a0, s + c, z + c, xs, yt + c);                       \
  epilogue(a1, s + c + 8, z + c + 8, xs, yt + c + 8);           \
  epilogue(a2, s + c + 16, z + c + 16, xs, yt + c + 16);        \
  epilogue(a3, s + c + 24, z + c + 24, xs, yt + c + 24)

/* Four lane sets (32 columns) at column c over word rows [r0, r1), then
 * their epilogue. */
static T_AVX2 void run4_nib(const uint32_t *tile, int64_t tw, int64_t c,
                            int64_t r0, int64_t r1, const float *xq,
                            const float *s, const float *z, __m256 xs,
                            float *yt) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t r = r0; r < r1; r++) {
    LOAD4();
    const float *xr = xq + r * 8;
    P4(0, 0xFu);
    P4(1, 0xF0u);
    P4(2, 0xF00u);
    P4(3, 0xF000u);
    P4(4, 0xF0000u);
    P4(5, 0xF00000u);
    P4(6, 0xF000000u);
    P4TOP(7, 28);
  }
  EPI4();
}

static T_AVX2 void run4_byte(const uint32_t *tile, int64_t tw, int64_t c,
                             int64_t r0, int64_t r1, const float *xq,
                             const float *s, const float *z, __m256 xs,
                             float *yt) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t r = r0; r < r1; r++) {
    LOAD4();
    const float *xr = xq + r * 4;
    P4(0, 0xFFu);
    P4(1, 0xFF00u);
    P4(2, 0xFF0000u);
    P4TOP(3, 24);
  }
  EPI4();
}

/* One lane set (8 columns) at column c. */
static T_AVX2 __m256 acc1(const uint32_t *tile, int64_t tw, int64_t c,
                          int64_t r0, int64_t r1, const float *xq, int fw) {
  __m256 a = _mm256_setzero_ps();
  const int vpw = 32 / fw;
  const uint32_t base = (1u << fw) - 1u;
  for (int64_t r = r0; r < r1; r++) {
    const __m256i w = _mm256_loadu_si256((const __m256i *)(tile + r * tw + c));
    const float *xr = xq + r * vpw;
    for (int j = 0; j < vpw - 1; j++) {
      const __m256i mk = _mm256_set1_epi32((int)(base << (j * fw)));
      a = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + j),
                          _mm256_cvtepi32_ps(_mm256_and_si256(w, mk)), a);
    }
    const __m256 top = fw == 4 ? TOP(w, 28) : TOP(w, 24);
    a = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + vpw - 1), top, a);
  }
  return a;
}

T_AVX2 void qf_intq__gemv_tile_avx2(const struct qf_intq_qmat *m, int64_t t,
                                    const float *xq, const float *xsum,
                                    float *yt) {
  const int64_t tw = qf_intq__tile_width(m, t);
  const uint32_t *tile = qf_intq__tile_words(m, t);
  for (int64_t nn = 0; nn < tw; nn += 8)
    _mm256_storeu_ps(yt + nn, _mm256_setzero_ps());
  for (int64_t ri = 0; ri < m->nruns; ri++) {
    const qf_intq_run *run = &m->runs[ri];
    const int64_t r0 = run->pos / m->vpw, r1 = (run->pos + run->len) / m->vpw;
    const float *s = m->s + (int64_t)run->group * m->np + t * QF_INTQ_TILE;
    const float *z = m->z + (int64_t)run->group * m->np + t * QF_INTQ_TILE;
    const __m256 xs = _mm256_set1_ps(xsum[ri]);
    int64_t c = 0;
    for (; c + 32 <= tw; c += 32) {
      if (m->fw == 4)
        run4_nib(tile, tw, c, r0, r1, xq, s, z, xs, yt);
      else
        run4_byte(tile, tw, c, r0, r1, xq, s, z, xs, yt);
    }
    for (; c < tw; c += 8)
      epilogue(acc1(tile, tw, c, r0, r1, xq, m->fw), s + c, z + c, xs, yt + c);
  }
}

#else /* no AVX2 path on this compiler / ISA */

int qf_intq__avx2_available(void) { return 0; }

void qf_intq__gemv_tile_avx2(const struct qf_intq_qmat *m, int64_t t,
                             const float *xq, const float *xsum, float *yt) {
  qf_intq__gemv_tile_scalar(m, t, xq, xsum, yt);
}

#endif
