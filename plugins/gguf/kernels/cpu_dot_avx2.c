/*
 * cpu_dot_avx2.c — AVX2 dot products of ggml weight rows with quantized
 * activation rows, bit-identical to the scalar reference (qf_gguf_vec_dot).
 *
 * The reference sums integer products per block (per 16-element group with
 * eight lane accumulators for Q3_K..Q6_K) and then scales in float in a
 * fixed order. Integer sums do not depend on the order of additions, so the
 * kernels compute them with SIMD (sign trick + maddubs; for the K-quants the
 * bytes are first paired (i, i+8) inside each 16-group so every 16-bit
 * result belongs to one of the reference's eight lanes), then perform the
 * reference's float multiplications and additions one by one (element-wise
 * vector products are exact replicas of the scalar products). The file is
 * compiled with -ffp-contract=off and uses no FMA, so nothing is fused.
 * Weight-row layouts are ggml's block structs, read through byte offsets.
 * Eight-row variants (legacy types, IQ4_XS, Q3_K..Q6_K) dot eight weight
 * rows with one activation row, sharing the activation work and keeping each
 * row's float sums apart (a vector lane per row where the reference has one
 * serial sum), so the reference's order is kept while the chains overlap.
 */
#include <stdint.h>
#include <string.h>

#include "cpu_kernels.h"
#include "gguf_quants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define QF_AVX2 __attribute__((target("avx2,f16c")))

int qf_gguf_cpu_avx2_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}

QF_AVX2 static inline float qf__h2f(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

QF_AVX2 static inline float qf__f32(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

QF_AVX2 static inline int16_t qf__i16(const uint8_t *p) {
  int16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* Σ x·y of 32 signed bytes, as 8 int32 partial sums. */
QF_AVX2 static inline __m256i qf__mul_sum_i8(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

/* Σ x·y of 32 unsigned (x) by signed (y) bytes, as 8 int32 partial sums. */
QF_AVX2 static inline __m256i qf__mul_sum_u8(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

/* Totals of eight int32 vectors, lane k = Σ v[k]. */
QF_AVX2 static inline __m256i qf__hsum8(const __m256i v[8]) {
  __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
  __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
  __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                          _mm256_permute2x128_si256(u0, u1, 0x31));
}

QF_AVX2 static inline int qf__hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

/* 16 packed bytes → 32 nibbles: low nibbles (elements 0..15) in the low
 * half, high nibbles (16..31) in the high half. */
QF_AVX2 static inline __m256i qf__nibbles(const uint8_t *p) {
  /* broadcast load + per-half shift: no cross-lane shuffle */
  const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
  return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_set_epi64x(4, 4, 0, 0)),
                          _mm256_set1_epi8(0x0F));
}

/* 32 bits → 32 bytes, 0xFF where bit j is set. */
QF_AVX2 static inline __m256i qf__bits32(const uint8_t *p) {
  uint32_t x;
  memcpy(&x, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101,
                                         0x0000000000000000);
  __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
  b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* ---- legacy 32-element blocks: 8 blocks' integer sums at a time ---- */

enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0, K_IQ4_NL };

static const int8_t qf__kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

/* Integer sum of one weight block with its activation block. */
QF_AVX2 __attribute__((always_inline)) static inline __m256i qf__legacy_block(int kind,
                                                                              const uint8_t *bx,
                                                                              const uint8_t *q8) {
  const __m256i y = _mm256_loadu_si256((const __m256i *)q8);
  switch (kind) {
    case K_Q4_0:
      return qf__mul_sum_i8(_mm256_sub_epi8(qf__nibbles(bx + 2), _mm256_set1_epi8(8)), y);
    case K_Q4_1:
      return qf__mul_sum_u8(qf__nibbles(bx + 4), y);
    case K_Q5_0: {
      __m256i hb = _mm256_and_si256(qf__bits32(bx + 2), _mm256_set1_epi8(0x10));
      __m256i x = _mm256_sub_epi8(_mm256_or_si256(qf__nibbles(bx + 6), hb), _mm256_set1_epi8(16));
      return qf__mul_sum_i8(x, y);
    }
    case K_Q5_1: {
      __m256i hb = _mm256_and_si256(qf__bits32(bx + 4), _mm256_set1_epi8(0x10));
      return qf__mul_sum_u8(_mm256_or_si256(qf__nibbles(bx + 8), hb), y);
    }
    case K_Q8_0:
      return qf__mul_sum_i8(_mm256_loadu_si256((const __m256i *)(bx + 2)), y);
    default: { /* IQ4_NL */
      const __m128i t = _mm_loadu_si128((const __m128i *)qf__kvalues_iq4nl);
      const __m256i tab = _mm256_set_m128i(t, t);
      return qf__mul_sum_i8(_mm256_shuffle_epi8(tab, qf__nibbles(bx + 2)), y);
    }
  }
}

/* The reference's float step for one block: the value added to sumf. */
QF_AVX2 __attribute__((always_inline)) static inline __m256 qf__legacy_scale(int kind, __m256 s,
                                                                             __m256 X, __m256 Y,
                                                                             __m256 MX, __m256 SY) {
  switch (kind) {
    case K_Q4_0:
      return _mm256_mul_ps(_mm256_mul_ps(s, X), Y); /* sumi*dx*dy */
    case K_Q8_0:
      return _mm256_mul_ps(s, _mm256_mul_ps(X, Y)); /* sumi*(dx*dy) */
    case K_Q5_0:
      return _mm256_mul_ps(_mm256_mul_ps(X, Y), s); /* (dx*dy)*sumi */
    case K_IQ4_NL:
      return _mm256_mul_ps(_mm256_mul_ps(Y, X), s); /* (dy*dx)*sumi */
    default:                                        /* (dx*dy)*sumi + m*s */
      return _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(X, Y), s), _mm256_mul_ps(MX, SY));
  }
}

