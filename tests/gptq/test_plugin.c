/*
 * The GPTQ plugin through the real host (libqforge's loader, model object,
 * static calibration and lifecycle driver): raw quantization of a golden
 * layer reproduces AutoGPTQ's packed tensors; dequantize and linear_forward
 * (from several threads) agree; the pre-quantized load path reads the
 * emitted checkpoint back identically; lm_head and embeddings stay float
 * while a linear's bias is stored float16; malformed checkpoints fail the
 * load with messages naming the tensor; get_config_json is the minimal
 * transformers/vLLM config. Also the damping retry and the MSE option of
 * the core.
 */
#include <pthread.h>

#include "gptq.h"
#include "gptq_test.h"
#include "qforge/half.h"
#include "qforge/qforge.h"
#include "qf_test_util.h"

static const qf_tensor_info *output(qf_model *m, const char *name) {
  for (size_t i = 0; i < qf_model_output_count(m); i++)
    if (!strcmp(qf_model_output_at(m, i)->name, name)) return qf_model_output_at(m, i);
  return NULL;
}

#define PREFIX "model.layers.0.mlp.up_proj."

typedef struct fwd_arg {
  qf_session *s;
  qf_model *m;
  const float *x;
  int64_t k, n, rows;
  float *y;
  qf_status st;
} fwd_arg;

static void *fwd_thread(void *p) {
  fwd_arg *a = p;
  int64_t xs[2] = {a->rows, a->k}, ys[2] = {a->rows, a->n};
  DLTensor xt = qf_f32_tensor((float *)a->x, 2, xs), yt = qf_f32_tensor(a->y, 2, ys);
  qf_error err;
  qf_error_clear(&err);
  a->st = a->s->plugin->desc->vtable->linear_forward(a->s->q, a->m, PREFIX "weight", &xt,
                                                     &yt, &err);
  return NULL;
}

