/*
 * test_forward.c — the per-tensor lifecycle and the CPU kernels of the GGUF
 * plugin: for every ggml type this build can quantize, quantize → dequantize
 * → linear_forward through the loaded gguf-cpu.so must agree with
 * dequantize-then-matmul (the activations are quantized to the type's dot
 * partner, as ggml does, so within a small tolerance); biases are added; the
 * AVX2 dot kernels give exactly the scalar reference's bits; the threaded
 * matmul does not depend on the thread count; the eight-row AVX2 kernels
 * match the reference row by row.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_quants.h"
#include "gp_util.h"
#include "kernels/cpu_kernels.h"
#include "qf_test_util.h"

static uint64_t fw_seed = 88172645463325252ull;
static float fw_gauss(void) {
  double u[2];
  for (int i = 0; i < 2; i++) {
    fw_seed ^= fw_seed << 13;
    fw_seed ^= fw_seed >> 7;
    fw_seed ^= fw_seed << 17;
    u[i] = ((double)(fw_seed >> 11) + 0.5) / 9007199254740992.0;
  }
  return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

#define N 48
#define K 512
#define WNAME "model.layers.0.mlp.up_proj.weight"

/* Quantize W (and keep a bias) with `type`, then compare the kernels. */
static void check_type(qf_plugin *p, const char *type, const float *w, const float *bias,
                       const float *imp) {
  qf_error err;
  qf_model *m = NULL;
  qf_calib *c = qf_calib_new_static();
  qf_session *s = NULL;
  int64_t ws[2] = {N, K}, bs[1] = {N};
  DLTensor wt = qf_f32_tensor((float *)w, 2, ws), bt = qf_f32_tensor((float *)bias, 1, bs);
  cr_assert(qf_model_new_empty("{}", &m, &err) == QF_OK);
  cr_assert(qf_model_add_input(m, WNAME, &wt, &err) == QF_OK);
  cr_assert(qf_model_add_input(m, "model.layers.0.mlp.up_proj.bias", &bt, &err) == QF_OK);
  qf_calib_static_set_importance(c, "*", imp, K);
  char cfg[128];
  snprintf(cfg, sizeof cfg, "{\"quant_method\": \"gguf\", \"type\": \"%s\"}", type);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.config_json = cfg;
  opt.calib = c;
  cr_assert(qf_run_lifecycle(p, m, &opt, &s, &err) == QF_OK, "%s: %s", type, err.message);
  const qf_quantizer_vtable *vt = p->desc->vtable;
  float *deq = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * 5 * K);
  float *y = malloc(sizeof(float) * 5 * N);
  DLTensor dt = qf_f32_tensor(deq, 2, ws);
  cr_assert(vt->dequantize(s->q, m, WNAME, &dt, &err) == QF_OK, "%s: %s", type, err.message);
  double werr = 0, wmax = 0;
  for (int i = 0; i < N * K; i++) {
    werr = fmax(werr, fabs((double)deq[i] - w[i]));
    wmax = fmax(wmax, fabs((double)w[i]));
  }
  cr_expect(werr < 0.75 * wmax, "%s: dequantized weight is far off (%g of %g)", type, werr, wmax);
  for (int i = 0; i < 5 * K; i++) x[i] = fw_gauss();
  const int plain = !strcmp(type, "f32");
  for (int M = 1; M <= 5; M += 4) {
    int64_t xs[2] = {M, K}, ys[2] = {M, N};
    DLTensor xt = qf_f32_tensor(x, 2, xs), yt = qf_f32_tensor(y, 2, ys);
    cr_assert(vt->linear_forward(s->q, m, WNAME, &xt, &yt, &err) == QF_OK, "%s: %s", type,
              err.message);
    double ymax = 0, diff = 0;
    for (int i = 0; i < M; i++)
      for (int n = 0; n < N; n++) {
        double acc = bias[n];
        for (int k = 0; k < K; k++) acc += (double)x[i * K + k] * deq[n * K + k];
        ymax = fmax(ymax, fabs(acc));
        diff = fmax(diff, fabs(acc - y[i * N + n]));
      }
    double tol = plain ? 1e-5 : 2e-2;
    cr_expect(diff <= tol * ymax, "%s batch %d: max |y - y_ref| = %g of %g", type, M, diff, ymax);
  }
  free(deq);
  free(x);
  free(y);
  qf_session_free(s);
  qf_calib_free(c);
  qf_model_free(m);
}

