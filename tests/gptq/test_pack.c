/*
 * The GPTQ checkpoint format: bit-stream packing round trips for 2, 3, 4
 * and 8 bits (qweight along K, qzeros along N, 3-bit fields straddling
 * words exactly as AutoGPTQ's loop writes them), the symmetric qzeros
 * constants of the format tables, v1 ↔ v2 conversion, dequantization, and
 * rejection of malformed checkpoints (wrong shapes, dtypes, missing
 * tensors, g_idx out of range, bits mismatch, ...) with clear messages.
 * Also GPTQConfig JSON parsing and serialization.
 */
#include "gptq.h"
#include "gptq_test.h"
#include "qforge/half.h"

/* AutoGPTQ's own 3-bit pack loop (qlinear_cuda_old.pack), transcribed, for
 * one column of 32·r values. */
static void autogptq_pack3(const uint32_t *iw, int64_t nvals, uint32_t *out) {
  int64_t i = 0, row = 0;
  while (i < nvals) {
    for (int64_t j = i; j < i + 10; j++) out[row] |= iw[j] << (3 * (j - i));
    i += 10;
    out[row] |= iw[i] << 30;
    row++;
    out[row] |= (iw[i] >> 2) & 1;
    i++;
    for (int64_t j = i; j < i + 10; j++) out[row] |= iw[j] << (3 * (j - i) + 1);
    i += 10;
    out[row] |= iw[i] << 31;
    row++;
    out[row] |= (iw[i] >> 1) & 0x3;
    i++;
    for (int64_t j = i; j < i + 10; j++) out[row] |= iw[j] << (3 * (j - i) + 2);
    i += 10;
    row++;
  }
}

Test(gptq_pack, three_bit_matches_autogptq_loop) {
  uint64_t s = 7;
  uint32_t iw[96];
  int32_t v[96];
  for (int i = 0; i < 96; i++) v[i] = (int32_t)(iw[i] = (uint32_t)(gq_rand(&s) * 8));
  uint32_t ref[9] = {0}, ours[9];
  autogptq_pack3(iw, 96, ref);
  qf_gptq_bitpack(v, 1, 96, 3, ours, 1);
  cr_assert(memcmp(ref, ours, sizeof ref) == 0);
  for (int i = 0; i < 96; i++) cr_assert_eq(qf_gptq_field(ours, 1, i, 3), iw[i]);
}

Test(gptq_pack, four_bit_word_formula) {
  int32_t v[8] = {1, 2, 3, 4, 5, 6, 7, 15};
  uint32_t w;
  qf_gptq_bitpack(v, 1, 8, 4, &w, 1);
  cr_assert_eq(w, 0xF7654321u);
}

