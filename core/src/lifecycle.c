/*
 * The lifecycle driver: runs one plugin over one model in the order
 * transformers' from_pretrained (v4.5x, modeling_utils.py) calls an
 * HfQuantizer, for both paths.
 *
 *   L5   create(config_json, pre_quantized)                 __init__
 *   L6   validate_environment(full env)
 *   L7   update_dtype(dtype)                                 update_torch_dtype
 *   L8   update_device_map(device_map)
 *   L15  preprocess_model(model)                 _process_model_before_weight_loading
 *   L17  adjust_target_dtype, param_element_size (each quantized param),
 *        adjust_max_memory                                   memory planning
 *   L17  validate_environment(device map only)               second call
 *   L18.1 update_missing_keys, then update_unexpected_keys   key negotiation
 *   L18.5 for every checkpoint tensor, in checkpoint order:
 *          param_needs_quantization(name)
 *          quantize path and true → create_quantized_param(name, value, calib)
 *          otherwise              → the tensor is kept as it is
 *   L21  postprocess_model(model)                _process_model_after_weight_loading
 *        get_config_json()                                   config.to_dict()
 * Later: dequantize / linear_forward any number of times; destroy at the end.
 *
 * In the quantize path with a streaming sink set on the model, kept tensors
 * are emitted unchanged so the sink sees the whole output checkpoint.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arch_keys.h"
#include "model_internal.h"
#include "qforge/plugin_util.h"
#include "qforge/qforge.h"

#define QF_VT(p, slot)                                                     \
  (QF_HAS_FIELD((p)->desc->vtable, qf_quantizer_vtable, slot)              \
       ? (p)->desc->vtable->slot                                           \
       : NULL)

static qf_status qf__plugin_fail(const qf_plugin *p, const char *op,
                                 qf_status st, qf_error *perr, qf_error *err) {
  if (err) {
    *err = *perr;
    err->code = st;
    if (!err->plugin[0]) snprintf(err->plugin, sizeof err->plugin, "%s", p->desc->name);
    if (!err->op[0]) snprintf(err->op, sizeof err->op, "%s", op);
    if (!err->message[0])
      snprintf(err->message, sizeof err->message, "failed (%s) without a message",
               qf_status_name(st));
  }
  return st;
}

#define QF_CALL(p, op, call)                                                \
  do {                                                                      \
    qf_error_clear(&perr);                                                  \
    qf_status st_ = (call);                                                 \
    if (st_ != QF_OK) {                                                     \
      qf__plugin_fail((p), (op), st_, &perr, err);                          \
      goto fail;                                                            \
    }                                                                       \
  } while (0)

void qf_session_free(qf_session *s) {
  if (!s) return;
  if (s->q && s->plugin) s->plugin->desc->vtable->destroy(s->q);
  if (s->config_json) qf_host_table()->free(s->config_json);
  if (s->side_files_json) qf_host_table()->free(s->side_files_json);
  free(s);
}

/* Key negotiation (L18.1): expected keys of the float architecture versus
 * the checkpoint's keys, then the plugin's filters; what remains is logged
 * as transformers does. */
