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
 * Eight-row variants (legacy types, IQ4_XS) dot eight weight rows with one
 * activation row, keeping each row's serial float sum in its own vector lane
 * so the reference's order is kept while the latency chains overlap.
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

/* ---- K-quants ---- */

/* Pair byte i with byte i+8 inside each 16-byte group. */
QF_AVX2 static inline __m256i qf__pair(__m256i v) {
  const __m256i p = _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1,
                                     9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  return _mm256_shuffle_epi8(v, p);
}

/* 32 levels (signed) × 32 activations → per-lane int16 sums, low half for
 * the first 16-group, high half for the second. */
QF_AVX2 static inline __m256i qf__lanes_i8(__m256i a, __m256i q8) {
  a = qf__pair(a);
  q8 = qf__pair(q8);
  return _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(q8, a));
}

QF_AVX2 static inline __m256i qf__lanes_u8(__m256i a, __m256i q8) {
  return _mm256_maddubs_epi16(qf__pair(a), qf__pair(q8));
}

/* acc += lanes of group A × sa + lanes of group B × sb */
QF_AVX2 static inline __m256i qf__lanes_acc(__m256i acc, __m256i p, int sa, int sb) {
  __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p));
  __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1));
  if (sa == sb)
    return _mm256_add_epi32(acc,
                            _mm256_mullo_epi32(_mm256_add_epi32(lo, hi), _mm256_set1_epi32(sa)));
  acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(lo, _mm256_set1_epi32(sa)));
  return _mm256_add_epi32(acc, _mm256_mullo_epi32(hi, _mm256_set1_epi32(sb)));
}

QF_AVX2 static float qf__lanes_total(__m256 sums) {
  float s[8], sumf = 0;
  _mm256_storeu_ps(s, sums);
  for (int l = 0; l < 8; l++) sumf += s[l];
  return sumf;
}

#define Q8K_SZ 292
#define Q8K_QS 4
#define Q8K_BS 260

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

QF_AVX2 static float qf__dot_q3_K(int n, const uint8_t *x, const uint8_t *y) {
  const int nb = n / 256;
  __m256 sums = _mm256_setzero_ps();
  const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4), zero = _mm256_setzero_si256();
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * 110, *by = y + (size_t)i * Q8K_SZ;
    const uint8_t *hm = bx, *qs = bx + 32, *s12 = bx + 96;
    const int8_t *q8 = (const int8_t *)(by + Q8K_QS);
    int scales[16];
    for (int j = 0; j < 16; j++) {
      const int lo = j < 8 ? s12[j] & 0xF : s12[j - 8] >> 4;
      const int hi = (s12[8 + j % 4] >> (2 * (j / 4))) & 3;
      scales[j] = (lo | (hi << 4)) - 32;
    }
    const __m256i hmv = _mm256_loadu_si256((const __m256i *)hm);
    __m256i acc = _mm256_setzero_si256();
    for (int j = 0; j < 2; j++) {
      const __m256i q3v = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
      for (int s = 0; s < 4; s++) {
        const int c = 4 * j + s;
        __m256i lo2 = _mm256_and_si256(_mm256_srli_epi16(q3v, 2 * s), m3);
        __m256i clear =
            _mm256_cmpeq_epi8(_mm256_and_si256(hmv, _mm256_set1_epi8((char)(1 << c))), zero);
        __m256i a = _mm256_sub_epi8(lo2, _mm256_and_si256(clear, four));
        __m256i q8v = _mm256_loadu_si256((const __m256i *)(q8 + 32 * c));
        acc = qf__lanes_acc(acc, qf__lanes_i8(a, q8v), scales[2 * c], scales[2 * c + 1]);
      }
    }
    const float d = qf__h2f(bx + 108) * qf__f32(by);
    sums = _mm256_add_ps(sums, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc)));
  }
  return qf__lanes_total(sums);
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

