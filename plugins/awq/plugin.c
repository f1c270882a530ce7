/*
 * The AWQ plugin's lifecycle table: descriptor, entry points and the
 * HfQuantizer-style slots (create … get_config_json). Together with
 * plugin_calib.c (quantizing with calibration) and plugin_forward.c
 * (dequantize, linear_forward) it is the only code that knows the ABI;
 * the algorithm and formats live in qf_awq_core.
 *
 * Calibration (see plugin_calib.c): with ABI 1.1's model calibration
 * (calib_inputs + calib_block_forward, plus calib_part_forward so q/k/v and
 * gate/up are scored on the attention / MLP output as in AutoAWQ) whole
 * decoder blocks get AWQ — the activation-aware scale search folded into
 * the norms / v_proj / up_proj, then the clip search — and the rescaled
 * norms replace the originals (the plugin claims them in
 * param_needs_quantization). Without it a linear is taken as final ("given
 * scales") and gets the clip search from its inputs or from a calibration
 * Hessian (calib_hessian, ∝ XᵀX) when either is available, AutoAWQ
 * round-to-nearest with zero point otherwise (raw mode).
 * AWQ captures block i+1's input from the float block i, so the descriptor
 * does not ask for QF_CAP_CALIB_SEQUENTIAL_QUANTIZED.
 *
 * Names: the float weight "<prefix>weight" [N, K] becomes "<prefix>qweight",
 * "<prefix>qzeros", "<prefix>scales" (prefix "" in raw mode).
 */
#include <stdlib.h>
#include <string.h>

#include "plugin_internal.h"
#if QF_AWQ_GPU
#include "kernels/awq_gpu.h"
#endif

#define PLUGIN QF_AWQ_PLUGIN
#define NAME_MAX_LEN QF_AWQ_NAME_MAX
#define LOG QF_AWQ_LOG

/* "<prefix>weight" with prefix "" or ending in '.'. */
int qf__awq_weight_prefix(const char *name, char *prefix, size_t size) {
  if (!name || !qf_strip_suffix(name, "weight", prefix, size)) return 0;
  const size_t n = strlen(prefix);
  return n == 0 || prefix[n - 1] == '.';
}

/* module name for matching: the prefix without its trailing '.' */
static void module_of(const char *prefix, char *out, size_t size) {
  snprintf(out, size, "%s", prefix);
  const size_t n = strlen(out);
  if (n && out[n - 1] == '.') out[n - 1] = '\0';
}

static int is_embedding(const char *module) {
  const char *last = strrchr(module, '.');
  last = last ? last + 1 : module;
  return strstr(last, "embed") || !strcmp(last, "wte") || !strcmp(last, "wpe");
}

qf_status qf__awq_find(const qf_quantizer *q, const qf_model *model,
                       const char *prefix, const char *leaf, qf_tensor_info *out,
                       qf_error *err) {
  char name[NAME_MAX_LEN + 16];
  snprintf(name, sizeof name, "%s%s", prefix, leaf);
  return qf_host_find_tensor(q->host, model, name, out, err);
}

/* Returns 1 the first time a module is recorded. */
static int remember_skip(qf_quantizer *q, const char *module) {
  pthread_mutex_lock(&q->lock);
  for (size_t i = 0; i < q->n_skipped; i++)
    if (!strcmp(q->skipped[i], module)) {
      pthread_mutex_unlock(&q->lock);
      return 0;
    }
  char **grown = realloc(q->skipped, (q->n_skipped + 1) * sizeof *grown);
  char *copy = strdup(module);
  if (grown) q->skipped = grown;
  if (grown && copy) q->skipped[q->n_skipped++] = copy;
  else free(copy);
  pthread_mutex_unlock(&q->lock);
  return 1;
}

/* Does the float tensor `name` become an AWQ linear? 0 = keep as is.
 * Shapes AWQ cannot store (N % 8, K % group) are kept float, logged, and
 * listed in modules_to_not_convert of the written config. */
