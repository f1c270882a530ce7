/*
 * The AWQ plugin .so through its ABI, driven by the mock host: descriptor
 * and handshake, raw-mode quantization (RTN with zero point, identical to
 * the core functions), clip search from a calibration Hessian (skipped for
 * q/k), dequantize, linear_forward, which tensors are quantized, the
 * written config, the pre-quantized load path and the rejection of
 * malformed checkpoints in postprocess_model.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "awq.h"
#include "awq_test_util.h"
#include "mock_host.h"
#include "qforge/half.h"
#include "qforge/plugin_util.h"

#define CFG "{\"bits\":4,\"group_size\":128,\"zero_point\":true,\"version\":\"gemm\"}"

static const DLDataType F32 = {kDLFloat, 32, 1};

static float *random_weight(int64_t n, int64_t k, uint64_t seed) {
  awq_rng r = {seed};
  float *w = malloc((size_t)(n * k) * 4);
  for (int64_t i = 0; i < n * k; i++) w[i] = awq_rng_gauss(&r) * 0.02f;
  return w;
}

static qf_quantizer *create(const qf_plugin_desc *d, const char *cfg, int pre) {
  qf_quantizer *q = NULL;
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(d->vtable->create(&mock_host, cfg, pre, &q, &err), QF_OK, "%s", err.message);
  return q;
}

static qf_status quantize(const qf_plugin_desc *d, qf_quantizer *q, qf_model *m, const char *name,
                          qf_calib *calib, qf_error *err) {
  qf_tensor_info ti;
  cr_assert_eq(mock_host.model_find_tensor(m, name, &ti, err), QF_OK);
  return d->vtable->create_quantized_param(q, m, name, &ti.tensor, calib, err);
}

/* What the core functions produce for this weight (after optional clip). */
static void expected_gemm(const float *w0, int64_t n, int64_t k, int64_t g, const float *h,
                          int32_t *qw, int32_t *qz, uint16_t *sc) {
  float *w = malloc((size_t)(n * k) * 4), *s = malloc((size_t)(n * k / g) * 4),
        *z = malloc((size_t)(n * k / g) * 4);
  memcpy(w, w0, (size_t)(n * k) * 4);
  if (h) {
    float *best = malloc((size_t)(n * k / g) * 4);
    cr_assert_eq(qf_awq_clip_search_gram(w, n, k, g, h, NULL, best), QF_OK);
    qf_awq_apply_clip(w, n, k, g, best);
    free(best);
  }
  cr_assert_eq(qf_awq_pseudo_quantize(w, n, k, g, 4, 1, w, s, z), QF_OK);
  cr_assert_eq(qf_awq_gemm_pack(w, s, z, n, k, g, qw, qz, sc), QF_OK);
  free(w), free(s), free(z);
}

Test(awq_plugin, descriptor) {
  const qf_plugin_desc *d = mock_load_awq();
  cr_assert_str_eq(d->name, "awq");
  cr_assert_str_eq(d->quant_methods[0], "awq");
  cr_assert_null(d->quant_methods[1]);
  cr_assert(d->caps & QF_CAP_REQUIRES_CALIBRATION);
  cr_assert(!(d->caps & QF_CAP_CALIB_SEQUENTIAL_QUANTIZED), "AWQ captures from the float block");
  cr_assert(d->caps & QF_CAP_DEQUANTIZE && d->vtable->dequantize);
  cr_assert(d->caps & QF_CAP_LINEAR_FORWARD && d->vtable->linear_forward);
  cr_assert_eq(d->backend, QF_BACKEND_CPU);
  qf_quantizer *q = create(d, d->example_config_json, 0);
  d->vtable->destroy(q);
  /* a host of another major is refused */
  qf_host other = mock_host;
  other.abi_major = QF_ABI_MAJOR + 1;
  const qf_plugin_desc *d2 = NULL;
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(mock_awq_init(&other, &d2, &err), QF_ERR_ABI);
  cr_assert(strstr(err.message, "ABI"), "%s", err.message);
  cr_assert_null(d2);
  /* bad configs name the key */
  qf_quantizer *bad = NULL;
  cr_assert_eq(d->vtable->create(&mock_host, "{\"bits\":3}", 0, &bad, &err), QF_ERR_UNSUPPORTED);
  cr_assert(strstr(err.message, "bits") && !strcmp(err.plugin, "awq"), "%s", err.message);
  cr_assert_null(bad);
  cr_assert_eq(d->vtable->create(&mock_host, "not json", 0, &bad, &err), QF_ERR_INVALID_ARGUMENT);
}

