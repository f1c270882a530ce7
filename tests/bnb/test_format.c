/*
 * Formats: Python float repr, the quant_state JSON (byte-identical to the
 * spec's example), BitsAndBytesConfig.to_dict, config validation, round
 * trips through the checkpoint loader for every blocksize and
 * quant_storage dtype (plain and double-quantized), and malformed
 * checkpoints rejected with messages that name the tensor.
 */
#include <math.h>

#include "bnb_test_util.h"

Test(bnb_format, python_float_repr) {
  static const struct {
    double v;
    const char *s;
  } cases[] = {
      {0.010529011487960815, "0.010529011487960815"},
      {(double)1e-5f, "9.999999747378752e-06"},
      {(double)0.1f, "0.10000000149011612"},
      {6.0, "6.0"},
      {(double)3e-7f, "3.000000106112566e-07"},
      {(double)123456.78f, "123456.78125"},
      {1e16, "1e+16"},
      {(double)1e16f, "1.0000000272564224e+16"},
      {(double)2.5e17f, "2.4999999607668736e+17"},
      {(double)0.0001f, "9.999999747378752e-05"},
      {0.0001, "0.0001"},
      {1e-5, "1e-05"},
      {1.5e-7, "1.5e-07"},
      {-1.75, "-1.75"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {100.0, "100.0"},
      {1e22, "1e+22"},
      {123456789012345.0, "123456789012345.0"},
  };
  char buf[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    qf_bnb_py_float_repr(cases[i].v, buf, sizeof buf);
    cr_expect_str_eq(buf, cases[i].s, "repr(%.17g)", cases[i].v);
  }
}

Test(bnb_format, quant_state_json_matches_spec_example) {
  qf_bnb_qmeta m = {0};
  m.qtype = QF_BNB_NF4;
  m.blocksize = 64;
  snprintf(m.dtype, sizeof m.dtype, "bfloat16");
  m.ndim = 2;
  m.shape[0] = m.shape[1] = 4096;
  m.nested = 1;
  m.nested_blocksize = 256;
  m.nested_offset = 0.010529011487960815f;
  char buf[512];
  int n = qf_bnb_qmeta_to_json(&m, buf, sizeof buf);
  const char *want =
      "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", "
      "\"shape\": [4096, 4096], \"nested_blocksize\": 256, \"nested_dtype\": "
      "\"float32\", \"nested_offset\": 0.010529011487960815}";
  cr_expect_str_eq(buf, want);
  cr_expect_eq(n, (int)strlen(want));
  m.nested = 0;
  m.qtype = QF_BNB_FP4;
  snprintf(m.dtype, sizeof m.dtype, "float16");
  m.shape[1] = 11008;
  qf_bnb_qmeta_to_json(&m, buf, sizeof buf);
  cr_expect_str_eq(buf, "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": "
                        "\"float16\", \"shape\": [4096, 11008]}");
  /* parse back */
  qf_bnb_qmeta p;
  char msg[256];
  cr_assert_eq(qf_bnb_qmeta_parse(want, strlen(want), "t", &p, msg, sizeof msg), 0, "%s", msg);
  cr_expect_eq(p.qtype, QF_BNB_NF4);
  cr_expect_eq(p.nested, 1);
  cr_expect_eq(p.nested_offset, 0.010529011487960815f);
  cr_expect_eq(p.shape[1], 4096);
  cr_expect_eq(qf_bnb_qmeta_to_json(&m, buf, 10), -1, "too small a buffer");
}

Test(bnb_format, config_to_dict_matches_transformers) {
  qf_bnb_config c;
  char msg[256];
  cr_assert_eq(qf_bnb_config_parse(
                   "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\", "
                   "\"bnb_4bit_use_double_quant\": true, "
                   "\"bnb_4bit_compute_dtype\": \"torch.bfloat16\", "
                   "\"unknown_key\": 3}",
                   &c, msg, sizeof msg),
               0, "%s", msg);
  char *s = qf_bnb_config_to_json(&c);
  cr_expect_str_eq(
      s,
      "{\"_load_in_4bit\": true, \"_load_in_8bit\": false, "
      "\"bnb_4bit_compute_dtype\": \"bfloat16\", \"bnb_4bit_quant_storage\": "
      "\"uint8\", \"bnb_4bit_quant_type\": \"nf4\", "
      "\"bnb_4bit_use_double_quant\": true, "
      "\"llm_int8_enable_fp32_cpu_offload\": false, "
      "\"llm_int8_has_fp16_weight\": false, \"llm_int8_skip_modules\": null, "
      "\"llm_int8_threshold\": 6.0, \"load_in_4bit\": true, \"load_in_8bit\": "
      "false, \"quant_method\": \"bitsandbytes\"}");
  free(s);
  qf_bnb_config_free(&c);
  /* its own output parses back to the same dict; 8-bit with skips */
  cr_assert_eq(qf_bnb_config_parse("{\"load_in_8bit\": true, \"llm_int8_threshold\": 4, "
                                   "\"llm_int8_skip_modules\": [\"lm_head\", \"mlp\\\"x\"]}",
                                   &c, msg, sizeof msg), 0, "%s", msg);
  s = qf_bnb_config_to_json(&c);
  cr_expect(strstr(s, "\"llm_int8_skip_modules\": [\"lm_head\", \"mlp\\\"x\"]"), "%s", s);
  cr_expect(strstr(s, "\"llm_int8_threshold\": 4.0"), "%s", s);
  cr_expect(strstr(s, "\"bnb_4bit_quant_type\": \"fp4\""), "default fp4: %s", s);
  qf_bnb_config c2;
  cr_assert_eq(qf_bnb_config_parse(s, &c2, msg, sizeof msg), 0, "%s", msg);
  char *s2 = qf_bnb_config_to_json(&c2);
  cr_expect_str_eq(s, s2);
  free(s);
  free(s2);
  qf_bnb_config_free(&c);
  qf_bnb_config_free(&c2);
}

Test(bnb_format, config_errors_name_the_key) {
  static const struct {
    const char *json, *key;
  } bad[] = {
      {"{\"load_in_4bit\": true, \"load_in_8bit\": true}", "load_in_8bit"},
      {"{}", "load_in_4bit"},
      {"{\"load_in_4bit\": 1}", "load_in_4bit"},
      {"{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf5\"}", "bnb_4bit_quant_type"},
      {"{\"load_in_8bit\": true, \"llm_int8_threshold\": \"6\"}", "llm_int8_threshold"},
      {"{\"load_in_8bit\": true, \"llm_int8_skip_modules\": \"lm_head\"}", "llm_int8_skip_modules"},
      {"{\"load_in_8bit\": true, \"llm_int8_skip_modules\": [1]}", "llm_int8_skip_modules"},
      {"{\"load_in_4bit\": true, \"bnb_4bit_quant_storage\": \"int4\"}", "bnb_4bit_quant_storage"},
      {"{\"load_in_4bit\": true, \"bnb_4bit_compute_dtype\": \"uint8\"}", "bnb_4bit_compute_dtype"},
      {"{\"load_in_4bit\": true, \"blocksize\": 48}", "blocksize"},
      {"{\"load_in_4bit\": true, \"blocksize\": 8192}", "blocksize"},
      {"{\"load_in_4bit\": true, \"bnb_4bit_use_double_quant\": \"yes\"}", "bnb_4bit_use_double_quant"},
      {"{\"load_in_4bit\": true, \"quant_method\": \"gptq\"}", "quant_method"},
      {"[1]", "object"},
      {"{\"load_in_4bit\": tru", "JSON"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    qf_bnb_config c;
    char msg[256] = "";
    cr_expect_eq(qf_bnb_config_parse(bad[i].json, &c, msg, sizeof msg), -1, "%s", bad[i].json);
    cr_expect(strstr(msg, bad[i].key), "'%s' -> '%s' should name %s", bad[i].json, msg, bad[i].key);
    qf_bnb_config_free(&c);
  }
}

/* Build the tensors of a 4-bit module into a tu_ckpt (prefix "m."). */
static void make_ckpt4(tu_ckpt *ck, qf_bnb_q4 *q, const char *storage_name,
                       qf_bnb_qtype t, int64_t bs, int dq, const float *w,
                       int64_t rows, int64_t cols) {
  DLDataType sdt;
  cr_assert_eq(qf_bnb_dtype_from_name(storage_name, &sdt), 0);
  int64_t s = (int64_t)qf_bnb_dtype_size(sdt), shape[2] = {rows, cols};
  char msg[256];
  cr_assert_eq(qf_bnb_q4_make(t, bs, dq, w, rows * cols, "float16", 2, shape, s,
                              q, msg, sizeof msg), 0, "%s", msg);
  memset(ck, 0, sizeof *ck);
  tu_add(ck, "m.weight", q->packed, sdt.code, sdt.bits, 2, q->bytes / s, 1);
  if (dq) {
    tu_add(ck, "m.weight.absmax", q->codes, kDLUInt, 8, 1, q->nb, 0);
    tu_add(ck, "m.weight.nested_absmax", q->nested_absmax, kDLFloat, 32, 1, q->nnb, 0);
    tu_add(ck, "m.weight.nested_quant_map", (void *)qf_bnb_dynamic_map(), kDLFloat, 32, 1, 256, 0);
  } else {
    tu_add(ck, "m.weight.absmax", q->absmax, kDLFloat, 32, 1, q->nb, 0);
  }
  tu_add(ck, "m.weight.quant_map", (void *)qf_bnb_quant_map(t), kDLFloat, 32, 1, 16, 0);
  tu_add(ck, t == QF_BNB_FP4 ? "m.weight.quant_state.bitsandbytes__fp4"
                             : "m.weight.quant_state.bitsandbytes__nf4",
         q->json, kDLUInt, 8, 1, q->json_len, 0);
}

Test(bnb_format, roundtrip_every_blocksize_and_storage) {
  static const char *storages[] = {"uint8", "int8", "float16", "bfloat16", "float32", "float64"};
  int64_t rows = 24, cols = 512, n = rows * cols;
  float *w = malloc((size_t)n * 4), *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
  uint64_t s = 4242;
  for (int64_t i = 0; i < n; i++) w[i] = tu_normal(&s) * 0.05f;
  for (int64_t bs = 32; bs <= 4096; bs *= 2)
    for (size_t si = 0; si < 6; si++)
      for (int dq = 0; dq < 2; dq++)
        for (int t = 0; t < 2; t++) {
          tu_ckpt ck;
          qf_bnb_q4 q;
          make_ckpt4(&ck, &q, storages[si], (qf_bnb_qtype)t, bs, dq, w, rows, cols);
          qf_bnb_w4 lw;
          char msg[512];
          cr_assert_eq(qf_bnb_load4("m.", tu_find, &ck, &lw, msg, sizeof msg), 0,
                       "bs=%lld %s dq=%d: %s", (long long)bs, storages[si], dq, msg);
          cr_expect_eq(lw.rows, rows);
          cr_expect_eq(lw.cols, cols);
          cr_expect_eq(lw.meta.blocksize, bs);
          qf_bnb_dequant4(QF_BNB_ISA_AUTO, lw.meta.qtype, lw.packed, lw.absmax, bs, 0, n, a);
          float *ref_am = q.absmax;
          if (dq) {
            ref_am = malloc((size_t)q.nb * 4);
            qf_bnb_double_dequant(qf_bnb_dynamic_map(), q.codes, q.nested_absmax, 256,
                                  q.meta.nested_offset, q.nb, ref_am);
          }
          qf_bnb_dequant4(QF_BNB_ISA_SCALAR, (qf_bnb_qtype)t, q.packed, ref_am, bs, 0, n, b);
          cr_expect(memcmp(a, b, (size_t)n * 4) == 0, "loaded == written");
          /* error bound: half the widest code gap of the block absmax,
           * plus the double-quant error of absmax itself */
          double worst = 0;
          for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)a[i] - w[i]) / q.absmax[i / bs];
            if (e > worst) worst = e;
          }
          cr_expect(worst <= (t ? 0.17 : 0.153) + (dq ? 0.02 : 0), "bs=%lld t=%d worst %g",
                    (long long)bs, t, worst);
          if (dq) free(ref_am);
          qf_bnb_w4_free(&lw);
          qf_bnb_q4_free(&q);
        }
  free(w);
  free(a);
  free(b);
}

