/*
 * The AWQ searches on synthetic data: searched scales beat plain RTN on a
 * linear with planted salient input channels; the clip search from a Gram
 * matrix agrees with the token search; token sub-sampling follows AutoAWQ
 * (step = max(1, T / 512)); clipping never increases the per-group error;
 * statistics and the candidate normalisation.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "awq.h"
#include "awq_test_util.h"

static float *gauss(int64_t n, float sd, uint64_t seed) {
  awq_rng r = {seed};
  float *v = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) v[i] = awq_rng_gauss(&r) * sd;
  return v;
}

static double out_mse(const float *x, const float *w, const float *wq, int64_t t, int64_t n,
                      int64_t k) {
  float *a = malloc((size_t)(t * n) * 4), *b = malloc((size_t)(t * n) * 4);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t, (int)n, (int)k, 1.0f, x, (int)k,
              w, (int)k, 0.0f, a, (int)n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t, (int)n, (int)k, 1.0f, x, (int)k,
              wq, (int)k, 0.0f, b, (int)n);
  double e = 0;
  for (int64_t i = 0; i < t * n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  free(a), free(b);
  return e / (double)(t * n);
}

Test(awq_search, salient_channels_beat_rtn) {
  const int64_t n = 64, k = 256, g = 64, t = 256;
  float *w = gauss(n * k, 0.02f, 11), *x = gauss(t * k, 1.0f, 12);
  for (int64_t i = 0; i < t; i++)
    for (int64_t c = 5; c < k; c += 37) x[i * k + c] *= 20.0f; /* salient inputs */
  float *xm = malloc((size_t)k * 4), *s = malloc((size_t)k * 4);
  qf_awq_x_mean(x, t, k, xm);
  const float *wl[1] = {w};
  int64_t rows[1] = {n};
  qf_awq_linear_ctx lin = {x, t, k, rows};
  qf_awq_scale_problem p = {0};
  p.n_layers = 1;
  p.w = wl;
  p.rows = rows;
  p.k = k;
  p.group_size = g;
  p.bits = 4;
  p.zero_point = 1;
  p.x_mean = xm;
  p.duo_scaling = 1;
  p.forward = qf_awq_forward_linears;
  p.ctx = &lin;
  p.out_len = t * n;
  int best;
  double loss, losses[20];
  cr_assert_eq(qf_awq_search_scale(&p, s, &best, &loss, losses), QF_OK);
  /* plain RTN at the same bits */
  float *rtn = malloc((size_t)(n * k) * 4), *awq = malloc((size_t)(n * k) * 4);
  cr_assert_eq(qf_awq_pseudo_quantize(w, n, k, g, 4, 1, rtn, NULL, NULL), QF_OK);
  const double e_rtn = out_mse(x, w, rtn, t, n, k);
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < k; c++) awq[r * k + c] = w[r * k + c] * s[c];
  cr_assert_eq(qf_awq_pseudo_quantize(awq, n, k, g, 4, 1, awq, NULL, NULL), QF_OK);
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < k; c++) awq[r * k + c] = awq[r * k + c] / s[c];
  const double e_awq = out_mse(x, w, awq, t, n, k);
  cr_log_info("salient: ratio %d/20, AWQ mse %.4g vs RTN %.4g", best, e_awq, e_rtn);
  cr_assert(fabs(e_awq - loss) <= 1e-3 * loss, "search loss %g vs recomputed %g", loss, e_awq);
  cr_assert(e_awq < 0.8 * e_rtn, "AWQ %g should beat RTN %g", e_awq, e_rtn);
  /* the salient channels got the large scales */
  double sal = 0, rest = 0;
  for (int64_t c = 0; c < k; c++) {
    if (c >= 5 && (c - 5) % 37 == 0) sal += s[c];
    else rest += s[c];
  }
  cr_assert(sal / 7.0 > 2.0 * rest / (double)(k - 7));
  free(w), free(x), free(xm), free(s), free(rtn), free(awq);
}

