/*
 * test_errors.c — bad input to the GGUF plugin is refused with a message
 * that names the field, tensor or file and what was expected: unknown type
 * names and file types, ill-typed config fields, importance vectors of the
 * wrong size, types that need an imatrix, files that are not GGUF,
 * unsupported architectures, a requantize source that does not exist, and
 * malformed pre-quantized checkpoints.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_quants.h"
#include "gp_util.h"
#include "qf_test_util.h"

static qf_plugin *open_plugin(void) {
  qf_plugin *p = NULL;
  qf_error err;
  cr_assert(qf_plugin_open(gp_plugin_path(), &p, &err) == QF_OK, "%s", err.message);
  return p;
}

static qf_status try_create(qf_plugin *p, const char *cfg, int pre, qf_error *err) {
  qf_quantizer *q = NULL;
  memset(err, 0, sizeof *err);
  qf_status st = p->desc->vtable->create(qf_host_table(), cfg, pre, &q, err);
  if (st == QF_OK) p->desc->vtable->destroy(q);
  return st;
}

Test(errors, bad_config_values) {
  qf_plugin *p = open_plugin();
  qf_error err;
  cr_expect_eq(try_create(p, "{\"type\": \"q4_Z\"}", 0, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "'q4_Z'") && strstr(err.message, "file type") &&
                strstr(err.message, "Q4_K_M"),
            "%s", err.message);
  cr_expect_eq(try_create(p, "{\"type\": 99}", 0, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "'99'"), "%s", err.message);
  cr_expect_eq(try_create(p, "{\"type\": [\"q4_0\"]}", 0, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "quantization_config.type"), "%s", err.message);
  cr_expect_eq(try_create(p, "{\"type\": \"q8_K\"}", 0, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "not a weight type"), "%s", err.message);
  cr_expect_eq(try_create(p, "{\"type\": \"Q4_K_M\", \"pure\": 1}", 0, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "pure"), "%s", err.message);
  cr_expect_eq(try_create(p, "{\"output_tensor_type\": \"q9_0\"}", 0, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "output_tensor_type"), "%s", err.message);
  cr_expect_eq(try_create(p, "{\"imatrix_file\": 3}", 0, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "imatrix_file"), "%s", err.message);
  /* accepted: file types (any case, or their number) and ggml type names */
  cr_expect_eq(try_create(p, "{\"type\": \"q4_k_m\"}", 0, &err), QF_OK, "%s", err.message);
  cr_expect_eq(try_create(p, "{\"type\": \"15\"}", 0, &err), QF_OK, "%s", err.message);
  cr_expect_eq(try_create(p, "{\"type\": \"Q5_K\"}", 0, &err), QF_OK, "%s", err.message);
  cr_expect_eq(try_create(p, "{}", 1, &err), QF_OK, "%s", err.message);
  qf_plugin_release(p);
}

static qf_status quantize_one(qf_plugin *p, const char *cfg, int64_t imp_k, qf_error *err) {
  enum { R = 8, C = 256 };
  static float w[R * C], imp[C * 2];
  for (int i = 0; i < R * C; i++) w[i] = (float)((i * 7919) % 113) / 113.0f - 0.5f;
  for (int i = 0; i < C * 2; i++) imp[i] = 1.0f;
  qf_model *m = NULL;
  qf_calib *c = imp_k ? qf_calib_new_static() : NULL;
  qf_session *s = NULL;
  int64_t shape[2] = {R, C};
  DLTensor t = qf_f32_tensor(w, 2, shape);
  cr_assert(qf_model_new_empty("{}", &m, err) == QF_OK);
  cr_assert(qf_model_add_input(m, "weight", &t, err) == QF_OK);
  if (c) qf_calib_static_set_importance(c, "weight", imp, imp_k);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.config_json = cfg;
  opt.calib = c;
  memset(err, 0, sizeof *err);
  qf_status st = qf_run_lifecycle(p, m, &opt, &s, err);
  qf_session_free(s);
  qf_calib_free(c);
  qf_model_free(m);
  return st;
}

Test(errors, importance_vector_size_mismatch) {
  qf_plugin *p = open_plugin();
  qf_error err;
  cr_expect_eq(quantize_one(p, "{\"type\": \"q4_K\"}", 256, &err), QF_OK, "%s", err.message);
  cr_expect_eq(quantize_one(p, "{\"type\": \"q4_K\"}", 300, &err), QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "imatrix size mismatch") && strstr(err.message, "300") &&
                strstr(err.message, "'weight'"),
            "%s", err.message);
  if (qf_gguf_can_quantize(QF_GGUF_TYPE_IQ2_XXS)) {
    cr_expect_eq(quantize_one(p, "{\"type\": \"iq2_xxs\"}", 0, &err), QF_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "importance matrix"), "%s", err.message);
  }
  qf_plugin_release(p);
}