/* Always inlined into one wrapper per kind, so every switch on `kind` folds away. */
QF_AVX2 __attribute__((always_inline)) static inline float qf__dot_legacy(int kind, int n,
                                                                          const uint8_t *x,
                                                                          const uint8_t *y) {
  static const size_t xsz[] = {18, 20, 22, 24, 34, 18};
  const size_t bx_sz = xsz[kind];
  const int q81 = kind == K_Q4_1 || kind == K_Q5_1;
  const size_t by_sz = q81 ? 36 : 34, yq = q81 ? 4 : 2;
  const int nb = n / 32;
  float sumf = 0;
  float dx[8], dy[8], mx[8], sy[8], t[8];
  __m256i s[8];
  int ib = 0;
  for (; ib < nb; ib += 8) {
    const int cnt = nb - ib < 8 ? nb - ib : 8;
    for (int k = 0; k < 8; k++) {
      if (k >= cnt) {
        s[k] = _mm256_setzero_si256();
        dx[k] = dy[k] = mx[k] = sy[k] = 0;
        continue;
      }
      const uint8_t *bx = x + (size_t)(ib + k) * bx_sz, *by = y + (size_t)(ib + k) * by_sz;
      s[k] = qf__legacy_block(kind, bx, by + yq);
      dx[k] = qf__h2f(bx);
      dy[k] = qf__h2f(by);
      mx[k] = q81 ? qf__h2f(bx + 2) : 0.0f;
      sy[k] = q81 ? qf__h2f(by + 2) : 0.0f;
    }
    __m256 sf = _mm256_cvtepi32_ps(qf__hsum8(s));
    _mm256_storeu_ps(t, qf__legacy_scale(kind, sf, _mm256_loadu_ps(dx), _mm256_loadu_ps(dy),
                                         _mm256_loadu_ps(mx), _mm256_loadu_ps(sy)));
    for (int k = 0; k < cnt; k++) sumf += t[k];
  }
  return sumf;
}

