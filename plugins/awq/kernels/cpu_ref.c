/*
 * Scalar reference kernels for the AWQ CPU forward: the fused batch-1 GEMV
 * and the tile dequantizer, written to define the exact per-column
 * arithmetic the AVX2 kernels reproduce (see cpu_kernels.h). Compiled with
 * -ffp-contract=off so no multiply-add is fused; the compiler may still
 * vectorise across columns, which does not change any column's result.
 */
#include "cpu_kernels.h"

/* Column 8c+m of a GEMM word sits at bit 4·reverse_order[m]. */
static const int shift_of_col[8] = {0, 16, 4, 20, 8, 24, 12, 28};

#define TILE 128 /* columns per pass: one 64-byte line of words per k */

void qf_awq_cpu_unpack_zeros(const int32_t *qzeros, int64_t n, int64_t k,
                             int64_t g, int32_t *zeros) {
  const int64_t nc = n / 8, ng = k / g;
  for (int64_t gi = 0; gi < ng; gi++)
    for (int64_t c = 0; c < nc; c++) {
      const uint32_t w = (uint32_t)qzeros[gi * nc + c];
      for (int m = 0; m < 8; m++)
        zeros[gi * n + c * 8 + m] = (int32_t)((w >> shift_of_col[m]) & 15u);
    }
}

void qf_awq_gemv_scalar(const qf_awq_cpu_weights *w, const float *x, float *y,
                        int64_t n0, int64_t n1) {
  const int64_t n = w->n, k = w->k, g = w->g, nc = n / 8, ng = k / g;
  float acc[TILE], part[TILE];
  for (int64_t t0 = n0; t0 < n1; t0 += TILE) {
    const int64_t nt = n1 - t0 < TILE ? n1 - t0 : TILE;
    for (int64_t j = 0; j < nt; j++) acc[j] = 0.0f;
    for (int64_t gi = 0; gi < ng; gi++) {
      const int32_t *z = w->zeros + gi * n + t0;
      const float *s = w->scales + gi * n + t0;
      for (int64_t j = 0; j < nt; j++) part[j] = 0.0f;
      for (int64_t kk = gi * g; kk < (gi + 1) * g; kk++) {
        const float xv = x[kk];
        const int32_t *row = w->qweight + kk * nc + t0 / 8;
        for (int64_t c = 0; c < nt / 8; c++) {
          const uint32_t word = (uint32_t)row[c];
          for (int m = 0; m < 8; m++) {
            const int32_t q = (int32_t)((word >> shift_of_col[m]) & 15u);
            const float d = (float)(q - z[c * 8 + m]);
            part[c * 8 + m] = part[c * 8 + m] + xv * d;
          }
        }
      }
      for (int64_t j = 0; j < nt; j++) acc[j] = acc[j] + part[j] * s[j];
    }
    if (w->bias)
      for (int64_t j = 0; j < nt; j++) y[t0 + j] = acc[j] + w->bias[t0 + j];
    else
      for (int64_t j = 0; j < nt; j++) y[t0 + j] = acc[j];
  }
}

void qf_awq_dequant_tile_scalar(const qf_awq_cpu_weights *w, int64_t n0,
                                int64_t nt, float *tile) {
  const int64_t n = w->n, k = w->k, g = w->g, nc = n / 8;
  for (int64_t kk = 0; kk < k; kk++) {
    const int64_t gi = kk / g;
    const int32_t *row = w->qweight + kk * nc + n0 / 8;
    const int32_t *z = w->zeros + gi * n + n0;
    const float *s = w->scales + gi * n + n0;
    float *out = tile + kk * nt;
    for (int64_t c = 0; c < nt / 8; c++) {
      const uint32_t word = (uint32_t)row[c];
      for (int m = 0; m < 8; m++) {
        const int32_t q = (int32_t)((word >> shift_of_col[m]) & 15u);
        out[c * 8 + m] = (float)(q - z[c * 8 + m]) * s[c * 8 + m];
      }
    }
  }
}