Test(bnb_format, storage_must_fill_units) {
  float w[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[1] = {6};
  qf_bnb_q4 q;
  char msg[256];
  cr_expect_eq(qf_bnb_q4_make(QF_BNB_NF4, 64, 0, w, 6, "float32", 1, shape, 2, &q,
                              msg, sizeof msg), -1);
  cr_expect(strstr(msg, "multiple of 4"), "%s", msg);
  qf_bnb_q4_free(&q);
}

/* --------------------------------------------------- malformed checkpoints */

typedef void (*mutate_fn)(tu_ckpt *ck, qf_bnb_q4 *q);
static char g_json[512];
static uint8_t g_u8[4096];
static float g_f[4096];
static void set_json(tu_ckpt *ck, const char *key, const char *json) {
  snprintf(g_json, sizeof g_json, "%s", json);
  tu_tensor *t = tu_get(ck, key);
  t->t.data = g_json;
  t->shape[0] = (int64_t)strlen(g_json);
}
#define QS "m.weight.quant_state.bitsandbytes__nf4"
static void m_no_qstate(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_remove(c, QS); }
static void m_bad_json(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; set_json(c, QS, "{\"quant_type\": \"nf4\","); }
static void m_unknown_type(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf3\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [16, 256]}");
}
static void m_type_mismatch(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [16, 256]}");
}
static void m_bad_blocksize(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf4\", \"blocksize\": 100, \"dtype\": \"float16\", \"shape\": [16, 256]}");
}
static void m_bad_dtype(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"int4\", \"shape\": [16, 256]}");
}
static void m_shape_mismatch(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [32, 256]}");
}
static void m_unknown_field(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [16, 256], \"zeros\": 1}");
}
static void m_no_absmax(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_remove(c, "m.weight.absmax"); }
static void m_absmax_shape(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_get(c, "m.weight.absmax")->shape[0] = 63; }
static void m_absmax_f16(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  tu_get(c, "m.weight.absmax")->t.dtype.bits = 16;
}
static void m_absmax_u8_not_nested(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  tu_tensor *t = tu_get(c, "m.weight.absmax");
  t->t.data = g_u8;
  t->t.dtype.code = kDLUInt;
  t->t.dtype.bits = 8;
}
static void m_no_qmap(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_remove(c, "m.weight.quant_map"); }
static void m_qmap_len(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_get(c, "m.weight.quant_map")->shape[0] = 15; }
static void m_weight_short(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_get(c, "m.weight")->shape[0] -= 1; }
static void m_no_weight(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_remove(c, "m.weight"); }
static void m_weight_3d(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  tu_tensor *t = tu_get(c, "m.weight");
  t->shape[0] /= 2;
  t->shape[1] = 2;
}
static void m_two_qstates(tu_ckpt *c, qf_bnb_q4 *q) {
  tu_add(c, "m.weight.quant_state.bitsandbytes__fp4", q->json, kDLUInt, 8, 1, q->json_len, 0);
}