static void round_trip(int bits, int v2, int64_t n, int64_t k, int gs) {
  uint64_t s = 1234 + bits * 10 + v2;
  const int64_t g = gs > 0 ? (k + gs - 1) / gs : 1;
  const int maxq = (1 << bits) - 1;
  uint8_t *q = malloc((size_t)(n * k)), *q2 = malloc((size_t)(n * k));
  float *sc = malloc((size_t)(n * g) * 4), *z = malloc((size_t)(n * g) * 4);
  int32_t *gi = malloc((size_t)k * 4), *z2 = malloc((size_t)(n * g) * 4);
  float *w = malloc((size_t)(n * k) * 4);
  for (int64_t i = 0; i < n * k; i++) q[i] = (uint8_t)(gq_rand(&s) * (maxq + 1));
  for (int64_t i = 0; i < n * g; i++) {
    sc[i] = (float)(0.001 + gq_rand(&s) * 0.01);
    z[i] = (float)(v2 ? (int)(gq_rand(&s) * (maxq + 1)) : 1 + (int)(gq_rand(&s) * maxq));
  }
  for (int64_t c = 0; c < k; c++) gi[c] = (int32_t)((c * 7 + 3) % g); /* act-order like */
  qf_gptq_ckpt ck;
  qf_error err = {0};
  int64_t under = -1;
  cr_assert_eq(qf_gptq_pack(bits, n, k, g, q, sc, z, gi, v2, &ck, &under, &err),
               QF_OK, "%s", err.message);
  cr_assert_eq(under, 0);
  qf_gptq_unpack_ints(&ck, q2);
  cr_assert(memcmp(q, q2, (size_t)(n * k)) == 0, "%d-bit ints round trip", bits);
  qf_gptq_unpack_zeros(&ck, z2);
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < g; j++)
      cr_assert_eq(z2[j * n + r], (int32_t)z[r * g + j], "%d-bit zero (%lld, %lld)",
                   bits, (long long)r, (long long)j);
  qf_gptq_dequant(&ck, w);
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < k; c++) {
      float s16 = qf_f16_to_f32(qf_f32_to_f16(sc[r * g + gi[c]]));
      cr_assert_eq(w[r * k + c], s16 * (float)(q[r * k + c] - (int)z[r * g + gi[c]]));
    }
  /* v1 ↔ v2 keeps the true zeros */
  const int64_t words = g * n * bits / 32;
  int32_t *copy = malloc((size_t)words * 4);
  memcpy(copy, ck.qzeros, (size_t)words * 4);
  qf_gptq_qzeros_convert(ck.qzeros, g, n, bits, !v2);
  ck.v2 = !v2;
  qf_gptq_unpack_zeros(&ck, z2);
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < g; j++) cr_assert_eq(z2[j * n + r], (int32_t)z[r * g + j]);
  qf_gptq_qzeros_convert(ck.qzeros, g, n, bits, v2);
  cr_assert(memcmp(copy, ck.qzeros, (size_t)words * 4) == 0, "conversion is invertible");
  free(copy);
  qf_gptq_ckpt_free(&ck);
  free(q);
  free(q2);
  free(sc);
  free(z);
  free(gi);
  free(z2);
  free(w);
}

Test(gptq_pack, round_trip_2bit) { round_trip(2, 0, 64, 256, 64); round_trip(2, 1, 64, 256, 64); }
Test(gptq_pack, round_trip_3bit) { round_trip(3, 0, 64, 256, 32); round_trip(3, 1, 96, 320, -1); }
Test(gptq_pack, round_trip_4bit) { round_trip(4, 0, 40, 256, 128); round_trip(4, 1, 64, 192, 64); }
Test(gptq_pack, round_trip_8bit) { round_trip(8, 0, 36, 128, 32); round_trip(8, 1, 64, 256, -1); }

/* Symmetric zeros give the constants of the format table. */
static void sym_words(int bits, int v2, const uint32_t *expect, int nexp) {
  const int64_t n = 32, k = 32;
  uint8_t q[32 * 32] = {0};
  float sc[32], z[32];
  int32_t gi[32] = {0};
  for (int i = 0; i < 32; i++) {
    sc[i] = 1.0f;
    z[i] = (float)(1 << (bits - 1));
  }
  qf_gptq_ckpt ck;
  qf_error err = {0};
  cr_assert_eq(qf_gptq_pack(bits, n, k, 1, q, sc, z, gi, v2, &ck, NULL, &err), QF_OK);
  for (int i = 0; i < nexp; i++)
    cr_assert_eq((uint32_t)ck.qzeros[i], expect[i], "%d-bit v%d word %d: %08x", bits,
                 v2 + 1, i, (uint32_t)ck.qzeros[i]);
  qf_gptq_ckpt_free(&ck);
}

Test(gptq_pack, symmetric_zero_constants) {
  sym_words(2, 0, (const uint32_t[]){0x55555555u}, 1);
  sym_words(2, 1, (const uint32_t[]){0xAAAAAAAAu}, 1);
  sym_words(4, 0, (const uint32_t[]){0x77777777u}, 1);
  sym_words(4, 1, (const uint32_t[]){0x88888888u}, 1);
  sym_words(8, 0, (const uint32_t[]){0x7F7F7F7Fu}, 1);
  sym_words(8, 1, (const uint32_t[]){0x80808080u}, 1);
  sym_words(3, 0, (const uint32_t[]){0xDB6DB6DBu, 0xB6DB6DB6u, 0x6DB6DB6Du}, 3);
  sym_words(3, 1, (const uint32_t[]){0x24924924u, 0x49249249u, 0x92492492u}, 3);
}

