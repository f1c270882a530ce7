/*
 * AWQ against AutoAWQ's own outputs (golden/awq, AutoAWQ 88e4c76b run in
 * float32 on the CPU), for every case of the manifest:
 *  - pseudo_quantize_tensor: deq, scales, zeros bit-exact;
 *  - WQLinear_GEMM.from_linear: qweight, qzeros, scales (f16) byte-exact,
 *    and unpacking them gives back the integers behind deq exactly;
 *  - _compute_best_clip: every threshold equal;
 *  - _compute_best_scale: see the note on search_scales below.
 *
 * Note on search_scales.f32. The file equals the ratio-0 candidate
 * (1 / (w_mean + 1e-4), normalised) although ratio 0 has the worst loss of
 * the grid on these inputs. Cause (reproduced here): on the CPU,
 * `{k: v.cpu() for k, v in module.state_dict().items()}` does not copy, so
 * AutoAWQ's "original state" aliases the weight that `fc.weight.mul_(s)`
 * scales in place during the first ratio; every later ratio then starts
 * from W·s₀ instead of W and loses. On a GPU (AutoAWQ's normal run) .cpu()
 * copies and the search behaves as designed. We therefore check (1) the
 * scale formula against the file, (2) that our search driven by a forward
 * that reproduces the aliasing selects exactly the file's scales, and
 * (3) that the real search picks a ratio with a lower loss than ratio 0.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "awq_test_util.h"
#include "qforge/half.h"

#define MAX_CASES 16

Test(awq_golden, pseudo_quantize_bit_exact) {
  awq_golden_case cs[MAX_CASES];
  size_t nc = awq_golden_cases(cs, MAX_CASES);
  for (size_t i = 0; i < nc; i++) {
    const awq_golden_case *c = &cs[i];
    const int64_t nk = c->n * c->k, ng = c->n * (c->k / c->g);
    float *w = awq_golden_read(c->name, "weight.f32", (size_t)nk * 4);
    float *gd = awq_golden_read(c->name, "pq_deq.f32", (size_t)nk * 4);
    float *gs = awq_golden_read(c->name, "pq_scales.f32", (size_t)ng * 4);
    float *gz = awq_golden_read(c->name, "pq_zeros.f32", (size_t)ng * 4);
    float *d = malloc((size_t)nk * 4), *s = malloc((size_t)ng * 4), *z = malloc((size_t)ng * 4);
    cr_assert_eq(qf_awq_pseudo_quantize(w, c->n, c->k, c->g, 4, 1, d, s, z), QF_OK);
    cr_expect(memcmp(d, gd, (size_t)nk * 4) == 0, "case %s: deq differs", c->name);
    cr_expect(memcmp(s, gs, (size_t)ng * 4) == 0, "case %s: scales differ", c->name);
    cr_expect(memcmp(z, gz, (size_t)ng * 4) == 0, "case %s: zeros differ (incl. sign of 0)", c->name);
    free(w), free(gd), free(gs), free(gz), free(d), free(s), free(z);
  }
}

Test(awq_golden, gemm_pack_byte_exact) {
  awq_golden_case cs[MAX_CASES];
  size_t nc = awq_golden_cases(cs, MAX_CASES);
  for (size_t i = 0; i < nc; i++) {
    const awq_golden_case *c = &cs[i];
    const int64_t n = c->n, k = c->k, g = c->g, ng = k / g;
    float *gd = awq_golden_read(c->name, "pq_deq.f32", (size_t)(n * k) * 4);
    float *gs = awq_golden_read(c->name, "pq_scales.f32", (size_t)(n * ng) * 4);
    float *gz = awq_golden_read(c->name, "pq_zeros.f32", (size_t)(n * ng) * 4);
    int32_t *gqw = awq_golden_read(c->name, "qweight.i32", (size_t)(k * n / 8) * 4);
    int32_t *gqz = awq_golden_read(c->name, "qzeros.i32", (size_t)(ng * n / 8) * 4);
    uint16_t *gsc = awq_golden_read(c->name, "scales.f16", (size_t)(ng * n) * 2);
    int32_t *qw = malloc((size_t)(k * n / 8) * 4), *qz = malloc((size_t)(ng * n / 8) * 4);
    uint16_t *sc = malloc((size_t)(ng * n) * 2);
    cr_assert_eq(qf_awq_gemm_pack(gd, gs, gz, n, k, g, qw, qz, sc), QF_OK);
    cr_expect(memcmp(qw, gqw, (size_t)(k * n / 8) * 4) == 0, "case %s: qweight differs", c->name);
    cr_expect(memcmp(qz, gqz, (size_t)(ng * n / 8) * 4) == 0, "case %s: qzeros differs", c->name);
    cr_expect(memcmp(sc, gsc, (size_t)(ng * n) * 2) == 0, "case %s: scales differ", c->name);

    /* unpacking gives the integers: (q - z) · scale32 == deq exactly */
    uint8_t *q = malloc((size_t)(k * n)), *z = malloc((size_t)(ng * n));
    cr_assert_eq(qf_awq_gemm_unpack(gqw, gqz, n, k, g, q, z), QF_OK);
    int64_t bad = 0;
    for (int64_t r = 0; r < n; r++)
      for (int64_t kk = 0; kk < k; kk++) {
        const float s = gs[r * ng + kk / g];
        const float v = (float)((int)q[kk * n + r] - (int)z[(kk / g) * n + r]) * s;
        if (v != gd[r * k + kk]) bad++;
        if (z[(kk / g) * n + r] != (uint8_t)gz[r * ng + kk / g]) bad++;
      }
    cr_expect_eq(bad, 0, "case %s: %lld unpacked values differ", c->name, (long long)bad);

    /* GEMM -> GPTQ (v1 and v2) -> GEMM is the identity */
    for (int v1 = 0; v1 <= 1; v1++) {
      int32_t *tq = malloc((size_t)(k * n / 8) * 4), *tz = malloc((size_t)(ng * n / 8) * 4);
      int32_t *bq = malloc((size_t)(k * n / 8) * 4), *bz = malloc((size_t)(ng * n / 8) * 4);
      cr_assert_eq(qf_awq_gemm_to_gptq(gqw, gqz, n, k, g, v1, tq, tz, NULL), QF_OK);
      cr_assert_eq(qf_awq_gptq_to_gemm(tq, tz, n, k, g, v1, bq, bz), QF_OK);
      cr_expect(memcmp(bq, gqw, (size_t)(k * n / 8) * 4) == 0, "case %s v1=%d", c->name, v1);
      cr_expect(memcmp(bz, gqz, (size_t)(ng * n / 8) * 4) == 0, "case %s v1=%d", c->name, v1);
      free(tq), free(tz), free(bq), free(bz);
    }
    free(gd), free(gs), free(gz), free(gqw), free(gqz), free(gsc), free(qw), free(qz), free(sc);
    free(q), free(z);
  }
}

