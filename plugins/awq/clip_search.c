/*
 * AutoAWQ's `_compute_best_clip`: for every (output row, input group) pick a
 * symmetric clipping threshold max_val = absmax · (1 - i/n_grid),
 * i = 0 … int(max_shrink·n_grid)-1, that minimises the token-mean squared
 * error of the group's partial dot product Σ_j x[t,j]·w[j] after clamping to
 * ±max_val and pseudo-quantizing. The caller skips q/k projections
 * (qf_awq_clip_skipped) and applies the result with qf_awq_apply_clip.
 *
 * Two error sources share one search loop:
 *  - tokens: x [t, k], sampled every max(1, t / n_sample_token) tokens
 *    exactly as AutoAWQ (`input_feat[:, ::step]`); per group the error of
 *    all rows is one matrix product D = X_g · (Q(W_g) - W_g)ᵀ (OpenBLAS),
 *    err = mean_t D².
 *  - Gram: a K x K matrix proportional to XᵀX (the host's GPTQ-style
 *    Hessian); err = Δw H_gg Δwᵀ, the same quantity up to a constant.
 * AutoAWQ computes out and out0 separately and subtracts; we multiply by the
 * difference, which is the same number with less cancellation. The only
 * discrete outputs are the argmins, which agree with the golden vectors.
 *
 * Precision: float32 like the golden reference (AutoAWQ's usual run is
 * float16 on a GPU, where products can overflow to inf and silently lose;
 * float32 has no such artefact). The threshold itself is computed exactly
 * as torch does: float32 absmax times the float32 of (1 - i/n_grid).
 * Compiled with -ffp-contract=off.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "awq.h"

#define QF_AWQ_CLIP_ROW_BATCH 256 /* rows per product (bounds memory) */

qf_awq_clip_opts qf_awq_clip_opts_default(void) {
  qf_awq_clip_opts o;
  o.n_grid = 20;
  o.max_shrink = 0.5;
  o.n_sample_token = 512;
  o.bits = 4;
  o.zero_point = 1;
  return o;
}

int qf_awq_clip_skipped(const char *name) {
  static const char *const avoid[] = {"q_", "k_", "query", "key", "Wqkv"};
  if (!name) return 0;
  for (size_t i = 0; i < sizeof avoid / sizeof avoid[0]; i++)
    if (strstr(name, avoid[i])) return 1;
  return 0;
}

void qf_awq_apply_clip(float *w, int64_t n, int64_t k, int64_t g,
                       const float *best_max) {
  if (g <= 0) g = k;
  const int64_t ng = k / g;
  for (int64_t r = 0; r < n; r++)
    for (int64_t gi = 0; gi < ng; gi++) {
      const float m = best_max[r * ng + gi];
      float *p = w + r * k + gi * g;
      for (int64_t j = 0; j < g; j++) {
        /* torch.clamp(w, -m, m): min bound first, then max bound */
        float v = p[j];
        if (v < -m) v = -m;
        if (v > m) v = m;
        p[j] = v;
      }
    }
}

/* Everything one search needs, whichever the error source. */
typedef struct clip_job {
  const float *w;
  int64_t n, k, g, ng;
  const qf_awq_clip_opts *o;
  /* tokens */
  const float *xg; /* [ts, g] of the current group */
  int64_t ts;
  /* Gram */
  const float *hg; /* [g, g] block of the current group */
  /* scratch */
  float *dw;   /* [batch, g] */
  float *prod; /* [ts, batch] or [batch, g] */
  double *err; /* [batch] */
  double *err_best;
  float *m0;
} clip_job;

/* Per-row error of the candidate held in job->dw (rows r0 … r0+nb-1). */
static void candidate_error(clip_job *j, int64_t nb) {
  const int64_t g = j->g;
  if (j->xg) {
    /* prod [ts, nb] = Xg [ts, g] · dwᵀ [g, nb] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->ts, (int)nb,
                (int)g, 1.0f, j->xg, (int)g, j->dw, (int)g, 0.0f, j->prod,
                (int)nb);
    for (int64_t r = 0; r < nb; r++) j->err[r] = 0.0;
    for (int64_t t = 0; t < j->ts; t++) {
      const float *row = j->prod + t * nb;
      for (int64_t r = 0; r < nb; r++) {
        const float d = row[r];
        j->err[r] += (double)(d * d);
      }
    }
    for (int64_t r = 0; r < nb; r++) j->err[r] /= (double)j->ts;
  } else {
    /* prod [nb, g] = dw [nb, g] · H_gg [g, g]; err = rowwise prod·dw */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)g,
                (int)g, 1.0f, j->dw, (int)g, j->hg, (int)j->k, 0.0f, j->prod,
                (int)g);
    for (int64_t r = 0; r < nb; r++) {
      double e = 0.0;
      const float *p = j->prod + r * g, *d = j->dw + r * g;
      for (int64_t c = 0; c < g; c++) e += (double)p[c] * (double)d[c];
      j->err[r] = e;
    }
  }
}

