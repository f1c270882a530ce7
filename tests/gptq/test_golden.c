/*
 * GPTQ against AutoGPTQ's own outputs (shared/golden/gptq): every case is
 * quantized from the golden Hessian and compared with AutoGPTQ's integers
 * (>= 99.9 % identical, none off by more than one), g_idx (identical),
 * zero points, scales, packed qweight / qzeros (identical wherever the
 * integers are; exactly identical when all are) and the output MSE on the
 * calibration inputs (within 1 %). Also: the Hessian accumulated from the
 * calibration inputs in 256-token samples equals the golden one to float
 * rounding, and GPTQ beats round-to-nearest on the calibration loss.
 */
#include <cblas.h>

#include "gptq.h"
#include "gptq_test.h"

typedef struct gcase {
  char name[128];
  char layer[16];
  int64_t n, k, t, ngroups;
  int bits, group_size, sym, act, stat;
  double output_mse;
  int64_t qw_rows, qz_cols;
} gcase;

static int get_case(json_t *root, size_t i, gcase *c) {
  json_t *cases = json_object_get(root, "cases");
  if (i >= json_array_size(cases)) return 0;
  json_t *o = json_array_get(cases, i);
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s",
           json_string_value(json_object_get(o, "name")));
  snprintf(c->layer, sizeof c->layer, "%s",
           json_string_value(json_object_get(o, "layer")));
  c->n = json_integer_value(json_object_get(o, "rows_out"));
  c->k = json_integer_value(json_object_get(o, "cols_in"));
  c->t = json_integer_value(json_object_get(o, "calib_tokens"));
  c->bits = (int)json_integer_value(json_object_get(o, "bits"));
  c->group_size = (int)json_integer_value(json_object_get(o, "group_size"));
  c->sym = json_is_true(json_object_get(o, "sym"));
  c->act = json_is_true(json_object_get(o, "act_order"));
  c->stat = json_is_true(json_object_get(o, "static_groups"));
  c->output_mse = json_number_value(json_object_get(o, "output_mse"));
  c->ngroups = json_integer_value(json_object_get(o, "ngroups"));
  c->qw_rows = json_integer_value(
      json_array_get(json_object_get(o, "qweight_shape"), 0));
  c->qz_cols = json_integer_value(
      json_array_get(json_object_get(o, "qzeros_shape"), 1));
  cr_assert(c->n > 0 && c->k > 0 && c->t > 0 && c->bits > 0 && c->ngroups > 0,
            "manifest case %zu is incomplete", i);
  return 1;
}

static void opts_of(const gcase *c, qf_gptq_opts *o) {
  qf_gptq_opts_default(o);
  o->bits = c->bits;
  o->group_size = c->group_size;
  o->sym = c->sym;
  o->desc_act = c->act;
  o->static_groups = c->stat;
  o->blocksize = 128;
  o->damp_percent = 0.01f;
  o->n_threads = 2;
}

/* mean((X (W − Q)ᵀ)²) over the calibration tokens, in double. */
static double output_mse(const float *x, int64_t t, const float *w,
                         const float *q, int64_t n, int64_t k) {
  float *d = malloc((size_t)n * (size_t)k * sizeof(float));
  float *e = malloc((size_t)t * (size_t)n * sizeof(float));
  cr_assert(d && e);
  for (int64_t i = 0; i < n * k; i++) d[i] = w[i] - q[i];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t, (int)n, (int)k,
              1.0f, x, (int)k, d, (int)k, 0.0f, e, (int)n);
  double s = 0.0;
  for (int64_t i = 0; i < t * n; i++) s += (double)e[i] * e[i];
  free(d);
  free(e);
  return s / (double)(t * n);
}

static char file_name[256];
static const char *fname(const char *base, const char *suffix) {
  snprintf(file_name, sizeof file_name, "%s.%s", base, suffix);
  return file_name;
}