Test(awq_golden, clip_search_matches) {
  awq_golden_case cs[MAX_CASES];
  size_t nc = awq_golden_cases(cs, MAX_CASES);
  for (size_t i = 0; i < nc; i++) {
    const awq_golden_case *c = &cs[i];
    const int64_t n = c->n, k = c->k, ng = k / c->g, t = 512;
    float *w = awq_golden_read(c->name, "weight.f32", (size_t)(n * k) * 4);
    float *x = awq_golden_read(c->name, "calib.f32", (size_t)(t * k) * 4);
    float *gm = awq_golden_read(c->name, "clip_max.f32", (size_t)(n * ng) * 4);
    float *m = malloc((size_t)(n * ng) * 4);
    qf_awq_clip_opts o = qf_awq_clip_opts_default();
    cr_assert_eq(qf_awq_clip_search_x(w, n, k, c->g, x, t, &o, m), QF_OK);
    int64_t bad = 0;
    for (int64_t j = 0; j < n * ng; j++)
      if (m[j] != gm[j]) bad++;
    cr_expect_eq(bad, 0, "case %s: %lld of %lld clip thresholds differ", c->name, (long long)bad,
                 (long long)(n * ng));
    free(w), free(x), free(gm), free(m);
  }
}

/* A forward that reproduces AutoAWQ's CPU aliasing: after ratio 0 the base
 * weights become W·s₀ (the in-place mul_ reached the "saved" state). */
typedef struct alias_ctx {
  qf_awq_linear_ctx lin;
  int64_t n, k, g;
  float *cur; /* current base weights */
  float *tmp;
} alias_ctx;