/* Search rows r0 … r0+nb-1 of group gi; writes best_max. */
static void search_rows(clip_job *j, int64_t gi, int64_t r0, int64_t nb,
                        float *best_max) {
  const int64_t g = j->g, k = j->k, ng = j->ng;
  const int n_shrink = (int)(j->o->max_shrink * (double)j->o->n_grid);
  for (int64_t r = 0; r < nb; r++) {
    const float *wr = j->w + (r0 + r) * k + gi * g;
    float m = 0.0f;
    for (int64_t c = 0; c < g; c++) {
      const float a = fabsf(wr[c]);
      if (a > m) m = a;
    }
    j->m0[r] = m;
    best_max[(r0 + r) * ng + gi] = m;
    j->err_best[r] = 1e9; /* torch.ones_like(...) * 1e9 */
  }
  for (int i = 0; i < n_shrink; i++) {
    /* max_val = org_max_val * (1 - i_s / n_grid): the Python double factor
     * is applied to a float32 tensor, i.e. rounded to float first. */
    const float factor = (float)(1.0 - (double)i / (double)j->o->n_grid);
    for (int64_t r = 0; r < nb; r++) {
      const float *wr = j->w + (r0 + r) * k + gi * g;
      const float m = j->m0[r] * factor;
      float *d = j->dw + r * g;
      for (int64_t c = 0; c < g; c++) {
        float v = wr[c];
        if (v < -m) v = -m;
        if (v > m) v = m;
        d[c] = v;
      }
      qf_awq_pseudo_quantize_group(d, g, j->o->bits, j->o->zero_point, d,
                                   NULL, NULL);
      for (int64_t c = 0; c < g; c++) d[c] = d[c] - wr[c];
    }
    candidate_error(j, nb);
    for (int64_t r = 0; r < nb; r++) {
      if (j->err[r] < j->err_best[r]) { /* strict, as err < min_errs */
        j->err_best[r] = j->err[r];
        best_max[(r0 + r) * ng + gi] = j->m0[r] * factor;
      }
    }
  }
}

static qf_status clip_search(const float *w, int64_t n, int64_t k, int64_t g,
                             const float *x, int64_t t, const float *gram,
                             const qf_awq_clip_opts *opts, float *best_max) {
  qf_awq_clip_opts def = qf_awq_clip_opts_default();
  const qf_awq_clip_opts *o = opts ? opts : &def;
  if (!w || !best_max || n <= 0 || k <= 0 || o->n_grid <= 0 ||
      o->bits < 2 || o->bits > 8)
    return QF_ERR_INVALID_ARGUMENT;
  if (g <= 0) g = k;
  if (k % g != 0 || g > INT32_MAX || n > INT32_MAX) return QF_ERR_INVALID_ARGUMENT;
  clip_job j;
  memset(&j, 0, sizeof j);
  j.w = w;
  j.n = n;
  j.k = k;
  j.g = g;
  j.ng = k / g;
  j.o = o;
  const int64_t batch = n < QF_AWQ_CLIP_ROW_BATCH ? n : QF_AWQ_CLIP_ROW_BATCH;
  int64_t step = 1;
  float *xg = NULL;
  if (x) {
    if (t <= 0) return QF_ERR_INVALID_ARGUMENT;
    if (o->n_sample_token > 0 && t / o->n_sample_token > 1)
      step = t / o->n_sample_token;
    j.ts = (t + step - 1) / step;
    if (j.ts > INT32_MAX) return QF_ERR_INVALID_ARGUMENT;
    xg = malloc((size_t)(j.ts * g) * sizeof *xg);
  }
  const size_t prod_n = (size_t)(x ? j.ts * batch : batch * g);
  j.dw = malloc((size_t)(batch * g) * sizeof *j.dw);
  j.prod = malloc(prod_n * sizeof *j.prod);
  j.err = malloc((size_t)batch * sizeof *j.err);
  j.err_best = malloc((size_t)batch * sizeof *j.err_best);
  j.m0 = malloc((size_t)batch * sizeof *j.m0);
  qf_status st = QF_OK;
  if ((x && !xg) || !j.dw || !j.prod || !j.err || !j.err_best || !j.m0) {
    st = QF_ERR_NO_MEMORY;
    goto done;
  }
  for (int64_t i = 0; i < n * k; i++)
    if (!isfinite(w[i])) {
      st = QF_ERR_NUMERIC;
      goto done;
    }
  for (int64_t gi = 0; gi < j.ng; gi++) {
    if (x) {
      for (int64_t s = 0; s < j.ts; s++)
        memcpy(xg + s * g, x + (s * step) * k + gi * g,
               (size_t)g * sizeof *xg);
      j.xg = xg;
    } else {
      j.hg = gram + gi * g * k + gi * g;
    }
    for (int64_t r0 = 0; r0 < n; r0 += batch) {
      const int64_t nb = n - r0 < batch ? n - r0 : batch;
      search_rows(&j, gi, r0, nb, best_max);
    }
  }
done:
  free(xg);
  free(j.dw);
  free(j.prod);
  free(j.err);
  free(j.err_best);
  free(j.m0);
  return st;
}

qf_status qf_awq_clip_search_x(const float *w, int64_t n, int64_t k,
                               int64_t g, const float *x, int64_t t,
                               const qf_awq_clip_opts *opts, float *best_max) {
  if (!x) return QF_ERR_INVALID_ARGUMENT;
  return clip_search(w, n, k, g, x, t, NULL, opts, best_max);
}

qf_status qf_awq_clip_search_gram(const float *w, int64_t n, int64_t k,
                                  int64_t g, const float *gram,
                                  const qf_awq_clip_opts *opts,
                                  float *best_max) {
  if (!gram) return QF_ERR_INVALID_ARGUMENT;
  return clip_search(w, n, k, g, NULL, 0, gram, opts, best_max);
}