Test(gptq_plugin, quantize_matches_golden_and_runs, .timeout = 120) {
  qf_plugin *p = qf_test_open_plugin("gptq-cpu.so");
  const int64_t n = 256, k = 1024;
  float *w = gq_read("L1.weight.f32", (size_t)(n * k * 4), NULL);
  float *h = gq_read("L1.hessian.f32", (size_t)(k * k * 4), NULL);
  int32_t *gqw = gq_read("L1.b3.g128.asym.qweight.i32", (size_t)(96 * n * 4), NULL);
  int32_t *gqz = gq_read("L1.b3.g128.asym.qzeros.i32", (size_t)(8 * 24 * 4), NULL);
  int32_t *ggi = gq_read("L1.b3.g128.asym.g_idx.i32", (size_t)(k * 4), NULL);
  float *gsc = gq_read("L1.b3.g128.asym.scales.f32", (size_t)(8 * n * 4), NULL);
  float bias[256];
  for (int i = 0; i < 256; i++) bias[i] = 0.01f * (float)i - 1.0f;
  qf_model *m = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_model_new_empty("{}", &m, &err), QF_OK);
  int64_t ws[2] = {n, k}, bs[1] = {n};
  DLTensor wt = qf_f32_tensor(w, 2, ws), bt = qf_f32_tensor(bias, 1, bs);
  cr_assert_eq(qf_model_add_input(m, PREFIX "weight", &wt, &err), QF_OK);
  cr_assert_eq(qf_model_add_input(m, PREFIX "bias", &bt, &err), QF_OK);
  qf_calib *calib = qf_calib_new_static();
  cr_assert_eq(qf_calib_static_set_hessian(calib, PREFIX "weight", h, k), QF_OK);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.config_json = "{\"bits\": 3, \"group_size\": 128, \"sym\": false, \"desc_act\": false,"
                    " \"static_groups\": false, \"damp_percent\": 0.01}";
  opt.calib = calib;
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &opt, &s, &err), QF_OK, "%s", err.message);

  const qf_tensor_info *qw = output(m, PREFIX "qweight"), *qz = output(m, PREFIX "qzeros");
  const qf_tensor_info *sc = output(m, PREFIX "scales"), *gi = output(m, PREFIX "g_idx");
  const qf_tensor_info *bi = output(m, PREFIX "bias");
  cr_assert(qw && qz && sc && gi && bi, "missing emitted tensors");
  cr_assert_null(output(m, PREFIX "weight"), "the float weight must not be emitted");
  cr_assert_eq(qw->tensor.shape[0], 96);
  cr_assert_eq(qw->tensor.shape[1], 256);
  cr_assert(memcmp(qw->tensor.data, gqw, 96 * 256 * 4) == 0, "qweight differs from AutoGPTQ");
  cr_assert(memcmp(qz->tensor.data, gqz, 8 * 24 * 4) == 0, "qzeros differ from AutoGPTQ");
  cr_assert(memcmp(gi->tensor.data, ggi, 1024 * 4) == 0, "g_idx differs from AutoGPTQ");
  cr_assert_eq(sc->tensor.dtype.code, kDLFloat);
  cr_assert_eq(sc->tensor.dtype.bits, 16);
  const uint16_t *sh = sc->tensor.data;
  for (int i = 0; i < 8 * 256; i++)
    cr_assert_eq(sh[i], qf_f32_to_f16(gsc[i]), "scale %d", i);
  cr_assert_eq(bi->tensor.dtype.bits, 16, "bias is stored float16");
  cr_assert_eq(qf_f16_to_f32(((const uint16_t *)bi->tensor.data)[3]),
               qf_f16_to_f32(qf_f32_to_f16(bias[3])));

  /* config */
  json_error_t je;
  json_t *cfg = json_loads(s->config_json, 0, &je);
  cr_assert(cfg, "%s", s->config_json);
  cr_assert_eq(json_integer_value(json_object_get(cfg, "bits")), 3);
  cr_assert(json_is_false(json_object_get(cfg, "sym")));
  cr_assert_str_eq(json_string_value(json_object_get(cfg, "checkpoint_format")), "gptq");
  json_decref(cfg);

  /* dequantize and linear_forward */
  const qf_quantizer_vtable *vt = p->desc->vtable;
  float *deq = malloc((size_t)(n * k) * 4);
  DLTensor dt = qf_f32_tensor(deq, 2, ws);
  cr_assert_eq(vt->dequantize(s->q, m, PREFIX "weight", &dt, &err), QF_OK, "%s", err.message);
  const int64_t rows = 5;
  float *x = malloc((size_t)(rows * k) * 4);
  uint64_t rs = 5;
  for (int64_t i = 0; i < rows * k; i++) x[i] = gq_normal(&rs);
  fwd_arg args[4];
  pthread_t th[4];
  float *ys[4];
  for (int t = 0; t < 4; t++) {
    ys[t] = malloc((size_t)(rows * n) * 4);
    args[t] = (fwd_arg){s, m, x, k, n, t % 2 ? rows : 1, ys[t], QF_ERR_INTERNAL};
    cr_assert_eq(pthread_create(&th[t], NULL, fwd_thread, &args[t]), 0);
  }
  for (int t = 0; t < 4; t++) {
    pthread_join(th[t], NULL);
    cr_assert_eq(args[t].st, QF_OK);
  }
  for (int t = 0; t < 4; t++)
    for (int64_t r = 0; r < args[t].rows; r++)
      for (int64_t o = 0; o < n; o++) {
        double ref = qf_f16_to_f32(qf_f32_to_f16(bias[o])), mag = fabs(ref);
        for (int64_t c = 0; c < k; c++) {
          ref += (double)x[r * k + c] * deq[o * k + c];
          mag += fabs((double)x[r * k + c] * deq[o * k + c]);
        }
        cr_assert(fabs(ref - ys[t][r * n + o]) <= 1e-5 * mag + 1e-6,
                  "thread %d y[%lld][%lld] = %g vs %g", t, (long long)r, (long long)o,
                  (double)ys[t][r * n + o], ref);
      }
  cr_assert(memcmp(ys[0], ys[2], (size_t)n * 4) == 0, "same call, same bytes");

  /* pre-quantized load of the emitted checkpoint */
  qf_model *m2 = NULL;
  cr_assert_eq(qf_model_new_empty("{}", &m2, &err), QF_OK);
  for (size_t i = 0; i < qf_model_output_count(m); i++) {
    const qf_tensor_info *ti = qf_model_output_at(m, i);
    cr_assert_eq(qf_model_add_input(m2, ti->name, &ti->tensor, &err), QF_OK);
  }
  qf_run_options o2 = opt;
  o2.pre_quantized = 1;
  o2.calib = NULL;
  o2.config_json = s->config_json;
  qf_session *s2 = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m2, &o2, &s2, &err), QF_OK, "%s", err.message);
  float *deq2 = malloc((size_t)(n * k) * 4);
  DLTensor dt2 = qf_f32_tensor(deq2, 2, ws);
  cr_assert_eq(vt->dequantize(s2->q, m2, PREFIX "weight", &dt2, &err), QF_OK);
  cr_assert(memcmp(deq, deq2, (size_t)(n * k) * 4) == 0);
  float *y2 = malloc((size_t)n * 4);
  args[0].s = s2;
  args[0].m = m2;
  args[0].y = y2;
  args[0].rows = 1;
  fwd_thread(&args[0]);
  cr_assert_eq(args[0].st, QF_OK);
  cr_assert(memcmp(ys[0], y2, (size_t)n * 4) == 0, "loaded model computes the same");

  qf_session_free(s2);
  qf_model_free(m2);
  qf_session_free(s);
  qf_model_free(m);
  qf_calib_free(calib);
  qf_plugin_release(p);
  for (int t = 0; t < 4; t++) free(ys[t]);
  free(y2);
  free(x);
  free(deq);
  free(deq2);
  free(w);
  free(h);
  free(gqw);
  free(gqz);
  free(ggi);
  free(gsc);
}

