/*
 * The GPTQ plugin's ABI glue (the only files that know plugin.h are this one
 * and plugin_modules.c): the descriptor, and the lifecycle slots of
 * transformers' GptqHfQuantizer — create from GPTQConfig JSON, environment
 * checks tolerant of partial environments, dtype (float16 by default) and
 * device-map defaults, which tensors become GPTQ modules (linear weights
 * and their biases; lm_head, embeddings and modules_to_not_convert stay
 * float as transformers/optimum leave them), create_quantized_param
 * (Hessian from the host's calibration, GPTQ, AutoGPTQ packing into
 * qweight / qzeros / scales (float16) / g_idx) and get_config_json. The
 * pre-quantized side, dequantize and linear_forward are in
 * plugin_modules.c. Built three times: cpu, cuda and hip (QF_BUILD_*).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_priv.h"
#include "qforge/plugin_util.h"

#define NAME QF_GPTQ_PLUGIN

#if defined(QF_BUILD_CUDA)
#define BUILD_BACKEND QF_BACKEND_CUDA
#elif defined(QF_BUILD_HIP)
#define BUILD_BACKEND QF_BACKEND_HIP
#else
#define BUILD_BACKEND QF_BACKEND_CPU
#endif

static const char *backend_name(qf_backend b) {
  return b == QF_BACKEND_CUDA ? "cuda" : b == QF_BACKEND_HIP ? "hip" : "cpu";
}

/* ------------------------------------------------------------ names */

int qf_gptq__prefix_of(const char *name, const char *suffix, char *prefix,
                       size_t n) {
  size_t ln = strlen(name), ls = strlen(suffix);
  if (ln < ls || strcmp(name + ln - ls, suffix) != 0) return 0;
  if (ln > ls && name[ln - ls - 1] != '.') return 0;
  if (ln - ls + 1 > n) return 0;
  memcpy(prefix, name, ln - ls);
  prefix[ln - ls] = '\0';
  return 1;
}

int qf_gptq__find(const qf_quantizer *q, const qf_model *m,
                  const char *prefix, const char *leaf, qf_tensor_info *ti) {
  char full[QF_GPTQ_PREFIX_MAX + 32];
  if ((size_t)snprintf(full, sizeof full, "%s%s", prefix, leaf) >= sizeof full)
    return 0;
  qf_error e;
  return qf_host_find_tensor(q->host, m, full, ti, &e) == QF_OK;
}

/* Is the module (prefix "a.b.", or "" for a bare weight) left float? */
static int module_skipped(const qf_quantizer *q, const char *prefix) {
  char mod[QF_GPTQ_PREFIX_MAX];
  snprintf(mod, sizeof mod, "%s", prefix);
  size_t l = strlen(mod);
  if (l && mod[l - 1] == '.') mod[--l] = '\0';
  if (!q->cfg.lm_head && strstr(mod, "lm_head")) return 1;
  if (strstr(mod, "embed")) return 1; /* embeddings are never GPTQ linears */
  for (size_t i = 0; i < q->cfg.n_skip; i++)
    if (q->cfg.skip[i][0] && strstr(mod, q->cfg.skip[i])) return 1;
  const char *blk = q->cfg.block_name_to_quantize;
  if (blk && *blk && l && strncmp(mod, blk, strlen(blk)) != 0 &&
      !(q->cfg.lm_head && strstr(mod, "lm_head")))
    return 1;
  if (q->cfg.n_inblock && l) {
    int hit = 0;
    for (size_t i = 0; i < q->cfg.n_inblock && !hit; i++) {
      size_t li = strlen(q->cfg.inblock[i]);
      hit = l >= li && !strcmp(mod + l - li, q->cfg.inblock[i]) &&
            (l == li || mod[l - li - 1] == '.');
    }
    if (!hit) return 1;
  }
  return 0;
}

/* A float 2-D weight of a module this config quantizes. */
static int quantizable_weight(const qf_quantizer *q, const qf_model *m,
                              const char *prefix) {
  qf_tensor_info ti;
  if (!qf_gptq__find(q, m, prefix, "weight", &ti)) return 0;
  if (ti.tensor.ndim != 2 || !qf_dtype_is_float(ti.tensor.dtype)) return 0;
  return !module_skipped(q, prefix);
}

/* ------------------------------------------------------------ lifecycle */