/* Eight fp16 values, one per weight row at byte offset `off` of each row. */
QF_AVX2 static inline __m256 qf__h2f8(const uint8_t *p, size_t rs) {
  uint16_t h[8];
  for (int r = 0; r < 8; r++) memcpy(&h[r], p + (size_t)r * rs, 2);
  return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3],
                                        (short)h[4], (short)h[5], (short)h[6], (short)h[7]));
}

/* Eight weight rows (stride rs bytes) against one activation row: lane r of
 * the float vector is row r's running sumf, so every row sees exactly the
 * single-row reference's additions in the same order, while the eight
 * serial chains advance together in one vector add per block. */
QF_AVX2 __attribute__((always_inline)) static inline void qf__dot_legacy8(int kind, int n,
                                                                          const uint8_t *x,
                                                                          size_t rs,
                                                                          const uint8_t *y,
                                                                          float *out) {
  static const size_t xsz[] = {18, 20, 22, 24, 34, 18};
  const size_t bx_sz = xsz[kind];
  const int q81 = kind == K_Q4_1 || kind == K_Q5_1;
  const size_t by_sz = q81 ? 36 : 34, yq = q81 ? 4 : 2;
  const int nb = n / 32;
  __m256 sumf = _mm256_setzero_ps();
  __m256i s[8];
  for (int ib = 0; ib < nb; ib++) {
    const uint8_t *bx = x + (size_t)ib * bx_sz, *by = y + (size_t)ib * by_sz;
    if (kind == K_Q4_0) { /* Σ(q-8)·y = Σq·y - Σ8·y, the second shared by the rows */
      const __m256i yv = _mm256_loadu_si256((const __m256i *)(by + yq));
      const __m256i y8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), yv);
      for (int r = 0; r < 8; r++)
        s[r] = _mm256_madd_epi16(
            _mm256_sub_epi16(_mm256_maddubs_epi16(qf__nibbles(bx + (size_t)r * rs + 2), yv), y8),
            _mm256_set1_epi16(1));
    } else {
      for (int r = 0; r < 8; r++) s[r] = qf__legacy_block(kind, bx + (size_t)r * rs, by + yq);
    }
    const __m256 sf = _mm256_cvtepi32_ps(qf__hsum8(s));
    const __m256 X = qf__h2f8(bx, rs), Y = _mm256_set1_ps(qf__h2f(by));
    const __m256 MX = q81 ? qf__h2f8(bx + 2, rs) : _mm256_setzero_ps();
    const __m256 SY = q81 ? _mm256_set1_ps(qf__h2f(by + 2)) : _mm256_setzero_ps();
    sumf = _mm256_add_ps(sumf, qf__legacy_scale(kind, sf, X, Y, MX, SY));
  }
  _mm256_storeu_ps(out, sumf);
}

/* ---- K-quants ----
 * Q3_K..Q6_K: a 256-block is eight 32-value chunks; chunk c holds 16-groups
 * 2c (low half) and 2c+1 (high half). Levels are extracted unsigned (level +
 * offset: 4 for Q3_K, 32 for Q6_K), bytes are paired (i, i+8) inside each
 * group so maddubs leaves in int16 slot l of each half exactly the
 * reference's lane-l product pair, and the offset's share (offset × paired
 * activation sums, shared by all rows) is subtracted. Two chunks' int16
 * results are interleaved (unpack) so one madd against their two group
 * scales adds both into lane l's int32: the eight lane totals stay exact. */

enum { K_Q3K, K_Q4K, K_Q5K, K_Q6K };

#define Q8K_SZ 292
#define Q8K_QS 4
#define Q8K_BS 260

/* Pair byte i with byte i+8 inside each 16-byte group. */
QF_AVX2 static inline __m256i qf__pair(__m256i v) {
  const __m256i p = _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1,
                                     9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  return _mm256_shuffle_epi8(v, p);
}