Test(gptq_plugin, lm_head_and_embeddings_stay_float) {
  qf_plugin *p = qf_test_open_plugin("gptq-cpu.so");
  const int64_t n = 64, k = 128;
  float *w = calloc((size_t)(n * k), 4), *h = calloc((size_t)(k * k), 4);
  uint64_t rs = 9;
  for (int64_t i = 0; i < n * k; i++) w[i] = 0.02f * gq_normal(&rs);
  for (int64_t i = 0; i < k; i++) h[i * k + i] = 1.0f + (float)i / 100.0f;
  qf_model *m = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_model_new_empty("{}", &m, &err), QF_OK);
  int64_t ws[2] = {n, k};
  DLTensor wt = qf_f32_tensor(w, 2, ws);
  static const char *names[] = {"model.embed_tokens.weight", PREFIX "weight", "lm_head.weight",
                                "model.layers.0.self_attn.o_proj.weight"};
  for (int i = 0; i < 4; i++) cr_assert_eq(qf_model_add_input(m, names[i], &wt, &err), QF_OK);
  qf_calib *calib = qf_calib_new_static();
  qf_calib_static_set_hessian(calib, "*", h, k);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.config_json = "{\"bits\": 4, \"group_size\": 64, \"modules_to_not_convert\": [\"o_proj\"]}";
  opt.calib = calib;
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &opt, &s, &err), QF_OK, "%s", err.message);
  cr_assert(output(m, "model.embed_tokens.weight"), "embeddings kept");
  cr_assert(output(m, "lm_head.weight"), "lm_head kept float");
  cr_assert(output(m, "model.layers.0.self_attn.o_proj.weight"), "skipped module kept float");
  cr_assert_null(output(m, "lm_head.qweight"));
  cr_assert(output(m, PREFIX "qweight"));
  cr_assert_null(output(m, PREFIX "weight"));
  qf_session_free(s);
  /* modules_in_block_to_quantize restricts the quantized linears */
  qf_model *m3 = NULL;
  cr_assert_eq(qf_model_new_empty("{}", &m3, &err), QF_OK);
  for (int i = 1; i < 4; i += 2) cr_assert_eq(qf_model_add_input(m3, names[i], &wt, &err), QF_OK);
  opt.config_json = "{\"bits\": 4, \"group_size\": 64, \"block_name_to_quantize\": "
                    "\"model.layers\", \"modules_in_block_to_quantize\": [[\"mlp.up_proj\"]]}";
  cr_assert_eq(qf_run_lifecycle(p, m3, &opt, &s, &err), QF_OK, "%s", err.message);
  cr_assert(output(m3, PREFIX "qweight"));
  cr_assert(output(m3, "model.layers.0.self_attn.o_proj.weight"), "not listed: kept float");
  cr_assert_null(output(m3, "model.layers.0.self_attn.o_proj.qweight"));
  qf_session_free(s);
  qf_model_free(m3);
  /* lm_head: true quantizes it too */
  qf_model *m2 = NULL;
  cr_assert_eq(qf_model_new_empty("{}", &m2, &err), QF_OK);
  cr_assert_eq(qf_model_add_input(m2, "lm_head.weight", &wt, &err), QF_OK);
  opt.config_json = "{\"bits\": 8, \"group_size\": -1, \"lm_head\": true}";
  cr_assert_eq(qf_run_lifecycle(p, m2, &opt, &s, &err), QF_OK, "%s", err.message);
  cr_assert(output(m2, "lm_head.qweight"));
  qf_session_free(s);
  qf_model_free(m2);
  qf_model_free(m);
  qf_calib_free(calib);
  qf_plugin_release(p);
  free(w);
  free(h);
}

