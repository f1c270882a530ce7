/*
 * GPTQ's Hessian accumulation, as AutoGPTQ's GPTQ.add_batch does it: for a
 * batch of B sequences, H ← H · (ns / (ns + B)) with the ratio taken in
 * double and applied as a float32 scalar, ns ← ns + B, the inputs scaled by
 * float32(sqrt(2 / ns)) and H ← H + Xsᵀ·Xs (a float32 product, no TF32).
 * The product runs as one symmetric rank-k update (OpenBLAS ssyrk) into the
 * lower triangle, which is then mirrored so that H stays exactly
 * symmetric, as the reference's GEMM leaves it. The result is
 * H = 2/ns · Σ x xᵀ up to float rounding.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gptq.h"
#include "qforge/plugin_util.h"

qf_status qf_gptq_hessian_init(qf_gptq_hessian *hs, int64_t k, qf_error *err) {
  memset(hs, 0, sizeof *hs);
  if (k <= 0 || k > (int64_t)1 << 20)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "hessian",
                   "Hessian size %lld is out of range (expected 1..1048576)",
                   (long long)k);
  hs->h = calloc((size_t)k * (size_t)k, sizeof(float));
  if (!hs->h)
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, "hessian",
                   "cannot allocate a %lldx%lld Hessian", (long long)k,
                   (long long)k);
  hs->k = k;
  return QF_OK;
}

void qf_gptq_hessian_free(qf_gptq_hessian *hs) {
  if (!hs) return;
  free(hs->h);
  memset(hs, 0, sizeof *hs);
}

qf_status qf_gptq_hessian_add_batch(qf_gptq_hessian *hs, const float *x,
                                    int64_t tokens, int64_t batch,
                                    qf_error *err) {
  if (!hs || !hs->h || !x || tokens <= 0 || batch <= 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "add_batch",
                   "add_batch needs a Hessian, inputs and tokens, batch > 0");
  const int64_t k = hs->k;
  float *xs = malloc((size_t)tokens * (size_t)k * sizeof(float));
  if (!xs)
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, "add_batch",
                   "cannot allocate %lld scaled inputs", (long long)tokens);
  /* H *= ns / (ns + B) */
  const float ratio = (float)((double)hs->nsamples /
                              (double)(hs->nsamples + batch));
  const size_t kk = (size_t)k * (size_t)k;
  for (size_t i = 0; i < kk; i++) hs->h[i] *= ratio;
  hs->nsamples += batch;
  const float s = (float)sqrt(2.0 / (double)hs->nsamples);
  const size_t n = (size_t)tokens * (size_t)k;
  for (size_t i = 0; i < n; i++) xs[i] = s * x[i];
  /* Row-major H (k×k) += Xsᵀ Xs with Xs [tokens][k]: the lower triangle in
   * row-major is the upper one in column-major; use row-major directly. */
  cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, (blasint)k,
              (blasint)tokens, 1.0f, xs, (blasint)k, 1.0f, hs->h, (blasint)k);
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < i; j++) hs->h[j * k + i] = hs->h[i * k + j];
  free(xs);
  return QF_OK;
}