/* Unsigned levels (level + offset) of chunk c of one block, unpaired. */
QF_AVX2 __attribute__((always_inline)) static inline __m256i qf__klev(int kind, const uint8_t *bx,
                                                                      int c) {
  const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0F);
  switch (kind) {
    case K_Q3K: {
      const __m256i q = _mm256_loadu_si256((const __m256i *)(bx + 32 + 32 * (c / 4)));
      const __m256i hm = _mm256_loadu_si256((const __m256i *)bx);
      const __m256i bit = _mm256_set1_epi8((char)(1 << c));
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
      return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * (c % 4)), m3),
                             _mm256_and_si256(set, _mm256_set1_epi8(4)));
    }
    case K_Q6K: {
      const __m256i q = _mm256_loadu_si256((const __m256i *)(bx + 64 * (c / 4) + 32 * (c % 2)));
      const __m256i lo = c % 4 < 2 ? _mm256_and_si256(q, m4)
                                   : _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const __m256i h = _mm256_loadu_si256((const __m256i *)(bx + 128 + 32 * (c / 4)));
      const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(h, 2 * (c % 4)), m3);
      return _mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4));
    }
    default: { /* Q4_K, Q5_K */
      const int five = kind == K_Q5K;
      const __m256i q = _mm256_loadu_si256((const __m256i *)(bx + (five ? 48 : 16) + 32 * (c / 2)));
      __m256i a = c % 2 ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m4) : _mm256_and_si256(q, m4);
      if (five) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(bx + 16));
        const __m256i bit = _mm256_set1_epi8((char)(1 << c));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
        a = _mm256_or_si256(a, _mm256_and_si256(set, _mm256_set1_epi8(16)));
      }
      return a;
    }
  }
}

static inline void qf__scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

/* The 16 group scales of a block as int8 in both 128-bit halves; Q4_K/Q5_K
 * also write each group's min into mn. */
QF_AVX2 __attribute__((always_inline)) static inline __m256i qf__kscales(int kind,
                                                                         const uint8_t *bx,
                                                                         uint8_t mn[16]) {
  int8_t s[16];
  if (kind == K_Q6K)
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(bx + 192)));
  if (kind == K_Q3K) { /* s[j] = (low 4 bits | 2 high bits << 4) - 32 */
    uint32_t a;
    memcpy(&a, bx + 104, 4);
    const __m128i m4 = _mm_set1_epi8(0x0F), l8 = _mm_loadl_epi64((const __m128i *)(bx + 96));
    const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(l8, m4),
                                          _mm_and_si128(_mm_srli_epi16(l8, 4), m4));
    const __m128i sh = _mm_setr_epi32(0, 2, 4, 6);
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)a), sh), _mm_set1_epi8(3));
    return _mm256_broadcastsi128_si256(
        _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32)));
  } else {
    for (int j = 0; j < 8; j++) {
      int d, m;
      qf__scale_min_k4(j, bx + 4, &d, &m);
      s[2 * j] = s[2 * j + 1] = (int8_t)d;
      mn[2 * j] = mn[2 * j + 1] = (uint8_t)m;
    }
  }
  return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)s));
}

/* int16 scales of chunks c, c+1 interleaved: low half (s[2c], s[2c+2]) ×4,
 * high half (s[2c+1], s[2c+3]) ×4 (byte to the high half, then sign shift). */
QF_AVX2 static inline __m256i qf__kscale2(__m256i sb, int c) {
  const int lo = (int)(0x00800080u | (unsigned)(2 * c) << 8 | (unsigned)(2 * c + 2) << 24);
  const int hi = lo + 0x01000100;
  const __m256i ctl = _mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi);
  return _mm256_srai_epi16(_mm256_shuffle_epi8(sb, ctl), 8);
}

