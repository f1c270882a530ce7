/*
 * NF4 / FP4 blockwise 4-bit quantization exactly as bitsandbytes' CUDA
 * kernel kQuantizeBlockwise does it (spec sections 1 and 2): per flat block
 * absmax in float32, x = v * (1.0f / absmax) in IEEE float32, the code
 * picked by the dQuantizeNF4 / dQuantizeFP4 decision trees written as
 * "number of thresholds strictly below x" over the same float literals,
 * even element in the high nibble. An all-zero block gives x = 0 * inf =
 * NaN and hence code 0, as on the GPU. Built with -ffp-contract=off.
 */
#include <math.h>
#include <string.h>

#include "bnb.h"

/* spec 1.1 */
const float qf_bnb_nf4_lut[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

/* spec 1.2: CUDA dequant, LUT[c & 7] * (1 - 2 * sign) -> -0.0 at code 8 */
const float qf_bnb_fp4_lut[16] = {
    0.0f,          0.005208333333f,  0.66666667f,  1.0f,
    0.33333333f,   0.5f,             0.16666667f,  0.25f,
    -0.0f,         -0.005208333333f, -0.66666667f, -1.0f,
    -0.33333333f,  -0.5f,            -0.16666667f, -0.25f,
};

/* get_4bit_type("fp4"): Python's int -0 serializes as +0.0 */
const float qf_bnb_fp4_quant_map[16] = {
    0.0f,          0.005208333333f,  0.66666667f,  1.0f,
    0.33333333f,   0.5f,             0.16666667f,  0.25f,
    0.0f,          -0.005208333333f, -0.66666667f, -1.0f,
    -0.33333333f,  -0.5f,            -0.16666667f, -0.25f,
};

/* spec 1.3: the 15 NF4 tree thresholds, ascending */
static const float nf4_thresholds[15] = {
    -0.8480964004993439f,  -0.6106329262256622f, -0.4599952697753906f,
    -0.33967943489551544f, -0.23460740596055984f, -0.13791173323988914f,
    -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f,
    0.2035212516784668f,   0.2920137718319893f,  0.3893125355243683f,
    0.5016634166240692f,   0.6427869200706482f,  0.8614784181118011f,
};

/* spec 1.4: FP4 magnitude thresholds, ascending, and the 3-bit code of
 * each magnitude rank. */
static const float fp4_thresholds[7] = {
    0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
    0.4166667f,  0.583333f,  0.8333333f,
};
static const uint8_t fp4_rank_code[8] = {0x0, 0x1, 0x6, 0x7, 0x4, 0x5, 0x2, 0x3};

const float *qf_bnb_lut(qf_bnb_qtype t) {
  return t == QF_BNB_FP4 ? qf_bnb_fp4_lut : qf_bnb_nf4_lut;
}

const float *qf_bnb_quant_map(qf_bnb_qtype t) {
  return t == QF_BNB_FP4 ? qf_bnb_fp4_quant_map : qf_bnb_nf4_lut;
}

const char *qf_bnb_qtype_name(qf_bnb_qtype t) {
  return t == QF_BNB_FP4 ? "fp4" : "nf4";
}

int qf_bnb_qtype_parse(const char *s) {
  if (!s) return -1;
  if (strcmp(s, "nf4") == 0) return QF_BNB_NF4;
  if (strcmp(s, "fp4") == 0) return QF_BNB_FP4;
  return -1;
}

uint8_t qf_bnb_nf4_code(float x) {
  /* balanced tree with strict '>' == count of thresholds below x; NaN
   * compares false everywhere -> 0 */
  uint8_t c = 0;
  for (int i = 0; i < 15; i++) c = (uint8_t)(c + (x > nf4_thresholds[i]));
  return c;
}

uint8_t qf_bnb_fp4_code(float x) {
  uint8_t sign = x < 0.0f ? 8 : 0; /* -0.0 and NaN: sign 0 */
  float a = fabsf(x);
  int rank = 0;
  for (int i = 0; i < 7; i++) rank += (a > fp4_thresholds[i]);
  return (uint8_t)(sign + fp4_rank_code[rank]);
}

uint8_t qf_bnb_4bit_code(qf_bnb_qtype t, float x) {
  return t == QF_BNB_FP4 ? qf_bnb_fp4_code(x) : qf_bnb_nf4_code(x);
}

int qf_bnb_blocksize_valid(int64_t bs) {
  return bs >= QF_BNB_BLOCKSIZE_MIN && bs <= QF_BNB_BLOCKSIZE_MAX &&
         (bs & (bs - 1)) == 0;
}

/* Codes of x[i] * inv for i < cnt (scalar reference). */
static void codes_scalar(qf_bnb_qtype t, const float *x, int64_t cnt, float inv,
                         uint8_t *codes) {
  if (t == QF_BNB_NF4)
    for (int64_t i = 0; i < cnt; i++) codes[i] = qf_bnb_nf4_code(x[i] * inv);
  else
    for (int64_t i = 0; i < cnt; i++) codes[i] = qf_bnb_fp4_code(x[i] * inv);
}

static float absmax_scalar(const float *x, int64_t cnt) {
  float amax = 0.0f;
  for (int64_t i = 0; i < cnt; i++) {
    float a = fabsf(x[i]);
    amax = a > amax ? a : amax; /* NaN never wins, as fmaxf */
  }
  return amax;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QF_BNB_X86 1
#define AVX2_FN __attribute__((target("avx2")))

/* Same products and ordered '>' compares as the scalar code (NaN compares
 * false), counted lane by lane: identical codes. */
AVX2_FN static void codes_avx2(qf_bnb_qtype t, const float *x, int64_t cnt,
                               float inv, uint8_t *codes) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 signbit = _mm256_set1_ps(-0.0f);
  const __m256i rank_code = _mm256_setr_epi32(0, 1, 6, 7, 4, 5, 2, 3);
  int32_t tmp[8];
  int64_t i = 0;
  for (; i + 8 <= cnt; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv);
    __m256i c = _mm256_setzero_si256();
    if (t == QF_BNB_NF4) {
      for (int j = 0; j < 15; j++)
        c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(
                                    v, _mm256_set1_ps(nf4_thresholds[j]), _CMP_GT_OQ)));
    } else {
      __m256 a = _mm256_andnot_ps(signbit, v);
      __m256i r = _mm256_setzero_si256();
      for (int j = 0; j < 7; j++)
        r = _mm256_sub_epi32(r, _mm256_castps_si256(_mm256_cmp_ps(
                                    a, _mm256_set1_ps(fp4_thresholds[j]), _CMP_GT_OQ)));
      __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
      c = _mm256_add_epi32(_mm256_permutevar8x32_epi32(rank_code, r),
                           _mm256_and_si256(neg, _mm256_set1_epi32(8)));
    }
    _mm256_storeu_si256((__m256i *)tmp, c);
    for (int k = 0; k < 8; k++) codes[i + k] = (uint8_t)tmp[k];
  }
  codes_scalar(t, x + i, cnt - i, inv, codes + i);
}

