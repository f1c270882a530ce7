/*
 * AutoAWQ's on-disk layouts for 4-bit linears, byte-exact to
 * WQLinear_GEMM / WQLinear_GEMV `from_linear`, their inverses, and the
 * lossless conversion between the AWQ GEMM layout and the GPTQ layout.
 *
 * GEMM ("gemm", also on disk for "exllama"/"ipex"): qweight int32 [K, N/8]
 * packed along N with nibble i of word (k, c) = q[k, 8c + order[i]],
 * order = [0,2,4,6,1,3,5,7]; qzeros int32 [K/G, N/8], same interleave, true
 * zeros; scales fp16 [K/G, N].
 * GEMV ("gemv"): qweight int32 [N, K/8] packed along K in natural order;
 * qzeros int32 [N, ZW] natural order, zero-filled past K/G; scales fp16
 * [N, 8·ZW], first K/G columns used.
 * GPTQ: qweight int32 [K/8, N] packed along K (nibble j of word (r, n) =
 * q[8r + j, n]); qzeros int32 [K/G, N/8] packed along N in natural order,
 * holding zero-1 in the v1 ("gptq") convention or the true zero in v2.
 *
 * The integers are derived exactly as AutoAWQ does it: against the float16
 * scales, int = rint((deq + zero·scale) / f16(scale)) in float32 (torch
 * promotes float32 / float16 to float32), no clamp, then OR-ed in as
 * int32 << 4i, so even out-of-range values reproduce AutoAWQ's bytes.
 * Compiled with -ffp-contract=off.
 */
#include <math.h>
#include <string.h>

#include "awq.h"
#include "qforge/half.h"

const int qf_awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
const int qf_awq_reverse_order[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* GPTQ v1 stores zero-1 in every nibble: whole-word -0x11111111. */
#define QF_AWQ_V1_OFFSET 0x11111111u

/* float → int32 like torch's .to(torch.int) on x86 (cvttss2si): truncation,
 * and the "integer indefinite" INT32_MIN for NaN or out-of-range values. */
static int32_t to_int32(float v) {
  if (!(v > -2147483904.0f && v < 2147483648.0f)) return INT32_MIN;
  return (int32_t)v;
}

static int shapes_ok(int64_t n, int64_t k, int64_t g) {
  return n > 0 && k > 0 && g > 0 && n % QF_AWQ_PACK_NUM == 0 && k % g == 0;
}

/* AutoAWQ's integer for one weight: int(rint((deq + zero*scale) / s16)),
 * s16 the float16-rounded scale, no clamp. */
static int32_t awq_int(float deq, float scale, float zero, float s16) {
  const float sz = zero * scale; /* scale_zeros */
  return to_int32(rintf((deq + sz) / s16));
}

/* One GEMM word from 8 natural-order values (AutoAWQ's |= of x << 4i). */
static int32_t pack_word_interleaved(const int32_t *v) {
  uint32_t w = 0;
  for (int i = 0; i < 8; i++) w |= (uint32_t)v[qf_awq_order[i]] << (4 * i);
  return (int32_t)w;
}

qf_status qf_awq_gemm_pack_ints(const int32_t *iw, const int32_t *iz,
                                int64_t n, int64_t k, int64_t g,
                                int32_t *qweight, int32_t *qzeros) {
  if (!iw || !qweight) return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g)) return QF_ERR_INVALID_ARGUMENT;
  const int64_t nc = n / 8;
  for (int64_t r = 0; r < k; r++)
    for (int64_t c = 0; c < nc; c++)
      qweight[r * nc + c] = pack_word_interleaved(iw + r * n + c * 8);
  if (iz && qzeros) {
    for (int64_t gi = 0; gi < k / g; gi++)
      for (int64_t c = 0; c < nc; c++)
        qzeros[gi * nc + c] = pack_word_interleaved(iz + gi * n + c * 8);
  }
  return QF_OK;
}