static qf_status gptq_create(const qf_host *host, const char *config_json,
                             int pre_quantized, qf_quantizer **out,
                             qf_error *err) {
  *out = NULL;
  qf_quantizer *q = calloc(1, sizeof *q);
  if (!q) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create", "no memory");
  qf_status st = qf_gptq_config_parse(config_json, &q->cfg, err);
  if (st != QF_OK) {
    free(q);
    return st;
  }
  q->host = host;
  q->pre_quantized = pre_quantized ? 1 : 0;
  pthread_mutex_init(&q->mu, NULL);
  *out = q;
  return QF_OK;
}

static void gptq_destroy(qf_quantizer *q) {
  if (!q) return;
  qf_gptq__free_modules(q);
  pthread_mutex_destroy(&q->mu);
  qf_gptq_config_free(&q->cfg);
  free(q);
}

static qf_status gptq_validate_environment(qf_quantizer *q, const qf_env *env,
                                           qf_error *err) {
  if (!env) return QF_OK;
  if (QF_HAS_FIELD(env, qf_env, backend) && env->backend != 0 &&
      env->backend != BUILD_BACKEND)
    return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "validate_environment",
                   "this is the %s build of the gptq plugin but the host "
                   "chose the %s backend", backend_name(BUILD_BACKEND),
                   backend_name(env->backend));
#if QF_GPTQ_GPU
  if (QF_HAS_FIELD(env, qf_env, device_count) && env->device_count == 0)
    return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "validate_environment",
                   "the %s build of gptq needs a GPU, and none is visible",
                   backend_name(BUILD_BACKEND));
#endif
  (void)q; /* like GptqHfQuantizer: any device map is accepted */
  return QF_OK;
}

static qf_status gptq_update_dtype(qf_quantizer *q, DLDataType *dtype,
                                   qf_error *err) {
  (void)err;
  if (dtype->bits == 0) {
    q->host->log(q->host, QF_LOG_DEBUG, NAME,
                 "loading the model in float16 (GPTQ kernels compute in "
                 "float16)");
    *dtype = qf_dl_dtype(kDLFloat, 16);
  } else if (!(dtype->code == kDLFloat && dtype->bits == 16)) {
    q->host->log(q->host, QF_LOG_INFO, NAME,
                 "we suggest float16 for GPTQ models (the requested dtype is "
                 "kept)");
  }
  return QF_OK;
}

static qf_status gptq_update_device_map(qf_quantizer *q, const char *in_json,
                                        char **out_json, qf_error *err) {
  *out_json = NULL;
  if (in_json) return QF_OK;
  const char *def = BUILD_BACKEND == QF_BACKEND_CPU ? "{\"\": \"cpu\"}"
                                                    : "{\"\": 0}";
  char *s = qf_host_strdup(q->host, def);
  if (!s)
    return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "update_device_map",
                   "no memory");
  *out_json = s;
  return QF_OK;
}

static qf_status gptq_param_element_size(qf_quantizer *q, const qf_model *m,
                                         const char *name, double *bytes,
                                         qf_error *err) {
  (void)m;
  (void)name;
  (void)err;
  const double g = q->cfg.group_size > 0 ? q->cfg.group_size : 4096.0;
  *bytes = q->cfg.bits / 8.0 + 2.0 / g; /* integers + one f16 scale a group */
  return QF_OK;
}

static qf_status gptq_param_needs_quantization(qf_quantizer *q,
                                               const qf_model *m,
                                               const char *name, int *out,
                                               qf_error *err) {
  (void)err;
  char prefix[QF_GPTQ_PREFIX_MAX];
  *out = 0;
  if (q->pre_quantized) return QF_OK; /* tensors are loaded as they are */
  if (qf_gptq__prefix_of(name, "weight", prefix, sizeof prefix))
    *out = quantizable_weight(q, m, prefix);
  else if (qf_gptq__prefix_of(name, "bias", prefix, sizeof prefix))
    *out = quantizable_weight(q, m, prefix); /* stored float16 beside it */
  return QF_OK;
}

static qf_status check_shape(const qf_quantizer *q, const char *name,
                             int64_t n, int64_t k, qf_error *err) {
  if (k % 32 != 0 || (n * q->cfg.bits) % 32 != 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "preprocess_model",
                   "tensor '%s' is [%lld, %lld]: the GPTQ layout needs "
                   "in_features %% 32 == 0 and out_features * %d %% 32 == 0; "
                   "list the module in modules_to_not_convert to keep it "
                   "float", name, (long long)n, (long long)k, q->cfg.bits);
  return QF_OK;
}