static qf_status qf__negotiate_keys(qf_plugin *p, qf_session *s,
                                    qf_model *model, qf_error *err) {
  qf_error perr;
  qf__keyset expected, missing, unexpected;
  memset(&missing, 0, sizeof missing);
  memset(&unexpected, 0, sizeof unexpected);
  qf_status st = qf__expected_keys(model, &expected, err);
  if (st != QF_OK) return st;
  size_t n_in = qf_model_input_count(model);
  for (size_t i = 0; i < expected.n; i++) {
    qf_tensor_info ti;
    qf_error e;
    if (qf_model_input_count(model) == 0 ||
        qf_host_table()->model_find_tensor(model, expected.keys[i], &ti, &e) != QF_OK)
      qf__keyset_add(&missing, expected.keys[i]);
  }
  for (size_t i = 0; i < n_in; i++) {
    qf_tensor_info ti;
    qf_model_input_at(model, i, &ti, NULL);
    if (!qf__keyset_has(&expected, ti.name)) qf__keyset_add(&unexpected, ti.name);
  }
  uint8_t *keep_m = calloc(missing.n + 1, 1), *keep_u = calloc(unexpected.n + 1, 1);
  if (!keep_m || !keep_u) {
    st = qf_errorf(err, QF_ERR_NO_MEMORY, "lifecycle", "out of memory");
    goto done;
  }
  memset(keep_m, 1, missing.n);
  memset(keep_u, 1, unexpected.n);
  qf_status (*um)(qf_quantizer *, const qf_model *, const char *const *, size_t, uint8_t *,
                  qf_error *) = QF_VT(p, update_missing_keys);
  qf_status (*uu)(qf_quantizer *, const qf_model *, const char *const *, size_t, uint8_t *,
                  qf_error *) = QF_VT(p, update_unexpected_keys);
  if (um) {
    qf_error_clear(&perr);
    st = um(s->q, model, (const char *const *)missing.keys, missing.n, keep_m, &perr);
    if (st != QF_OK) {
      qf__plugin_fail(p, "update_missing_keys", st, &perr, err);
      goto done;
    }
  }
  if (uu) {
    qf_error_clear(&perr);
    st = uu(s->q, model, (const char *const *)unexpected.keys, unexpected.n, keep_u, &perr);
    if (st != QF_OK) {
      qf__plugin_fail(p, "update_unexpected_keys", st, &perr, err);
      goto done;
    }
  }
  size_t left_m = 0, left_u = 0;
  for (size_t i = 0; i < missing.n; i++) left_m += keep_m[i] != 0;
  for (size_t i = 0; i < unexpected.n; i++) left_u += keep_u[i] != 0;
  for (size_t i = 0, shown = 0; i < missing.n && shown < 5; i++)
    if (keep_m[i]) {
      qf_log(QF_LOG_WARN, "%s: missing from the checkpoint: %s%s", p->desc->name,
             missing.keys[i], ++shown == 5 && left_m > 5 ? " (and more)" : "");
    }
  for (size_t i = 0, shown = 0; i < unexpected.n && shown < 5; i++)
    if (keep_u[i]) {
      qf_log(QF_LOG_WARN, "%s: not used by the model: %s%s", p->desc->name,
             unexpected.keys[i], ++shown == 5 && left_u > 5 ? " (and more)" : "");
    }
  st = QF_OK;
done:
  free(keep_m);
  free(keep_u);
  qf__keyset_free(&expected);
  qf__keyset_free(&missing);
  qf__keyset_free(&unexpected);
  return st;
}