/* double-quant variants */
static void d_no_nested_map(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_remove(c, "m.weight.nested_quant_map"); }
static void d_nested_shape(tu_ckpt *c, qf_bnb_q4 *q) { (void)q; tu_get(c, "m.weight.nested_absmax")->shape[0] = 3; }
static void d_no_offset(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [16, 256]}");
}
static void d_absmax_f32(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  tu_tensor *t = tu_get(c, "m.weight.absmax");
  t->t.data = g_f;
  t->t.dtype.code = kDLFloat;
  t->t.dtype.bits = 32;
}
static void d_nested_dtype(tu_ckpt *c, qf_bnb_q4 *q) {
  (void)q;
  set_json(c, QS, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [16, 256], "
                  "\"nested_blocksize\": 256, \"nested_dtype\": \"float16\", \"nested_offset\": 0.5}");
}

Test(bnb_format, malformed_4bit_checkpoints_rejected) {
  static const struct {
    mutate_fn fn;
    int dq;
    const char *needle;
  } cases[] = {
      {m_no_qstate, 0, QS},
      {m_bad_json, 0, "not valid JSON"},
      {m_unknown_type, 0, "quant_type"},
      {m_type_mismatch, 0, "does not match"},
      {m_bad_blocksize, 0, "blocksize"},
      {m_bad_dtype, 0, "dtype"},
      {m_shape_mismatch, 0, "m.weight'"},
      {m_unknown_field, 0, "zeros"},
      {m_no_absmax, 0, "m.weight.absmax"},
      {m_absmax_shape, 0, "m.weight.absmax"},
      {m_absmax_f16, 0, "m.weight.absmax"},
      {m_absmax_u8_not_nested, 0, "m.weight.nested_absmax"},
      {m_no_qmap, 0, "m.weight.quant_map"},
      {m_qmap_len, 0, "m.weight.quant_map"},
      {m_weight_short, 0, "m.weight'"},
      {m_no_weight, 0, "m.weight'"},
      {m_weight_3d, 0, "m.weight'"},
      {m_two_qstates, 0, "exactly one"},
      {d_no_nested_map, 1, "m.weight.nested_quant_map"},
      {d_nested_shape, 1, "m.weight.nested_absmax"},
      {d_no_offset, 1, "nested_offset"},
      {d_absmax_f32, 1, "m.weight.absmax"},
      {d_nested_dtype, 1, "nested_dtype"},
  };
  float w[16 * 256];
  uint64_t s = 1;
  for (int i = 0; i < 16 * 256; i++) w[i] = tu_normal(&s);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tu_ckpt ck;
    qf_bnb_q4 q;
    make_ckpt4(&ck, &q, "uint8", QF_BNB_NF4, 64, cases[i].dq, w, 16, 256);
    qf_bnb_w4 lw;
    char msg[512] = "";
    cr_assert_eq(qf_bnb_load4("m.", tu_find, &ck, &lw, msg, sizeof msg), 0, "baseline: %s", msg);
    qf_bnb_w4_free(&lw);
    cases[i].fn(&ck, &q);
    msg[0] = '\0';
    int rc = qf_bnb_load4("m.", tu_find, &ck, &lw, msg, sizeof msg);
    cr_expect_eq(rc, -1, "case %zu accepted", i);
    cr_expect(strstr(msg, cases[i].needle), "case %zu: '%s' should mention '%s'", i, msg,
              cases[i].needle);
    if (rc == 0) qf_bnb_w4_free(&lw);
    qf_bnb_q4_free(&q);
  }
}