qf_status qf_awq_gemm_pack(const float *deq, const float *scales,
                           const float *zeros, int64_t n, int64_t k, int64_t g,
                           int32_t *qweight, int32_t *qzeros,
                           uint16_t *scales_f16) {
  if (!deq || !scales || !zeros || !qweight || !qzeros || !scales_f16)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g)) return QF_ERR_INVALID_ARGUMENT;
  const int64_t ng = k / g, nc = n / 8;
  /* Pack one input row at a time: iw row [n] and zeros row [n]. */
  int32_t row[8];
  for (int64_t gi = 0; gi < ng; gi++) {
    for (int64_t c = 0; c < nc; c++) {
      for (int m = 0; m < 8; m++) row[m] = to_int32(zeros[(c * 8 + m) * ng + gi]);
      qzeros[gi * nc + c] = pack_word_interleaved(row);
    }
    for (int64_t r = 0; r < n; r++)
      scales_f16[gi * n + r] = qf_f32_to_f16(scales[r * ng + gi]);
  }
  for (int64_t kk = 0; kk < k; kk++) {
    const int64_t gi = kk / g;
    for (int64_t c = 0; c < nc; c++) {
      for (int m = 0; m < 8; m++) {
        const int64_t r = c * 8 + m;
        const float s16 = qf_f16_to_f32(scales_f16[gi * n + r]);
        row[m] = awq_int(deq[r * k + kk], scales[r * ng + gi], zeros[r * ng + gi], s16);
      }
      qweight[kk * nc + c] = pack_word_interleaved(row);
    }
  }
  return QF_OK;
}

qf_status qf_awq_gemm_unpack(const int32_t *qweight, const int32_t *qzeros,
                             int64_t n, int64_t k, int64_t g, uint8_t *q,
                             uint8_t *z) {
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g)) return QF_ERR_INVALID_ARGUMENT;
  const int64_t nc = n / 8;
  if (q && qweight) {
    for (int64_t r = 0; r < k; r++)
      for (int64_t c = 0; c < nc; c++) {
        const uint32_t w = (uint32_t)qweight[r * nc + c];
        for (int m = 0; m < 8; m++)
          q[r * n + c * 8 + m] = (uint8_t)((w >> (4 * qf_awq_reverse_order[m])) & 15u);
      }
  }
  if (z && qzeros) {
    for (int64_t gi = 0; gi < k / g; gi++)
      for (int64_t c = 0; c < nc; c++) {
        const uint32_t w = (uint32_t)qzeros[gi * nc + c];
        for (int m = 0; m < 8; m++)
          z[gi * n + c * 8 + m] = (uint8_t)((w >> (4 * qf_awq_reverse_order[m])) & 15u);
      }
  }
  return QF_OK;
}

qf_status qf_awq_gemm_dequantize(const int32_t *qweight, const int32_t *qzeros,
                                 const float *scales, int64_t n, int64_t k,
                                 int64_t g, float *w) {
  if (!qweight || !qzeros || !scales || !w) return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g)) return QF_ERR_INVALID_ARGUMENT;
  const int64_t nc = n / 8;
  for (int64_t kk = 0; kk < k; kk++) {
    const int64_t gi = kk / g;
    for (int64_t c = 0; c < nc; c++) {
      const uint32_t wq = (uint32_t)qweight[kk * nc + c];
      const uint32_t wz = (uint32_t)qzeros[gi * nc + c];
      for (int m = 0; m < 8; m++) {
        const int sh = 4 * qf_awq_reverse_order[m];
        const int d = (int)((wq >> sh) & 15u) - (int)((wz >> sh) & 15u);
        const int64_t r = c * 8 + m;
        w[r * k + kk] = (float)d * scales[gi * n + r];
      }
    }
  }
  return QF_OK;
}

/* --------------------------------------------------------------- GEMV */

