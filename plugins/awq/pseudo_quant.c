/*
 * AutoAWQ's `pseudo_quantize_tensor` (awq/quantize/quantizer.py): round-to-
 * nearest quantization of each group of `group_size` consecutive inputs of a
 * weight row, with an asymmetric zero point (the AWQ default) or
 * symmetrically, returning the dequantized ("fake-quantized") weight plus the
 * per-group scales and zeros that the packers store.
 *
 * Precision: float32, one IEEE operation per torch operation, in torch's
 * order. Non-finite input, or a range that overflows float, is
 * QF_ERR_NUMERIC (AutoAWQ asserts on the NaNs that would follow).
 * AutoAWQ itself runs this in float16 on a GPU (the layer is
 * `.half()`-ed before quantization); we deliberately do not emulate that:
 * the host hands us float32 weights, the reference golden vectors were
 * produced by AutoAWQ in float32, and float32 gives the more accurate
 * quantizer. The result is bit-exact against AutoAWQ run in float32.
 * Rounding is torch.round: half to even (rintf in the default rounding
 * mode), never roundf. Compiled with -ffp-contract=off.
 */
#include <math.h>

#include "awq.h"

/* torch.clamp(x, lo, hi) on floats: NaN propagates (not reachable here). */
static float clampf(float x, float lo, float hi) {
  if (x < lo) return lo;
  if (x > hi) return hi;
  return x;
}

void qf_awq_pseudo_quantize_group(const float *w, int64_t n, int bits,
                                  int zero_point, float *deq, float *scale,
                                  float *zero) {
  if (n <= 0) return;
  if (zero_point) {
    float mx = w[0], mn = w[0];
    for (int64_t i = 1; i < n; i++) {
      if (w[i] > mx) mx = w[i];
      if (w[i] < mn) mn = w[i];
    }
    const float max_int = (float)((1 << bits) - 1);
    float range = mx - mn;
    if (range < 1e-5f) range = 1e-5f; /* .clamp(min=1e-5) */
    const float s = range / max_int;
    /* zeros = (-torch.round(min_val / scales)).clamp_(0, max_int) */
    const float z = clampf(-rintf(mn / s), 0.0f, max_int);
    for (int64_t i = 0; i < n; i++) {
      float q = clampf(rintf(w[i] / s) + z, 0.0f, max_int);
      deq[i] = (q - z) * s;
    }
    if (scale) *scale = s;
    if (zero) *zero = z;
  } else {
    float mx = 0.0f;
    for (int64_t i = 0; i < n; i++) {
      float a = fabsf(w[i]);
      if (a > mx) mx = a;
    }
    if (mx < 1e-5f) mx = 1e-5f;
    const float max_int = (float)((1 << (bits - 1)) - 1);
    const float min_int = -(float)(1 << (bits - 1));
    const float s = mx / max_int;
    for (int64_t i = 0; i < n; i++)
      deq[i] = clampf(rintf(w[i] / s), min_int, max_int) * s;
    if (scale) *scale = s;
  }
}

qf_status qf_awq_pseudo_quantize(const float *w, int64_t rows, int64_t cols,
                                 int64_t group_size, int bits, int zero_point,
                                 float *deq, float *scales, float *zeros) {
  if (!w || !deq || rows < 0 || cols <= 0 || bits < 2 || bits > 8)
    return QF_ERR_INVALID_ARGUMENT;
  if (group_size <= 0) group_size = cols;
  if (cols % group_size != 0) return QF_ERR_INVALID_ARGUMENT;
  const int64_t total = rows * cols;
  for (int64_t i = 0; i < total; i++)
    if (!isfinite(w[i])) return QF_ERR_NUMERIC; /* AutoAWQ asserts */
  const int64_t ngroups = total / group_size;
  for (int64_t gi = 0; gi < ngroups; gi++) {
    float s = 0.0f, z = 0.0f;
    qf_awq_pseudo_quantize_group(w + gi * group_size, group_size, bits,
                                 zero_point, deq + gi * group_size, &s, &z);
    if (!isfinite(s)) return QF_ERR_NUMERIC; /* range overflowed float */
    if (scales) scales[gi] = s;
    if (zeros && zero_point) zeros[gi] = z;
  }
  return QF_OK;
}