static qf_status gptq_preprocess_model(qf_quantizer *q, qf_model *m,
                                       qf_error *err) {
  if (q->pre_quantized) return QF_OK; /* validated in postprocess_model */
  const size_t n = q->host->model_tensor_count(m);
  int64_t count = 0;
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    qf_status st = qf_host_tensor_at(q->host, m, i, &ti, err);
    if (st != QF_OK) return st;
    char prefix[QF_GPTQ_PREFIX_MAX];
    if (!qf_gptq__prefix_of(ti.name, "weight", prefix, sizeof prefix)) continue;
    if (!quantizable_weight(q, m, prefix)) continue;
    st = check_shape(q, ti.name, ti.tensor.shape[0], ti.tensor.shape[1], err);
    if (st != QF_OK) return st;
    count++;
  }
  q->host->log(q->host, QF_LOG_INFO, NAME,
               "%lld linear weights will be quantized (%d-bit, group %d%s%s)",
               (long long)count, q->cfg.bits, q->cfg.group_size,
               q->cfg.desc_act ? ", act_order" : "",
               q->cfg.sym ? ", sym" : ", asym");
  return QF_OK;
}

typedef struct log_ctx {
  const qf_host *host;
  const char *name;
} log_ctx;

static void gptq_log(void *user, qf_log_level lvl, const char *msg) {
  const log_ctx *c = user;
  c->host->log(c->host, lvl, NAME, "%s: %s", c->name, msg);
}

static qf_status put(qf_quantizer *q, qf_model *m, const char *prefix,
                     const char *leaf, void *data, DLDataType dt, int ndim,
                     int64_t d0, int64_t d1, qf_error *err) {
  char full[QF_GPTQ_PREFIX_MAX + 32];
  snprintf(full, sizeof full, "%s%s", prefix, leaf);
  int64_t shape[2] = {d0, d1};
  DLTensor t = qf_cpu_tensor(data, dt, ndim, shape);
  return q->host->model_put_tensor(m, full, &t, err);
}

static qf_status emit_bias(qf_quantizer *q, qf_model *m, const char *prefix,
                           const DLTensor *value, qf_error *err) {
  if (value->ndim != 1 || !qf_dtype_is_float(value->dtype))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME,
                   "create_quantized_param", "tensor '%sbias' must be a 1-D "
                   "float tensor", prefix);
  const int64_t n = value->shape[0];
  float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  uint16_t *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(uint16_t));
  qf_status st;
  if (!f || !h) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create_quantized_param",
                 "no memory");
  } else {
    qf_tensor_to_f32(value, f);
    for (int64_t i = 0; i < n; i++) h[i] = qf_f32_to_f16(f[i]);
    st = put(q, m, prefix, "bias", h, qf_dl_dtype(kDLFloat, 16), 1, n, 0, err);
  }
  free(f);
  free(h);
  return st;
}

/* H from the captured inputs (host ABI >= 1.1), accumulated as AutoGPTQ's
 * add_batch does over 2048-token sequences. */
static qf_status hessian_from_inputs(qf_quantizer *q, qf_calib *calib,
                                     const char *name, int64_t k,
                                     qf_gptq_hessian *hs) {
  if (!QF_HAS_FIELD(q->host, qf_host, calib_inputs) || !q->host->calib_inputs)
    return QF_ERR_UNSUPPORTED;
  const float *x = NULL;
  int64_t tokens = 0, xk = 0;
  qf_error e;
  memset(&e, 0, sizeof e);
  if (q->host->calib_inputs(calib, name, &x, &tokens, &xk, &e) != QF_OK ||
      !x || xk != k || tokens <= 0)
    return QF_ERR_NOT_FOUND;
  qf_status st = qf_gptq_hessian_init(hs, k, &e);
  for (int64_t t0 = 0; st == QF_OK && t0 < tokens; t0 += 2048) {
    const int64_t nt = tokens - t0 < 2048 ? tokens - t0 : 2048;
    st = qf_gptq_hessian_add_batch(hs, x + t0 * k, nt, 1, &e);
  }
  if (st != QF_OK) qf_gptq_hessian_free(hs);
  return st;
}