/* The block's paired activation chunks and, for Q3_K/Q6_K, the offsets' shares. */
QF_AVX2 __attribute__((always_inline)) static inline void qf__kact(int kind, const uint8_t *by,
                                                                   __m256i q8p[8], __m256i off[8]) {
  const __m256i o = _mm256_set1_epi8(kind == K_Q3K ? 4 : 32);
  for (int c = 0; c < 8; c++) {
    q8p[c] = qf__pair(_mm256_loadu_si256((const __m256i *)(by + Q8K_QS + 32 * c)));
    if (kind == K_Q3K || kind == K_Q6K) off[c] = _mm256_maddubs_epi16(o, q8p[c]);
  }
}

/* The reference's eight int32 lane totals of one block. */
QF_AVX2 __attribute__((always_inline)) static inline __m256i qf__klanes(int kind,
                                                                        const uint8_t *bx,
                                                                        const __m256i q8p[8],
                                                                        const __m256i off[8],
                                                                        __m256i sb) {
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
  for (int c = 0; c < 8; c += 2) {
    __m256i p0 = _mm256_maddubs_epi16(qf__pair(qf__klev(kind, bx, c)), q8p[c]);
    __m256i p1 = _mm256_maddubs_epi16(qf__pair(qf__klev(kind, bx, c + 1)), q8p[c + 1]);
    if (kind == K_Q3K || kind == K_Q6K) {
      p0 = _mm256_sub_epi16(p0, off[c]);
      p1 = _mm256_sub_epi16(p1, off[c + 1]);
    }
    const __m256i s = qf__kscale2(sb, c);
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(p0, p1), s));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(p0, p1), s));
  }
  return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20),
                          _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* Q4_K/Q5_K: Σ bsums[j] · min[j/2]. */
QF_AVX2 static inline int qf__kmins(const uint8_t *by, const uint8_t mn[16]) {
  const __m256i b = _mm256_loadu_si256((const __m256i *)(by + Q8K_BS));
  const __m256i m = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)mn));
  return qf__hsum(_mm256_madd_epi16(b, m));
}

static const size_t qf__kbsz[] = {110, 144, 176, 210}, qf__kdoff[] = {108, 0, 0, 208};

QF_AVX2 __attribute__((always_inline)) static inline float qf__dot_k(int kind, int n,
                                                                     const uint8_t *x,
                                                                     const uint8_t *y) {
  const int nb = n / 256, mins = kind == K_Q4K || kind == K_Q5K;
  float sumf = 0, s[8];
  __m256 sums = _mm256_setzero_ps();
  __m256i q8p[8], off[8];
  uint8_t mn[16];
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * qf__kbsz[kind], *by = y + (size_t)i * Q8K_SZ;
    qf__kact(kind, by, q8p, off);
    const __m256i acc = qf__klanes(kind, bx, q8p, off, qf__kscales(kind, bx, mn));
    const float yd = qf__f32(by), d = qf__h2f(bx + qf__kdoff[kind]) * yd;
    sums = _mm256_add_ps(sums, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc)));
    if (mins) {
      const float dmin = qf__h2f(bx + 2) * yd;
      sumf -= dmin * qf__kmins(by, mn);
    }
  }
  _mm256_storeu_ps(s, sums);
  for (int l = 0; l < 8; l++) sumf += s[l];
  return sumf;
}

/* Eight rows at once sharing the activation work; row r keeps its own lane
 * vector and (lane r of sumf) its own min chain, in the reference's order. */