Test(errors, bad_files_through_the_cli) {
  char d[4096], path[4200], m[4200], out[4200];
  gp_tmpdir(d, sizeof d);
  /* not a GGUF file */
  snprintf(path, sizeof path, "%s/junk.gguf", d);
  FILE *f = fopen(path, "wb");
  fputs("this is not a gguf file at all", f);
  fclose(f);
  snprintf(out, sizeof out, "%s/back", d);
  cr_expect_neq(gp_cli(d, NULL, 0, "convert '%s' -o '%s'", path, out), 0);
  cr_expect(strstr(gp_stderr(d), "junk.gguf"), "%s", gp_stderr(d));
  cr_expect_neq(gp_cli(d, NULL, 0, "inspect '%s'", path), 0);
  cr_expect(strstr(gp_stderr(d), "junk.gguf"), "%s", gp_stderr(d));
  /* requantize from a file that does not exist */
  snprintf(out, sizeof out, "%s/o.gguf", d);
  cr_expect_neq(
      gp_cli(d, NULL, 0, "quantize '%s/missing.gguf' --method gguf --type Q8_0 -o '%s'", d, out),
      0);
  cr_expect(strstr(gp_stderr(d), "missing.gguf"), "%s", gp_stderr(d));
  /* an architecture the converter does not know */
  gp_model_opts o;
  gp_model_defaults(&o);
  o.layers = 1;
  o.model_type = "gpt_neox";
  snprintf(m, sizeof m, "%s/neox", d);
  gp_write_model(m, &o);
  cr_expect_neq(gp_cli(d, NULL, 0, "convert '%s' -o '%s' --type F16", m, out), 0);
  cr_expect(strstr(gp_stderr(d), "model_type 'gpt_neox'"), "%s", gp_stderr(d));
  /* an unknown file type on the command line */
  o.model_type = "llama";
  snprintf(m, sizeof m, "%s/llama", d);
  gp_write_model(m, &o);
  cr_expect_neq(gp_cli(d, NULL, 0, "quantize '%s' --method gguf --type Q4_K_XL -o '%s'", m, out),
                0);
  cr_expect(strstr(gp_stderr(d), "Q4_K_XL"), "%s", gp_stderr(d));
  cr_expect(fopen(out, "rb") == NULL, "a failed run left %s behind", out);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(errors, malformed_prequantized_module) {
  qf_plugin *p = open_plugin();
  qf_error err;
  qf_quantizer *q = NULL;
  cr_assert(p->desc->vtable->create(qf_host_table(), "{}", 1, &q, &err) == QF_OK);
  qf_model *m = NULL;
  cr_assert(qf_model_new_empty("{}", &m, &err) == QF_OK);
  static uint8_t blocks[4 * 20];
  int32_t type = QF_GGUF_TYPE_Q4_0;
  int64_t bs[2] = {4, 20}, ts[1] = {1};
  DLTensor b = qf_cpu_tensor(blocks, qf_dl_dtype(kDLUInt, 8), 2, bs);
  DLTensor t = qf_cpu_tensor(&type, qf_dl_dtype(kDLInt, 32), 1, ts);
  cr_assert(qf_model_add_input(m, "x.weight", &b, &err) == QF_OK);
  cr_assert(qf_model_add_input(m, "x.weight.ggml_type", &t, &err) == QF_OK);
  float out[4 * 32];
  int64_t os[2] = {4, 32};
  DLTensor o = b;
  o.data = out;
  o.dtype.code = kDLFloat;
  o.dtype.bits = 32;
  o.shape = os;
  /* 20 bytes per row is not a whole number of 18-byte q4_0 blocks */
  memset(&err, 0, sizeof err);
  cr_expect_eq(p->desc->vtable->dequantize(q, m, "x.weight", &o, &err), QF_ERR_FORMAT);
  cr_expect(strstr(err.message, "x.weight") && strstr(err.message, "q4_0"), "%s", err.message);
  memset(&err, 0, sizeof err);
  cr_expect_eq(p->desc->vtable->dequantize(q, m, "y.weight", &o, &err), QF_ERR_NOT_FOUND);
  cr_expect(strstr(err.message, "y.weight.ggml_type"), "%s", err.message);
  type = 4; /* a removed ggml type */
  memset(&err, 0, sizeof err);
  cr_expect_eq(p->desc->vtable->dequantize(q, m, "x.weight", &o, &err), QF_ERR_FORMAT);
  cr_expect(strstr(err.message, "x.weight.ggml_type"), "%s", err.message);
  qf_model_free(m);
  p->desc->vtable->destroy(q);
  qf_plugin_release(p);
}