static qf_status gptq_create_quantized_param(qf_quantizer *q, qf_model *m,
                                             const char *name,
                                             const DLTensor *value,
                                             qf_calib *calib, qf_error *err) {
  const char *op = "create_quantized_param";
  char prefix[QF_GPTQ_PREFIX_MAX];
  if (!value)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op, "no tensor given "
                   "for '%s'", name ? name : "?");
  if (name && qf_gptq__prefix_of(name, "bias", prefix, sizeof prefix))
    return emit_bias(q, m, prefix, value, err);
  if (!name || !qf_gptq__prefix_of(name, "weight", prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "'%s' is not a linear weight (expected a name ending in "
                   "'weight')", name ? name : "(null)");
  if (value->ndim != 2 || !qf_dtype_is_float(value->dtype))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "tensor '%s' must be a 2-D f32/f16/bf16 weight", name);
  if (value->device.device_type != kDLCPU)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "tensor '%s' must be in CPU memory", name);
  const int64_t n = value->shape[0], k = value->shape[1];
  qf_status st = check_shape(q, name, n, k, err);
  if (st != QF_OK) return st;
  if (!calib)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "GPTQ needs calibration data (a Hessian) to quantize '%s'",
                   name);
  const float *h = NULL;
  int64_t hk = 0;
  qf_gptq_hessian own;
  memset(&own, 0, sizeof own);
  st = q->host->calib_hessian(calib, name, &h, &hk, err);
  if (st != QF_OK && hessian_from_inputs(q, calib, name, k, &own) == QF_OK) {
    h = own.h; /* ABI 1.1 hosts: accumulate it from the captured inputs */
    hk = own.k;
    st = QF_OK;
  }
  if (st != QF_OK) return st;
  if (!h || hk != k) {
    qf_gptq_hessian_free(&own);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "the Hessian of '%s' is %lldx%lld; expected %lldx%lld "
                   "(in_features)", name, (long long)hk, (long long)hk,
                   (long long)k, (long long)k);
  }
  float *w = malloc((size_t)n * (size_t)k * sizeof(float));
  if (!w) {
    qf_gptq_hessian_free(&own);
    return qf_fail(err, QF_ERR_NO_MEMORY, NAME, op, "no memory for '%s'",
                   name);
  }
  qf_tensor_to_f32(value, w);
  qf_gptq_opts o;
  qf_gptq_config_opts(&q->cfg, q->host->n_threads(q->host), &o);
  qf_gptq_out out;
  log_ctx lc = {q->host, name};
  st = qf_gptq_quantize(w, h, n, k, &o, 0, gptq_log, &lc, &out, err);
  free(w);
  qf_gptq_hessian_free(&own);
  if (st != QF_OK) return st;
  qf_gptq_ckpt ck;
  int64_t under = 0;
  st = qf_gptq_pack(q->cfg.bits, n, k, out.ngroups, out.qint, out.scale,
                    out.zero, out.g_idx, q->cfg.v2, &ck, &under, err);
  const double loss = out.loss;
  qf_gptq_out_free(&out);
  if (st != QF_OK) return st;
  if (under && !q->warned_v1_zero) {
    q->warned_v1_zero = 1;
    q->host->log(q->host, QF_LOG_WARN, NAME,
                 "%s: %lld zero points are 0, which the v1 'gptq' format "
                 "cannot store portably (written as %d; loaders that mask "
                 "read 0, others do not); use checkpoint_format gptq_v2 or "
                 "sym=true", name, (long long)under, (1 << q->cfg.bits) - 1);
  }
  const int b = q->cfg.bits;
  const DLDataType i32 = qf_dl_dtype(kDLInt, 32);
  st = put(q, m, prefix, "qweight", ck.qweight, i32, 2, k * b / 32, n, err);
  if (st == QF_OK)
    st = put(q, m, prefix, "qzeros", ck.qzeros, i32, 2, ck.ngroups,
             n * b / 32, err);
  if (st == QF_OK)
    st = put(q, m, prefix, "scales", ck.scales, qf_dl_dtype(kDLFloat, 16), 2,
             ck.ngroups, n, err);
  if (st == QF_OK) st = put(q, m, prefix, "g_idx", ck.g_idx, i32, 1, k, 0, err);
  qf_gptq_ckpt_free(&ck);
  if (st != QF_OK) return st;
  qf_gptq__invalidate(q, prefix);
  pthread_mutex_lock(&q->mu);
  q->n_quantized++;
  pthread_mutex_unlock(&q->mu);
  if (QF_HAS_FIELD(q->host, qf_host, report_metric) && q->host->report_metric)
    q->host->report_metric(q->host, name, "gptq_loss", loss);
  else
    q->host->log(q->host, QF_LOG_DEBUG, NAME, "%s: GPTQ loss %.6g", name, loss);
  return QF_OK;
}