/* Quantize a small module with the plugin and return its checkpoint model. */
static qf_model *small_checkpoint(qf_plugin *p, const char *cfg, float **keep_w,
                                  float **keep_h) {
  const int64_t n = 64, k = 256;
  float *w = calloc((size_t)(n * k), 4), *h = calloc((size_t)(k * k), 4);
  uint64_t rs = 21;
  for (int64_t i = 0; i < n * k; i++) w[i] = 0.02f * gq_normal(&rs);
  for (int64_t i = 0; i < k; i++) h[i * k + i] = 1.0f;
  qf_model *m = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_model_new_empty("{}", &m, &err), QF_OK);
  int64_t ws[2] = {n, k};
  DLTensor wt = qf_f32_tensor(w, 2, ws);
  cr_assert_eq(qf_model_add_input(m, PREFIX "weight", &wt, &err), QF_OK);
  qf_calib *calib = qf_calib_new_static();
  qf_calib_static_set_hessian(calib, "*", h, k);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.config_json = cfg;
  opt.calib = calib;
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &opt, &s, &err), QF_OK, "%s", err.message);
  qf_session_free(s);
  qf_calib_free(calib);
  *keep_w = w;
  *keep_h = h;
  return m;
}

/* Load `m`'s outputs as a pre-quantized checkpoint, without the tensor
 * `drop` and with entry 7 of the tensor `corrupt_gidx` out of range; expect
 * the lifecycle to fail with a message holding `needle`. */
static void expect_load_failure(qf_plugin *p, qf_model *m, const char *cfg, const char *drop,
                                const char *corrupt_gidx, const char *needle) {
  qf_model *m2 = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_model_new_empty("{}", &m2, &err), QF_OK);
  int32_t *gcopy = NULL;
  for (size_t i = 0; i < qf_model_output_count(m); i++) {
    const qf_tensor_info *ti = qf_model_output_at(m, i);
    if (drop && !strcmp(ti->name, drop)) continue;
    DLTensor t = ti->tensor;
    if (corrupt_gidx && !strcmp(ti->name, corrupt_gidx)) {
      gcopy = malloc((size_t)t.shape[0] * 4);
      memcpy(gcopy, t.data, (size_t)t.shape[0] * 4);
      gcopy[7] = 1000;
      t.data = gcopy;
    }
    cr_assert_eq(qf_model_add_input(m2, ti->name, &t, &err), QF_OK);
  }
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.pre_quantized = 1;
  opt.config_json = cfg;
  qf_session *s = NULL;
  qf_status st = qf_run_lifecycle(p, m2, &opt, &s, &err);
  cr_assert_neq(st, QF_OK, "a malformed checkpoint was loaded (expected '%s')", needle);
  cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
  qf_model_free(m2);
  free(gcopy);
}

