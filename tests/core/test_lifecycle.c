/*
 * Lifecycle order: a recording plugin asserts the exact sequence of slot
 * calls for the quantize path and the pre-quantized load path, and plugin
 * errors come back naming the plugin and the slot.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/qforge.h"
#include "qf_test_util.h"

static const char *plugin_path(const char *name) {
  static char b[1024];
  snprintf(b, sizeof b, "%s/%s.so", getenv("QF_TEST_PLUGINS"), name);
  return b;
}

typedef const char *(*record_fn)(void);
typedef void (*reset_fn)(void);

static record_fn rec(const char *path, reset_fn *reset) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  cr_assert(h, "plugin not loaded");
  *reset = (reset_fn)(uintptr_t)dlsym(h, "qf_test_record_reset");
  return (record_fn)(uintptr_t)dlsym(h, "qf_test_record");
}

/* Open the recording plugin and start a fresh record; returns its reader. */
static record_fn open_recording(qf_plugin **p) {
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_open(plugin_path("tp_recording"), p, &err), QF_OK, "%s", err.message);
  reset_fn reset;
  record_fn r = rec(plugin_path("tp_recording"), &reset);
  reset();
  return r;
}

static float w[4 * 8];
static float b[4];

Test(lifecycle, quantize_path_order) {
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  record_fn r = open_recording(&p);
  qf_model *m = NULL;
  qf_model_new_empty("{}", &m, &err);
  int64_t ws[2] = {4, 8}, bs[1] = {4};
  qf_test_add_f32(m, "l.weight", w, 2, ws);
  qf_test_add_f32(m, "l.bias", b, 1, bs);
  qf_run_options o = {0};
  o.struct_size = sizeof o;
  o.config_json = "{\"quant_method\":\"test\"}";
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &o, &s, &err), QF_OK, "%s", err.message);
  qf_session_free(s);
  cr_assert_str_eq(r(),
                   "create,validate_environment(full),update_dtype,update_device_map,"
                   "preprocess_model,adjust_target_dtype,needs(l.weight),param_element_size,"
                   "needs(l.bias),adjust_max_memory,validate_environment(device_map),"
                   "update_missing_keys(0),update_unexpected_keys(0),"
                   "needs(l.weight),create_quantized_param(l.weight),needs(l.bias),"
                   "postprocess_model,get_config_json,destroy");
  /* the bias was passed through, the weight replaced by the plugin's tensor */
  cr_assert_eq(qf_model_output_count(m), 2);
  cr_assert_str_eq(qf_model_output_at(m, 0)->name, "l.qweight");
  cr_assert_str_eq(qf_model_output_at(m, 1)->name, "l.bias");
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(lifecycle, load_path_order_and_key_negotiation) {
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  record_fn r = open_recording(&p);
  /* a llama config with one layer: the float model expects
   * model.layers.0.*.weight; the checkpoint has q-tensors instead */
  const char *cfg = "{\"model_type\":\"llama\",\"num_hidden_layers\":1,"
                    "\"tie_word_embeddings\":true}";
  qf_model *m = NULL;
  qf_model_new_empty(cfg, &m, &err);
  int64_t ws[2] = {4, 8};
  qf_test_add_f32(m, "model.embed_tokens.weight", w, 2, ws);
  qf_test_add_f32(m, "model.norm.weight", w, 1, ws);
  qf_test_add_f32(m, "model.layers.0.mlp.up_proj.qweight", w, 2, ws);
  qf_run_options o = {0};
  o.struct_size = sizeof o;
  o.pre_quantized = 1;
  o.config_json = "{\"quant_method\":\"test\"}";
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &o, &s, &err), QF_OK, "%s", err.message);
  qf_session_free(s);
  /* 1 layer: 7 linears + 2 norms missing; the qweight is unexpected */
  cr_assert_str_eq(r(),
                   "create(pre),validate_environment(full),update_dtype,update_device_map,"
                   "preprocess_model,adjust_target_dtype,needs(model.embed_tokens.weight),"
                   "param_element_size,needs(model.norm.weight),param_element_size,"
                   "needs(model.layers.0.mlp.up_proj.qweight),adjust_max_memory,"
                   "validate_environment(device_map),update_missing_keys(9),"
                   "update_unexpected_keys(1),needs(model.embed_tokens.weight),"
                   "needs(model.norm.weight),needs(model.layers.0.mlp.up_proj.qweight),"
                   "postprocess_model,get_config_json,destroy");
  /* nothing is re-quantized on the load path */
  cr_assert_eq(qf_model_output_count(m), 0);
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(lifecycle, plugin_error_names_plugin_and_slot) {
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_open(plugin_path("tp_badenv"), &p, &err), QF_OK, "%s", err.message);
  qf_model *m = NULL;
  qf_model_new_empty("{}", &m, &err);
  qf_run_options o = {0};
  o.struct_size = sizeof o;
  o.config_json = "{}";
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &o, &s, &err), QF_ERR_ENVIRONMENT);
  cr_assert_null(s);
  char buf[2048];
  cr_assert_str_eq(qf_error_format(&err, buf, sizeof buf),
                   "test-badenv: validate_environment: needs a frobnicator device, none found");
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(lifecycle, bad_config_rejected_by_create) {
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_open(plugin_path("tp_recording"), &p, &err), QF_OK);
  qf_model *m = NULL;
  qf_model_new_empty("{}", &m, &err);
  qf_run_options o = {0};
  o.struct_size = sizeof o;
  o.config_json = "[not an object]";
  qf_session *s = NULL;
  cr_assert_eq(qf_run_lifecycle(p, m, &o, &s, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_str_eq(err.op, "create");
  cr_assert_str_eq(err.message, "config must be an object");
  qf_model_free(m);
  qf_plugin_release(p);
}

Test(model, find_put_and_stable_shapes) {
  qf_model *m = NULL;
  qf_error err;
  qf_model_new_empty("{}", &m, &err);
  const qf_host *h = qf_host_table();
  float data[6] = {1, 2, 3, 4, 5, 6};
  int64_t s[2] = {2, 3};
  DLTensor t = qf_f32_tensor(data, 2, s);
  cr_assert_eq(h->model_put_tensor(m, "a", &t, &err), QF_OK);
  qf_tensor_info first;
  cr_assert_eq(h->model_find_tensor(m, "a", &first, &err), QF_OK);
  data[0] = 99; /* the host copied the tensor */
  cr_assert_eq(((float *)first.tensor.data)[0], 1.0f);
  for (int i = 0; i < 500; i++) {
    char name[32];
    snprintf(name, sizeof name, "t%d", i);
    cr_assert_eq(h->model_put_tensor(m, name, &t, &err), QF_OK);
  }
  /* shapes handed out earlier stay valid while more tensors arrive */
  cr_assert_eq(first.tensor.shape[0], 2);
  cr_assert_eq(first.tensor.shape[1], 3);
  qf_tensor_info ti;
  cr_assert_eq(h->model_find_tensor(m, "t499", &ti, &err), QF_OK);
  cr_assert_eq(((float *)ti.tensor.data)[0], 99.0f);
  cr_assert_eq(h->model_find_tensor(m, "nope", &ti, &err), QF_ERR_NOT_FOUND);
  cr_assert_str_eq(err.message, "the model has no tensor named 'nope'");
  t.device.device_type = kDLCUDA;
  cr_assert_eq(h->model_put_tensor(m, "gpu", &t, &err), QF_ERR_INVALID_ARGUMENT);
  qf_model_free(m);
}