AVX2_FN static float absmax_avx2(const float *x, int64_t cnt) {
  const __m256 signbit = _mm256_set1_ps(-0.0f);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  /* maxps(a, acc) = a > acc ? a : acc: a NaN lane keeps acc, as the scalar */
  for (; i + 8 <= cnt; i += 8)
    acc = _mm256_max_ps(_mm256_andnot_ps(signbit, _mm256_loadu_ps(x + i)), acc);
  float lanes[8];
  _mm256_storeu_ps(lanes, acc);
  float amax = absmax_scalar(x + i, cnt - i);
  for (int k = 0; k < 8; k++) amax = lanes[k] > amax ? lanes[k] : amax;
  return amax;
}
#endif

/* Quantize one block [b0, b1) of x; the packed output is addressed by flat
 * index. `pad` is set for the last block of an odd-sized tensor: the kernel
 * loads 0.0 there and quantizes it with the same reciprocal. */
static void quantize_block(int simd, qf_bnb_qtype t, const float *x, int64_t b0,
                           int64_t b1, int pad, uint8_t *packed,
                           float *absmax_out) {
  uint8_t codes[QF_BNB_BLOCKSIZE_MAX + 2];
  float amax;
#ifdef QF_BNB_X86
  if (simd)
    amax = absmax_avx2(x + b0, b1 - b0);
  else
#endif
    amax = absmax_scalar(x + b0, b1 - b0);
  (void)simd;
  *absmax_out = amax;
  const float inv = 1.0f / amax; /* IEEE; +inf for an all-zero block */
  /* codes in chunks (any blocksize works; chunks are even-sized) */
  for (int64_t c0 = b0; c0 < b1; c0 += QF_BNB_BLOCKSIZE_MAX) {
    int64_t cnt = b1 - c0 < QF_BNB_BLOCKSIZE_MAX ? b1 - c0 : QF_BNB_BLOCKSIZE_MAX;
#ifdef QF_BNB_X86
    if (simd)
      codes_avx2(t, x + c0, cnt, inv, codes);
    else
#endif
      codes_scalar(t, x + c0, cnt, inv, codes);
    if (cnt & 1) codes[cnt] = pad ? qf_bnb_4bit_code(t, 0.0f * inv) : 0;
    for (int64_t j = 0; j < cnt; j += 2)
      packed[(c0 + j) >> 1] = (uint8_t)((codes[j] << 4) | codes[j + 1]);
  }
}

void qf_bnb_quantize_4bit_isa(int isa, qf_bnb_qtype t, const float *x,
                              int64_t n, int64_t bs, uint8_t *packed,
                              float *absmax) {
  int simd = isa != QF_BNB_ISA_SCALAR && qf_bnb_cpu_has_avx2();
  int64_t nb = qf_bnb_nblocks(n, bs);
  for (int64_t b = 0; b < nb; b++) {
    int64_t b0 = b * bs;
    int64_t b1 = b0 + bs < n ? b0 + bs : n;
    /* blocksizes are even, so only the last block can end on an odd index */
    quantize_block(simd, t, x, b0, b1, b == nb - 1 && (n & 1), packed,
                   &absmax[b]);
  }
}

void qf_bnb_quantize_4bit(qf_bnb_qtype t, const float *x, int64_t n,
                          int64_t bs, uint8_t *packed, float *absmax) {
  qf_bnb_quantize_4bit_isa(QF_BNB_ISA_AUTO, t, x, n, bs, packed, absmax);
}
