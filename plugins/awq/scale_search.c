/*
 * AutoAWQ's activation-aware scale search (`_search_best_scale` +
 * `_compute_best_scale`): for linears that share one input x, find the
 * per-input-channel scale s (folded into the previous op by the caller) that
 * minimises the squared error of the inspected module's output when every
 * linear W is replaced by Q(W·diag(s))·diag(s)⁻¹.
 *
 * Statistics: x_mean = mean |x| per input channel; w_mean = per-channel mean
 * of |W| / (group absmax + 1e-6) over the concatenated rows. Grid: ratio
 * r/n_grid, r = 0 … n_grid-1 (1.0 is never tried); with duo_scaling
 * s = max(x_mean^ratio / (w_mean^(1-ratio) + 1e-4), 1e-4), then
 * s /= sqrt(max(s)·min(s)) and inf/nan entries become 1.
 *
 * Generic by construction: the loss goes through a qf_awq_forward_fn, so the
 * same search serves "the inspected module is the linear itself" (v→o and
 * up→down groups; qf_awq_forward_linears here) and, later, a whole attention
 * or MLP block run by the host's model runtime with trial weights.
 *
 * Precision: float32 throughout (AutoAWQ runs this in float16 on a GPU; the
 * golden reference ran it in float32 on the CPU, and float32 keeps the loss
 * comparisons meaningful instead of quantised to fp16 steps). Means are
 * summed in double and rounded once, a deterministic stand-in for torch's
 * cascade sums; powers are taken in double and rounded to float (torch uses
 * SLEEF powf, within 1 ulp of that). Scales therefore agree with AutoAWQ to
 * a few float ulps, and the only discrete output — the chosen ratio —
 * agrees unless two grid points tie to within those ulps.
 * Compiled with -ffp-contract=off.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "awq.h"

qf_status qf_awq_w_mean(const float *const *w, const int64_t *rows,
                        int n_layers, int64_t k, int64_t g, float *w_mean) {
  if (!w || !rows || n_layers <= 0 || k <= 0 || !w_mean)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (k % g != 0) return QF_ERR_INVALID_ARGUMENT;
  double *acc = calloc((size_t)k, sizeof *acc);
  if (!acc) return QF_ERR_NO_MEMORY;
  int64_t total = 0;
  for (int l = 0; l < n_layers; l++) {
    for (int64_t r = 0; r < rows[l]; r++) {
      const float *wr = w[l] + r * k;
      for (int64_t c0 = 0; c0 < k; c0 += g) {
        float m = 0.0f;
        for (int64_t c = c0; c < c0 + g; c++) {
          const float a = fabsf(wr[c]);
          if (a > m) m = a;
        }
        const float den = m + 1e-6f;
        for (int64_t c = c0; c < c0 + g; c++) acc[c] += (double)(fabsf(wr[c]) / den);
      }
    }
    total += rows[l];
  }
  for (int64_t c = 0; c < k; c++)
    w_mean[c] = total ? (float)acc[c] / (float)total : 0.0f;
  free(acc);
  return QF_OK;
}

void qf_awq_x_mean(const float *x, int64_t t, int64_t k, float *x_mean) {
  for (int64_t c = 0; c < k; c++) x_mean[c] = 0.0f;
  if (t <= 0) return;
  double *acc = calloc((size_t)k, sizeof *acc);
  if (acc) {
    for (int64_t i = 0; i < t; i++)
      for (int64_t c = 0; c < k; c++) acc[c] += (double)fabsf(x[i * k + c]);
    for (int64_t c = 0; c < k; c++) x_mean[c] = (float)acc[c] / (float)t;
    free(acc);
  } else { /* no memory for the double accumulator: float sums */
    for (int64_t i = 0; i < t; i++)
      for (int64_t c = 0; c < k; c++) x_mean[c] += fabsf(x[i * k + c]);
    for (int64_t c = 0; c < k; c++) x_mean[c] /= (float)t;
  }
}

/* tensor.pow(e) for a float32 tensor and a Python float exponent. */
static float powf_torch(float b, double e) {
  if (e == 0.0) return 1.0f;
  if (e == 1.0) return b;
  if (e == 0.5) return sqrtf(b);
  return (float)pow((double)b, e);
}

void qf_awq_scale_candidate(const float *x_mean, const float *w_mean,
                            int64_t k, int r, int n_grid, int duo_scaling,
                            float *s) {
  const double ratio = (double)r / (double)n_grid;
  for (int64_t c = 0; c < k; c++) {
    float v;
    if (duo_scaling)
      v = powf_torch(x_mean[c], ratio) /
          (powf_torch(w_mean[c], 1.0 - ratio) + 1e-4f);
    else
      v = powf_torch(x_mean[c], ratio);
    if (v < 1e-4f) v = 1e-4f; /* clamp(min=1e-4); NaN stays NaN */
    s[c] = v;
  }
  /* scales / (scales.max() * scales.min()).sqrt(); max/min propagate NaN */
  float mx = s[0], mn = s[0];
  int has_nan = 0;
  for (int64_t c = 0; c < k; c++) {
    if (isnan(s[c])) has_nan = 1;
    if (s[c] > mx) mx = s[c];
    if (s[c] < mn) mn = s[c];
  }
  const float den = has_nan ? NAN : sqrtf(mx * mn);
  for (int64_t c = 0; c < k; c++) {
    float v = s[c] / den;
    if (!isfinite(v)) v = 1.0f; /* scales[isinf] = 1; scales[isnan] = 1 */
    s[c] = v;
  }
}