Test(awq_plugin, raw_mode_rtn_dequantize_forward) {
  const qf_plugin_desc *d = mock_load_awq();
  const int64_t n = 64, k = 256, g = 128;
  float *w = random_weight(n, k, 1);
  qf_model m = {0};
  int64_t shape[2] = {n, k};
  mock_add(&m, "weight", F32, 2, shape, w);
  qf_quantizer *q = create(d, CFG, 0);
  qf_error err;
  memset(&err, 0, sizeof err);
  int needs = 0;
  cr_assert_eq(d->vtable->param_needs_quantization(q, &m, "weight", &needs, &err), QF_OK);
  cr_assert_eq(needs, 1);
  cr_assert_eq(quantize(d, q, &m, "weight", NULL, &err), QF_OK, "%s", err.message);
  const DLTensor *qw = mock_get(&m, "qweight"), *qz = mock_get(&m, "qzeros"),
                 *sc = mock_get(&m, "scales");
  cr_assert(qw && qz && sc);
  cr_assert(qw->shape[0] == k && qw->shape[1] == n / 8 && qw->dtype.code == kDLInt);
  cr_assert(qz->shape[0] == k / g && qz->shape[1] == n / 8);
  cr_assert(sc->shape[0] == k / g && sc->shape[1] == n && sc->dtype.bits == 16);
  int32_t eq[256 * 8], ez[2 * 8];
  uint16_t es[2 * 64];
  expected_gemm(w, n, k, g, NULL, eq, ez, es);
  cr_assert(memcmp(qw->data, eq, sizeof eq) == 0);
  cr_assert(memcmp(qz->data, ez, sizeof ez) == 0);
  cr_assert(memcmp(sc->data, es, sizeof es) == 0);
  cr_assert_eq(d->vtable->postprocess_model(q, &m, &err), QF_OK, "%s", err.message);

  char *json = NULL;
  cr_assert_eq(d->vtable->get_config_json(q, &json, &err), QF_OK);
  cr_assert_str_eq(json, "{\"quant_method\":\"awq\",\"zero_point\":true,\"group_size\":128,"
                         "\"bits\":4,\"version\":\"gemm\",\"modules_to_not_convert\":null}");
  mock_host.free(json);

  /* dequantize == (q - z) · f16 scale */
  float *deq = malloc((size_t)(n * k) * 4), *want = malloc((size_t)(n * k) * 4);
  float s32[2 * 64];
  for (int i = 0; i < 128; i++) s32[i] = qf_f16_to_f32(es[i]);
  cr_assert_eq(qf_awq_gemm_dequantize(eq, ez, s32, n, k, g, want), QF_OK);
  DLTensor out = qf_cpu_tensor(deq, F32, 2, shape);
  cr_assert_eq(d->vtable->dequantize(q, &m, "weight", &out, &err), QF_OK, "%s", err.message);
  cr_assert(memcmp(deq, want, (size_t)(n * k) * 4) == 0);
  double worst = 0;
  for (int64_t i = 0; i < n * k; i++) worst = fmax(worst, fabs(deq[i] - w[i]));
  cr_assert(worst < 0.02, "round trip error %g", worst);
  /* wrong output shape is refused */
  int64_t bad_shape[2] = {n, k - 1};
  DLTensor bad = qf_cpu_tensor(deq, F32, 2, bad_shape);
  cr_assert_eq(d->vtable->dequantize(q, &m, "weight", &bad, &err), QF_ERR_INVALID_ARGUMENT);

  /* linear_forward == dequantize-then-matmul, batch 1 and 4 */
  for (int64_t rows = 1; rows <= 4; rows += 3) {
    awq_rng r = {9};
    float *x = malloc((size_t)(rows * k) * 4), *y = malloc((size_t)(rows * n) * 4),
          *ref = malloc((size_t)(rows * n) * 4);
    for (int64_t i = 0; i < rows * k; i++) x[i] = awq_rng_gauss(&r);
    awq_matmul_ref(x, deq, rows, n, k, ref);
    int64_t xs[2] = {rows, k}, ys[2] = {rows, n};
    DLTensor xt = qf_cpu_tensor(x, F32, 2, xs), yt = qf_cpu_tensor(y, F32, 2, ys);
    cr_assert_eq(d->vtable->linear_forward(q, &m, "weight", &xt, &yt, &err), QF_OK, "%s",
                 err.message);
    for (int64_t i = 0; i < rows * n; i++) cr_assert(fabs(y[i] - ref[i]) < 1e-5, "%g", y[i]);
    /* x with the wrong width */
    xs[1] = k - 8;
    cr_assert_eq(d->vtable->linear_forward(q, &m, "weight", &xt, &yt, &err),
                 QF_ERR_INVALID_ARGUMENT);
    free(x), free(y), free(ref);
  }
  /* names that are not "<module>.weight", absent modules, mixed devices */
  float x1[256] = {0}, y1[64];
  int64_t xs1[2] = {1, k}, ys1[2] = {1, n};
  DLTensor xt1 = qf_cpu_tensor(x1, F32, 2, xs1), yt1 = qf_cpu_tensor(y1, F32, 2, ys1);
  cr_assert_eq(d->vtable->dequantize(q, &m, "qweight", &out, &err), QF_ERR_NOT_FOUND);
  cr_assert_eq(d->vtable->linear_forward(q, &m, "qweight", &xt1, &yt1, &err), QF_ERR_NOT_FOUND);
  cr_assert_eq(d->vtable->linear_forward(q, &m, "absent.weight", &xt1, &yt1, &err),
               QF_ERR_NOT_FOUND);
  yt1.device.device_type = kDLCUDA;
  cr_assert_eq(d->vtable->linear_forward(q, &m, "weight", &xt1, &yt1, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "same device"), "%s", err.message);
  d->vtable->destroy(q);
  mock_free(&m);
  free(w), free(deq), free(want);
}