Test(gptq_plugin, malformed_checkpoints_fail_to_load) {
  qf_plugin *p = qf_test_open_plugin("gptq-cpu.so");
  float *w, *h;
  const char *cfg = "{\"bits\": 4, \"group_size\": 64}";
  qf_model *m = small_checkpoint(p, cfg, &w, &h);
  expect_load_failure(p, m, cfg, PREFIX "qzeros", NULL, "qzeros' is missing");
  expect_load_failure(p, m, cfg, PREFIX "scales", NULL, "scales' is missing");
  expect_load_failure(p, m, cfg, PREFIX "qweight", NULL, "has no '" PREFIX "qweight'");
  expect_load_failure(p, m, cfg, NULL, PREFIX "g_idx", "outside [0, 4)");
  expect_load_failure(p, m, "{\"bits\": 8, \"group_size\": 64}", NULL, NULL, "bits mismatch");
  expect_load_failure(p, m, "{\"bits\": 4, \"group_size\": 128}", NULL, NULL, "implies 2");
  expect_load_failure(p, m, "{\"bits\": 4, \"group_size\": 64, \"checkpoint_format\": \"marlin\"}",
                      NULL, NULL, "checkpoint_format");
  /* a checkpoint without any GPTQ module */
  qf_model *m3 = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_model_new_empty("{}", &m3, &err), QF_OK);
  int64_t ws[2] = {64, 256};
  DLTensor wt = qf_f32_tensor(w, 2, ws);
  qf_model_add_input(m3, PREFIX "weight", &wt, &err);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.pre_quantized = 1;
  opt.config_json = cfg;
  qf_session *s = NULL;
  cr_assert_neq(qf_run_lifecycle(p, m3, &opt, &s, &err), QF_OK);
  cr_assert(strstr(err.message, "not a GPTQ checkpoint"), "%s", err.message);
  qf_model_free(m3);
  qf_model_free(m);
  qf_plugin_release(p);
  free(w);
  free(h);
}

Test(gptq_plugin, v2_checkpoint_and_bad_calls) {
  qf_plugin *p = qf_test_open_plugin("gptq-cpu.so");
  float *w, *h;
  qf_model *m = small_checkpoint(p, "{\"bits\": 4, \"group_size\": 64, \"sym\": false, "
                                    "\"checkpoint_format\": \"gptq_v2\"}", &w, &h);
  float *w1, *h1;
  qf_model *m1 = small_checkpoint(p, "{\"bits\": 4, \"group_size\": 64, \"sym\": false}", &w1, &h1);
  free(w1);
  free(h1);
  /* same integers; v2 qzeros are v1 + 1 per field */
  const qf_tensor_info *z2 = output(m, PREFIX "qzeros"), *z1 = output(m1, PREFIX "qzeros");
  cr_assert(z1 && z2);
  int32_t conv[32];
  memcpy(conv, z1->tensor.data, sizeof conv);
  qf_gptq_qzeros_convert(conv, 4, 64, 4, 1);
  cr_assert(memcmp(conv, z2->tensor.data, sizeof conv) == 0);
  /* wrong calls are errors, not crashes */
  qf_error err;
  qf_error_clear(&err);
  qf_quantizer *q = NULL;
  const qf_quantizer_vtable *vt = p->desc->vtable;
  cr_assert_eq(vt->create(qf_host_table(), "{\"bits\": 4, \"group_size\": 64}", 1, &q, &err),
               QF_OK);
  float out[4];
  int64_t os[2] = {2, 2};
  DLTensor ot = qf_f32_tensor(out, 2, os);
  cr_assert_neq(vt->dequantize(q, m, PREFIX "weight", &ot, &err), QF_OK);
  cr_assert(strstr(err.message, "[64, 256]"), "%s", err.message);
  cr_assert_eq(vt->dequantize(q, m, "nothing.weight", &ot, &err), QF_ERR_NOT_FOUND);
  int64_t xs[2] = {1, 100};
  float xb[100] = {0}, yb[64];
  DLTensor xt = qf_f32_tensor(xb, 2, xs);
  int64_t ys2[2] = {1, 64};
  DLTensor yt = qf_f32_tensor(yb, 2, ys2);
  cr_assert_neq(vt->linear_forward(q, m1, PREFIX "weight", &xt, &yt, &err), QF_OK);
  cr_assert(strstr(err.message, "[M, 256]"), "%s", err.message);
  int needs = 1;
  cr_assert_eq(vt->param_needs_quantization(q, m, PREFIX "qweight", &needs, &err), QF_OK);
  cr_assert_eq(needs, 0);
  vt->destroy(q);
  /* quantizing without calibration or with a wrong-size Hessian fails */
  cr_assert_eq(vt->create(qf_host_table(), "{\"bits\": 4}", 0, &q, &err), QF_OK);
  int64_t ws[2] = {64, 256};
  DLTensor wt = qf_f32_tensor(w, 2, ws);
  cr_assert_neq(vt->create_quantized_param(q, m, PREFIX "weight", &wt, NULL, &err), QF_OK);
  cr_assert(strstr(err.message, "Hessian"), "%s", err.message);
  qf_calib *c = qf_calib_new_static();
  qf_calib_static_set_hessian(c, "*", h, 128);
  cr_assert_neq(vt->create_quantized_param(q, m, PREFIX "weight", &wt, c, &err), QF_OK);
  cr_assert(strstr(err.message, "128x128"), "%s", err.message);
  int64_t bad[2] = {64, 250};
  DLTensor bt = qf_f32_tensor(w, 2, bad);
  cr_assert_neq(vt->create_quantized_param(q, m, PREFIX "weight", &bt, c, &err), QF_OK);
  cr_assert(strstr(err.message, "modules_to_not_convert"), "%s", err.message);
  qf_calib_free(c);
  vt->destroy(q);
  qf_model_free(m);
  qf_model_free(m1);
  qf_plugin_release(p);
  free(w);
  free(h);
}