/* The search over several linears (q, k, v sharing one input). */
Test(awq_search, multi_layer) {
  const int64_t k = 128, g = 32, t = 64;
  int64_t rows[3] = {32, 16, 16};
  float *w0 = gauss(32 * k, 0.05f, 1), *w1 = gauss(16 * k, 0.05f, 2), *w2 = gauss(16 * k, 0.05f, 3);
  float *x = gauss(t * k, 1.0f, 4), *xm = malloc((size_t)k * 4), *s = malloc((size_t)k * 4);
  for (int64_t i = 0; i < t; i++) x[i * k + 3] *= 30.0f;
  qf_awq_x_mean(x, t, k, xm);
  const float *wl[3] = {w0, w1, w2};
  qf_awq_linear_ctx lin = {x, t, k, rows};
  qf_awq_scale_problem p = {0};
  p.n_layers = 3;
  p.w = wl;
  p.rows = rows;
  p.k = k;
  p.group_size = g;
  p.x_mean = xm;
  p.duo_scaling = 1;
  p.zero_point = 1;
  p.forward = qf_awq_forward_linears;
  p.ctx = &lin;
  p.out_len = t * 64;
  int best = -1;
  cr_assert_eq(qf_awq_search_scale(&p, s, &best, NULL, NULL), QF_OK);
  cr_assert(best >= 0 && best < 20);
  cr_assert(s[3] > s[4]);
  /* bad problems are rejected, not crashed on */
  p.k = 100;
  cr_assert_eq(qf_awq_search_scale(&p, s, &best, NULL, NULL), QF_ERR_INVALID_ARGUMENT);
  free(w0), free(w1), free(w2), free(x), free(xm), free(s);
}

Test(awq_search, candidate_normalised) {
  const int64_t k = 64;
  float xm[64], wm[64], s[64];
  awq_rng r = {5};
  for (int i = 0; i < k; i++) {
    xm[i] = 0.1f + awq_rng_uniform(&r) * 5;
    wm[i] = 0.05f + awq_rng_uniform(&r) * 0.5f;
  }
  for (int ratio = 0; ratio < 20; ratio++) {
    qf_awq_scale_candidate(xm, wm, k, ratio, 20, ratio % 2, s);
    float mx = s[0], mn = s[0];
    for (int i = 0; i < k; i++) {
      mx = s[i] > mx ? s[i] : mx;
      mn = s[i] < mn ? s[i] : mn;
    }
    cr_assert(fabs((double)mx * mn - 1.0) < 1e-5, "max*min = %g", (double)mx * mn);
  }
  /* ratio 0 without duo scaling: all ones */
  qf_awq_scale_candidate(xm, wm, k, 0, 20, 0, s);
  for (int i = 0; i < k; i++) cr_assert_eq(s[i], 1.0f);
  /* NaN statistics: every entry falls back to 1 */
  xm[3] = NAN;
  qf_awq_scale_candidate(xm, wm, k, 5, 20, 1, s);
  for (int i = 0; i < k; i++) cr_assert_eq(s[i], 1.0f);
}

Test(awq_search, statistics) {
  float x[6] = {1, -2, -3, 4, 5, -6}, xm[2];
  qf_awq_x_mean(x, 3, 2, xm);
  cr_assert_eq(xm[0], 3.0f);
  cr_assert_eq(xm[1], 4.0f);
  float w[8] = {1, -2, 0, 4, /* group 0 row 0 */ -1, 1, 1, 1};
  const float *wl[1] = {w};
  int64_t rows[1] = {2};
  float wm[4];
  cr_assert_eq(qf_awq_w_mean(wl, rows, 1, 4, 2, wm), QF_OK);
  /* row 0: groups {1,-2} max 2, {0,4} max 4; row 1: {-1,1} max 1, {1,1} */
  cr_assert_float_eq(wm[0], (1.0f / 2.000001f + 1.0f / 1.000001f) / 2, 1e-6);
  cr_assert_float_eq(wm[3], (4.0f / 4.000001f + 1.0f / 1.000001f) / 2, 1e-6);
}

/* Gram-matrix errors equal token errors up to a constant: same argmins,
 * except where two candidates tie to rounding. */