Test(bnb_format, legacy_layouts_accepted) {
  float w[16 * 256];
  uint64_t s = 2;
  for (int i = 0; i < 16 * 256; i++) w[i] = tu_normal(&s);
  tu_ckpt ck;
  qf_bnb_q4 q;
  make_ckpt4(&ck, &q, "uint8", QF_BNB_FP4, 128, 0, w, 16, 256);
  /* older writers transposed the packed weight to [1, B] */
  tu_tensor *t = tu_get(&ck, "m.weight");
  t->shape[1] = t->shape[0];
  t->shape[0] = 1;
  qf_bnb_w4 lw;
  char msg[512];
  cr_expect_eq(qf_bnb_load4("m.", tu_find, &ck, &lw, msg, sizeof msg), 0, "%s", msg);
  qf_bnb_w4_free(&lw);
  qf_bnb_q4_free(&q);
}

Test(bnb_format, stat_key_rules) {
  const char *ok[] = {"m.weight", "m.weight.absmax", "m.weight.quant_map",
                      "m.weight.quant_state.bitsandbytes__nf4", "m.bias", "mm.weight.foo"};
  char msg[256];
  cr_expect_eq(qf_bnb_check_stat_keys("m.", ok, 6, msg, sizeof msg), 0, "%s", msg);
  const char *extra[] = {"m.weight", "m.weight.zeros"};
  cr_expect_eq(qf_bnb_check_stat_keys("m.", extra, 2, msg, sizeof msg), -1);
  cr_expect(strstr(msg, "m.weight.zeros"), "%s", msg);
  const char *two[] = {"m.weight.quant_state.bitsandbytes__nf4",
                       "m.weight.x.quant_state.bitsandbytes__fp4"};
  cr_expect_eq(qf_bnb_check_stat_keys("m.", two, 2, msg, sizeof msg), -1);
  const char *badqs[] = {"m.weight.quant_state.bitsandbytes__int4"};
  cr_expect_eq(qf_bnb_check_stat_keys("m.", badqs, 1, msg, sizeof msg), -1);
  char pre[64];
  cr_expect(qf_bnb_is_stat_key("a.b.SCB", pre, sizeof pre));
  cr_expect_str_eq(pre, "a.b.");
  cr_expect(qf_bnb_is_stat_key("weight.absmax", pre, sizeof pre));
  cr_expect_str_eq(pre, "");
  cr_expect(!qf_bnb_is_stat_key("a.xSCB", NULL, 0));
  cr_expect(!qf_bnb_is_stat_key("a.weight", NULL, 0));
}