static qf_status alias_forward(void *vctx, int nl, const float *const *trial,
                               const float *s, int r, float *out) {
  alias_ctx *a = vctx;
  if (r < 0) return qf_awq_forward_linears(&a->lin, nl, trial, s, r, out);
  const int64_t n = a->n, k = a->k;
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) a->tmp[i * k + c] = a->cur[i * k + c] * s[c];
  if (qf_awq_pseudo_quantize(a->tmp, n, k, a->g, 4, 1, a->tmp, NULL, NULL) != QF_OK)
    return QF_ERR_NUMERIC;
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) a->tmp[i * k + c] = a->tmp[i * k + c] / s[c];
  const float *tw[1] = {a->tmp};
  qf_status st = qf_awq_forward_linears(&a->lin, 1, tw, s, r, out);
  if (r == 0)
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) a->cur[i * k + c] = a->cur[i * k + c] * s[c];
  return st;
}

static double max_rel(const float *a, const float *b, int64_t n) {
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const double d = fabs((double)a[i] - (double)b[i]) / fabs((double)b[i]);
    if (d > m) m = d;
  }
  return m;
}

/* Agreement we achieve on search_scales: <= 2.7e-7 relative (about 2 float
 * ulps; we assert 5e-7). The difference comes from the means:
 * AutoAWQ sums with torch cascade sums, we sum in double and round once. */
#define SCALE_TOL 5e-7

Test(awq_golden, scale_search) {
  awq_golden_case cs[MAX_CASES];
  size_t nc = awq_golden_cases(cs, MAX_CASES);
  for (size_t i = 0; i < nc; i++) {
    const awq_golden_case *c = &cs[i];
    const int64_t n = c->n, k = c->k, t = 512;
    float *w = awq_golden_read(c->name, "weight.f32", (size_t)(n * k) * 4);
    float *x = awq_golden_read(c->name, "calib.f32", (size_t)(t * k) * 4);
    float *gs = awq_golden_read(c->name, "search_scales.f32", (size_t)k * 4);
    float *xm = malloc((size_t)k * 4), *wm = malloc((size_t)k * 4), *s = malloc((size_t)k * 4);
    qf_awq_x_mean(x, t, k, xm);
    const float *wl[1] = {w};
    int64_t rows[1] = {n};
    cr_assert_eq(qf_awq_w_mean(wl, rows, 1, k, c->g, wm), QF_OK);

    /* (1) the formula: the file is the ratio-0 candidate */
    qf_awq_scale_candidate(xm, wm, k, 0, 20, 1, s);
    const double rel0 = max_rel(s, gs, k);
    cr_expect(rel0 <= SCALE_TOL, "case %s: ratio-0 candidate off by %g", c->name, rel0);

    /* (2) the search with AutoAWQ's CPU aliasing reproduced */
    alias_ctx a = {{x, t, k, rows}, n, k, c->g, malloc((size_t)(n * k) * 4),
                   malloc((size_t)(n * k) * 4)};
    memcpy(a.cur, w, (size_t)(n * k) * 4);
    qf_awq_scale_problem p = {0};
    p.n_layers = 1;
    p.w = wl;
    p.rows = rows;
    p.k = k;
    p.group_size = c->g;
    p.bits = 4;
    p.zero_point = 1;
    p.x_mean = xm;
    p.duo_scaling = 1;
    p.forward = alias_forward;
    p.ctx = &a;
    p.out_len = t * n;
    int best = -1;
    double loss = 0, losses[20];
    cr_assert_eq(qf_awq_search_scale(&p, s, &best, &loss, losses), QF_OK);
    cr_expect_eq(best, 0, "case %s: aliased search chose ratio %d", c->name, best);
    const double rel = max_rel(s, gs, k);
    cr_expect(rel <= SCALE_TOL, "case %s: searched scales off by %g", c->name, rel);

    /* (3) the search as designed beats ratio 0 */
    qf_awq_linear_ctx lin = {x, t, k, rows};
    p.forward = qf_awq_forward_linears;
    p.ctx = &lin;
    cr_assert_eq(qf_awq_search_scale(&p, s, &best, &loss, losses), QF_OK);
    cr_expect(best > 0 && loss < losses[0], "case %s: best ratio %d loss %g vs ratio-0 %g",
              c->name, best, loss, losses[0]);
    cr_log_info("case %s: scales max rel diff %.3g (formula) %.3g (aliased search); true best "
                "ratio %d/20, loss %.6g (ratio 0: %.6g)", c->name, rel0, rel, best, loss, losses[0]);
    free(a.cur), free(a.tmp), free(w), free(x), free(gs), free(xm), free(wm), free(s);
  }
}