Test(gptq_pack, v1_zero_of_zero_is_counted_and_masked) {
  uint8_t q[32 * 32] = {0};
  float sc[32], z[32];
  int32_t gi[32] = {0};
  for (int i = 0; i < 32; i++) {
    sc[i] = 1.0f;
    z[i] = (i == 3) ? 0.0f : 5.0f;
  }
  qf_gptq_ckpt ck;
  qf_error err = {0};
  int64_t under = 0;
  cr_assert_eq(qf_gptq_pack(4, 32, 32, 1, q, sc, z, gi, 0, &ck, &under, &err), QF_OK);
  cr_assert_eq(under, 1);
  int32_t zz[32];
  qf_gptq_unpack_zeros(&ck, zz);
  cr_assert_eq(zz[3], 0);
  cr_assert_eq(zz[4], 5);
  cr_assert_eq(zz[2], 5, "no borrow into the neighbouring field");
  qf_gptq_ckpt_free(&ck);
}

Test(gptq_pack, pack_rejects_bad_input) {
  uint8_t q[32 * 32] = {0};
  float sc[32] = {1}, z[32] = {8};
  int32_t gi[32] = {0};
  qf_gptq_ckpt ck;
  qf_error err = {0};
  cr_assert_neq(qf_gptq_pack(5, 32, 32, 1, q, sc, z, gi, 0, &ck, NULL, &err), QF_OK);
  cr_assert(strstr(err.message, "bits"));
  cr_assert_neq(qf_gptq_pack(4, 32, 30, 1, q, sc, z, gi, 0, &ck, NULL, &err), QF_OK);
  cr_assert(strstr(err.message, "multiple of 32"));
  gi[5] = 3;
  cr_assert_neq(qf_gptq_pack(4, 32, 32, 1, q, sc, z, gi, 0, &ck, NULL, &err), QF_OK);
  cr_assert(strstr(err.message, "g_idx"));
  gi[5] = 0;
  q[7] = 16;
  cr_assert_neq(qf_gptq_pack(4, 32, 32, 1, q, sc, z, gi, 0, &ck, NULL, &err), QF_OK);
  cr_assert(strstr(err.message, "exceeds"));
}

/* ------------------------------------------------------------ malformed */

typedef struct fake_module {
  int64_t s_qw[2], s_qz[2], s_sc[2], s_gi[1], s_b[1];
  int32_t *qw, *qz, *gi;
  uint16_t *sc, *b;
  DLTensor qweight, qzeros, scales, g_idx, bias;
  qf_gptq_module_tensors t;
} fake_module;