qf_status qf_awq_forward_linears(void *ctx, int n_layers,
                                 const float *const *trial_w,
                                 const float *scales, int r, float *out) {
  (void)scales;
  (void)r;
  const qf_awq_linear_ctx *c = ctx;
  if (!c || !c->x || !c->rows || c->t <= 0 || c->k <= 0 || c->t > INT32_MAX ||
      c->k > INT32_MAX)
    return QF_ERR_INVALID_ARGUMENT;
  int64_t total = 0;
  for (int l = 0; l < n_layers; l++) total += c->rows[l];
  if (total > INT32_MAX) return QF_ERR_INVALID_ARGUMENT;
  int64_t off = 0;
  for (int l = 0; l < n_layers; l++) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->t,
                (int)c->rows[l], (int)c->k, 1.0f, c->x, (int)c->k, trial_w[l],
                (int)c->k, 0.0f, out + off, (int)total);
    off += c->rows[l];
  }
  return QF_OK;
}

/* output.clip(finfo.min, finfo.max): infinities become the largest finite. */
static void clip_finite(float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (y[i] > FLT_MAX) y[i] = FLT_MAX;
    else if (y[i] < -FLT_MAX) y[i] = -FLT_MAX;
  }
}

/* _compute_loss: mean over all elements of (ref - y)², float32 squares
 * summed in double. */
static double mse(const float *ref, const float *y, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float d = ref[i] - y[i];
    acc += (double)(d * d);
  }
  return acc / (double)n;
}

qf_status qf_awq_search_scale(const qf_awq_scale_problem *p,
                              float *best_scales, int *best_ratio,
                              double *best_loss, double *losses) {
  if (!p || !best_scales || !p->w || !p->rows || p->n_layers <= 0 ||
      p->k <= 0 || !p->x_mean || !p->forward || p->out_len <= 0)
    return QF_ERR_INVALID_ARGUMENT;
  const int64_t k = p->k;
  const int64_t g = p->group_size > 0 ? p->group_size : k;
  const int n_grid = p->n_grid > 0 ? p->n_grid : 20;
  const int bits = p->bits > 0 ? p->bits : 4;
  if (k % g != 0 || bits > 8) return QF_ERR_INVALID_ARGUMENT;
  int64_t total_rows = 0;
  for (int l = 0; l < p->n_layers; l++) {
    if (!p->w[l] || p->rows[l] <= 0) return QF_ERR_INVALID_ARGUMENT;
    total_rows += p->rows[l];
  }

  qf_status st = QF_OK;
  float *w_mean_own = NULL, *s = NULL, *trial = NULL, *y = NULL, *ref_own = NULL;
  const float **tw = calloc((size_t)p->n_layers, sizeof *tw);
  const float *w_mean = p->w_mean;
  if (!w_mean) {
    w_mean_own = malloc((size_t)k * sizeof *w_mean_own);
    if (!w_mean_own) {
      st = QF_ERR_NO_MEMORY;
      goto done;
    }
    st = qf_awq_w_mean(p->w, p->rows, p->n_layers, k, g, w_mean_own);
    if (st != QF_OK) goto done;
    w_mean = w_mean_own;
  }
  s = malloc((size_t)k * sizeof *s);
  trial = malloc((size_t)(total_rows * k) * sizeof *trial);
  y = malloc((size_t)p->out_len * sizeof *y);
  if (!tw || !s || !trial || !y) {
    st = QF_ERR_NO_MEMORY;
    goto done;
  }
  const float *ref = p->ref_out;
  if (!ref) {
    ref_own = malloc((size_t)p->out_len * sizeof *ref_own);
    if (!ref_own) {
      st = QF_ERR_NO_MEMORY;
      goto done;
    }
    st = p->forward(p->ctx, p->n_layers, p->w, NULL, -1, ref_own);
    if (st != QF_OK) goto done;
    clip_finite(ref_own, p->out_len);
    ref = ref_own;
  }

  int best = -1;
  double best_err = INFINITY;
  for (int r = 0; r < n_grid; r++) {
    qf_awq_scale_candidate(p->x_mean, w_mean, k, r, n_grid, p->duo_scaling, s);
    int ok = 1;
    float *dst = trial;
    for (int l = 0; l < p->n_layers && ok; l++) {
      const int64_t nr = p->rows[l];
      for (int64_t i = 0; i < nr; i++)
        for (int64_t c = 0; c < k; c++) dst[i * k + c] = p->w[l][i * k + c] * s[c];
      /* a candidate whose scaled weights are not finite loses (AutoAWQ
       * would assert); it is not an error of the whole search */
      if (qf_awq_pseudo_quantize(dst, nr, k, g, bits, p->zero_point, dst, NULL,
                                 NULL) != QF_OK)
        ok = 0;
      for (int64_t i = 0; i < nr && ok; i++)
        for (int64_t c = 0; c < k; c++) dst[i * k + c] = dst[i * k + c] / s[c];
      tw[l] = dst;
      dst += nr * k;
    }
    double err = NAN;
    if (ok) {
      st = p->forward(p->ctx, p->n_layers, tw, s, r, y);
      if (st != QF_OK) goto done;
      clip_finite(y, p->out_len);
      err = mse(ref, y, p->out_len);
    }
    if (losses) losses[r] = err;
    if (err < best_err) { /* strict; NaN never wins */
      best_err = err;
      best = r;
      memcpy(best_scales, s, (size_t)k * sizeof *s);
    }
  }
  if (best < 0) {
    st = QF_ERR_NUMERIC;
    goto done;
  }
  if (best_ratio) *best_ratio = best;
  if (best_loss) *best_loss = best_err;
done:
  free(w_mean_own);
  free(s);
  free(trial);
  free(y);
  free(ref_own);
  free(tw);
  return st;
}