Test(bnb_format, malformed_8bit_checkpoints_rejected) {
  int8_t cb[8 * 16] = {0};
  float scb[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  uint8_t fmt0 = 0, fmt1 = 1;
  struct {
    int drop_scb, scb_len, w_dtype_bits, w_code, fmt;
    const char *needle;
  } cases[] = {
      {1, 8, 8, kDLInt, 0, "m.SCB"},
      {0, 7, 8, kDLInt, 0, "m.SCB"},
      {0, 8, 8, kDLUInt, 0, "m.weight"},
      {0, 8, 16, kDLFloat, 0, "m.weight"},
      {0, 8, 8, kDLInt, 1, "col32"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tu_ckpt ck = {0};
    tu_add(&ck, "m.weight", cb, (uint8_t)cases[i].w_code, (uint8_t)cases[i].w_dtype_bits, 2, 8, 16);
    if (!cases[i].drop_scb) tu_add(&ck, "m.SCB", scb, kDLFloat, 32, 1, cases[i].scb_len, 0);
    tu_add(&ck, "m.weight_format", cases[i].fmt ? &fmt1 : &fmt0, kDLUInt, 8, 0, 0, 0);
    qf_bnb_w8 w8;
    char msg[512] = "";
    cr_expect_eq(qf_bnb_load8("m.", tu_find, &ck, &w8, msg, sizeof msg), -1, "case %zu", i);
    cr_expect(strstr(msg, cases[i].needle), "case %zu: '%s' should mention %s", i, msg,
              cases[i].needle);
  }
  /* good, incl. the old string-bytes weight_format and a missing one */
  tu_ckpt ck = {0};
  tu_add(&ck, "m.weight", cb, kDLInt, 8, 2, 8, 16);
  tu_add(&ck, "m.SCB", scb, kDLFloat, 32, 1, 8, 0);
  tu_add(&ck, "m.weight_format", (void *)"row", kDLUInt, 8, 1, 3, 0);
  qf_bnb_w8 w8;
  char msg[256];
  cr_expect_eq(qf_bnb_load8("m.", tu_find, &ck, &w8, msg, sizeof msg), 0, "%s", msg);
  qf_bnb_w8_free(&w8);
  tu_remove(&ck, "m.weight_format");
  cr_expect_eq(qf_bnb_load8("m.", tu_find, &ck, &w8, msg, sizeof msg), 0, "%s", msg);
  cr_expect_eq(w8.rows, 8);
  qf_bnb_w8_free(&w8);
}