/* A valid 4-bit module, K = 256, N = 64, group 64. */
static void fake_init(fake_module *f) {
  memset(f, 0, sizeof *f);
  const int64_t k = 256, n = 64, g = 4;
  f->qw = calloc((size_t)(k / 8 * n), 4);
  f->qz = calloc((size_t)(g * n / 8), 4);
  f->sc = calloc((size_t)(g * n), 2);
  f->gi = calloc((size_t)k, 4);
  f->b = calloc((size_t)n, 2);
  for (int64_t i = 0; i < k; i++) f->gi[i] = (int32_t)(i / 64);
  for (int64_t i = 0; i < g * n; i++) f->sc[i] = qf_f32_to_f16(0.01f);
  f->s_qw[0] = k / 8; f->s_qw[1] = n;
  f->s_qz[0] = g; f->s_qz[1] = n / 8;
  f->s_sc[0] = g; f->s_sc[1] = n;
  f->s_gi[0] = k;
  f->s_b[0] = n;
  DLDataType i32 = {kDLInt, 32, 1}, f16 = {kDLFloat, 16, 1};
  f->qweight = (DLTensor){.data = f->qw, .device = {kDLCPU, 0}, .ndim = 2, .dtype = i32, .shape = f->s_qw};
  f->qzeros = (DLTensor){.data = f->qz, .device = {kDLCPU, 0}, .ndim = 2, .dtype = i32, .shape = f->s_qz};
  f->scales = (DLTensor){.data = f->sc, .device = {kDLCPU, 0}, .ndim = 2, .dtype = f16, .shape = f->s_sc};
  f->g_idx = (DLTensor){.data = f->gi, .device = {kDLCPU, 0}, .ndim = 1, .dtype = i32, .shape = f->s_gi};
  f->bias = (DLTensor){.data = f->b, .device = {kDLCPU, 0}, .ndim = 1, .dtype = f16, .shape = f->s_b};
  f->t.qweight = &f->qweight;
  f->t.qzeros = &f->qzeros;
  f->t.scales = &f->scales;
  f->t.g_idx = &f->g_idx;
  f->t.bias = &f->bias;
}

static void fake_free(fake_module *f) {
  free(f->qw); free(f->qz); free(f->sc); free(f->gi); free(f->b);
}

static void expect_reject(fake_module *f, int bits, int gs, const char *needle) {
  qf_error err = {0};
  qf_status st = qf_gptq_check_module("model.layers.0.mlp.up_proj.", &f->t, bits, gs,
                                      NULL, NULL, NULL, &err);
  cr_assert_neq(st, QF_OK, "accepted a malformed module (expected '%s')", needle);
  cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
  cr_assert(strstr(err.message, "model.layers.0.mlp.up_proj."),
            "message '%s' does not name the module", err.message);
}

Test(gptq_checkpoint, valid_module_is_accepted) {
  fake_module f;
  fake_init(&f);
  qf_error err = {0};
  int64_t r, c, g;
  cr_assert_eq(qf_gptq_check_module("m.", &f.t, 4, 64, &r, &c, &g, &err), QF_OK, "%s",
               err.message);
  cr_assert_eq(r, 64);
  cr_assert_eq(c, 256);
  cr_assert_eq(g, 4);
  f.t.g_idx = NULL; /* old checkpoints without g_idx */
  cr_assert_eq(qf_gptq_check_module("m.", &f.t, 4, 64, &r, &c, &g, &err), QF_OK);
  fake_free(&f);
}