int qf__awq_wants(qf_quantizer *q, const qf_model *model, const char *name) {
  char prefix[NAME_MAX_LEN], module[NAME_MAX_LEN];
  if (q->pre_quantized || !qf__awq_weight_prefix(name, prefix, sizeof prefix)) return 0;
  module_of(prefix, module, sizeof module);
  if (module[0] && (is_embedding(module) || strstr(module, "lm_head") ||
                    qf_awq_config_skips(&q->cfg, module)))
    return 0;
  qf_tensor_info ti;
  qf_error e;
  if (qf_host_find_tensor(q->host, model, name, &ti, &e) != QF_OK) return 0;
  if (ti.tensor.ndim != 2 || !qf_dtype_is_float(ti.tensor.dtype)) return 0;
  const int64_t n = ti.tensor.shape[0], k = ti.tensor.shape[1];
  const int64_t g = q->cfg.group_size > 0 ? q->cfg.group_size : k;
  const int gemv_bad = q->cfg.layout == QF_AWQ_LAYOUT_GEMV &&
                       (k % 8 || qf_awq_gemv_zeros_width(k, g) < 0);
  if (n <= 0 || k <= 0 || n % 8 || k % g || gemv_bad) {
    if (module[0] && remember_skip(q, module)) {
      LOG(q, QF_LOG_WARN, "%s kept in float: shape [%lld, %lld] does not fit AWQ (N %% 8, K %% group_size)",
          module, (long long)n, (long long)k);
    }
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ lifecycle */

static qf_status awq_create(const qf_host *host, const char *config_json,
                            int pre_quantized, qf_quantizer **out,
                            qf_error *err) {
  if (!host || !out)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "create", "host and out are required");
  *out = NULL;
  qf_quantizer *q = calloc(1, sizeof *q);
  if (!q) return qf_fail(err, QF_ERR_NO_MEMORY, PLUGIN, "create", "out of memory");
  char msg[512];
  qf_status st = qf_awq_config_parse(config_json, &q->cfg, msg, sizeof msg);
  if (st != QF_OK) {
    free(q);
    return qf_fail(err, st, PLUGIN, "create", "%s", msg);
  }
  if (pthread_mutex_init(&q->lock, NULL) != 0) {
    qf_awq_config_free(&q->cfg);
    free(q);
    return qf_fail(err, QF_ERR_INTERNAL, PLUGIN, "create", "cannot create a mutex");
  }
  q->host = host;
  q->pre_quantized = pre_quantized;
  *out = q;
  return QF_OK;
}

static void awq_destroy(qf_quantizer *q) {
  if (!q) return;
  qf__awq_cache_free(q);
  for (size_t i = 0; i < q->n_blocks_done; i++) free(q->blocks_done[i]);
  free(q->blocks_done);
  for (size_t i = 0; i < q->n_skipped; i++) free(q->skipped[i]);
  free(q->skipped);
  qf_awq_config_free(&q->cfg);
  pthread_mutex_destroy(&q->lock);
  free(q);
}

static qf_status awq_validate_environment(qf_quantizer *q, const qf_env *env,
                                          qf_error *err) {
  if (!q) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "validate_environment", "no quantizer");
  /* Partial environments are normal (second call: device map only). The
   * CPU kernels run everywhere; a GPU build falls back to them. */
  if (env && QF_HAS_FIELD(env, qf_env, compute_dtype) && env->compute_dtype.bits != 0 &&
      !qf_dtype_is_float(env->compute_dtype))
    return qf_fail(err, QF_ERR_UNSUPPORTED, PLUGIN, "validate_environment",
                   "compute dtype must be float32, float16 or bfloat16");
  return QF_OK;
}

static qf_status awq_adjust_target_dtype(qf_quantizer *q, DLDataType *dtype,
                                         qf_error *err) {
  (void)q;
  if (!dtype) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "adjust_target_dtype", "no dtype");
  *dtype = qf_dl_dtype(kDLInt, 4);
  return QF_OK;
}

static qf_status awq_param_element_size(qf_quantizer *q, const qf_model *model,
                                        const char *name, double *bytes,
                                        qf_error *err) {
  if (!q || !bytes) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "param_element_size", "no output");
  qf_tensor_info ti;
  qf_status st = qf_host_find_tensor(q->host, model, name, &ti, err);
  if (st != QF_OK) return st;
  if (qf__awq_wants(q, model, name)) {
    const double g = (double)(q->cfg.group_size > 0 ? q->cfg.group_size : ti.tensor.shape[1]);
    *bytes = 0.5 + 2.5 / g; /* 4-bit weight + fp16 scale and 4-bit zero per group */
  } else {
    *bytes = ti.tensor.dtype.bits / 8.0;
  }
  return QF_OK;
}

