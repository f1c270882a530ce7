/*
 * LLM.int8() row-wise quantization (spec section 5): weights are rounded to
 * float16 first (Int8Params casts to fp16), SCB is the per-row absmax of
 * those values stored as float32, and CB = round-half-even(v * (127/SCB))
 * with an IEEE division (an all-zero row gives 0 * inf = NaN -> 0, as the
 * CUDA conversion does). Activations are quantized the same way in float32,
 * with entries |v| >= threshold left out of the row absmax and their whole
 * columns routed to the float outlier path. Built with -ffp-contract=off.
 */
#include <math.h>
#include <string.h>

#include "bnb.h"
#include "qforge/half.h"

static inline int8_t round_q(float v) {
  if (v != v) return 0; /* NaN (0 * inf) */
  float r = nearbyintf(v);  /* default mode: half to even */
  if (r > 127.0f) r = 127.0f;
  if (r < -127.0f) r = -127.0f;
  return (int8_t)r;
}

int qf_bnb_int8_quantize_weight(const float *w, int64_t rows, int64_t cols,
                                int8_t *cb, float *scb, int64_t *bad_row) {
  for (int64_t r = 0; r < rows; r++) {
    const float *src = w + r * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; c++) {
      float h = qf_f16_to_f32(qf_f32_to_f16(src[c]));
      if (isinf(h)) {
        if (bad_row) *bad_row = r;
        return -1;
      }
      float a = fabsf(h);
      amax = a > amax ? a : amax;
    }
    scb[r] = amax;
    const float scale = 127.0f / amax;
    for (int64_t c = 0; c < cols; c++) {
      float h = qf_f16_to_f32(qf_f32_to_f16(src[c]));
      cb[r * cols + c] = round_q(h * scale);
    }
  }
  return 0;
}

void qf_bnb_int8_dequantize(const int8_t *cb, const float *scb, int64_t rows,
                            int64_t cols, float *out) {
  for (int64_t r = 0; r < rows; r++) {
    const float s = scb[r];
    for (int64_t c = 0; c < cols; c++) {
      float v = (float)cb[r * cols + c] * s;
      out[r * cols + c] = v * QF_BNB_INV127;
    }
  }
}

int64_t qf_bnb_int8_quantize_act(const float *x, int64_t m, int64_t k,
                                 float threshold, int8_t *ca, float *sca,
                                 uint8_t *outlier_cols) {
  int split = threshold > 0.0f && outlier_cols != NULL;
  int64_t n_out = 0;
  if (split) {
    memset(outlier_cols, 0, (size_t)k);
    for (int64_t r = 0; r < m; r++)
      for (int64_t c = 0; c < k; c++)
        if (fabsf(x[r * k + c]) >= threshold) outlier_cols[c] = 1;
    for (int64_t c = 0; c < k; c++) n_out += outlier_cols[c];
  }
  for (int64_t r = 0; r < m; r++) {
    const float *src = x + r * k;
    float amax = 0.0f;
    for (int64_t c = 0; c < k; c++) {
      float a = fabsf(src[c]);
      if (split && a >= threshold) continue;
      amax = a > amax ? a : amax;
    }
    sca[r] = amax;
    const float scale = 127.0f / amax;
    for (int64_t c = 0; c < k; c++) {
      if (split && outlier_cols[c])
        ca[r * k + c] = 0;
      else
        ca[r * k + c] = round_q(src[c] * scale);
    }
  }
  return n_out;
}