Test(awq_plugin, calibrated_clip_and_qk_skip) {
  const qf_plugin_desc *d = mock_load_awq();
  const int64_t n = 64, k = 256, g = 128, t = 200;
  float *w = random_weight(n, k, 2);
  for (int64_t r = 0; r < n; r++) w[r * k + (r * 13) % k] = 0.25f; /* outliers */
  awq_rng rr = {3};
  float *x = malloc((size_t)(t * k) * 4), *h = malloc((size_t)(k * k) * 4);
  for (int64_t i = 0; i < t * k; i++) x[i] = awq_rng_gauss(&rr);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)k, (int)t, 2.0f / (float)t, x,
              (int)k, x, (int)k, 0.0f, h, (int)k);
  qf_model m = {0};
  int64_t shape[2] = {n, k};
  mock_add(&m, "model.layers.0.mlp.down_proj.weight", F32, 2, shape, w);
  mock_add(&m, "model.layers.0.self_attn.q_proj.weight", F32, 2, shape, w);
  qf_calib calib = {0};
  calib.h = h;
  calib.k = k;
  qf_quantizer *q = create(d, CFG, 0);
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(quantize(d, q, &m, "model.layers.0.mlp.down_proj.weight", &calib, &err), QF_OK,
               "%s", err.message);
  cr_assert_eq(quantize(d, q, &m, "model.layers.0.self_attn.q_proj.weight", &calib, &err), QF_OK);
  cr_assert_eq(calib.calls, 1, "q_proj must not ask for clipping data");
  int32_t eq[256 * 8], ez[16], rq[256 * 8], rz[16];
  uint16_t es[128], rs[128];
  expected_gemm(w, n, k, g, h, eq, ez, es);
  expected_gemm(w, n, k, g, NULL, rq, rz, rs);
  cr_assert(memcmp(mock_get(&m, "model.layers.0.mlp.down_proj.qweight")->data, eq, sizeof eq) == 0);
  cr_assert(memcmp(mock_get(&m, "model.layers.0.mlp.down_proj.scales")->data, es, sizeof es) == 0);
  cr_assert(memcmp(mock_get(&m, "model.layers.0.self_attn.q_proj.qweight")->data, rq, sizeof rq) == 0);
  cr_assert(memcmp(eq, rq, sizeof eq) != 0, "clipping should change something here");
  /* a Hessian of the wrong size is an error naming the tensor */
  calib.k = k / 2;
  cr_assert_eq(quantize(d, q, &m, "model.layers.0.mlp.down_proj.weight", &calib, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "down_proj"), "%s", err.message);
  d->vtable->destroy(q);
  mock_free(&m);
  free(w), free(x), free(h);
}