static qf_status awq_preprocess_model(qf_quantizer *q, qf_model *model,
                                      qf_error *err) {
  if (!q || !model) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "preprocess_model", "no model");
  const size_t n = q->host->model_tensor_count(model);
  size_t todo = 0;
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    qf_status st = qf_host_tensor_at(q->host, model, i, &ti, err);
    if (st != QF_OK) return st;
    if (qf__awq_wants(q, model, ti.name)) todo++;
  }
  if (!q->pre_quantized)
    LOG(q, QF_LOG_INFO, "%zu linear weights to quantize (%s, group %lld)", todo, q->cfg.version,
        (long long)q->cfg.group_size);
  return QF_OK;
}

static qf_status awq_param_needs_quantization(qf_quantizer *q,
                                              const qf_model *model,
                                              const char *name, int *out,
                                              qf_error *err) {
  if (!q || !name || !out)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "param_needs_quantization", "bad arguments");
  /* linears, plus the block norms / biases AWQ rescales (so that the scaled
   * versions, not the originals, reach the output) */
  *out = qf__awq_wants(q, model, name) || (!q->pre_quantized && qf__awq_block_aux(name));
  return QF_OK;
}

/* A claimed block norm / bias that no block run replaced: emit it as is. */
static qf_status emit_unchanged(qf_quantizer *q, qf_model *model, const char *name,
                                const DLTensor *value, qf_error *err) {
  if (!value->data || (value->strides && value->ndim > 1))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "create_quantized_param",
                   "%s: expected a compact CPU tensor", name);
  return q->host->model_put_tensor(model, name, value, err);
}

static qf_status awq_create_quantized_param(qf_quantizer *q, qf_model *model,
                                            const char *name,
                                            const DLTensor *value,
                                            qf_calib *calib, qf_error *err) {
  static const char *op = "create_quantized_param";
  char prefix[NAME_MAX_LEN], bp[NAME_MAX_LEN];
  if (!q || !model || !name || !value)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, op, "bad arguments");
  if (value->device.device_type != kDLCPU)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, op, "%s: expected a CPU tensor", name);

  /* Block level AWQ (ABI 1.1 calibration): the first tensor of a block
   * runs and emits the whole block. */
  const int in_block = qf__awq_block_prefix(name, bp, sizeof bp);
  if (in_block && calib && !qf__awq_block_is_done(q, bp)) {
    int ran = 0;
    qf_status st = qf__awq_run_block(q, model, bp, calib, &ran, err);
    if (st != QF_OK) return st;
    if (ran) qf__awq_block_mark_done(q, bp);
  }
  if (in_block && qf__awq_block_is_done(q, bp)) return QF_OK; /* already emitted */
  if (qf__awq_block_aux(name)) return emit_unchanged(q, model, name, value, err);

  /* One linear on its own */
  if (!qf__awq_weight_prefix(name, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, op,
                   "%s: expected a linear weight named \"<module>.weight\"", name);
  if (value->ndim != 2 || !value->shape || !value->data || !qf_dtype_is_float(value->dtype))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, op,
                   "%s: expected a 2-D float32/float16/bfloat16 tensor", name);
  const int64_t n = value->shape[0], k = value->shape[1];
  const int64_t g = q->cfg.group_size > 0 ? q->cfg.group_size : k;
  if (n <= 0 || k <= 0 || n % 8 || k % g)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, op,
                   "%s: shape [%lld, %lld] needs out_features %% 8 == 0 and in_features %% %lld == 0",
                   name, (long long)n, (long long)k, (long long)g);
  if (q->cfg.layout == QF_AWQ_LAYOUT_GEMV && (qf_awq_gemv_zeros_width(k, g) < 0 || k % 8))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, op,
                   "%s: the gemv layout needs group_size 32, 64 or >= 128", name);
  float *w = malloc((size_t)(n * k) * sizeof *w);
  if (!w) return qf_fail(err, QF_ERR_NO_MEMORY, PLUGIN, op, "%s: out of memory", name);
  qf_tensor_to_f32(value, w);
  int clipped = 0;
  qf_status st = qf__awq_clip_linear(q, name, w, n, k, calib, &clipped, err);
  if (st == QF_OK && !clipped && !qf_awq_clip_skipped(name)) {
    pthread_mutex_lock(&q->lock);
    const int first = !q->logged_rtn;
    q->logged_rtn = 1;
    pthread_mutex_unlock(&q->lock);
    if (first)
      LOG(q, QF_LOG_INFO, "no calibration data%s: AutoAWQ round-to-nearest with zero point",
          calib ? " for some linears" : "");
  }
  if (st == QF_OK) st = qf__awq_emit_linear(q, model, prefix, w, n, k, op, err);
  free(w);
  return st;
}

