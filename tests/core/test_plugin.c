/*
 * Test plugins for the loader and lifecycle suites, one source built into
 * several MODULEs by compile definition:
 *   QF_TP_RECORDING  records every slot call ("create,validate_environment,…")
 *                    readable through the exported qf_test_record()
 *   QF_TP_ABI2       declares ABI 2.0 (major mismatch)
 *   QF_TP_BADENV     validate_environment fails with a message
 *   QF_TP_GPU0       claims to be a CUDA build and scores 0 (no device)
 *   QF_TP_NOSLOT     leaves the required get_config_json slot NULL
 *   QF_TP_NOINIT     exports no qf_plugin_init at all
 * Quantization is trivial (emits "<prefix>qweight" = the weight as F16).
 */
#include <stdlib.h>
#include <string.h>

#include "qforge/plugin_util.h"

static char qf__rec[4096];
static const qf_host *qf__h;

static void qf__note(const char *what) {
  size_t l = strlen(qf__rec);
  snprintf(qf__rec + l, sizeof qf__rec - l, "%s%s", l ? "," : "", what);
}

QF_PLUGIN_EXPORT const char *qf_test_record(void) { return qf__rec; }
QF_PLUGIN_EXPORT void qf_test_record_reset(void) { qf__rec[0] = '\0'; }

struct qf_quantizer {
  int pre;
};

static qf_status tp_create(const qf_host *host, const char *cfg, int pre, qf_quantizer **out,
                           qf_error *err) {
  qf__note(pre ? "create(pre)" : "create");
  if (!cfg || cfg[0] != '{')
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "test", "create", "config must be an object");
  *out = calloc(1, sizeof **out);
  (*out)->pre = pre;
  return QF_OK;
}
static void tp_destroy(qf_quantizer *q) {
  qf__note("destroy");
  free(q);
}
static qf_status tp_validate(qf_quantizer *q, const qf_env *env, qf_error *err) {
  qf__note(env->backend ? "validate_environment(full)" : "validate_environment(device_map)");
#ifdef QF_TP_BADENV
  return qf_fail(err, QF_ERR_ENVIRONMENT, "test-badenv", "validate_environment",
                 "needs a frobnicator device, none found");
#else
  return QF_OK;
#endif
}
static qf_status tp_update_dtype(qf_quantizer *q, DLDataType *t, qf_error *err) {
  qf__note("update_dtype");
  return QF_OK;
}
static qf_status tp_update_device_map(qf_quantizer *q, const char *in, char **out, qf_error *err) {
  qf__note("update_device_map");
  return QF_OK;
}
static qf_status tp_adjust_target_dtype(qf_quantizer *q, DLDataType *t, qf_error *err) {
  qf__note("adjust_target_dtype");
  return QF_OK;
}
static qf_status tp_adjust_max_memory(qf_quantizer *q, uint64_t *b, size_t n, qf_error *err) {
  qf__note("adjust_max_memory");
  return QF_OK;
}
static qf_status tp_param_element_size(qf_quantizer *q, const qf_model *m, const char *name,
                                       double *bytes, qf_error *err) {
  qf__note("param_element_size");
  *bytes = 2.0;
  return QF_OK;
}
static qf_status tp_preprocess(qf_quantizer *q, qf_model *m, qf_error *err) {
  qf__note("preprocess_model");
  return QF_OK;
}
static qf_status tp_needs(qf_quantizer *q, const qf_model *m, const char *name, int *out,
                          qf_error *err) {
  char buf[64];
  snprintf(buf, sizeof buf, "needs(%s)", name);
  qf__note(buf);
  *out = strstr(name, "weight") != NULL && !strstr(name, "qweight");
  return QF_OK;
}
static qf_status tp_create_param(qf_quantizer *q, qf_model *m, const char *name,
                                 const DLTensor *v, qf_calib *c, qf_error *err) {
  char buf[64];
  snprintf(buf, sizeof buf, "create_quantized_param(%s)", name);
  qf__note(buf);
  int64_t n = qf_numel(v);
  uint16_t *h = malloc((size_t)n * 2 + 2);
  float *f = malloc((size_t)n * 4 + 4);
  qf_tensor_to_f32(v, f);
  for (int64_t i = 0; i < n; i++) h[i] = qf_f32_to_f16(f[i]);
  char qn[256], prefix[200] = "";
  qf_strip_suffix(name, "weight", prefix, sizeof prefix);
  snprintf(qn, sizeof qn, "%sqweight", prefix);
  DLTensor t = qf_cpu_tensor(h, qf_dl_dtype(kDLFloat, 16), v->ndim, v->shape);
  qf_status st = qf__h->model_put_tensor(m, qn, &t, err);
  free(h);
  free(f);
  return st;
}
static qf_status tp_missing(qf_quantizer *q, const qf_model *m, const char *const *keys, size_t n,
                            uint8_t *keep, qf_error *err) {
  char buf[64];
  snprintf(buf, sizeof buf, "update_missing_keys(%zu)", n);
  qf__note(buf);
  for (size_t i = 0; i < n; i++) keep[i] = 0;
  return QF_OK;
}
static qf_status tp_unexpected(qf_quantizer *q, const qf_model *m, const char *const *keys,
                               size_t n, uint8_t *keep, qf_error *err) {
  char buf[64];
  snprintf(buf, sizeof buf, "update_unexpected_keys(%zu)", n);
  qf__note(buf);
  for (size_t i = 0; i < n; i++) keep[i] = 0;
  return QF_OK;
}
static qf_status tp_post(qf_quantizer *q, qf_model *m, qf_error *err) {
  qf__note("postprocess_model");
  return QF_OK;
}
__attribute__((unused)) static qf_status tp_config(qf_quantizer *q, char **out, qf_error *err) {
  qf__note("get_config_json");
  const char *c = "{\"quant_method\":\"test\"}";
  *out = qf__h->alloc(strlen(c) + 1);
  memcpy(*out, c, strlen(c) + 1);
  return QF_OK;
}

