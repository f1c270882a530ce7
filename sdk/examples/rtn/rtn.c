/*
 * Round-to-nearest per-group quantization (see rtn.h for the math).
 */
#include <math.h>

#include "rtn.h"

int64_t qf_rtn_groups(const qf_rtn_params *p, int64_t cols) {
  if (p->group_size <= 0) return 1;
  return (cols + p->group_size - 1) / p->group_size;
}

int64_t qf_rtn_row_bytes(const qf_rtn_params *p, int64_t cols) {
  return p->bits == 4 ? (cols + 1) / 2 : cols;
}

static void qf__put_code(uint8_t *row, int bits, int64_t k, int q) {
  if (bits == 8) {
    row[k] = (uint8_t)q;
  } else if (k & 1) {
    row[k >> 1] = (uint8_t)((row[k >> 1] & 0x0f) | (q << 4));
  } else {
    row[k >> 1] = (uint8_t)((row[k >> 1] & 0xf0) | q);
  }
}

static int qf__get_code(const uint8_t *row, int bits, int64_t k) {
  if (bits == 8) return row[k];
  return (k & 1) ? row[k >> 1] >> 4 : row[k >> 1] & 0x0f;
}

void qf_rtn_quantize(const qf_rtn_params *p, const float *w, int64_t rows,
                     int64_t cols, uint8_t *codes, float *scales,
                     uint8_t *zeros) {
  const int64_t G = qf_rtn_groups(p, cols);
  const int64_t gs = p->group_size > 0 ? p->group_size : cols;
  const int64_t rb = qf_rtn_row_bytes(p, cols);
  const int maxq = (1 << p->bits) - 1;
  for (int64_t r = 0; r < rows; r++) {
    const float *x = w + r * cols;
    uint8_t *crow = codes + r * rb;
    for (int64_t i = 0; i < rb; i++) crow[i] = 0;
    for (int64_t g = 0; g < G; g++) {
      int64_t k0 = g * gs, k1 = k0 + gs < cols ? k0 + gs : cols;
      float lo = 0.0f, hi = 0.0f, amax = 0.0f;
      for (int64_t k = k0; k < k1; k++) {
        float v = x[k];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (fabsf(v) > amax) amax = fabsf(v);
      }
      float scale;
      int zero;
      if (p->sym) {
        zero = 1 << (p->bits - 1);
        scale = amax / (float)(zero - 1);
      } else {
        scale = (hi - lo) / (float)maxq;
        zero = scale > 0.0f ? (int)rintf(-lo / scale) : 0;
        if (zero < 0) zero = 0;
        if (zero > maxq) zero = maxq;
      }
      scales[r * G + g] = scale;
      if (zeros) zeros[r * G + g] = (uint8_t)zero;
      for (int64_t k = k0; k < k1; k++) {
        int q = scale > 0.0f ? (int)rintf(x[k] / scale) + zero : zero;
        if (q < 0) q = 0;
        if (q > maxq) q = maxq;
        qf__put_code(crow, p->bits, k, q);
      }
    }
  }
}

void qf_rtn_dequantize_row(const qf_rtn_params *p, const uint8_t *codes,
                           const float *scales, const uint8_t *zeros,
                           int64_t cols, float *out) {
  const int64_t gs = p->group_size > 0 ? p->group_size : cols;
  const int sym_zero = 1 << (p->bits - 1);
  for (int64_t k = 0; k < cols; k++) {
    int64_t g = k / gs;
    int zero = zeros ? zeros[g] : sym_zero;
    out[k] = scales[g] * (float)(qf__get_code(codes, p->bits, k) - zero);
  }
}