/* Keys of a module stored as qweight/qzeros/scales: has "<prefix>qweight". */
static int has_qweight(const qf_quantizer *q, const qf_model *model,
                       const char *prefix) {
  qf_tensor_info ti;
  qf_error e;
  return qf__awq_find(q, model, prefix, "qweight", &ti, &e) == QF_OK;
}

static qf_status awq_update_missing_keys(qf_quantizer *q, const qf_model *model,
                                         const char *const *keys, size_t n,
                                         uint8_t *keep, qf_error *err) {
  if (!q || (n && (!keys || !keep)))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "update_missing_keys", "bad arguments");
  char prefix[NAME_MAX_LEN];
  for (size_t i = 0; i < n; i++)
    if (qf__awq_weight_prefix(keys[i], prefix, sizeof prefix) && has_qweight(q, model, prefix))
      keep[i] = 0;
  return QF_OK;
}

static qf_status awq_update_unexpected_keys(qf_quantizer *q,
                                            const qf_model *model,
                                            const char *const *keys, size_t n,
                                            uint8_t *keep, qf_error *err) {
  static const char *const leaves[] = {"qweight", "qzeros", "scales"};
  if (!q || (n && (!keys || !keep)))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "update_unexpected_keys", "bad arguments");
  char prefix[NAME_MAX_LEN];
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < 3; j++)
      if (qf_strip_suffix(keys[i], leaves[j], prefix, sizeof prefix) &&
          (!prefix[0] || prefix[strlen(prefix) - 1] == '.') && has_qweight(q, model, prefix))
        keep[i] = 0;
  return QF_OK;
}

/* Find and validate the tensors of the module at `prefix`. */
qf_status qf__awq_load_module(qf_quantizer *q, const qf_model *model,
                              const char *prefix, const char *op,
                              qf_tensor_info t[4], qf_awq_module_shape *shape,
                              qf_error *err) {
  static const char *const leaves[4] = {"qweight", "qzeros", "scales", "bias"};
  const DLTensor *p[4] = {NULL, NULL, NULL, NULL};
  for (int i = 0; i < 4; i++) {
    qf_error e;
    if (qf__awq_find(q, model, prefix, leaves[i], &t[i], &e) == QF_OK) p[i] = &t[i].tensor;
  }
  char msg[512];
  qf_status st = qf_awq_validate_module(q->cfg.layout, prefix, p[0], p[1], p[2], p[3],
                                        q->cfg.bits, q->cfg.group_size, shape, msg, sizeof msg);
  if (st != QF_OK) return qf_fail(err, st, PLUGIN, op, "%s", msg);
  return QF_OK;
}

static qf_status awq_postprocess_model(qf_quantizer *q, qf_model *model,
                                       qf_error *err) {
  if (!q || !model) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "postprocess_model", "no model");
  const size_t n = q->host->model_tensor_count(model);
  size_t modules = 0;
  char prefix[NAME_MAX_LEN];
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    qf_status st = qf_host_tensor_at(q->host, model, i, &ti, err);
    if (st != QF_OK) return st;
    int check = 0;
    if (qf_strip_suffix(ti.name, "qweight", prefix, sizeof prefix) ||
        qf_strip_suffix(ti.name, "qzeros", prefix, sizeof prefix))
      check = !prefix[0] || prefix[strlen(prefix) - 1] == '.';
    else if (!q->pre_quantized && qf__awq_wants(q, model, ti.name) &&
             qf__awq_weight_prefix(ti.name, prefix, sizeof prefix))
      check = has_qweight(q, model, prefix);
    if (!check) continue;
    /* qzeros is checked for orphans; each module is validated once */
    if (qf_strip_suffix(ti.name, "qzeros", prefix, sizeof prefix) && has_qweight(q, model, prefix))
      continue;
    qf_tensor_info t[4];
    qf_awq_module_shape shape;
    st = qf__awq_load_module(q, model, prefix, "postprocess_model", t, &shape, err);
    if (st != QF_OK) return st;
    modules++;
  }
  LOG(q, QF_LOG_INFO, "%zu AWQ linear modules checked", modules);
  return QF_OK;
}

