/*
 * GPTQ's per-row quantizer parameters (AutoGPTQ quantizer.py, weight mode,
 * per channel): the row range widened to include 0, the symmetric variant
 * with its fixed zero (maxq + 1) / 2 and its all-non-negative quirk, the
 * (−1, +1) fallback for all-zero rows, and the optional MSE grid search
 * (norm 2.4, 100 steps, shrink to 0.8) that keeps the first strictly better
 * shrink per row. All arithmetic is float32 in the reference's order; the
 * file is compiled with -ffp-contract=off so no product is fused.
 */
#include <math.h>
#include <stdlib.h>

#include "gptq.h"

/* Min/max per row of the slice, widened to include 0, with the sym and
 * all-zero adjustments applied; then scale/zero as the reference does. */
static void base_params(const qf_gptq_qcfg *cfg, const float *xt,
                        int64_t rows, int64_t cols, int64_t ld, float *xmin,
                        float *xmax) {
  for (int64_t r = 0; r < rows; r++) {
    xmin[r] = 0.0f;
    xmax[r] = 0.0f;
  }
  for (int64_t j = 0; j < cols; j++) {
    const float *col = xt + j * ld;
    for (int64_t r = 0; r < rows; r++) {
      float v = col[r];
      if (v < xmin[r]) xmin[r] = v;
      if (v > xmax[r]) xmax[r] = v;
    }
  }
  for (int64_t r = 0; r < rows; r++) {
    if (cfg->sym) {
      float a = fabsf(xmin[r]);
      if (a > xmax[r]) xmax[r] = a;
      if (xmin[r] < 0.0f) xmin[r] = -xmax[r];
    }
    if (xmin[r] == 0.0f && xmax[r] == 0.0f) {
      xmin[r] = -1.0f;
      xmax[r] = 1.0f;
    }
  }
}

void qf_gptq_find_params(const qf_gptq_qcfg *cfg, const float *xt,
                         int64_t rows, int64_t cols, int64_t ld, float *scale,
                         float *zero, float *work) {
  const float maxq = qf_gptq_maxq(cfg->bits);
  const float symzero = (maxq + 1.0f) / 2.0f;
  float *xmin = work, *xmax = work ? work + rows : NULL;
  float *own = NULL;
  if (!work) {
    own = malloc((size_t)(rows > 0 ? rows : 1) * 2 * sizeof(float));
    if (!own) {
      /* no memory: fall back to the (−1, 1) range so callers stay defined */
      for (int64_t r = 0; r < rows; r++) {
        scale[r] = 2.0f / maxq;
        zero[r] = cfg->sym ? symzero : rintf(1.0f / scale[r]);
      }
      return;
    }
    xmin = own;
    xmax = own + rows;
  }
  base_params(cfg, xt, rows, cols, ld, xmin, xmax);
  for (int64_t r = 0; r < rows; r++) {
    scale[r] = (xmax[r] - xmin[r]) / maxq;
    zero[r] = cfg->sym ? symzero : rintf(-xmin[r] / scale[r]);
  }
  if (cfg->mse_norm > 0.0f) {
    const int grid = cfg->mse_grid > 0 ? cfg->mse_grid : 100;
    const double shrink = cfg->mse_maxshrink > 0.0f ? cfg->mse_maxshrink : 0.8;
    const int steps = (int)(shrink * grid);
    const float p_norm = cfg->mse_norm;
    for (int64_t r = 0; r < rows; r++) {
      float best = INFINITY;
      for (int i = 0; i < steps; i++) {
        float p = (float)(1.0 - (double)i / grid);
        float xmin1 = p * xmin[r];
        float xmax1 = p * xmax[r];
        float scale1 = (xmax1 - xmin1) / maxq;
        float zero1 = cfg->sym ? symzero : rintf(-xmin1 / scale1);
        float e = 0.0f;
        for (int64_t j = 0; j < cols; j++) {
          float v = xt[j * ld + r];
          float d = fabsf(qf_gptq_qdq(v, scale1, zero1, maxq) - v);
          e += powf(d, p_norm);
        }
        if (e < best) {
          best = e;
          scale[r] = scale1;
          zero[r] = zero1;
        }
      }
    }
  }
  free(own);
}