Test(gptq_checkpoint, malformed_modules_are_rejected) {
  fake_module f;
  /* 1. missing qweight */
  fake_init(&f); f.t.qweight = NULL; expect_reject(&f, 4, 64, "qweight' is missing"); fake_free(&f);
  /* 2. missing qzeros */
  fake_init(&f); f.t.qzeros = NULL; expect_reject(&f, 4, 64, "qzeros' is missing"); fake_free(&f);
  /* 3. missing scales */
  fake_init(&f); f.t.scales = NULL; expect_reject(&f, 4, 64, "scales' is missing"); fake_free(&f);
  /* 4. qweight of the wrong dtype */
  fake_init(&f); f.qweight.dtype.code = kDLFloat; expect_reject(&f, 4, 64, "expected int32"); fake_free(&f);
  /* 5. scales of an integer dtype */
  fake_init(&f); f.scales.dtype = (DLDataType){kDLInt, 16, 1}; expect_reject(&f, 4, 64, "expected float16"); fake_free(&f);
  /* 6. qweight with the wrong rank */
  fake_init(&f); f.qweight.ndim = 1; expect_reject(&f, 4, 64, "dimensions"); fake_free(&f);
  /* 7. scales with the wrong column count */
  fake_init(&f); f.s_sc[1] = 32; expect_reject(&f, 4, 64, "scales' is"); fake_free(&f);
  /* 8. g_idx out of range */
  fake_init(&f); f.gi[17] = 4; expect_reject(&f, 4, 64, "outside [0, 4)"); fake_free(&f);
  /* 9. negative g_idx */
  fake_init(&f); f.gi[3] = -1; expect_reject(&f, 4, 64, "g_idx'[3]"); fake_free(&f);
  /* 10. bits mismatch: 4-bit tensors read as 8-bit (qzeros reveals it) */
  fake_init(&f); expect_reject(&f, 8, 64, "bits mismatch"); fake_free(&f);
  /* 11. bits mismatch: 4-bit tensors read as 2-bit */
  fake_init(&f); expect_reject(&f, 2, 64, "bits mismatch"); fake_free(&f);
  /* 12. group count inconsistent with group_size */
  fake_init(&f); expect_reject(&f, 4, 128, "implies 2"); fake_free(&f);
  /* 13. g_idx of the wrong length */
  fake_init(&f); f.s_gi[0] = 200; expect_reject(&f, 4, 64, "g_idx' has 200"); fake_free(&f);
  /* 14. qzeros with the wrong number of group rows */
  fake_init(&f); f.s_qz[0] = 3; expect_reject(&f, 4, 64, "group rows"); fake_free(&f);
  /* 15. bias of the wrong length */
  fake_init(&f); f.s_b[0] = 63; expect_reject(&f, 4, 64, "bias' has 63"); fake_free(&f);
  /* 16. 3-bit qweight rows not a multiple of 3 */
  fake_init(&f); f.s_qw[0] = 31; expect_reject(&f, 3, 64, "bits mismatch?"); fake_free(&f);
  /* 17. non-compact qweight */
  fake_init(&f);
  int64_t strides[2] = {1, 32};
  f.qweight.strides = strides;
  expect_reject(&f, 4, 64, "not compact");
  fake_free(&f);
  /* 18. empty dimension */
  fake_init(&f); f.s_sc[0] = 0; expect_reject(&f, 4, 64, "empty dimension"); fake_free(&f);
}

/* ------------------------------------------------------------ config */

Test(gptq_config, parses_fields_and_defaults) {
  qf_gptq_config c;
  qf_error err = {0};
  cr_assert_eq(qf_gptq_config_parse("{\"bits\": 3}", &c, &err), QF_OK, "%s", err.message);
  cr_assert_eq(c.bits, 3);
  cr_assert_eq(c.group_size, 128);
  cr_assert_eq(c.sym, 1);
  cr_assert_eq(c.desc_act, 0);
  cr_assert_float_eq(c.damp_percent, 0.01, 1e-12);
  qf_gptq_config_free(&c);
  const char *j =
      "{\"quant_method\": \"gptq\", \"bits\": 8, \"group_size\": -1, \"desc_act\": true,"
      " \"sym\": false, \"static_groups\": true, \"damp_percent\": 0.1,"
      " \"checkpoint_format\": \"gptq_v2\", \"modules_to_not_convert\": [\"o_proj\"],"
      " \"modules_in_block_to_quantize\": [[\"q_proj\", \"k_proj\"], [\"o_proj\"]],"
      " \"meta\": {\"mse\": 2.4, \"true_sequential\": false}, \"unknown\": {\"x\": 1}}";
  cr_assert_eq(qf_gptq_config_parse(j, &c, &err), QF_OK, "%s", err.message);
  cr_assert_eq(c.bits, 8);
  cr_assert_eq(c.group_size, -1);
  cr_assert_eq(c.desc_act, 1);
  cr_assert_eq(c.sym, 0);
  cr_assert_eq(c.static_groups, 1);
  cr_assert_eq(c.v2, 1);
  cr_assert_eq(c.true_sequential, 0);
  cr_assert_float_eq(c.mse, 2.4, 1e-12);
  cr_assert_eq(c.n_skip, 1);
  cr_assert_eq(c.n_inblock, 3);
  qf_gptq_opts o;
  qf_gptq_config_opts(&c, 2, &o);
  cr_assert_eq(qf_gptq_opts_check(&o, &err), QF_OK);
  qf_gptq_config_free(&c);
  cr_assert_eq(qf_gptq_config_parse("{\"w_bit\": 4, \"q_group_size\": 64, \"format\": \"gptq\"}",
                                    &c, &err), QF_OK);
  cr_assert_eq(c.bits, 4);
  cr_assert_eq(c.group_size, 64);
  qf_gptq_config_free(&c);
}