static void run_case(size_t idx) {
  json_t *root = gq_manifest();
  gcase c;
  cr_assert(get_case(root, idx, &c), "manifest has no case %zu", idx);
  json_decref(root);
  const int64_t n = c.n, k = c.k, g = c.ngroups;
  float *w = gq_read(fname(c.layer, "weight.f32"), (size_t)(n * k * 4), NULL);
  float *h = gq_read(fname(c.layer, "hessian.f32"), (size_t)(k * k * 4), NULL);
  float *x = gq_read(fname(c.layer, "calib.f32"), (size_t)(c.t * k * 4), NULL);
  int32_t *gqw = gq_read(fname(c.name, "qweight.i32"),
                         (size_t)(c.qw_rows * n * 4), NULL);
  int32_t *gqz = gq_read(fname(c.name, "qzeros.i32"),
                         (size_t)(g * c.qz_cols * 4), NULL);
  int32_t *ggi = gq_read(fname(c.name, "g_idx.i32"), (size_t)(k * 4), NULL);
  float *gsc = gq_read(fname(c.name, "scale.f32"), (size_t)(n * g * 4), NULL);
  float *gdq = gq_read(fname(c.name, "deq.f32"), (size_t)(n * k * 4), NULL);

  qf_gptq_opts o;
  opts_of(&c, &o);
  qf_gptq_out out;
  qf_error err = {0};
  qf_status st = qf_gptq_quantize(w, h, n, k, &o, 1, NULL, NULL, &out, &err);
  cr_assert_eq(st, QF_OK, "%s: %s", c.name, err.message);
  cr_assert_eq(out.ngroups, g);

  /* golden integers and zeros from the packed tensors (v1) */
  qf_gptq_ckpt gold = {.bits = c.bits, .v2 = 0, .rows = n, .cols = k,
                       .ngroups = g, .qweight = gqw, .qzeros = gqz,
                       .g_idx = ggi, .owned = 0};
  uint8_t *gq = malloc((size_t)(n * k));
  int32_t *gz = malloc((size_t)(g * n) * sizeof(int32_t));
  cr_assert(gq && gz);
  qf_gptq_unpack_ints(&gold, gq);
  qf_gptq_unpack_zeros(&gold, gz);

  int64_t same = 0, maxd = 0;
  for (int64_t i = 0; i < n * k; i++) {
    int64_t d = llabs((int64_t)out.qint[i] - gq[i]);
    if (!d) same++;
    if (d > maxd) maxd = d;
  }
  const double frac = (double)same / (double)(n * k);
  int64_t zsame = 0;
  double smax = 0.0;
  for (int64_t r = 0; r < n; r++)
    for (int64_t gi = 0; gi < g; gi++) {
      if ((int32_t)out.zero[r * g + gi] == gz[gi * n + r]) zsame++;
      double rel = fabs(out.scale[r * g + gi] - gsc[r * g + gi]) /
                   fabs(gsc[r * g + gi]);
      if (rel > smax) smax = rel;
    }
  int gidx_same = memcmp(out.g_idx, ggi, (size_t)k * 4) == 0;
  const double mse = output_mse(x, c.t, w, out.deq, n, k);
  const double mse_rel = fabs(mse - c.output_mse) / c.output_mse;
  const double gmse = output_mse(x, c.t, w, gdq, n, k);

  /* packing: identical wherever the integers are */
  qf_gptq_ckpt ours;
  int64_t under = 0;
  st = qf_gptq_pack(c.bits, n, k, g, out.qint, out.scale, out.zero, out.g_idx,
                    0, &ours, &under, &err);
  cr_assert_eq(st, QF_OK, "%s: pack: %s", c.name, err.message);
  const int64_t per = 32; /* a 32-value run spans whole words for any width */
  int64_t bad_words = 0, checked = 0;
  for (int64_t n0 = 0; n0 < n; n0++)
    for (int64_t k0 = 0; k0 < k; k0 += per) {
      int eq = 1;
      for (int64_t kk = k0; kk < k0 + per; kk++)
        if (out.qint[n0 * k + kk] != gq[n0 * k + kk]) eq = 0;
      if (!eq) continue;
      for (int64_t wdx = k0 * c.bits / 32; wdx < (k0 + per) * c.bits / 32; wdx++) {
        checked++;
        if (ours.qweight[wdx * n + n0] != gqw[wdx * n + n0]) bad_words++;
      }
    }
  cr_assert_eq(bad_words, 0, "%s: %lld packed qweight words differ where the "
               "integers agree", c.name, (long long)bad_words);
  if (same == n * k)
    cr_assert(memcmp(ours.qweight, gqw, (size_t)(c.qw_rows * n * 4)) == 0,
              "%s: qweight differs although every integer matches", c.name);
  if (zsame == n * g)
    cr_assert(memcmp(ours.qzeros, gqz, (size_t)(g * c.qz_cols * 4)) == 0,
              "%s: qzeros differ although every zero matches", c.name);
  cr_assert_eq(under, 0);

  fprintf(stderr,
          "gptq golden %-28s ints %lld/%lld equal (%.4f%%) max|d|=%lld  "
          "zeros %lld/%lld  g_idx %s  scale max rel %.2e  output_mse "
          "%.6g vs %.6g (%.3f%%; golden Q gives %.6g)  loss %.4g  qweight %s\n",
          c.name, (long long)same, (long long)(n * k), 100.0 * frac,
          (long long)maxd, (long long)zsame, (long long)(n * g),
          gidx_same ? "identical" : "DIFFERENT", smax, mse, c.output_mse,
          100.0 * mse_rel, gmse, out.loss,
          same == n * k ? "identical" : "identical where ints agree");

  cr_assert(frac >= 0.999, "%s: only %.4f%% of the integers match AutoGPTQ",
            c.name, 100.0 * frac);
  cr_assert(maxd <= 1, "%s: an integer differs by %lld", c.name,
            (long long)maxd);
  cr_assert(gidx_same, "%s: g_idx differs from AutoGPTQ", c.name);
  cr_assert(mse_rel <= 0.01, "%s: output_mse %.6g vs %.6g (%.3f%%)", c.name,
            mse, c.output_mse, 100.0 * mse_rel);
  cr_assert(fabs(gmse - c.output_mse) / c.output_mse < 1e-3,
            "%s: the MSE formula does not reproduce the manifest", c.name);
  cr_assert(zsame >= (n * g) * 999 / 1000, "%s: zero points differ", c.name);

  /* GPTQ beats round-to-nearest on the calibration loss */
  qf_gptq_out rtn;
  st = qf_gptq_rtn(w, n, k, &o, 1, &rtn, &err);
  cr_assert_eq(st, QF_OK, "%s", err.message);
  const double rtn_mse = output_mse(x, c.t, w, rtn.deq, n, k);
  fprintf(stderr, "gptq golden %-28s RTN output_mse %.6g, GPTQ %.6g (%.1fx "
          "better)\n", c.name, rtn_mse, mse, rtn_mse / mse);
  cr_assert(mse < rtn_mse, "%s: GPTQ (%.6g) does not beat RTN (%.6g)", c.name,
            mse, rtn_mse);
  qf_gptq_out_free(&rtn);

  qf_gptq_ckpt_free(&ours);
  qf_gptq_out_free(&out);
  free(gq);
  free(gz);
  free(w);
  free(h);
  free(x);
  free(gqw);
  free(gqz);
  free(ggi);
  free(gsc);
  free(gdq);
}