int64_t qf_awq_gemv_zeros_width(int64_t k, int64_t g) {
  if (g <= 0) g = k;
  int64_t mult;
  if (g >= 128) mult = 1;
  else if (g == 64) mult = 2;
  else if (g == 32) mult = 4;
  else return -1;
  /* make_divisible(c, d) is ceil(c / d) in AutoAWQ */
  int64_t base = (k / g + 7) / 8;
  return (base + mult - 1) / mult * mult;
}

qf_status qf_awq_gemv_pack(const float *deq, const float *scales,
                           const float *zeros, int64_t n, int64_t k, int64_t g,
                           int32_t *qweight, int32_t *qzeros,
                           uint16_t *scales_f16) {
  if (!deq || !scales || !zeros || !qweight || !qzeros || !scales_f16)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g) || k % 8 != 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t zw = qf_awq_gemv_zeros_width(k, g);
  if (zw < 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t ng = k / g, kc = k / 8, sw = zw * 8;
  for (int64_t r = 0; r < n; r++) {
    for (int64_t j = 0; j < sw; j++)
      scales_f16[r * sw + j] = j < ng ? qf_f32_to_f16(scales[r * ng + j]) : 0;
    for (int64_t c = 0; c < kc; c++) {
      uint32_t w = 0;
      for (int i = 0; i < 8; i++) {
        const int64_t kk = c * 8 + i, gi = kk / g;
        const float s16 = qf_f16_to_f32(scales_f16[r * sw + gi]);
        w |= (uint32_t)awq_int(deq[r * k + kk], scales[r * ng + gi], zeros[r * ng + gi], s16)
             << (4 * i);
      }
      qweight[r * kc + c] = (int32_t)w;
    }
    for (int64_t c = 0; c < zw; c++) {
      uint32_t w = 0;
      for (int i = 0; i < 8; i++) {
        const int64_t gi = c * 8 + i;
        if (gi >= ng) continue;
        w |= (uint32_t)to_int32(zeros[r * ng + gi]) << (4 * i);
      }
      qzeros[r * zw + c] = (int32_t)w;
    }
  }
  return QF_OK;
}

qf_status qf_awq_gemv_dequantize(const int32_t *qweight, const int32_t *qzeros,
                                 const float *scales, int64_t n, int64_t k,
                                 int64_t g, float *w) {
  if (!qweight || !qzeros || !scales || !w) return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g) || k % 8 != 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t zw = qf_awq_gemv_zeros_width(k, g);
  if (zw < 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t kc = k / 8, sw = zw * 8;
  for (int64_t r = 0; r < n; r++)
    for (int64_t kk = 0; kk < k; kk++) {
      const int64_t gi = kk / g;
      const uint32_t wq = (uint32_t)qweight[r * kc + kk / 8];
      const uint32_t wz = (uint32_t)qzeros[r * zw + gi / 8];
      const int d = (int)((wq >> (4 * (kk % 8))) & 15u) -
                    (int)((wz >> (4 * (gi % 8))) & 15u);
      w[r * k + kk] = (float)d * scales[r * sw + gi];
    }
  return QF_OK;
}

qf_status qf_awq_gemv_to_gemm(const int32_t *qweight, const int32_t *qzeros,
                              int64_t n, int64_t k, int64_t g,
                              int32_t *qweight_gemm, int32_t *qzeros_gemm) {
  if (!qweight || !qzeros || !qweight_gemm || !qzeros_gemm)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g) || k % 8 != 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t zw = qf_awq_gemv_zeros_width(k, g);
  if (zw < 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t kc = k / 8, nc = n / 8;
  int32_t v[8];
  for (int64_t kk = 0; kk < k; kk++)
    for (int64_t c = 0; c < nc; c++) {
      for (int m = 0; m < 8; m++) {
        const uint32_t w = (uint32_t)qweight[(c * 8 + m) * kc + kk / 8];
        v[m] = (int32_t)((w >> (4 * (kk % 8))) & 15u);
      }
      qweight_gemm[kk * nc + c] = pack_word_interleaved(v);
    }
  for (int64_t gi = 0; gi < k / g; gi++)
    for (int64_t c = 0; c < nc; c++) {
      for (int m = 0; m < 8; m++) {
        const uint32_t w = (uint32_t)qzeros[(c * 8 + m) * zw + gi / 8];
        v[m] = (int32_t)((w >> (4 * (gi % 8))) & 15u);
      }
      qzeros_gemm[gi * nc + c] = pack_word_interleaved(v);
    }
  return QF_OK;
}