Test(awq_plugin, which_tensors_and_config) {
  const qf_plugin_desc *d = mock_load_awq();
  qf_model m = {0};
  float *z = calloc(64 * 256, 4);
  int64_t s2[2] = {64, 256}, s1[1] = {64}, odd[2] = {12, 256}, emb[2] = {32, 64};
  mock_add(&m, "model.embed_tokens.weight", F32, 2, emb, z);
  mock_add(&m, "model.layers.0.input_layernorm.weight", F32, 1, s1, z);
  mock_add(&m, "model.layers.0.self_attn.q_proj.weight", F32, 2, s2, z);
  mock_add(&m, "model.layers.0.self_attn.q_proj.bias", F32, 1, s1, z);
  mock_add(&m, "model.layers.0.odd.weight", F32, 2, odd, z);
  mock_add(&m, "model.layers.0.visual.proj.weight", F32, 2, s2, z);
  mock_add(&m, "lm_head.weight", F32, 2, emb, z);
  qf_quantizer *q = create(d, "{\"modules_to_not_convert\":[\"visual\"]}", 0);
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(d->vtable->preprocess_model(q, &m, &err), QF_OK);
  /* the input_layernorm is claimed: AWQ replaces it by its rescaled version */
  const int want[7] = {0, 1, 1, 0, 0, 0, 0};
  for (size_t i = 0; i < m.n_in; i++) {
    int needs = -1;
    cr_assert_eq(d->vtable->param_needs_quantization(q, &m, m.in[i].name, &needs, &err), QF_OK);
    cr_expect_eq(needs, want[i], "%s", m.in[i].name);
  }
  double bytes = 0;
  cr_assert_eq(d->vtable->param_element_size(q, &m, "model.layers.0.self_attn.q_proj.weight",
                                             &bytes, &err), QF_OK);
  cr_assert(bytes > 0.5 && bytes < 0.6);
  DLDataType dt = {0, 0, 0};
  cr_assert_eq(d->vtable->adjust_target_dtype(q, &dt, &err), QF_OK);
  cr_assert(dt.code == kDLInt && dt.bits == 4);
  char *json = NULL;
  cr_assert_eq(d->vtable->get_config_json(q, &json, &err), QF_OK);
  cr_assert(strstr(json, "\"modules_to_not_convert\":[\"visual\",\"model.layers.0.odd\"]"), "%s",
            json);
  mock_host.free(json);
  /* without block calibration a claimed norm is emitted unchanged */
  cr_assert_eq(quantize(d, q, &m, "model.layers.0.input_layernorm.weight", NULL, &err), QF_OK);
  const DLTensor *ln = mock_get(&m, "model.layers.0.input_layernorm.weight");
  cr_assert(ln && ln->ndim == 1 && ln->shape[0] == 64 && ln->data != m.in[1].data);
  /* a weight whose shape does not fit is an error when forced through */
  cr_assert_eq(quantize(d, q, &m, "model.layers.0.odd.weight", NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "odd.weight"), "%s", err.message);
  d->vtable->destroy(q);
  mock_free(&m);
  free(z);
}