#define CASE(i) \
  Test(gptq_golden, case_##i, .timeout = 120) { run_case(i); }
CASE(0)
CASE(1)
CASE(2)
CASE(3)
CASE(4)
CASE(5)
CASE(6)

Test(gptq_golden, manifest_has_seven_cases_or_more_are_run) {
  json_t *root = gq_manifest();
  size_t n = json_array_size(json_object_get(root, "cases"));
  json_decref(root);
  cr_assert(n >= 7, "the gptq manifest lists %zu cases, expected 7", n);
  for (size_t i = 7; i < n; i++) run_case(i);
}

static void hessian_case(const char *layer, int64_t k, int64_t tokens) {
  char f[64];
  snprintf(f, sizeof f, "%s.calib.f32", layer);
  float *x = gq_read(f, (size_t)(tokens * k * 4), NULL);
  snprintf(f, sizeof f, "%s.hessian.f32", layer);
  float *h = gq_read(f, (size_t)(k * k * 4), NULL);
  qf_gptq_hessian hs;
  qf_error err = {0};
  cr_assert_eq(qf_gptq_hessian_init(&hs, k, &err), QF_OK);
  for (int64_t t0 = 0; t0 < tokens; t0 += 256)
    cr_assert_eq(qf_gptq_hessian_add_batch(&hs, x + t0 * k, 256, 1, &err),
                 QF_OK, "%s", err.message);
  cr_assert_eq(hs.nsamples, tokens / 256);
  double worst = 0.0;
  int64_t exact = 0;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++) {
      const float a = hs.h[i * k + j], b = h[i * k + j];
      if (a == b) {
        exact++;
        continue;
      }
      const double scale = sqrt((double)h[i * k + i] * h[j * k + j]);
      const double rel = fabs((double)a - b) / (scale > 0 ? scale : 1e-30);
      if (rel > worst) worst = rel;
    }
  fprintf(stderr, "gptq hessian %s: %lld/%lld entries bit-identical, worst "
          "|d|/sqrt(Hii Hjj) = %.3g\n", layer, (long long)exact,
          (long long)(k * k), worst);
  cr_assert(worst < 2e-6, "%s: Hessian differs beyond float rounding (%.3g)",
            layer, worst);
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < i; j++)
      cr_assert_eq(hs.h[i * k + j], hs.h[j * k + i], "H is not symmetric");
  qf_gptq_hessian_free(&hs);
  free(x);
  free(h);
}

Test(gptq_hessian, l1_from_calibration) { hessian_case("L1", 1024, 2048); }
Test(gptq_hessian, l2_from_calibration) { hessian_case("L2", 512, 1024); }

Test(gptq_hessian, rejects_bad_input) {
  qf_gptq_hessian hs;
  qf_error err = {0};
  cr_assert_neq(qf_gptq_hessian_init(&hs, 0, &err), QF_OK);
  cr_assert_eq(qf_gptq_hessian_init(&hs, 4, &err), QF_OK);
  cr_assert_neq(qf_gptq_hessian_add_batch(&hs, NULL, 1, 1, &err), QF_OK);
  float xv[4] = {1, 2, 3, 4};
  cr_assert_neq(qf_gptq_hessian_add_batch(&hs, xv, 1, 0, &err), QF_OK);
  cr_assert_eq(qf_gptq_hessian_add_batch(&hs, xv, 1, 1, &err), QF_OK);
  cr_assert_float_eq(hs.h[1 * 4 + 2], 2.0f * 2 * 3, 1e-5);
  qf_gptq_hessian_free(&hs);
}