QF_AVX2 __attribute__((always_inline)) static inline void qf__dot_k8(int kind, int n,
                                                                     const uint8_t *x, size_t rs,
                                                                     const uint8_t *y,
                                                                     float *out) {
  const int nb = n / 256, mins = kind == K_Q4K || kind == K_Q5K;
  __m256 sums[8], sumf = _mm256_setzero_ps();
  __m256i q8p[8], off[8];
  uint8_t mn[16];
  float d[8], f[8], s[8];
  int sumi[8];
  for (int r = 0; r < 8; r++) sums[r] = _mm256_setzero_ps();
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * qf__kbsz[kind], *by = y + (size_t)i * Q8K_SZ;
    qf__kact(kind, by, q8p, off);
    const __m256 Y = _mm256_set1_ps(qf__f32(by));
    _mm256_storeu_ps(d, _mm256_mul_ps(qf__h2f8(bx + qf__kdoff[kind], rs), Y));
    for (int r = 0; r < 8; r++) {
      const uint8_t *b = bx + (size_t)r * rs;
      const __m256i acc = qf__klanes(kind, b, q8p, off, qf__kscales(kind, b, mn));
      const __m256 t = _mm256_mul_ps(_mm256_set1_ps(d[r]), _mm256_cvtepi32_ps(acc));
      sums[r] = _mm256_add_ps(sums[r], t);
      if (mins) sumi[r] = qf__kmins(by, mn);
    }
    if (mins) {
      const __m256 dmin = _mm256_mul_ps(qf__h2f8(bx + 2, rs), Y);
      const __m256 si = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)sumi));
      sumf = _mm256_sub_ps(sumf, _mm256_mul_ps(dmin, si));
    }
  }
  _mm256_storeu_ps(f, sumf);
  for (int r = 0; r < 8; r++) {
    _mm256_storeu_ps(s, sums[r]);
    for (int l = 0; l < 8; l++) f[r] += s[l];
  }
  memcpy(out, f, sizeof f);
}

#define QF__KQ(fn, fn8, kind)                                                                   \
  QF_AVX2 static float fn(int n, const uint8_t *x, const uint8_t *y) {                          \
    return qf__dot_k(kind, n, x, y);                                                            \
  }                                                                                             \
  QF_AVX2 static void fn8(int n, const uint8_t *x, size_t rs, const uint8_t *y, float *out) { \
    qf__dot_k8(kind, n, x, rs, y, out);                                                         \
  }
QF__KQ(qf__dot_q3_K, qf__dot8_q3_K, K_Q3K)
QF__KQ(qf__dot_q4_K, qf__dot8_q4_K, K_Q4K)
QF__KQ(qf__dot_q5_K, qf__dot8_q5_K, K_Q5K)
QF__KQ(qf__dot_q6_K, qf__dot8_q6_K, K_Q6K)

QF_AVX2 static float qf__dot_q2_K(int n, const uint8_t *x, const uint8_t *y) {
  const int nb = n / 256;
  float sumf = 0;
  const __m256i m3 = _mm256_set1_epi8(3);
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * 84, *by = y + (size_t)i * Q8K_SZ;
    const uint8_t *sc = bx, *q2 = bx + 16;
    const int8_t *q8 = (const int8_t *)(by + Q8K_QS);
    int summs = 0;
    for (int j = 0; j < 16; j++) summs += qf__i16(by + Q8K_BS + 2 * j) * (sc[j] >> 4);
    const float yd = qf__f32(by);
    const float dall = yd * qf__h2f(bx + 80), dmin = yd * qf__h2f(bx + 82);
    __m256i acc = _mm256_setzero_si256();
    int is = 0;
    for (int k = 0; k < 2; k++) {
      const __m256i q2v = _mm256_loadu_si256((const __m256i *)(q2 + 32 * k));
      for (int j = 0; j < 4; j++) {
        __m256i v = _mm256_and_si256(_mm256_srli_epi16(q2v, 2 * j), m3);
        __m256i q8v = _mm256_loadu_si256((const __m256i *)(q8 + 32 * (4 * k + j)));
        __m256i p = _mm256_maddubs_epi16(v, q8v);
        __m256i scl = _mm256_set_m128i(_mm_set1_epi16((short)(sc[is + 1] & 0xF)),
                                       _mm_set1_epi16((short)(sc[is] & 0xF)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scl));
        is += 2;
      }
    }
    const int isum = qf__hsum(acc);
    sumf += dall * isum - dmin * summs;
  }
  return sumf;
}