static qf_status gptq_get_config_json(qf_quantizer *q, char **out_json,
                                      qf_error *err) {
  *out_json = NULL;
  char *s = qf_gptq_config_to_json(&q->cfg);
  if (!s)
    return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_config_json",
                   "no memory");
  *out_json = qf_host_strdup(q->host, s);
  free(s);
  return *out_json ? QF_OK
                   : qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_config_json",
                             "no memory");
}

/* AutoGPTQ / GPTQModel read quantize_config.json beside the weights. */
static qf_status gptq_get_side_files_json(qf_quantizer *q, char **out_json, qf_error *err) {
  *out_json = NULL;
  char *qc = qf_gptq_config_quantize_config_json(&q->cfg);
  if (!qc) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_side_files_json", "no memory");
  size_t n = strlen(qc) + 64;
  char *text = malloc(n);
  if (text) snprintf(text, n, "{\"quantize_config.json\": %s}", qc);
  free(qc);
  if (!text) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_side_files_json", "no memory");
  *out_json = qf_host_strdup(q->host, text);
  free(text);
  return *out_json ? QF_OK
                   : qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_side_files_json", "no memory");
}

/* ------------------------------------------------------------ descriptor */

static const qf_quantizer_vtable k_vtable = {
    .struct_size = sizeof(qf_quantizer_vtable),
    .create = gptq_create,
    .destroy = gptq_destroy,
    .validate_environment = gptq_validate_environment,
    .update_dtype = gptq_update_dtype,
    .update_device_map = gptq_update_device_map,
    .adjust_target_dtype = NULL,
    .adjust_max_memory = NULL,
    .param_element_size = gptq_param_element_size,
    .preprocess_model = gptq_preprocess_model,
    .param_needs_quantization = gptq_param_needs_quantization,
    .create_quantized_param = gptq_create_quantized_param,
    .update_missing_keys = qf_gptq__update_missing_keys,
    .update_unexpected_keys = qf_gptq__update_unexpected_keys,
    .postprocess_model = qf_gptq__postprocess_model,
    .get_config_json = gptq_get_config_json,
    .dequantize = qf_gptq__dequantize,
    .linear_forward = qf_gptq__linear_forward,
    .get_side_files_json = gptq_get_side_files_json,
};

static const char *const k_methods[] = {"gptq", NULL};

static const qf_plugin_desc k_desc = {
    .struct_size = sizeof(qf_plugin_desc),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .name = NAME,
    .version = "0.1.0",
    .description = "GPTQ (AutoGPTQ / GPTQModel format, v1 and v2; 2/3/4/8 "
                   "bits, groups, act_order, static groups)",
    .quant_methods = k_methods,
    .backend = BUILD_BACKEND,
    .caps = QF_CAP_REQUIRES_CALIBRATION | QF_CAP_SERIALIZABLE |
            QF_CAP_TRAINABLE | QF_CAP_PREQUANTIZED_LOAD | QF_CAP_DEQUANTIZE |
            QF_CAP_LINEAR_FORWARD | QF_CAP_CALIB_SEQUENTIAL_QUANTIZED,
    .declared_rel_error = 0.25,
    .example_config_json =
        "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, "
        "\"sym\": true, \"desc_act\": false, \"static_groups\": false, "
        "\"damp_percent\": 0.01}",
    .vtable = &k_vtable,
};

QF_PLUGIN_EXPORT qf_status qf_plugin_init(const qf_host *host,
                                          const qf_plugin_desc **out,
                                          qf_error *err) {
  qf_status st = qf_plugin_check_host(host, out, NAME, QF_STRUCT_SIZE_TO(qf_host, n_threads), err);
  if (st != QF_OK) return st;
  *out = &k_desc;
  return QF_OK;
}

#if QF_GPTQ_GPU
QF_PLUGIN_EXPORT int qf_plugin_score(void) {
  return qf_gptq_gpu_device_count() > 0 ? 100 : 0;
}
#endif