Test(awq_search, clip_gram_matches_tokens) {
  const int64_t n = 64, k = 256, g = 64, t = 300, ng = k / g;
  float *w = gauss(n * k, 0.02f, 21), *x = gauss(t * k, 1.0f, 22);
  for (int64_t r = 0; r < n; r++) w[r * k + (r * 7) % k] = 0.3f; /* outliers worth clipping */
  float *h = malloc((size_t)(k * k) * 4);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)k, (int)t, 2.0f / (float)t,
              x, (int)k, x, (int)k, 0.0f, h, (int)k);
  float *a = malloc((size_t)(n * ng) * 4), *b = malloc((size_t)(n * ng) * 4);
  cr_assert_eq(qf_awq_clip_search_x(w, n, k, g, x, t, NULL, a), QF_OK);
  cr_assert_eq(qf_awq_clip_search_gram(w, n, k, g, h, NULL, b), QF_OK);
  int64_t same = 0, shrunk = 0;
  for (int64_t i = 0; i < n * ng; i++) {
    same += a[i] == b[i];
    float m = 0;
    for (int64_t j = 0; j < g; j++) m = fmaxf(m, fabsf(w[(i / ng) * k + (i % ng) * g + j]));
    shrunk += a[i] < m;
  }
  cr_log_info("clip: %lld/%lld equal between token and Gram errors, %lld shrunk", (long long)same,
              (long long)(n * ng), (long long)shrunk);
  cr_assert(same >= n * ng * 98 / 100);
  cr_assert(shrunk > 0);
  free(w), free(x), free(h), free(a), free(b);
}

/* T = 1100 tokens: step 2, tokens 0, 2, …, 1098 (550 of them). */
Test(awq_search, clip_token_sampling) {
  const int64_t n = 64, k = 64, g = 32, t = 1100, ng = k / g;
  float *w = gauss(n * k, 0.02f, 31), *x = gauss(t * k, 1.0f, 32);
  float *sub = malloc((size_t)(550 * k) * 4);
  for (int64_t i = 0; i < 550; i++) memcpy(sub + i * k, x + 2 * i * k, (size_t)k * 4);
  float *a = malloc((size_t)(n * ng) * 4), *b = malloc((size_t)(n * ng) * 4);
  cr_assert_eq(qf_awq_clip_search_x(w, n, k, g, x, t, NULL, a), QF_OK);
  cr_assert_eq(qf_awq_clip_search_x(w, n, k, g, sub, 550, NULL, b), QF_OK);
  cr_assert(memcmp(a, b, (size_t)(n * ng) * 4) == 0);
  free(w), free(x), free(sub), free(a), free(b);
}

/* Clipping to the searched thresholds never increases a group's error. */
Test(awq_search, clip_never_hurts) {
  const int64_t n = 8, k = 64, g = 32, t = 128, ng = k / g;
  float *w = gauss(n * k, 0.02f, 41), *x = gauss(t * k, 1.0f, 42);
  w[3] = 0.5f;
  float best[16];
  cr_assert_eq(qf_awq_clip_search_x(w, n, k, g, x, t, NULL, best), QF_OK);
  float *c = malloc((size_t)(n * k) * 4), *qa = malloc((size_t)(n * k) * 4),
        *qb = malloc((size_t)(n * k) * 4);
  memcpy(c, w, (size_t)(n * k) * 4);
  qf_awq_apply_clip(c, n, k, g, best);
  cr_assert_eq(qf_awq_pseudo_quantize(w, n, k, g, 4, 1, qa, NULL, NULL), QF_OK);
  cr_assert_eq(qf_awq_pseudo_quantize(c, n, k, g, 4, 1, qb, NULL, NULL), QF_OK);
  for (int64_t r = 0; r < n; r++)
    for (int64_t gi = 0; gi < ng; gi++) {
      double ea = 0, eb = 0;
      for (int64_t i = 0; i < t; i++) {
        double da = 0, db = 0;
        for (int64_t j = gi * g; j < (gi + 1) * g; j++) {
          da += (double)x[i * k + j] * (qa[r * k + j] - w[r * k + j]);
          db += (double)x[i * k + j] * (qb[r * k + j] - w[r * k + j]);
        }
        ea += da * da;
        eb += db * db;
      }
      cr_assert(eb <= ea * (1 + 1e-5), "row %lld group %lld: %g > %g", (long long)r,
                (long long)gi, eb, ea);
    }
  cr_assert(qf_awq_clip_skipped("model.layers.0.self_attn.q_proj.weight"));
  cr_assert(qf_awq_clip_skipped("model.layers.0.self_attn.k_proj.weight"));
  cr_assert(!qf_awq_clip_skipped("model.layers.0.self_attn.v_proj.weight"));
  cr_assert(!qf_awq_clip_skipped("model.layers.0.mlp.down_proj.weight"));
  free(w), free(x), free(c), free(qa), free(qb);
}