QF_AVX2 static float qf__dot_iq4_xs(int n, const uint8_t *x, const uint8_t *y) {
  const int nb = n / 256;
  const __m128i t = _mm_loadu_si128((const __m128i *)qf__kvalues_iq4nl);
  const __m256i tab = _mm256_set_m128i(t, t);
  float sumf = 0, tt[8];
  int ls[8];
  __m256i s[8];
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * 136, *by = y + (size_t)i * Q8K_SZ;
    uint16_t sh;
    memcpy(&sh, bx + 2, 2);
    const int8_t *q8 = (const int8_t *)(by + Q8K_QS);
    for (int ib = 0; ib < 8; ib++) {
      ls[ib] = (((bx[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)) - 32;
      __m256i v = _mm256_shuffle_epi8(tab, qf__nibbles(bx + 8 + 16 * ib));
      s[ib] = qf__mul_sum_i8(v, _mm256_loadu_si256((const __m256i *)(q8 + 32 * ib)));
    }
    const float d4d8 = qf__h2f(bx) * qf__f32(by);
    __m256 dl = _mm256_mul_ps(_mm256_set1_ps(d4d8),
                              _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)ls)));
    _mm256_storeu_ps(tt, _mm256_mul_ps(dl, _mm256_cvtepi32_ps(qf__hsum8(s))));
    for (int k = 0; k < 8; k++) sumf += tt[k];
  }
  return sumf;
}

/* IQ4_XS, eight rows at once (see qf__dot_legacy8): lane r is row r's sumf. */
QF_AVX2 static void qf__dot_iq4_xs8(int n, const uint8_t *x, size_t rs, const uint8_t *y,
                                    float *out) {
  const int nb = n / 256;
  const __m128i t = _mm_loadu_si128((const __m128i *)qf__kvalues_iq4nl);
  const __m256i tab = _mm256_set_m128i(t, t), m4 = _mm256_set1_epi32(0xF),
                m3 = _mm256_set1_epi32(3), m32 = _mm256_set1_epi32(32);
  __m256 sumf = _mm256_setzero_ps();
  __m256i s[8];
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * 136, *by = y + (size_t)i * Q8K_SZ;
    const int8_t *q8 = (const int8_t *)(by + Q8K_QS);
    uint32_t lo[8], hi[8];
    for (int r = 0; r < 8; r++) {
      uint16_t h;
      memcpy(&lo[r], bx + (size_t)r * rs + 4, 4);
      memcpy(&h, bx + (size_t)r * rs + 2, 2);
      hi[r] = h;
    }
    __m256i L = _mm256_loadu_si256((const __m256i *)lo), H = _mm256_loadu_si256((const __m256i *)hi);
    const __m256 d4d8 = _mm256_mul_ps(qf__h2f8(bx, rs), _mm256_set1_ps(qf__f32(by)));
    for (int ib = 0; ib < 8; ib++) {
      const __m256i q8v = _mm256_loadu_si256((const __m256i *)(q8 + 32 * ib));
      for (int r = 0; r < 8; r++) {
        __m256i v = _mm256_shuffle_epi8(tab, qf__nibbles(bx + (size_t)r * rs + 8 + 16 * ib));
        s[r] = qf__mul_sum_i8(v, q8v);
      }
      const __m256i ls = _mm256_sub_epi32(
          _mm256_or_si256(_mm256_and_si256(L, m4), _mm256_slli_epi32(_mm256_and_si256(H, m3), 4)),
          m32);
      L = _mm256_srli_epi32(L, 4);
      H = _mm256_srli_epi32(H, 2);
      const __m256 d1 = _mm256_mul_ps(d4d8, _mm256_cvtepi32_ps(ls)); /* d4d8 * (ls - 32) */
      sumf = _mm256_add_ps(sumf, _mm256_mul_ps(d1, _mm256_cvtepi32_ps(qf__hsum8(s))));
    }
  }
  _mm256_storeu_ps(out, sumf);
}

#define QF__LEGACY8(fn, kind)                                                                  \
  QF_AVX2 static void fn(int n, const uint8_t *x, size_t rs, const uint8_t *y, float *out) { \
    qf__dot_legacy8(kind, n, x, rs, y, out);                                                   \
  }