static const qf_quantizer_vtable tp_vt = {
    .struct_size = sizeof(qf_quantizer_vtable),
    .create = tp_create,
    .destroy = tp_destroy,
    .validate_environment = tp_validate,
    .update_dtype = tp_update_dtype,
    .update_device_map = tp_update_device_map,
    .adjust_target_dtype = tp_adjust_target_dtype,
    .adjust_max_memory = tp_adjust_max_memory,
    .param_element_size = tp_param_element_size,
    .preprocess_model = tp_preprocess,
    .param_needs_quantization = tp_needs,
    .create_quantized_param = tp_create_param,
    .update_missing_keys = tp_missing,
    .update_unexpected_keys = tp_unexpected,
    .postprocess_model = tp_post,
#ifndef QF_TP_NOSLOT
    .get_config_json = tp_config,
#endif
};

static const char *const tp_methods[] = {"test", NULL};

__attribute__((unused)) static const qf_plugin_desc tp_desc = {
    .struct_size = sizeof(qf_plugin_desc),
#ifdef QF_TP_ABI2
    .abi_major = 2,
    .abi_minor = 0,
#else
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
#endif
    .name = "test",
    .version = "0",
    .quant_methods = tp_methods,
#ifdef QF_TP_GPU0
    .backend = QF_BACKEND_CUDA,
#else
    .backend = QF_BACKEND_CPU,
#endif
    .vtable = &tp_vt,
};

#ifndef QF_TP_NOINIT
QF_PLUGIN_EXPORT qf_status qf_plugin_init(const qf_host *host, const qf_plugin_desc **out,
                                          qf_error *err) {
  qf__h = host;
  *out = &tp_desc;
  return QF_OK;
}
#endif

#ifdef QF_TP_GPU0
QF_PLUGIN_EXPORT int qf_plugin_score(void) { return 0; }
#endif