/* Quantize into one model, load the emitted tensors into another. */
static void quantized_module(const qf_plugin_desc *d, const char *cfg, qf_model *dst,
                             const char *prefix, int64_t n, int64_t k) {
  float *w = random_weight(n, k, 5);
  qf_model src = {0};
  int64_t shape[2] = {n, k};
  mock_add(&src, "weight", F32, 2, shape, w);
  qf_quantizer *q = create(d, cfg, 0);
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(quantize(d, q, &src, "weight", NULL, &err), QF_OK, "%s", err.message);
  for (size_t i = 0; i < src.n_out; i++) {
    char name[300];
    snprintf(name, sizeof name, "%s%s", prefix, src.out[i].name);
    mock_add(dst, name, src.out[i].t.dtype, src.out[i].t.ndim, src.out[i].t.shape,
             src.out[i].data);
  }
  d->vtable->destroy(q);
  mock_free(&src);
  free(w);
}

Test(awq_plugin, prequantized_load_and_malformed) {
  const qf_plugin_desc *d = mock_load_awq();
  const char *p = "model.layers.0.mlp.up_proj.";
  qf_model m = {0};
  quantized_module(d, CFG, &m, p, 64, 256);
  qf_quantizer *q = create(d, CFG, 1);
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(d->vtable->postprocess_model(q, &m, &err), QF_OK, "%s", err.message);
  const char *missing[2] = {"model.layers.0.mlp.up_proj.weight", "lm_head.weight"};
  uint8_t keep[4] = {1, 1, 1, 1};
  cr_assert_eq(d->vtable->update_missing_keys(q, &m, missing, 2, keep, &err), QF_OK);
  cr_assert(keep[0] == 0 && keep[1] == 1);
  const char *unexpected[4] = {"model.layers.0.mlp.up_proj.qweight",
                               "model.layers.0.mlp.up_proj.qzeros",
                               "model.layers.0.mlp.up_proj.scales", "model.act.scales"};
  memset(keep, 1, sizeof keep);
  cr_assert_eq(d->vtable->update_unexpected_keys(q, &m, unexpected, 4, keep, &err), QF_OK);
  cr_assert(keep[0] == 0 && keep[1] == 0 && keep[2] == 0 && keep[3] == 1);
  float *deq = malloc(64 * 256 * 4);
  int64_t shape[2] = {64, 256};
  DLTensor out = qf_cpu_tensor(deq, F32, 2, shape);
  cr_assert_eq(d->vtable->dequantize(q, &m, "model.layers.0.mlp.up_proj.weight", &out, &err), QF_OK);
  cr_assert_eq(d->vtable->dequantize(q, &m, "model.layers.0.mlp.down_proj.weight", &out, &err),
               QF_ERR_FORMAT);
  d->vtable->destroy(q);

  /* malformed: qzeros of the wrong dtype */
  qf_model bad = {0};
  for (size_t i = 0; i < m.n_in; i++) {
    DLDataType dt = m.in[i].t.dtype;
    const int zeros16 = strstr(m.in[i].name, "qzeros") != NULL; /* same bytes as int16 */
    if (zeros16) dt.bits = 16;
    int64_t sh[2] = {m.in[i].shape[0], m.in[i].shape[1] * (zeros16 ? 2 : 1)};
    mock_add(&bad, m.in[i].name, dt, 2, sh, m.in[i].data);
  }
  q = create(d, CFG, 1);
  cr_assert_eq(d->vtable->postprocess_model(q, &bad, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "up_proj.qzeros") && !strcmp(err.op, "postprocess_model"), "%s",
            err.message);
  d->vtable->destroy(q);
  mock_free(&bad);

  /* malformed: an orphan qzeros (its qweight is missing) */
  int32_t zz[16] = {0};
  int64_t zs[2] = {2, 8};
  mock_add(&m, "model.layers.1.mlp.up_proj.qzeros", (DLDataType){kDLInt, 32, 1}, 2, zs, zz);
  q = create(d, CFG, 1);
  cr_assert_eq(d->vtable->postprocess_model(q, &m, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "layers.1.mlp.up_proj.qweight: missing"), "%s", err.message);
  d->vtable->destroy(q);

  /* malformed: group size of the file disagrees with the config */
  q = create(d, "{\"group_size\":64}", 1);
  cr_assert_eq(d->vtable->postprocess_model(q, &m, &err), QF_ERR_FORMAT);
  d->vtable->destroy(q);
  mock_free(&m);
  free(deq);
}