/* ------------------------------------------------------ AWQ <-> GPTQ */

qf_status qf_awq_gemm_to_gptq(const int32_t *qweight, const int32_t *qzeros,
                              int64_t n, int64_t k, int64_t g, int v1,
                              int32_t *gptq_qweight, int32_t *gptq_qzeros,
                              int32_t *g_idx) {
  if (!qweight || !qzeros || !gptq_qweight || !gptq_qzeros)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g) || k % 8 != 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t nc = n / 8;
  /* weights: 8 consecutive k of one column per word, low nibble first */
  for (int64_t r = 0; r < k / 8; r++)
    for (int64_t c = 0; c < nc; c++)
      for (int m = 0; m < 8; m++) {
        const int sh = 4 * qf_awq_reverse_order[m];
        uint32_t w = 0;
        for (int j = 0; j < 8; j++) {
          const uint32_t src = (uint32_t)qweight[(r * 8 + j) * nc + c];
          w |= ((src >> sh) & 15u) << (4 * j);
        }
        gptq_qweight[r * n + c * 8 + m] = (int32_t)w;
      }
  /* zeros: same words, nibbles back in natural order; v1 subtracts one from
   * every nibble as a whole-word subtraction (AutoAWQ sums the shifted
   * values, so a zero of 0 borrows from its neighbour exactly like this) */
  for (int64_t gi = 0; gi < k / g; gi++)
    for (int64_t c = 0; c < nc; c++) {
      const uint32_t src = (uint32_t)qzeros[gi * nc + c];
      uint32_t w = 0;
      for (int m = 0; m < 8; m++)
        w |= ((src >> (4 * qf_awq_reverse_order[m])) & 15u) << (4 * m);
      if (v1) w -= QF_AWQ_V1_OFFSET;
      gptq_qzeros[gi * nc + c] = (int32_t)w;
    }
  if (g_idx)
    for (int64_t kk = 0; kk < k; kk++) g_idx[kk] = (int32_t)(kk / g);
  return QF_OK;
}

qf_status qf_awq_gptq_to_gemm(const int32_t *gptq_qweight,
                              const int32_t *gptq_qzeros, int64_t n, int64_t k,
                              int64_t g, int v1, int32_t *qweight,
                              int32_t *qzeros) {
  if (!gptq_qweight || !gptq_qzeros || !qweight || !qzeros)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (!shapes_ok(n, k, g) || k % 8 != 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t nc = n / 8;
  int32_t v[8];
  for (int64_t kk = 0; kk < k; kk++)
    for (int64_t c = 0; c < nc; c++) {
      for (int m = 0; m < 8; m++) {
        const uint32_t w = (uint32_t)gptq_qweight[(kk / 8) * n + c * 8 + m];
        v[m] = (int32_t)((w >> (4 * (kk % 8))) & 15u);
      }
      qweight[kk * nc + c] = pack_word_interleaved(v);
    }
  for (int64_t gi = 0; gi < k / g; gi++)
    for (int64_t c = 0; c < nc; c++) {
      uint32_t w = (uint32_t)gptq_qzeros[gi * nc + c];
      if (v1) w += QF_AWQ_V1_OFFSET;
      for (int m = 0; m < 8; m++) v[m] = (int32_t)((w >> (4 * m)) & 15u);
      qzeros[gi * nc + c] = pack_word_interleaved(v);
    }
  return QF_OK;
}