qf_status qf_run_lifecycle(qf_plugin *p, qf_model *model,
                           const qf_run_options *opt, qf_session **out,
                           qf_error *err) {
  *out = NULL;
  const qf_quantizer_vtable *vt = p->desc->vtable;
  qf_error perr;
  char *dmap = NULL; /* device map returned by update_device_map */
  qf_session *s = calloc(1, sizeof *s);
  if (!s) return qf_errorf(err, QF_ERR_NO_MEMORY, "lifecycle", "out of memory");
  s->plugin = p;
  s->pre_quantized = opt->pre_quantized;
  const qf_host *host = qf_host_table();
  const char *cfg = opt->config_json ? opt->config_json : "{}";

  if (!opt->pre_quantized && (p->desc->caps & QF_CAP_REQUIRES_CALIBRATION) && !opt->calib) {
    qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "lifecycle",
              "scheme '%s' requires calibration data to quantize (give --calib)",
              p->desc->name);
    goto fail;
  }
  if (!opt->pre_quantized && !vt->create_quantized_param) {
    qf_errorf(err, QF_ERR_UNSUPPORTED, "lifecycle",
              "scheme '%s' can only load pre-quantized checkpoints", p->desc->name);
    goto fail;
  }

  /* L5 */
  QF_CALL(p, "create", vt->create(host, cfg, opt->pre_quantized, &s->q, &perr));
  if (!s->q) {
    qf_errorf(err, QF_ERR_INTERNAL, "lifecycle", "plugin '%s' create returned no quantizer",
              p->desc->name);
    goto fail;
  }
  /* L6 */
  qf_env env;
  memset(&env, 0, sizeof env);
  env.struct_size = sizeof env;
  env.backend = p->backend;
  env.device_count = p->backend == QF_BACKEND_CPU ? 0 : -1;
  env.compute_dtype = opt->dtype;
  env.device_map_json = opt->device_map_json ? opt->device_map_json : "{\"\": \"cpu\"}";
  env.n_threads = host->n_threads(host);
  QF_CALL(p, "validate_environment", vt->validate_environment(s->q, &env, &perr));
  /* L7 */
  DLDataType dtype = opt->dtype;
  if (QF_VT(p, update_dtype)) QF_CALL(p, "update_dtype", vt->update_dtype(s->q, &dtype, &perr));
  /* L8 */
  if (QF_VT(p, update_device_map)) {
    QF_CALL(p, "update_device_map",
            vt->update_device_map(s->q, env.device_map_json, &dmap, &perr));
  }
  /* L15 */
  if (QF_VT(p, preprocess_model))
    QF_CALL(p, "preprocess_model", vt->preprocess_model(s->q, model, &perr));
  /* L17: memory planning */
  DLDataType target = {kDLFloat, 16, 1};
  if (QF_VT(p, adjust_target_dtype))
    QF_CALL(p, "adjust_target_dtype", vt->adjust_target_dtype(s->q, &target, &perr));
  double planned_bytes = 0;
  size_t n_in = qf_model_input_count(model);
  for (size_t i = 0; i < n_in; i++) {
    qf_tensor_info ti;
    if (qf_model_input_at(model, i, &ti, err) != QF_OK) goto fail;
    int needs = 0;
    QF_CALL(p, "param_needs_quantization",
            vt->param_needs_quantization(s->q, model, ti.name, &needs, &perr));
    double el = (double)(ti.tensor.dtype.bits * ti.tensor.dtype.lanes) / 8.0;
    if (needs && QF_VT(p, param_element_size))
      QF_CALL(p, "param_element_size", vt->param_element_size(s->q, model, ti.name, &el, &perr));
    int64_t numel = 1;
    for (int d = 0; d < ti.tensor.ndim; d++) numel *= ti.tensor.shape[d];
    planned_bytes += el * (double)numel;
  }
  uint64_t budget[1] = {0};
  if (QF_VT(p, adjust_max_memory))
    QF_CALL(p, "adjust_max_memory", vt->adjust_max_memory(s->q, budget, 1, &perr));
  qf_log(QF_LOG_DEBUG, "%s: planned %.1f MiB for the loaded model", p->desc->name,
         planned_bytes / 1048576.0);
  /* L17: second validate_environment, device map only */
  qf_env env2;
  memset(&env2, 0, sizeof env2);
  env2.struct_size = sizeof env2;
  env2.device_count = -1;
  env2.device_map_json = dmap ? dmap : env.device_map_json;
  QF_CALL(p, "validate_environment", vt->validate_environment(s->q, &env2, &perr));
  if (dmap) host->free(dmap);
  dmap = NULL;
  /* L18.1 */
  if (qf__negotiate_keys(p, s, model, err) != QF_OK) goto fail;
  /* L18.5 */
  if (opt->order && opt->n_order != n_in) {
    qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "lifecycle",
              "tensor order lists %zu tensors, the model has %zu", opt->n_order, n_in);
    goto fail;
  }
  for (size_t step = 0; step < n_in; step++) {
    size_t i = opt->order ? opt->order[step] : step;
    qf_tensor_info ti;
    if (qf_model_input_at(model, i, &ti, err) != QF_OK) goto fail;
    int needs = 0;
    QF_CALL(p, "param_needs_quantization",
            vt->param_needs_quantization(s->q, model, ti.name, &needs, &perr));
    int quantized = needs && !opt->pre_quantized;
    if (quantized) {
      if (!qf_dtype_is_float(ti.tensor.dtype)) {
        qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "lifecycle",
                  "tensor '%s' is not f32/f16/bf16 and cannot be quantized "
                  "(is the checkpoint already quantized?)", ti.name);
        goto fail;
      }
      QF_CALL(p, "create_quantized_param",
              vt->create_quantized_param(s->q, model, ti.name, &ti.tensor, opt->calib, &perr));
    } else if (!opt->pre_quantized && !qf__model_has_output(model, ti.name)) {
      /* kept as it is: emitted so a streaming writer sees it (unless the
       * plugin already emitted a new version, e.g. AWQ's scaled norms) */
      qf_status st = host->model_put_tensor(model, ti.name, &ti.tensor, err);
      if (st != QF_OK) goto fail;
    }
    if (opt->after_tensor && opt->after_tensor(opt->user, s, model, ti.name, quantized, err) != QF_OK)
      goto fail;
    if (opt->on_tensor) opt->on_tensor(opt->user, step + 1, n_in, ti.name);
  }
  /* L21 */
  if (QF_VT(p, postprocess_model))
    QF_CALL(p, "postprocess_model", vt->postprocess_model(s->q, model, &perr));
  QF_CALL(p, "get_config_json", vt->get_config_json(s->q, &s->config_json, &perr));
  if (QF_VT(p, get_side_files_json))
    QF_CALL(p, "get_side_files_json", vt->get_side_files_json(s->q, &s->side_files_json, &perr));
  *out = s;
  return QF_OK;