static qf_status awq_get_config_json(qf_quantizer *q, char **out_json,
                                     qf_error *err) {
  if (!q || !out_json) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "get_config_json", "no output");
  pthread_mutex_lock(&q->lock);
  char *text = qf_awq_config_to_json(&q->cfg, (const char *const *)q->skipped, q->n_skipped);
  pthread_mutex_unlock(&q->lock);
  if (!text) return qf_fail(err, QF_ERR_NO_MEMORY, PLUGIN, "get_config_json", "out of memory");
  *out_json = qf_host_strdup(q->host, text);
  free(text);
  return *out_json ? QF_OK
                   : qf_fail(err, QF_ERR_NO_MEMORY, PLUGIN, "get_config_json", "out of memory");
}

/* ------------------------------------------------------------ descriptor */

static const qf_quantizer_vtable awq_vtable = {
    .struct_size = sizeof(qf_quantizer_vtable),
    .create = awq_create,
    .destroy = awq_destroy,
    .validate_environment = awq_validate_environment,
    .update_dtype = NULL,
    .update_device_map = NULL,
    .adjust_target_dtype = awq_adjust_target_dtype,
    .adjust_max_memory = NULL,
    .param_element_size = awq_param_element_size,
    .preprocess_model = awq_preprocess_model,
    .param_needs_quantization = awq_param_needs_quantization,
    .create_quantized_param = awq_create_quantized_param,
    .update_missing_keys = awq_update_missing_keys,
    .update_unexpected_keys = awq_update_unexpected_keys,
    .postprocess_model = awq_postprocess_model,
    .get_config_json = awq_get_config_json,
    .dequantize = qf__awq_dequantize,
    .linear_forward = qf__awq_linear_forward,
    .convert_format = qf__awq_convert_format,
};

static const char *const awq_methods[] = {"awq", NULL};

#if defined(QF_BUILD_CUDA)
#define QF_AWQ_BACKEND QF_BACKEND_CUDA
#elif defined(QF_BUILD_HIP)
#define QF_AWQ_BACKEND QF_BACKEND_HIP
#else
#define QF_AWQ_BACKEND QF_BACKEND_CPU
#endif

/* declared_rel_error: AutoAWQ's zero point is clamped to [0, 15], so a group
 * that does not straddle zero (a positive constant, say) can lose up to its
 * whole magnitude (a constant c > 0 dequantizes to 1e-5); the only bound that
 * holds for every input is the row absmax itself. Groups spanning zero stay
 * within one scale step, 2/15 of the absmax. */
static const qf_plugin_desc awq_desc = {
    .struct_size = sizeof(qf_plugin_desc),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .name = "awq",
    .version = "0.1.0",
    .description = "AWQ 4-bit (AutoAWQ GEMM/GEMV checkpoints; clip search from calibration, RTN otherwise)",
    .quant_methods = awq_methods,
    .backend = QF_AWQ_BACKEND,
    .caps = QF_CAP_REQUIRES_CALIBRATION | QF_CAP_SERIALIZABLE | QF_CAP_PREQUANTIZED_LOAD |
            QF_CAP_DEQUANTIZE | QF_CAP_LINEAR_FORWARD,
    .declared_rel_error = 1.0,
    .example_config_json = "{\"bits\":4,\"group_size\":128,\"zero_point\":true,\"version\":\"gemm\"}",
    .vtable = &awq_vtable,
};

QF_PLUGIN_EXPORT qf_status qf_plugin_init(const qf_host *host,
                                          const qf_plugin_desc **out,
                                          qf_error *err) {
  qf_status st = qf_plugin_check_host(host, out, PLUGIN, QF_STRUCT_SIZE_TO(qf_host, model_put_tensor), err);
  if (st != QF_OK) return st;
  *out = &awq_desc;
  return QF_OK;
}

QF_PLUGIN_EXPORT int qf_plugin_score(void) {
#if QF_AWQ_GPU
  return qf_awq_gpu_device_count() > 0 ? 10 : 0;
#else
  return 1;
#endif
}