/* Q4_K (five = 0) and Q5_K (five = 1). */
QF_AVX2 static float qf__dot_k45(int n, const uint8_t *x, const uint8_t *y, int five) {
  const int nb = n / 256;
  const size_t bsz = five ? 176 : 144;
  float sumf = 0;
  __m256 sums = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * bsz, *by = y + (size_t)i * Q8K_SZ;
    const uint8_t *s12 = bx + 4, *qh = bx + 16, *q4 = bx + (five ? 48 : 16);
    const int8_t *q8 = (const int8_t *)(by + Q8K_QS);
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) qf__scale_min_k4(j, s12, &sc[j], &mn[j]);
    int sumi = 0;
    for (int j = 0; j < 16; j++) sumi += qf__i16(by + Q8K_BS + 2 * j) * mn[j / 2];
    const __m256i qhv = five ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      const __m256i q4v = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
      for (int h = 0; h < 2; h++) {
        const int ch = 2 * c + h;
        __m256i a = h ? _mm256_and_si256(_mm256_srli_epi16(q4v, 4), m4) : _mm256_and_si256(q4v, m4);
        if (five) {
          const __m256i bit = _mm256_set1_epi8((char)(1 << ch));
          __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qhv, bit), bit);
          a = _mm256_or_si256(a, _mm256_and_si256(set, sixteen));
        }
        __m256i q8v = _mm256_loadu_si256((const __m256i *)(q8 + 32 * ch));
        acc = qf__lanes_acc(acc, qf__lanes_u8(a, q8v), sc[ch], sc[ch]);
      }
    }
    const float yd = qf__f32(by);
    const float d = qf__h2f(bx) * yd;
    sums = _mm256_add_ps(sums, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc)));
    const float dmin = qf__h2f(bx + 2) * yd;
    sumf -= dmin * sumi;
  }
  float s[8];
  _mm256_storeu_ps(s, sums);
  for (int l = 0; l < 8; l++) sumf += s[l];
  return sumf;
}

QF_AVX2 static float qf__dot_q6_K(int n, const uint8_t *x, const uint8_t *y) {
  const int nb = n / 256;
  __m256 sums = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3), m32 = _mm256_set1_epi8(32);
  for (int i = 0; i < nb; i++) {
    const uint8_t *bx = x + (size_t)i * 210, *by = y + (size_t)i * Q8K_SZ;
    const int8_t *scales = (const int8_t *)(bx + 192);
    const int8_t *q8 = (const int8_t *)(by + Q8K_QS);
    __m256i acc = _mm256_setzero_si256();
    for (int jh = 0; jh < 2; jh++) {
      const uint8_t *ql = bx + 64 * jh, *qh = bx + 128 + 32 * jh;
      const __m256i qa = _mm256_loadu_si256((const __m256i *)ql);
      const __m256i qb = _mm256_loadu_si256((const __m256i *)(ql + 32));
      const __m256i hv = _mm256_loadu_si256((const __m256i *)qh);
      for (int k = 0; k < 4; k++) {
        const __m256i lo = k == 0   ? _mm256_and_si256(qa, m4)
                           : k == 1 ? _mm256_and_si256(qb, m4)
                           : k == 2 ? _mm256_and_si256(_mm256_srli_epi16(qa, 4), m4)
                                    : _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);
        const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(hv, 2 * k), m3);
        __m256i a = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4)), m32);
        const int ch = 4 * jh + k;
        __m256i q8v = _mm256_loadu_si256((const __m256i *)(q8 + 32 * ch));
        acc = qf__lanes_acc(acc, qf__lanes_i8(a, q8v), scales[2 * ch], scales[2 * ch + 1]);
      }
    }
    const float d = qf__h2f(bx + 208) * qf__f32(by);
    sums = _mm256_add_ps(sums, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc)));
  }
  return qf__lanes_total(sums);
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
      *out = qf__dot_k45(n, x, y, 0);
      return 0;
    case QF_GGUF_TYPE_Q5_K:
      *out = qf__dot_k45(n, x, y, 1);
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