Test(forward, every_quantizable_type) {
  qf_error err;
  qf_plugin *p = NULL;
  cr_assert(qf_plugin_open(gp_plugin_path(), &p, &err) == QF_OK, "%s", err.message);
  float *w = malloc(sizeof(float) * N * K), bias[N], imp[K];
  for (int i = 0; i < N * K; i++) w[i] = 0.05f * fw_gauss();
  for (int r = 0; r < N; r++) w[r * K + 3] *= 6.0f;
  for (int n = 0; n < N; n++) bias[n] = 0.1f * fw_gauss();
  for (int k = 0; k < K; k++) {
    float g = fw_gauss();
    imp[k] = 0.1f + g * g; /* mean squares: >= 0 */
  }
  int checked = 0;
  for (int t = 0; t < QF_GGUF_TYPE_COUNT; t++) {
    const qf_gguf_type_info *ti = qf_gguf_type_get(t);
    if (!ti || !ti->can_quantize || ti->vec_dot_type < 0 || K % ti->blck_size) continue;
    check_type(p, ti->name, w, bias, imp);
    checked++;
  }
  cr_expect_geq(checked, 16, "only %d types", checked);
  free(w);
  qf_plugin_release(p);
}

/* Every type with an AVX2 kernel: exactly the reference's float. */
Test(forward, avx2_dot_matches_scalar_bits) {
  if (!qf_gguf_cpu_avx2_supported()) cr_skip_test("no AVX2 on this CPU");
  static const int types[] = {QF_GGUF_TYPE_Q4_0, QF_GGUF_TYPE_Q4_1, QF_GGUF_TYPE_Q5_0,
                              QF_GGUF_TYPE_Q5_1, QF_GGUF_TYPE_Q8_0, QF_GGUF_TYPE_IQ4_NL,
                              QF_GGUF_TYPE_Q2_K, QF_GGUF_TYPE_Q3_K, QF_GGUF_TYPE_Q4_K,
                              QF_GGUF_TYPE_Q5_K, QF_GGUF_TYPE_Q6_K, QF_GGUF_TYPE_IQ4_XS};
  static const int sizes[] = {32, 96, 288, 256, 512, 2816, 4096};
  float *w = malloc(sizeof(float) * 4096), *x = malloc(sizeof(float) * 4096);
  uint8_t *wq = malloc(8192), *xq = malloc(8192);
  int compared = 0;
  for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
    const int t = types[ti];
    if (!qf_gguf_can_quantize(t)) continue;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      const int n = sizes[si];
      if (n % qf_gguf_blck_size(t) || n % qf_gguf_blck_size(qf_gguf_type_get(t)->vec_dot_type))
        continue;
      for (int rep = 0; rep < 6; rep++) {
        float scale = rep == 5 ? 0.0f : rep == 4 ? 1e-4f : 1.0f;
        for (int i = 0; i < n; i++) {
          w[i] = scale * fw_gauss() * (i % 97 == 0 ? 20.0f : 1.0f);
          x[i] = fw_gauss() * (rep == 3 && i % 5 == 0 ? 30.0f : 1.0f);
        }
        cr_assert(qf_gguf_quantize_rows(t, w, wq, 1, n, NULL) > 0);
        cr_assert(qf_gguf_act_quantize(t, x, xq, n) == 0);
        float a = 0, b = 0;
        cr_assert(qf_gguf_vec_dot(t, n, wq, xq, &a) == 0);
        cr_assert(qf_gguf_dot_avx2(t, n, wq, xq, &b) == 0, "%s has no AVX2 kernel",
                  qf_gguf_type_name(t));
        cr_expect(!memcmp(&a, &b, sizeof a), "%s n=%d rep %d: scalar %.9g, avx2 %.9g",
                  qf_gguf_type_name(t), n, rep, a, b);
        compared++;
      }
    }
  }
  cr_expect_geq(compared, 100);
  free(w);
  free(x);
  free(wq);
  free(xq);
}