static void bad_config(const char *json, const char *needle) {
  qf_gptq_config c;
  qf_error err = {0};
  cr_assert_neq(qf_gptq_config_parse(json, &c, &err), QF_OK, "accepted %s", json);
  cr_assert(strstr(err.message, needle), "'%s': message '%s' lacks '%s'", json, err.message,
            needle);
}

Test(gptq_config, rejects_bad_configs) {
  bad_config("not json", "not valid JSON");
  bad_config("[1]", "object");
  bad_config("{}", "bits is required");
  bad_config("{\"bits\": 5}", "bits = 5");
  bad_config("{\"bits\": \"4\"}", "bits must be an integer");
  bad_config("{\"bits\": 4, \"group_size\": 0}", "group_size");
  bad_config("{\"bits\": 4, \"damp_percent\": 1.5}", "damp_percent");
  bad_config("{\"bits\": 4, \"desc_act\": \"yes\"}", "desc_act");
  bad_config("{\"bits\": 4, \"checkpoint_format\": \"marlin\"}", "checkpoint_format");
  bad_config("{\"bits\": 4, \"quant_method\": \"awq\"}", "quant_method");
  bad_config("{\"bits\": 4, \"modules_to_not_convert\": \"lm_head\"}", "must be a list");
  bad_config("{\"bits\": 4, \"bits\": 8}", "not valid JSON");
}

Test(gptq_config, serializes_minimal_config) {
  qf_gptq_config c;
  qf_error err = {0};
  cr_assert_eq(qf_gptq_config_parse("{\"bits\": 4, \"group_size\": 128, \"desc_act\": false, "
                                    "\"damp_percent\": 0.01}", &c, &err), QF_OK);
  char *s = qf_gptq_config_to_json(&c);
  cr_assert(s);
  json_error_t je;
  json_t *o = json_loads(s, 0, &je);
  cr_assert(o, "%s", s);
  cr_assert_str_eq(json_string_value(json_object_get(o, "quant_method")), "gptq");
  cr_assert_eq(json_integer_value(json_object_get(o, "bits")), 4);
  cr_assert_eq(json_integer_value(json_object_get(o, "group_size")), 128);
  cr_assert(json_is_false(json_object_get(o, "desc_act")));
  cr_assert(json_is_true(json_object_get(o, "sym")));
  cr_assert(json_is_real(json_object_get(o, "damp_percent")));
  cr_assert(strstr(s, "\"damp_percent\": 0.01"), "%s", s);
  cr_assert(json_is_true(json_object_get(o, "true_sequential")));
  cr_assert_str_eq(json_string_value(json_object_get(o, "checkpoint_format")), "gptq");
  cr_assert(json_is_false(json_object_get(o, "static_groups")));
  cr_assert(json_is_false(json_object_get(o, "lm_head")));
  /* the serialized config parses back to the same settings */
  qf_gptq_config c2;
  cr_assert_eq(qf_gptq_config_parse(s, &c2, &err), QF_OK);
  cr_assert_eq(c2.bits, c.bits);
  cr_assert_eq(c2.group_size, c.group_size);
  json_decref(o);
  free(s);
  s = qf_gptq_config_quantize_config_json(&c);
  o = json_loads(s, 0, &je);
  cr_assert(o);
  cr_assert(json_object_get(o, "model_name_or_path"));
  cr_assert(json_is_null(json_object_get(o, "model_file_base_name")));
  cr_assert_str_eq(json_string_value(json_object_get(o, "checkpoint_format")), "gptq");
  json_decref(o);
  free(s);
  qf_gptq_config_free(&c);
  qf_gptq_config_free(&c2);
}