QF__LEGACY8(qf__dot8_q4_0, K_Q4_0)
QF__LEGACY8(qf__dot8_q4_1, K_Q4_1)
QF__LEGACY8(qf__dot8_q5_0, K_Q5_0)
QF__LEGACY8(qf__dot8_q5_1, K_Q5_1)
QF__LEGACY8(qf__dot8_q8_0, K_Q8_0)
QF__LEGACY8(qf__dot8_iq4_nl, K_IQ4_NL)

int qf_gguf_dot_avx2_x8(int type, int n, const void *vx, size_t row_stride, const void *vy,
                        float out[8]) {
  const uint8_t *x = vx, *y = vy;
  switch (type) {
    case QF_GGUF_TYPE_Q4_0:
      qf__dot8_q4_0(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q4_1:
      qf__dot8_q4_1(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q5_0:
      qf__dot8_q5_0(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q5_1:
      qf__dot8_q5_1(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q8_0:
      qf__dot8_q8_0(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_IQ4_NL:
      qf__dot8_iq4_nl(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_IQ4_XS:
      qf__dot_iq4_xs8(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q3_K:
      qf__dot8_q3_K(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q4_K:
      qf__dot8_q4_K(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q5_K:
      qf__dot8_q5_K(n, x, row_stride, y, out);
      return 0;
    case QF_GGUF_TYPE_Q6_K:
      qf__dot8_q6_K(n, x, row_stride, y, out);
      return 0;
    default:
      return -1;
  }
}

#define QF__LEGACY(fn, kind)                                           \
  QF_AVX2 static float fn(int n, const uint8_t *x, const uint8_t *y) { \
    return qf__dot_legacy(kind, n, x, y);                              \
  }
QF__LEGACY(qf__dot_q4_0, K_Q4_0)
QF__LEGACY(qf__dot_q4_1, K_Q4_1)
QF__LEGACY(qf__dot_q5_0, K_Q5_0)
QF__LEGACY(qf__dot_q5_1, K_Q5_1)
QF__LEGACY(qf__dot_q8_0, K_Q8_0)
QF__LEGACY(qf__dot_iq4_nl, K_IQ4_NL)

int qf_gguf_dot_avx2(int type, int n, const void *vx, const void *vy, float *out) {
  const uint8_t *x = vx, *y = vy;
  switch (type) {
    case QF_GGUF_TYPE_Q4_0:
      *out = qf__dot_q4_0(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q4_1:
      *out = qf__dot_q4_1(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q5_0:
      *out = qf__dot_q5_0(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q5_1:
      *out = qf__dot_q5_1(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q8_0:
      *out = qf__dot_q8_0(n, x, y);
      return 0;
    case QF_GGUF_TYPE_IQ4_NL:
      *out = qf__dot_iq4_nl(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q2_K:
      *out = qf__dot_q2_K(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q3_K:
      *out = qf__dot_q3_K(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q4_K:
      *out = qf__dot_q4_K(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q5_K:
      *out = qf__dot_q5_K(n, x, y);
      return 0;
    case QF_GGUF_TYPE_Q6_K:
      *out = qf__dot_q6_K(n, x, y);
      return 0;
    case QF_GGUF_TYPE_IQ4_XS:
      *out = qf__dot_iq4_xs(n, x, y);
      return 0;
    default:
      return -1;
  }
}

#else /* not x86 */

int qf_gguf_dot_avx2_x8(int type, int n, const void *x, size_t row_stride, const void *y,
                        float out[8]) {
  (void)type;
  (void)n;
  (void)x;
  (void)row_stride;
  (void)y;
  (void)out;
  return -1;
}

int qf_gguf_cpu_avx2_supported(void) {
  return 0;
}

int qf_gguf_dot_avx2(int type, int n, const void *x, const void *y, float *out) {
  (void)type;
  (void)n;
  (void)x;
  (void)y;
  (void)out;
  return -1;
}

#endif