Test(awq_plugin, gemv_version) {
  const qf_plugin_desc *d = mock_load_awq();
  const char *gemv = "{\"bits\":4,\"group_size\":64,\"version\":\"gemv\"}";
  const char *gemm = "{\"bits\":4,\"group_size\":64,\"version\":\"gemm\"}";
  qf_model a = {0}, b = {0};
  quantized_module(d, gemv, &a, "", 32, 512);
  quantized_module(d, gemm, &b, "", 32, 512);
  cr_assert(mock_get(&a, "qweight")->shape[0] == 32 && mock_get(&a, "qzeros")->shape[1] == 2);
  qf_quantizer *qa = create(d, gemv, 1), *qb = create(d, gemm, 1);
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(d->vtable->postprocess_model(qa, &a, &err), QF_OK, "%s", err.message);
  float *da = malloc(32 * 512 * 4), *db = malloc(32 * 512 * 4);
  int64_t shape[2] = {32, 512};
  DLTensor ta = qf_cpu_tensor(da, F32, 2, shape), tb = qf_cpu_tensor(db, F32, 2, shape);
  cr_assert_eq(d->vtable->dequantize(qa, &a, "weight", &ta, &err), QF_OK, "%s", err.message);
  cr_assert_eq(d->vtable->dequantize(qb, &b, "weight", &tb, &err), QF_OK);
  cr_assert(memcmp(da, db, 32 * 512 * 4) == 0);
  float x[512], ya[32], yb[32];
  for (int i = 0; i < 512; i++) x[i] = (float)(i % 17) - 8.0f;
  int64_t xs[2] = {1, 512}, ys[2] = {1, 32};
  DLTensor xt = qf_cpu_tensor(x, F32, 2, xs), yat = qf_cpu_tensor(ya, F32, 2, ys),
           ybt = qf_cpu_tensor(yb, F32, 2, ys);
  cr_assert_eq(d->vtable->linear_forward(qa, &a, "weight", &xt, &yat, &err), QF_OK, "%s",
               err.message);
  cr_assert_eq(d->vtable->linear_forward(qb, &b, "weight", &xt, &ybt, &err), QF_OK);
  cr_assert(memcmp(ya, yb, sizeof ya) == 0);
  d->vtable->destroy(qa);
  d->vtable->destroy(qb);
  mock_free(&a);
  mock_free(&b);
  free(da), free(db);
}

/* ABI 1.1 block calibration: the first claimed tensor of the block (its
 * input_layernorm) runs AWQ over the whole block and emits everything;
 * the bytes equal qf_awq_block_run + pseudo_quantize + GEMM packing. */
#include "toy_block.h"

static qf_status core_inputs(void *ctx, int linear, const float **x, int64_t *t, int64_t *k) {
  qf_calib *c = ctx;
  const int site = linear <= QF_AWQ_V ? 0 : linear == QF_AWQ_O ? 1 : linear == QF_AWQ_DOWN ? 3 : 2;
  const int64_t ks[4] = {c->toy->h, c->toy->nkv, c->toy->h, c->toy->inter};
  *x = c->cap[site];
  *t = c->toy->t;
  *k = ks[site];
  return QF_OK;
}