Test(forward, matmul_independent_of_threads_and_isa) {
  const int64_t n = 37, k = 1024, m = 3;
  float *w = malloc(sizeof(float) * n * k), *x = malloc(sizeof(float) * m * k);
  float *y1 = malloc(sizeof(float) * m * n), *y2 = malloc(sizeof(float) * m * n),
        *y3 = malloc(sizeof(float) * m * n);
  for (int64_t i = 0; i < n * k; i++) w[i] = fw_gauss();
  for (int64_t i = 0; i < m * k; i++) x[i] = fw_gauss();
  static const int types[] = {QF_GGUF_TYPE_Q4_0, QF_GGUF_TYPE_Q8_0, QF_GGUF_TYPE_Q3_K,
                              QF_GGUF_TYPE_Q4_K, QF_GGUF_TYPE_Q5_K, QF_GGUF_TYPE_Q6_K,
                              QF_GGUF_TYPE_F16,  QF_GGUF_TYPE_BF16};
  uint8_t *wq = malloc((size_t)(n * k) * 4);
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    const int t = types[i];
    cr_assert(qf_gguf_quantize_rows(t, w, wq, n, k, NULL) > 0);
    cr_assert(qf_gguf_cpu_linear(t, wq, n, k, x, m, y1, 1, QF_GGUF_CPU_SCALAR) == 0);
    cr_assert(qf_gguf_cpu_linear(t, wq, n, k, x, m, y2, 3, 0) == 0);
    cr_assert(qf_gguf_cpu_linear(t, wq, n, k, x, m, y3, 8, 0) == 0);
    cr_expect(!memcmp(y1, y2, sizeof(float) * m * n) && !memcmp(y1, y3, sizeof(float) * m * n),
              "%s: results depend on the threads or the ISA", qf_gguf_type_name(t));
  }
  free(wq);
  free(w);
  free(x);
  free(y1);
  free(y2);
  free(y3);
}

/* The eight-row AVX2 kernels: row r's float is exactly the reference's. */
Test(forward, avx2_dot_x8_matches_scalar_bits) {
  if (!qf_gguf_cpu_avx2_supported()) cr_skip_test("no AVX2 on this CPU");
  static const int types[] = {QF_GGUF_TYPE_Q4_0,   QF_GGUF_TYPE_Q4_1, QF_GGUF_TYPE_Q5_0,
                              QF_GGUF_TYPE_Q5_1,   QF_GGUF_TYPE_Q8_0, QF_GGUF_TYPE_IQ4_NL,
                              QF_GGUF_TYPE_IQ4_XS, QF_GGUF_TYPE_Q3_K, QF_GGUF_TYPE_Q4_K,
                              QF_GGUF_TYPE_Q5_K,   QF_GGUF_TYPE_Q6_K};
  static const int sizes[] = {32, 96, 256, 512, 2816};
  const int rows = 8;
  float *w = malloc(sizeof(float) * rows * 2816), *x = malloc(sizeof(float) * 2816);
  uint8_t *wq = malloc(rows * 4096), *xq = malloc(4096);
  int compared = 0;
  for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
    const int t = types[ti];
    if (!qf_gguf_can_quantize(t)) continue;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      const int n = sizes[si];
      if (n % qf_gguf_blck_size(t) || n % qf_gguf_blck_size(qf_gguf_type_get(t)->vec_dot_type))
        continue;
      for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < rows * n; i++)
          w[i] = (i / n == rep ? 0.0f : 1.0f) * fw_gauss() * (i % 97 == 0 ? 20.0f : 1.0f);
        for (int i = 0; i < n; i++) x[i] = fw_gauss() * (rep == 2 && i % 5 == 0 ? 30.0f : 1.0f);
        cr_assert(qf_gguf_quantize_rows(t, w, wq, rows, n, NULL) > 0);
        cr_assert(qf_gguf_act_quantize(t, x, xq, n) == 0);
        const size_t rs = qf_gguf_row_size(t, n);
        float o[8];
        cr_assert(qf_gguf_dot_avx2_x8(t, n, wq, rs, xq, o) == 0, "%s has no x8 kernel",
                  qf_gguf_type_name(t));
        for (int r = 0; r < rows; r++) {
          float a = 0;
          cr_assert(qf_gguf_vec_dot(t, n, wq + r * rs, xq, &a) == 0);
          cr_expect(!memcmp(&a, &o[r], sizeof a), "%s n=%d rep %d row %d: scalar %.9g, x8 %.9g",
                    qf_gguf_type_name(t), n, rep, r, a, o[r]);
          compared++;
        }
      }
    }
  }
  cr_expect_geq(compared, 200);
  free(w);
  free(x);
  free(wq);
  free(xq);
}