fail:
  if (dmap) host->free(dmap);
  qf_session_free(s);
  return err && err->code != QF_OK ? err->code : QF_ERR_INTERNAL;
}

int qf_plugin_owns_file(const qf_plugin *p, const char *path) {
  if (!QF_HAS_FIELD(p->desc, qf_plugin_desc, container_extensions) ||
      !p->desc->container_extensions)
    return 0;
  size_t n = strlen(path);
  for (const char *const *e = p->desc->container_extensions; *e; e++) {
    size_t l = strlen(*e);
    if (n >= l && !strcasecmp(path + n - l, *e)) return 1;
  }
  return 0;
}

qf_status qf_run_container(qf_plugin *p, qf_container_op op, const char *config_json,
                           qf_model *model, const char *in_path, const char *out_path,
                           char **describe_json, qf_error *err) {
  const qf_quantizer_vtable *vt = p->desc->vtable;
  const qf_host *host = qf_host_table();
  qf_error perr;
  qf_quantizer *q = NULL;
  char *dmap = NULL;
  qf_session *s = NULL; /* unused here; keeps QF_CALL's fail path uniform */
  const char *slot = op == QF_CONTAINER_EXPORT   ? "container_export"
                     : op == QF_CONTAINER_IMPORT ? "container_import"
                                                 : "container_describe";
  int has = op == QF_CONTAINER_EXPORT   ? QF_VT(p, container_export) != NULL
            : op == QF_CONTAINER_IMPORT ? QF_VT(p, container_import) != NULL
                                        : QF_VT(p, container_describe) != NULL;
  if (!has)
    return qf_errorf(err, QF_ERR_UNSUPPORTED, "container",
                     "scheme '%s' has no %s slot (it owns no file format)", p->desc->name, slot);
  QF_CALL(p, "create", vt->create(host, config_json ? config_json : "{}",
                                  op != QF_CONTAINER_EXPORT, &q, &perr));
  qf_env env;
  memset(&env, 0, sizeof env);
  env.struct_size = sizeof env;
  env.backend = p->backend;
  env.device_count = p->backend == QF_BACKEND_CPU ? 0 : -1;
  env.device_map_json = "{\"\": \"cpu\"}";
  env.n_threads = host->n_threads(host);
  QF_CALL(p, "validate_environment", vt->validate_environment(q, &env, &perr));
  if (op == QF_CONTAINER_EXPORT) {
    if (model && QF_VT(p, preprocess_model))
      QF_CALL(p, "preprocess_model", vt->preprocess_model(q, model, &perr));
    QF_CALL(p, slot, vt->container_export(q, model, out_path, &perr));
  } else if (op == QF_CONTAINER_IMPORT) {
    QF_CALL(p, slot, vt->container_import(q, in_path, model, &perr));
  } else {
    char *text = NULL;
    QF_CALL(p, slot, vt->container_describe(q, in_path, &text, &perr));
    *describe_json = text ? strdup(text) : NULL;
    host->free(text);
  }
  vt->destroy(q);
  return QF_OK;
fail:
  (void)s;
  (void)dmap;
  if (q) vt->destroy(q);
  return err && err->code != QF_OK ? err->code : QF_ERR_INTERNAL;
}

qf_status qf_run_convert_format(qf_plugin *p, const char *config_json, qf_model *in,
                                const char *target, qf_model *out, char **config_out,
                                qf_error *err) {
  *config_out = NULL;
  if (!QF_VT(p, convert_format))
    return qf_errorf(err, QF_ERR_UNSUPPORTED, "convert",
                     "scheme '%s' cannot convert its checkpoints to another layout",
                     p->desc->name);
  qf_run_options o = {0};
  o.struct_size = sizeof o;
  o.pre_quantized = 1;
  o.config_json = config_json;
  qf_session *s = NULL;
  qf_status st = qf_run_lifecycle(p, in, &o, &s, err);
  if (st != QF_OK) return st;
  qf_error perr;
  qf_error_clear(&perr);
  char *text = NULL;
  st = p->desc->vtable->convert_format(s->q, in, out, target, &text, &perr);
  if (st != QF_OK) {
    qf__plugin_fail(p, "convert_format", st, &perr, err);
  } else {
    *config_out = text ? strdup(text) : NULL;
  }
  qf_host_table()->free(text);
  qf_session_free(s);
  return st;
}