static qf_status core_forward(void *ctx, const int *linears, const float *const *w, int n,
                              float *out) {
  qf_calib *c = ctx;
  float *ov[7] = {0};
  for (int i = 0; i < n; i++) ov[linears[i]] = (float *)w[i];
  toy_forward(c->toy, ov, NULL, NULL, out, NULL, NULL, NULL, NULL);
  return QF_OK;
}

Test(awq_plugin, block_calibration) {
  const qf_plugin_desc *d = mock_load_awq();
  const char *bp = "model.layers.0.";
  static const char *const lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                     "mlp.down_proj"};
  toy_block tb;
  toy_make(&tb, 64, 64, 64, 64, 128, 91);
  const int64_t rows[7] = {64, 64, 64, 64, 128, 128, 64}, cols[7] = {64, 64, 64, 64, 64, 64, 128};
  qf_model m = {0};
  char name[256];
  int64_t hs[1] = {64};
  snprintf(name, sizeof name, "%sinput_layernorm.weight", bp);
  mock_add(&m, name, F32, 1, hs, tb.ln1);
  for (int i = 0; i < 7; i++) {
    int64_t sh[2] = {rows[i], cols[i]};
    snprintf(name, sizeof name, "%s%s.weight", bp, lin[i]);
    mock_add(&m, name, F32, 2, sh, tb.w[i]);
    if (i == 3) {
      snprintf(name, sizeof name, "%spost_attention_layernorm.weight", bp);
      mock_add(&m, name, F32, 1, hs, tb.ln2);
    }
  }
  qf_calib calib = {0};
  calib.toy = &tb;
  calib.prefix = bp;
  mock_calib_capture(&calib);
  qf_quantizer *q = create(d, "{\"bits\":4,\"group_size\":32,\"version\":\"gemm\"}", 0);
  qf_error err;
  memset(&err, 0, sizeof err);
  /* host order: every claimed tensor in forward order */
  for (size_t i = 0; i < m.n_in; i++) {
    int needs = 0;
    cr_assert_eq(d->vtable->param_needs_quantization(q, &m, m.in[i].name, &needs, &err), QF_OK);
    cr_assert(needs, "%s should be claimed", m.in[i].name);
    cr_assert_eq(quantize(d, q, &m, m.in[i].name, &calib, &err), QF_OK, "%s: %s", m.in[i].name,
                 err.message);
    if (i == 0) cr_assert_eq(m.n_out, 23, "whole block emitted at its first tensor");
  }
  cr_assert_eq(calib.forwards, 41, "one block run: %d forwards", calib.forwards);
  cr_assert_eq(d->vtable->postprocess_model(q, &m, &err), QF_OK, "%s", err.message);

  /* the same pipeline through the core functions */
  toy_block tb2 = tb;
  qf_awq_block b;
  memset(&b, 0, sizeof b);
  for (int i = 0; i < 7; i++) {
    b.w[i] = malloc((size_t)(rows[i] * cols[i]) * 4);
    memcpy(b.w[i], tb.w[i], (size_t)(rows[i] * cols[i]) * 4);
    b.rows[i] = rows[i];
    b.cols[i] = cols[i];
  }
  b.hidden = 64;
  b.ln1 = malloc(64 * 4);
  b.ln2 = malloc(64 * 4);
  memcpy(b.ln1, tb.ln1, 64 * 4);
  memcpy(b.ln2, tb.ln2, 64 * 4);
  (void)tb2;
  qf_awq_block_io bio = {&calib, core_inputs, core_forward, tb.t * tb.h, NULL};
  qf_awq_block_opts bo = qf_awq_block_opts_default();
  bo.group_size = 32;
  cr_assert_eq(qf_awq_block_run(&b, &bio, &bo), QF_OK);
  for (int i = 0; i < 7; i++) {
    const int64_t ng = cols[i] / 32;
    float *sc = malloc((size_t)(rows[i] * ng) * 4), *zr = malloc((size_t)(rows[i] * ng) * 4);
    int32_t *qw = malloc((size_t)(rows[i] * cols[i] / 8) * 4), *qz = malloc((size_t)(ng * rows[i] / 8) * 4);
    uint16_t *s16 = malloc((size_t)(ng * rows[i]) * 2);
    cr_assert_eq(qf_awq_pseudo_quantize(b.w[i], rows[i], cols[i], 32, 4, 1, b.w[i], sc, zr), QF_OK);
    cr_assert_eq(qf_awq_gemm_pack(b.w[i], sc, zr, rows[i], cols[i], 32, qw, qz, s16), QF_OK);
    snprintf(name, sizeof name, "%s%s.qweight", bp, lin[i]);
    cr_assert(memcmp(mock_get(&m, name)->data, qw, (size_t)(rows[i] * cols[i] / 8) * 4) == 0, "%s", name);
    snprintf(name, sizeof name, "%s%s.scales", bp, lin[i]);
    cr_assert(memcmp(mock_get(&m, name)->data, s16, (size_t)(ng * rows[i]) * 2) == 0, "%s", name);
    free(sc), free(zr), free(qw), free(qz), free(s16);
  }
  snprintf(name, sizeof name, "%sinput_layernorm.weight", bp);
  const DLTensor *ln1 = mock_get(&m, name);
  snprintf(name, sizeof name, "%spost_attention_layernorm.weight", bp);
  const DLTensor *ln2 = mock_get(&m, name);
  cr_assert(ln1 && ln2 && ln1->dtype.bits == 32);
  cr_assert(memcmp(ln1->data, tb.ln1, 64 * 4) != 0, "norm must be rescaled");
  cr_assert(memcmp(ln1->data, b.ln1, 64 * 4) == 0 && memcmp(ln2->data, b.ln2, 64 * 4) == 0);
  float *deq[7];
  for (int i = 0; i < 7; i++) {
    char p[256];
    snprintf(p, sizeof p, "%s%s.weight", bp, lin[i]);
    deq[i] = malloc((size_t)(rows[i] * cols[i]) * 4);
    int64_t sh[2] = {rows[i], cols[i]};
    DLTensor out = qf_cpu_tensor(deq[i], F32, 2, sh);
    cr_assert_eq(d->vtable->dequantize(q, &m, p, &out, &err), QF_OK, "%s", err.message);
  }
  /* quality: AWQ block (f16 scales) vs RTN of the original weights */
  const int64_t n = tb.t * tb.h;
  float *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4), *rtn[7];
  toy_forward(&tb, NULL, NULL, NULL, ref, NULL, NULL, NULL, NULL);
  toy_forward(&tb, deq, ln1->data, ln2->data, got, NULL, NULL, NULL, NULL);
  const double e_awq = toy_mse(ref, got, n);
  for (int i = 0; i < 7; i++) {
    rtn[i] = malloc((size_t)(rows[i] * cols[i]) * 4);
    cr_assert_eq(qf_awq_pseudo_quantize(tb.w[i], rows[i], cols[i], 32, 4, 1, rtn[i], NULL, NULL),
                 QF_OK);
  }
  toy_forward(&tb, rtn, NULL, NULL, got, NULL, NULL, NULL, NULL);
  const double e_rtn = toy_mse(ref, got, n);
  cr_log_info("plugin block: AWQ mse %.4g vs RTN %.4g", e_awq, e_rtn);
  cr_assert(e_awq < e_rtn);
  for (int i = 0; i < 7; i++) free(deq[i]), free(rtn[i]), free(b.w[i]);
  free(b.ln1), free(b.ln2), free(ref), free(got);
  for (int i = 0; i < 4; i++) free(calib.cap[i]);
  d->vtable->destroy(q);
  mock_free(&m);
  toy_free(&tb);
}