/* ------------------------------------------------------------ core extras */

static int g_logged;
static void count_log(void *user, qf_log_level lvl, const char *msg) {
  (void)user;
  if (lvl == QF_LOG_WARN && strstr(msg, "retrying")) g_logged++;
}

Test(gptq_core, damping_retry_on_indefinite_hessian) {
  const int64_t k = 64, n = 32;
  float *h = calloc((size_t)(k * k), 4), *w = calloc((size_t)(n * k), 4);
  /* H = I − 1.05·u uᵀ: one eigenvalue −0.05, the rest 1 */
  const float u = 1.0f / sqrtf((float)k);
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++) h[i * k + j] = (i == j ? 1.0f : 0.0f) - 1.05f * u * u;
  uint64_t rs = 3;
  for (int64_t i = 0; i < n * k; i++) w[i] = gq_normal(&rs);
  qf_gptq_opts o;
  qf_gptq_opts_default(&o);
  o.group_size = 32;
  qf_gptq_out out;
  qf_error err = {0};
  g_logged = 0;
  cr_assert_eq(qf_gptq_quantize(w, h, n, k, &o, 0, count_log, NULL, &out, &err), QF_OK, "%s",
               err.message);
  cr_assert(out.retries >= 4 && out.retries <= 6, "retries %d", out.retries);
  cr_assert_eq(g_logged, out.retries);
  cr_assert(out.damp_used > 0.05f);
  qf_gptq_out_free(&out);
  o.damp_auto_increment = 0.0f; /* AutoGPTQ: no retry, a clear error */
  cr_assert_eq(qf_gptq_quantize(w, h, n, k, &o, 0, NULL, NULL, &out, &err), QF_ERR_NUMERIC);
  cr_assert(strstr(err.message, "not positive definite"), "%s", err.message);
  h[5] = NAN;
  o.damp_auto_increment = 0.01f;
  cr_assert_eq(qf_gptq_quantize(w, h, n, k, &o, 0, NULL, NULL, &out, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "NaN"), "%s", err.message);
  free(h);
  free(w);
}

Test(gptq_core, mse_search_never_worse_than_minmax) {
  const int64_t n = 16, k = 128;
  float *xt = malloc((size_t)(n * k) * 4);
  uint64_t rs = 8;
  for (int64_t i = 0; i < n * k; i++) xt[i] = gq_normal(&rs) * (i % 97 == 0 ? 6.0f : 1.0f);
  for (int sym = 0; sym < 2; sym++) {
    qf_gptq_qcfg a = {.bits = 3, .sym = sym}, b = a;
    b.mse_norm = 2.4f;
    b.mse_grid = 100;
    b.mse_maxshrink = 0.8f;
    float s1[16], z1[16], s2[16], z2[16];
    qf_gptq_find_params(&a, xt, n, k, n, s1, z1, NULL);
    qf_gptq_find_params(&b, xt, n, k, n, s2, z2, NULL);
    int shrunk = 0;
    for (int64_t r = 0; r < n; r++) {
      double e1 = 0, e2 = 0;
      for (int64_t j = 0; j < k; j++) {
        float v = xt[j * n + r];
        e1 += pow(fabs(qf_gptq_qdq(v, s1[r], z1[r], 7.0f) - v), 2.4);
        e2 += pow(fabs(qf_gptq_qdq(v, s2[r], z2[r], 7.0f) - v), 2.4);
      }
      cr_assert(e2 <= e1 * (1 + 1e-5), "row %lld: mse search is worse", (long long)r);
      if (s2[r] < s1[r]) shrunk++;
    }
    cr_assert(shrunk > 0, "outliers should make the search shrink some ranges");
  }
  free(xt);
}
