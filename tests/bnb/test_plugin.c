/*
 * The built bnb-cpu plugin through the real host (libqforge): the golden
 * rows through the quantize lifecycle (emitted tensors byte-exact, key
 * names and order), the pre-quantized load path + dequantize (bit-exact),
 * linear_forward against dequantize-then-matmul, module selection (default
 * lm_head skip, embeddings, llm_int8_skip_modules), the memory/dtype/device
 * slots, malformed pre-quantized checkpoints failing in postprocess_model
 * with the tensor named, concurrent linear_forward, and `qforge raw`
 * end to end.
 */
#include <math.h>
#include <pthread.h>

#include "bnb_test_util.h"
#include "qforge/qforge.h"
#include "qf_test_util.h"

static const qf_tensor_info *output(qf_model *m, const char *name) {
  for (size_t i = 0; i < qf_model_output_count(m); i++)
    if (strcmp(qf_model_output_at(m, i)->name, name) == 0) return qf_model_output_at(m, i);
  return NULL;
}

static size_t nbytes(const DLTensor *t) {
  size_t n = (t->dtype.bits + 7) / 8;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

static qf_session *run(qf_plugin *p, qf_model *m, const char *cfg, int pre, qf_error *err) {
  qf_run_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.config_json = cfg;
  o.pre_quantized = pre;
  qf_session *s = NULL;
  qf_error_clear(err);
  if (qf_run_lifecycle(p, m, &o, &s, err) != QF_OK) return NULL;
  return s;
}

/* A second model whose inputs are the first model's outputs. */
static qf_model *reload(qf_model *src, const char *config_json) {
  qf_model *m = NULL;
  qf_error err;
  cr_assert_eq(qf_model_new_empty(config_json, &m, &err), QF_OK);
  for (size_t i = 0; i < qf_model_output_count(src); i++) {
    const qf_tensor_info *ti = qf_model_output_at(src, i);
    cr_assert_eq(qf_model_add_input(m, ti->name, &ti->tensor, &err), QF_OK, "%s", err.message);
  }
  return m;
}

static void expect_golden(const qf_tensor_info *ti, const char *file) {
  cr_assert(ti, "missing output for %s", file);
  size_t n;
  void *want = tu_golden(file, &n);
  cr_expect_eq(nbytes(&ti->tensor), n, "%s: size", file);
  if (nbytes(&ti->tensor) == n)
    cr_expect(memcmp(ti->tensor.data, want, n) == 0, "%s differs", file);
  free(want);
}

Test(bnb_plugin, golden_rows_through_the_lifecycle) {
  qf_plugin *p = qf_test_open_plugin("bnb-cpu.so");
  tu_row rows[64];
  int nrows = tu_manifest(rows, 64);
  for (int r = 0; r < nrows; r++) {
    tu_row *row = &rows[r];
    int64_t n = row->rows * row->cols, shape[2] = {row->rows, row->cols};
    float *x = tu_input(row->cas, (size_t)n);
    char cfg[256], name[256];
    int four = strcmp(row->scheme, "4bit") == 0;
    if (four)
      snprintf(cfg, sizeof cfg,
               "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"%s\", "
               "\"bnb_4bit_use_double_quant\": %s, \"blocksize\": %lld}",
               row->qtype, row->dq ? "true" : "false", (long long)row->bs);
    else
      snprintf(cfg, sizeof cfg, "{\"load_in_8bit\": true}");
    qf_model *m = NULL;
    qf_error err;
    cr_assert_eq(qf_model_new_empty("{}", &m, &err), QF_OK);
    qf_test_add_f32(m, "weight", x, 2, shape);
    qf_session *s = run(p, m, cfg, 0, &err);
    cr_assert(s, "%s: %s", row->prefix, err.message);
    char base[64];
    snprintf(base, sizeof base, "%s", row->prefix);
    if (row->dq) base[strlen(base) - 3] = '\0';
    if (four) {
      const char *order4[] = {"weight", "weight.absmax", "weight.quant_map",
                              "weight.nested_absmax", "weight.nested_quant_map"};
      size_t no = row->dq ? 5 : 3;
      cr_assert_eq(qf_model_output_count(m), no + 1, "%s: outputs", row->prefix);
      for (size_t i = 0; i < no; i++)
        cr_expect_str_eq(qf_model_output_at(m, i)->name, order4[i]);
      snprintf(name, sizeof name, "weight.quant_state.bitsandbytes__%s", row->qtype);
      cr_expect_str_eq(qf_model_output_at(m, no)->name, name);
      snprintf(name, sizeof name, "%s.weight.u8", base);
      expect_golden(output(m, "weight"), name);
      snprintf(name, sizeof name, row->dq ? "%s.absmax.u8" : "%s.absmax.f32", row->prefix);
      expect_golden(output(m, "weight.absmax"), name);
      if (row->dq) {
        snprintf(name, sizeof name, "%s.nested_absmax.f32", row->prefix);
        expect_golden(output(m, "weight.nested_absmax"), name);
      }
      /* quant_state JSON */
      const qf_tensor_info *qs = qf_model_output_at(m, no);
      char want[512], off[64] = "";
      if (row->dq) {
        snprintf(name, sizeof name, "%s.offset.f32", row->prefix);
        float *o = (float *)tu_golden(name, NULL);
        qf_bnb_py_float_repr((double)o[0], off, sizeof off);
        free(o);
      }
      int wl = snprintf(want, sizeof want,
                        "{\"quant_type\": \"%s\", \"blocksize\": %lld, \"dtype\": \"float32\", "
                        "\"shape\": [%lld, %lld]%s%s%s}",
                        row->qtype, (long long)row->bs, (long long)row->rows,
                        (long long)row->cols,
                        row->dq ? ", \"nested_blocksize\": 256, \"nested_dtype\": "
                                  "\"float32\", \"nested_offset\": "
                                : "",
                        off, "");
      cr_expect_eq(nbytes(&qs->tensor), (size_t)wl);
      cr_expect(memcmp(qs->tensor.data, want, (size_t)wl) == 0, "%s: JSON %.*s", row->prefix,
                (int)nbytes(&qs->tensor), (const char *)qs->tensor.data);
    } else {
      cr_assert_eq(qf_model_output_count(m), 3);
      snprintf(name, sizeof name, "%s.weight.i8", row->prefix);
      expect_golden(output(m, "weight"), name);
      snprintf(name, sizeof name, "%s.SCB.f32", row->prefix);
      expect_golden(output(m, "SCB"), name);
      const qf_tensor_info *wf = output(m, "weight_format");
      cr_assert(wf);
      cr_expect_eq(wf->tensor.ndim, 0);
      cr_expect_eq(*(uint8_t *)wf->tensor.data, 0);
    }
    /* load path: the emitted tensors as a pre-quantized checkpoint */
    qf_model *m2 = reload(m, "{}");
    qf_session *s2 = run(p, m2, s->config_json, 1, &err);
    cr_assert(s2, "%s: load: %s", row->prefix, err.message);
    float *deq = malloc((size_t)n * 4);
    DLTensor out = qf_f32_tensor(deq, 2, shape);
    qf_error_clear(&err);
    cr_assert_eq(p->desc->vtable->dequantize(s2->q, m2, "weight", &out, &err), QF_OK, "%s",
                 err.message);
    if (four) {
      snprintf(name, sizeof name, "%s.deq.f32", row->prefix);
      void *want = tu_golden(name, NULL);
      cr_expect(memcmp(deq, want, (size_t)n * 4) == 0, "%s: dequantize differs", row->prefix);
      free(want);
    }
    /* linear_forward == dequantize-then-matmul (M = 1 and 3) */
    for (int64_t M = 1; M <= 3; M += 2) {
      float *xa = malloc((size_t)(M * row->cols) * 4), *y = malloc((size_t)(M * row->rows) * 4);
      uint64_t sd = 17;
      for (int64_t i = 0; i < M * row->cols; i++) xa[i] = tu_normal(&sd);
      int64_t xs[2] = {M, row->cols}, ys[2] = {M, row->rows};
      DLTensor tx = qf_f32_tensor(xa, 2, xs), ty = qf_f32_tensor(y, 2, ys);
      cr_assert_eq(p->desc->vtable->linear_forward(s2->q, m2, "weight", &tx, &ty, &err), QF_OK,
                   "%s", err.message);
      for (int64_t i = 0; i < M; i++)
        for (int64_t o = 0; o < row->rows; o++) {
          double ref = 0, mag = 0;
          for (int64_t k = 0; k < row->cols; k++) {
            ref += (double)xa[i * row->cols + k] * deq[o * row->cols + k];
            mag += fabs((double)xa[i * row->cols + k] * deq[o * row->cols + k]);
          }
          /* int8 adds the activation quantization error */
          double tol = four ? 1e-5 * mag + 1e-30 : 0.02 * mag + 1e-6;
          cr_expect(fabs(y[i * row->rows + o] - ref) <= tol, "%s M=%lld (%lld,%lld): %g vs %g",
                    row->prefix, (long long)M, (long long)i, (long long)o,
                    y[i * row->rows + o], ref);
        }
      free(xa);
      free(y);
    }
    free(deq);
    qf_session_free(s2);
    qf_model_free(m2);
    qf_session_free(s);
    qf_model_free(m);
    free(x);
  }
  qf_plugin_release(p);
}

/* A small llama-like checkpoint. */
static float g_emb[16 * 32], g_q[32 * 32], g_up[64 * 32], g_upb[64], g_norm[32], g_head[16 * 32];
static int64_t s_emb[2] = {16, 32}, s_q[2] = {32, 32}, s_up[2] = {64, 32}, s_upb[1] = {64},
               s_norm[1] = {32}, s_head[2] = {16, 32};

static qf_model *tiny_model(void) {
  uint64_t s = 3;
  float *arrs[] = {g_emb, g_q, g_up, g_upb, g_norm, g_head};
  size_t lens[] = {16 * 32, 32 * 32, 64 * 32, 64, 32, 16 * 32};
  for (int a = 0; a < 6; a++)
    for (size_t i = 0; i < lens[a]; i++) arrs[a][i] = tu_normal(&s) * 0.1f;
  qf_model *m = NULL;
  qf_error err;
  cr_assert_eq(qf_model_new_empty("{\"model_type\": \"llama\", \"tie_word_embeddings\": false}",
                                  &m, &err), QF_OK);
  qf_test_add_f32(m, "model.embed_tokens.weight", g_emb, 2, s_emb);
  qf_test_add_f32(m, "model.layers.0.self_attn.q_proj.weight", g_q, 2, s_q);
  qf_test_add_f32(m, "model.layers.0.mlp.up_proj.weight", g_up, 2, s_up);
  qf_test_add_f32(m, "model.layers.0.mlp.up_proj.bias", g_upb, 1, s_upb);
  qf_test_add_f32(m, "model.norm.weight", g_norm, 1, s_norm);
  qf_test_add_f32(m, "lm_head.weight", g_head, 2, s_head);
  return m;
}

static int quantized(qf_model *m, const char *prefix) {
  char k[256];
  snprintf(k, sizeof k, "%sweight.quant_state.bitsandbytes__nf4", prefix);
  return output(m, k) != NULL;
}

Test(bnb_plugin, module_selection_and_forward_with_bias) {
  qf_plugin *p = qf_test_open_plugin("bnb-cpu.so");
  qf_model *m = tiny_model();
  qf_error err;
  qf_session *s = run(p, m, "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\"}", 0, &err);
  cr_assert(s, "%s", err.message);
  cr_expect(quantized(m, "model.layers.0.self_attn.q_proj."));
  cr_expect(quantized(m, "model.layers.0.mlp.up_proj."));
  cr_expect(!quantized(m, "lm_head."), "lm_head is skipped by default");
  cr_expect(!quantized(m, "model.embed_tokens."), "embeddings are not Linear");
  const qf_tensor_info *b = output(m, "model.layers.0.mlp.up_proj.bias");
  cr_assert(b, "bias passes through");
  cr_expect_eq(b->tensor.dtype.bits, 32);
  cr_expect_eq(output(m, "lm_head.weight")->tensor.dtype.code, kDLFloat);
  /* forward with bias through the quantize-path session */
  float x[2 * 32], y[2 * 64], deq[64 * 32];
  for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) - 3.0f;
  int64_t xs[2] = {2, 32}, ys[2] = {2, 64}, ds[2] = {64, 32};
  DLTensor tx = qf_f32_tensor(x, 2, xs), ty = qf_f32_tensor(y, 2, ys), td = qf_f32_tensor(deq, 2, ds);
  const qf_quantizer_vtable *vt = p->desc->vtable;
  cr_assert_eq(vt->linear_forward(s->q, m, "model.layers.0.mlp.up_proj.weight", &tx, &ty, &err),
               QF_OK, "%s", err.message);
  cr_assert_eq(vt->dequantize(s->q, m, "model.layers.0.mlp.up_proj.weight", &td, &err), QF_OK);
  for (int i = 0; i < 2; i++)
    for (int o = 0; o < 64; o++) {
      double r = g_upb[o];
      for (int k = 0; k < 32; k++) r += (double)x[i * 32 + k] * deq[o * 32 + k];
      cr_expect(fabs(y[i * 64 + o] - r) < 1e-4, "(%d,%d) %g vs %g", i, o, y[i * 64 + o], r);
    }
  /* wrong shapes and unknown modules are errors, not crashes */
  int64_t bad[2] = {2, 31};
  DLTensor tb = qf_f32_tensor(x, 2, bad);
  cr_expect_eq(vt->linear_forward(s->q, m, "model.layers.0.mlp.up_proj.weight", &tb, &ty, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_expect_neq(vt->linear_forward(s->q, m, "nope.weight", &tx, &ty, &err), QF_OK);
  cr_expect_neq(vt->dequantize(s->q, m, "lm_head.bias", &td, &err), QF_OK);
  cr_expect_str_eq(s->config_json,
                   "{\"_load_in_4bit\": true, \"_load_in_8bit\": false, "
                   "\"bnb_4bit_compute_dtype\": \"float32\", \"bnb_4bit_quant_storage\": "
                   "\"uint8\", \"bnb_4bit_quant_type\": \"nf4\", "
                   "\"bnb_4bit_use_double_quant\": false, "
                   "\"llm_int8_enable_fp32_cpu_offload\": false, "
                   "\"llm_int8_has_fp16_weight\": false, \"llm_int8_skip_modules\": null, "
                   "\"llm_int8_threshold\": 6.0, \"load_in_4bit\": true, \"load_in_8bit\": "
                   "false, \"quant_method\": \"bitsandbytes\"}");
  qf_session_free(s);
  qf_model_free(m);

  /* llm_int8_skip_modules replaces the default list: lm_head quantized */
  m = tiny_model();
  s = run(p, m, "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\", "
                "\"llm_int8_skip_modules\": [\"mlp\"]}", 0, &err);
  cr_assert(s, "%s", err.message);
  cr_expect(!quantized(m, "model.layers.0.mlp.up_proj."));
  cr_expect(quantized(m, "model.layers.0.self_attn.q_proj."));
  cr_expect(quantized(m, "lm_head."));
  qf_session_free(s);
  qf_model_free(m);

  /* 8-bit: weight + SCB + weight_format, storage dtype of quant_storage */
  m = tiny_model();
  s = run(p, m, "{\"load_in_8bit\": true}", 0, &err);
  cr_assert(s, "%s", err.message);
  cr_expect(output(m, "model.layers.0.mlp.up_proj.SCB"));
  cr_expect(output(m, "model.layers.0.mlp.up_proj.weight_format"));
  cr_expect_eq(output(m, "model.layers.0.mlp.up_proj.weight")->tensor.dtype.code, kDLInt);
  cr_assert_eq(vt->linear_forward(s->q, m, "model.layers.0.mlp.up_proj.weight", &tx, &ty, &err),
               QF_OK, "%s", err.message);
  qf_session_free(s);
  qf_model_free(m);
  m = tiny_model();
  s = run(p, m, "{\"load_in_4bit\": true, \"bnb_4bit_quant_storage\": \"bfloat16\", "
                "\"bnb_4bit_use_double_quant\": true}", 0, &err);
  cr_assert(s, "%s", err.message);
  const qf_tensor_info *w = output(m, "model.layers.0.mlp.up_proj.weight");
  cr_expect_eq(w->tensor.dtype.code, kDLBfloat);
  cr_expect_eq(w->tensor.shape[0], 64 * 32 / 4);
  cr_expect_eq(w->tensor.shape[1], 1);
  qf_model *m2 = reload(m, "{}");
  qf_session *s2 = run(p, m2, s->config_json, 1, &err);
  cr_assert(s2, "%s", err.message);
  cr_expect_eq(vt->dequantize(s2->q, m2, "model.layers.0.mlp.up_proj.weight", &td, &err), QF_OK,
               "%s", err.message);
  qf_session_free(s2);
  qf_model_free(m2);
  qf_session_free(s);
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(bnb_plugin, gpt2_conv1d_weights_are_transposed) {
  qf_plugin *p = qf_test_open_plugin("bnb-cpu.so");
  static float w[32 * 64];
  for (int i = 0; i < 32 * 64; i++) w[i] = (float)((i * 13) % 29) - 14.0f;
  int64_t shape[2] = {32, 64}; /* Conv1D: [in, out] */
  qf_model *m = NULL;
  qf_error err;
  cr_assert_eq(qf_model_new_empty("{\"model_type\": \"gpt2\"}", &m, &err), QF_OK);
  qf_test_add_f32(m, "h.0.attn.c_attn.weight", w, 2, shape);
  qf_session *s = run(p, m, "{\"load_in_8bit\": true}", 0, &err);
  cr_assert(s, "%s", err.message);
  const qf_tensor_info *cb = output(m, "h.0.attn.c_attn.weight");
  cr_assert(cb);
  cr_expect_eq(cb->tensor.shape[0], 64, "Linear orientation [out, in]");
  cr_expect_eq(cb->tensor.shape[1], 32);
  const qf_tensor_info *scb = output(m, "h.0.attn.c_attn.SCB");
  cr_expect_eq(scb->tensor.shape[0], 64);
  /* row o of the int8 weight is column o of the Conv1D weight */
  float amax = 0;
  for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(w[i * 64 + 5]));
  cr_expect_eq(((float *)scb->tensor.data)[5], amax);
  qf_session_free(s);
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(bnb_plugin, planning_and_environment_slots) {
  qf_plugin *p = qf_test_open_plugin("bnb-cpu.so");
  const qf_quantizer_vtable *vt = p->desc->vtable;
  const qf_host *h = qf_host_table();
  cr_expect_str_eq(p->desc->quant_methods[0], "bitsandbytes");
  cr_expect(p->desc->caps & QF_CAP_SERIALIZABLE);
  cr_expect(p->desc->caps & QF_CAP_TRAINABLE);
  cr_expect(!(p->desc->caps & QF_CAP_REQUIRES_CALIBRATION));
  qf_quantizer *q = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(vt->create(h, "{\"load_in_4bit\": true}", 0, &q, &err), QF_OK);
  uint64_t bud[2] = {1000, 1u << 30};
  cr_expect_eq(vt->adjust_max_memory(q, bud, 2, &err), QF_OK);
  cr_expect_eq(bud[0], 900);
  cr_expect_eq(bud[1], (uint64_t)((double)(1u << 30) * 0.9));
  DLDataType dt = {kDLFloat, 16, 1};
  vt->adjust_target_dtype(q, &dt, &err);
  cr_expect_eq(dt.bits, 4);
  DLDataType none = {0, 0, 0};
  vt->update_dtype(q, &none, &err);
  cr_expect(none.code == kDLFloat && none.bits == 16, "None -> float16");
  char *map = NULL;
  cr_expect_eq(vt->update_device_map(q, NULL, &map, &err), QF_OK);
  cr_assert(map);
  cr_expect_str_eq(map, "{\"\": \"cpu\"}");
  h->free(map);
  qf_env env;
  memset(&env, 0, sizeof env);
  env.struct_size = sizeof env;
  env.device_count = -1;
  cr_expect_eq(vt->validate_environment(q, &env, &err), QF_OK, "empty env");
  env.device_map_json = "{\"\": \"cpu\"}";
  cr_expect_eq(vt->validate_environment(q, &env, &err), QF_OK, "all-cpu map");
  env.device_map_json = "{\"model.layers.0\": 0, \"lm_head\": \"disk\"}";
  cr_expect_eq(vt->validate_environment(q, &env, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "llm_int8_enable_fp32_cpu_offload"), "%s", err.message);
  vt->destroy(q);
  cr_assert_eq(vt->create(h, "{\"load_in_8bit\": true, \"llm_int8_enable_fp32_cpu_offload\": true}",
                          0, &q, &err), QF_OK);
  cr_expect_eq(vt->validate_environment(q, &env, &err), QF_OK, "offload allowed");
  vt->adjust_target_dtype(q, &dt, &err);
  cr_expect(dt.code == kDLInt && dt.bits == 8);
  const char *keys[] = {"a.SCB", "a.weight_format", "a.weight", "b.weight.absmax", "c.foo"};
  uint8_t keep[5] = {1, 1, 1, 1, 1};
  vt->update_unexpected_keys(q, NULL, keys, 5, keep, &err);
  cr_expect(keep[0] == 0 && keep[1] == 0 && keep[2] == 1 && keep[3] == 0 && keep[4] == 1);
  /* element sizes in a model */
  qf_model *m = tiny_model();
  double bytes = 0;
  cr_expect_eq(vt->param_element_size(q, m, "model.layers.0.mlp.up_proj.weight", &bytes, &err), QF_OK);
  cr_expect_eq(bytes, 1.0);
  cr_expect_eq(vt->param_element_size(q, m, "model.norm.weight", &bytes, &err), QF_OK);
  cr_expect_eq(bytes, 4.0);
  vt->destroy(q);
  cr_expect_eq(vt->create(h, "{\"load_in_4bit\": true, \"load_in_8bit\": true}", 0, &q, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "load_in_8bit"), "%s", err.message);
  cr_expect_str_eq(err.plugin, "bnb");
  qf_model_free(m);
  qf_plugin_release(p);
}

/* Remove `name` from a reloaded model by rebuilding it without it. */
static qf_model *reload_without(qf_model *src, const char *drop, const char *retype) {
  qf_model *m = NULL;
  qf_error err;
  cr_assert_eq(qf_model_new_empty("{}", &m, &err), QF_OK);
  for (size_t i = 0; i < qf_model_output_count(src); i++) {
    const qf_tensor_info *ti = qf_model_output_at(src, i);
    if (drop && strcmp(ti->name, drop) == 0) continue;
    DLTensor t = ti->tensor;
    static int64_t half_shape[1];
    if (retype && strcmp(ti->name, retype) == 0) {
      half_shape[0] = t.shape[0] / 2;
      t.dtype.bits = 16;
      t.shape = half_shape;
    }
    cr_assert_eq(qf_model_add_input(m, ti->name, &t, &err), QF_OK);
  }
  return m;
}

Test(bnb_plugin, malformed_prequantized_checkpoints_fail_in_postprocess) {
  qf_plugin *p = qf_test_open_plugin("bnb-cpu.so");
  qf_error err;
  qf_model *m = tiny_model();
  qf_session *s = run(p, m, "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\", "
                            "\"bnb_4bit_use_double_quant\": true}", 0, &err);
  cr_assert(s, "%s", err.message);
  static const struct {
    const char *drop, *retype, *needle;
  } cases[] = {
      {"model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", NULL,
       "model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4"},
      {"model.layers.0.mlp.up_proj.weight.absmax", NULL, "model.layers.0.mlp.up_proj.weight.absmax"},
      {"model.layers.0.mlp.up_proj.weight.nested_quant_map", NULL,
       "model.layers.0.mlp.up_proj.weight.nested_quant_map"},
      {"model.layers.0.mlp.up_proj.weight.nested_absmax", NULL,
       "model.layers.0.mlp.up_proj.weight.nested_absmax"},
      {"model.layers.0.mlp.up_proj.weight.quant_map", NULL,
       "model.layers.0.mlp.up_proj.weight.quant_map"},
      {NULL, "model.layers.0.mlp.up_proj.weight.nested_absmax",
       "model.layers.0.mlp.up_proj.weight.nested_absmax"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    qf_model *m2 = reload_without(m, cases[i].drop, cases[i].retype);
    qf_session *s2 = run(p, m2, s->config_json, 1, &err);
    cr_expect(!s2, "case %zu loaded", i);
    cr_expect(strstr(err.message, cases[i].needle), "case %zu: '%s'", i, err.message);
    cr_expect_str_eq(err.plugin, "bnb");
    qf_session_free(s2);
    qf_model_free(m2);
  }
  qf_session_free(s);
  qf_model_free(m);
  /* 8-bit: an int8 weight without SCB */
  m = tiny_model();
  s = run(p, m, "{\"load_in_8bit\": true}", 0, &err);
  cr_assert(s, "%s", err.message);
  qf_model *m2 = reload_without(m, "model.layers.0.mlp.up_proj.SCB", NULL);
  qf_session *s2 = run(p, m2, s->config_json, 1, &err);
  cr_expect(!s2);
  cr_expect(strstr(err.message, "model.layers.0.mlp.up_proj.SCB"), "%s", err.message);
  qf_session_free(s2);
  qf_model_free(m2);
  m2 = reload_without(m, "model.layers.0.mlp.up_proj.weight_format", NULL);
  s2 = run(p, m2, s->config_json, 1, &err);
  cr_expect(s2, "weight_format is optional: %s", err.message);
  qf_session_free(s2);
  qf_model_free(m2);
  qf_session_free(s);
  qf_model_free(m);
  qf_plugin_release(p);
}

typedef struct fwd_job {
  qf_plugin *p;
  qf_session *s;
  qf_model *m;
  const char *name;
  int64_t n, k;
  float *y;
  int rc;
} fwd_job;

static void *fwd_thread(void *arg) {
  fwd_job *j = (fwd_job *)arg;
  float x[32];
  for (int i = 0; i < 32; i++) x[i] = (float)i / 16.0f - 1.0f;
  int64_t xs[2] = {1, j->k}, ys[2] = {1, j->n};
  for (int it = 0; it < 50; it++) {
    DLTensor tx = qf_f32_tensor(x, 2, xs), ty = qf_f32_tensor(j->y, 2, ys);
    qf_error err;
    qf_error_clear(&err);
    j->rc |= j->p->desc->vtable->linear_forward(j->s->q, j->m, j->name, &tx, &ty, &err);
  }
  return NULL;
}

Test(bnb_plugin, concurrent_linear_forward) {
  qf_plugin *p = qf_test_open_plugin("bnb-cpu.so");
  qf_model *m = tiny_model();
  qf_error err;
  qf_session *s = run(p, m, "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"fp4\"}", 0, &err);
  cr_assert(s, "%s", err.message);
  const char *names[2] = {"model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.weight"};
  int64_t ns[2] = {64, 32};
  fwd_job jobs[6];
  pthread_t t[6];
  for (int i = 0; i < 6; i++) {
    jobs[i] = (fwd_job){p, s, m, names[i % 2], ns[i % 2], 32, calloc(64, 4), 0};
    pthread_create(&t[i], NULL, fwd_thread, &jobs[i]);
  }
  for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 6; i++) {
    cr_expect_eq(jobs[i].rc, 0);
    cr_expect(memcmp(jobs[i].y, jobs[i % 2].y, (size_t)ns[i % 2] * 4) == 0, "thread %d", i);
  }
  for (int i = 0; i < 6; i++) free(jobs[i].y);
  qf_session_free(s);
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(bnb_plugin, qforge_raw_end_to_end) {
  const char *cli = getenv("QF_CLI");
  cr_assert(cli, "QF_CLI is not set");
  char dir[1024];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/qf_bnb_rawXXXXXX", tmp && *tmp ? tmp : "/tmp");
  cr_assert(mkdtemp(dir), "mkdtemp %s", dir);
  char cmd[8192], in[2048];
  snprintf(in, sizeof in, "%s/gguf/heavy.input.f32", tu_golden_dir());
  snprintf(cmd, sizeof cmd,
           "'%s' raw quantize --method bnb --config '{\"load_in_4bit\": true, "
           "\"bnb_4bit_quant_type\": \"nf4\", \"bnb_4bit_use_double_quant\": true, "
           "\"blocksize\": 64}' --rows 8 --cols 4096 --in '%s' --out '%s/q' && "
           "'%s' raw dequantize --method bnb --in '%s/q' --out '%s/deq.f32'",
           cli, in, dir, cli, dir, dir);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  char path[4096];
  size_t n1, n2;
  snprintf(path, sizeof path, "%s/q/weight.absmax.u8", dir);
  void *a = tu_read(path, &n1);
  void *b = tu_golden("heavy.nf4.bs64.dq.absmax.u8", &n2);
  cr_expect(n1 == n2 && memcmp(a, b, n1) == 0, "absmax codes");
  free(a);
  free(b);
  snprintf(path, sizeof path, "%s/deq.f32", dir);
  a = tu_read(path, &n1);
  b = tu_golden("heavy.nf4.bs64.dq.deq.f32", &n2);
  cr_expect(n1 == n2 && memcmp(a, b, n1) == 0, "raw dequantize is bit-exact");
  free(a);
  free(b);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}
