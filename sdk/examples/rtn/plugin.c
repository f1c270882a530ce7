/*
 * The RTN example scheme's plugin table: the one file that knows the qforge
 * ABI. It shows a complete, small plugin: config parsing and validation,
 * default skipped modules (lm_head), quantize → checkpoint tensors
 * (`qweight` U8 codes, `scales` F32, `zeros` U8 when asymmetric), dequantize,
 * a CPU linear_forward and, in the CUDA/HIP builds, a GPU one.
 *
 * Config (JSON, the quantization_config object):
 *   {"quant_method": "rtn", "bits": 4|8, "group_size": 128 (or -1), "sym": true}
 */
#include <cblas.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/plugin_util.h"
#include "rtn.h"
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
#include "rtn_gpu.h"
#endif

#define NAME "rtn"

#if defined(QF_BUILD_CUDA)
#define QF_RTN_BACKEND QF_BACKEND_CUDA
#elif defined(QF_BUILD_HIP)
#define QF_RTN_BACKEND QF_BACKEND_HIP
#else
#define QF_RTN_BACKEND QF_BACKEND_CPU
#endif

struct qf_quantizer {
  const qf_host *host;
  qf_rtn_params p;
  int pre_quantized;
  char **skip;      /* modules_to_not_convert (substring match) */
  size_t n_skip;
};

static const qf_host *qf__host;

/* ---- config ---- */

static qf_status qf__parse_config(qf_quantizer *q, const char *text, qf_error *err) {
  json_error_t je;
  json_t *j = json_loads(text ? text : "{}", 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config is not a JSON object");
  }
  qf_status st = QF_OK;
  json_t *v;
  q->p.bits = 4;
  q->p.group_size = 128;
  q->p.sym = 1;
  if ((v = json_object_get(j, "bits"))) {
    if (!json_is_integer(v) || (json_integer_value(v) != 4 && json_integer_value(v) != 8))
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.bits must be the integer 4 or 8");
    else
      q->p.bits = (int)json_integer_value(v);
  }
  if (st == QF_OK && (v = json_object_get(j, "group_size"))) {
    json_int_t g = json_integer_value(v);
    if (!json_is_integer(v) || (g != -1 && (g < 2 || g > (1 << 20))))
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.group_size must be -1 or an integer >= 2");
    else
      q->p.group_size = (int)g;
  }
  if (st == QF_OK && (v = json_object_get(j, "sym"))) {
    if (!json_is_boolean(v))
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.sym must be true or false");
    else
      q->p.sym = json_is_true(v);
  }
  json_t *skip = json_object_get(j, "modules_to_not_convert");
  if (st == QF_OK && skip && !json_is_null(skip)) {
    if (!json_is_array(skip)) {
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.modules_to_not_convert must be a list of strings");
    } else {
      q->skip = calloc(json_array_size(skip) + 1, sizeof *q->skip);
      for (size_t i = 0; q->skip && i < json_array_size(skip); i++) {
        const char *s = json_string_value(json_array_get(skip, i));
        if (!s) {
          st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                       "quantization_config.modules_to_not_convert[%zu] is not a string", i);
          break;
        }
        q->skip[q->n_skip++] = strdup(s);
      }
    }
  } else if (st == QF_OK) {
    q->skip = calloc(2, sizeof *q->skip); /* default: keep the output head in float */
    if (q->skip) q->skip[q->n_skip++] = strdup("lm_head");
  }
  json_decref(j);
  return st;
}

static void qf__destroy(qf_quantizer *q) {
  if (!q) return;
  for (size_t i = 0; i < q->n_skip; i++) free(q->skip[i]);
  free(q->skip);
  free(q);
}

static qf_status qf__create(const qf_host *host, const char *config_json, int pre_quantized,
                            qf_quantizer **out, qf_error *err) {
  qf_quantizer *q = calloc(1, sizeof *q);
  if (!q) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create", "out of memory");
  q->host = host;
  q->pre_quantized = pre_quantized;
  qf_status st = qf__parse_config(q, config_json, err);
  if (st != QF_OK) {
    qf__destroy(q);
    return st;
  }
  *out = q;
  return QF_OK;
}

static qf_status qf__validate_environment(qf_quantizer *q, const qf_env *env, qf_error *err) {
  if (QF_HAS_FIELD(env, qf_env, backend) && env->backend != 0 &&
      env->backend != QF_RTN_BACKEND)
    return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "validate_environment",
                   "this build runs on backend %d, the host asked for %d", QF_RTN_BACKEND,
                   (int)env->backend);
  return QF_OK;
}

/* ---- which tensors ---- */

static qf_status qf__needs(qf_quantizer *q, const qf_model *model, const char *name, int *out,
                           qf_error *err) {
  *out = 0;
  char prefix[512];
  if (strcmp(name, "weight") == 0) {
    prefix[0] = '\0';
  } else if (!qf_strip_suffix(name, ".weight", prefix, sizeof prefix)) {
    return QF_OK;
  }
  for (size_t i = 0; i < q->n_skip; i++)
    if (strstr(name, q->skip[i])) return QF_OK;
  if (strstr(name, "embed") || strstr(name, "norm")) return QF_OK;
  qf_tensor_info ti;
  if (q->host->model_find_tensor(model, name, &ti, err) != QF_OK) return QF_OK;
  if (ti.tensor.ndim != 2 || !qf_dtype_is_float(ti.tensor.dtype)) {
    /* a pre-quantized checkpoint has no float weight: nothing to do */
    return QF_OK;
  }
  *out = 1;
  return QF_OK;
}

/* ---- quantize ---- */

static void qf__tensor_name(char *buf, size_t n, const char *wname, const char *suffix) {
  char prefix[512] = "";
  if (!qf_strip_suffix(wname, "weight", prefix, sizeof prefix)) prefix[0] = '\0';
  snprintf(buf, n, "%s%s", prefix, suffix);
}

static qf_status qf__create_quantized_param(qf_quantizer *q, qf_model *model, const char *name,
                                            const DLTensor *value, qf_calib *calib,
                                            qf_error *err) {
  int64_t rows, cols;
  qf_matrix_shape(value, &rows, &cols);
  const int64_t G = qf_rtn_groups(&q->p, cols), rb = qf_rtn_row_bytes(&q->p, cols);
  float *w = malloc((size_t)(rows * cols) * sizeof *w);
  uint8_t *codes = malloc((size_t)(rows * rb) + 1);
  float *scales = malloc((size_t)(rows * G) * sizeof *scales);
  uint8_t *zeros = q->p.sym ? NULL : malloc((size_t)(rows * G));
  qf_status st = QF_OK;
  if (!w || !codes || !scales || (!q->p.sym && !zeros)) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create_quantized_param", "out of memory for '%s'",
                 name);
    goto out;
  }
  if (qf_tensor_to_f32(value, w) != 0) {
    st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                 "tensor '%s' must be f32, f16 or bf16", name);
    goto out;
  }
  qf_rtn_quantize(&q->p, w, rows, cols, codes, scales, zeros);
  char tname[600];
  int64_t cshape[2] = {rows, rb}, sshape[2] = {rows, G};
  DLTensor t = qf_cpu_tensor(codes, qf_dl_dtype(kDLUInt, 8), 2, cshape);
  qf__tensor_name(tname, sizeof tname, name, "qweight");
  if ((st = q->host->model_put_tensor(model, tname, &t, err)) != QF_OK) goto out;
  t = qf_cpu_tensor(scales, qf_dl_dtype(kDLFloat, 32), 2, sshape);
  qf__tensor_name(tname, sizeof tname, name, "scales");
  if ((st = q->host->model_put_tensor(model, tname, &t, err)) != QF_OK) goto out;
  if (zeros) {
    t = qf_cpu_tensor(zeros, qf_dl_dtype(kDLUInt, 8), 2, sshape);
    qf__tensor_name(tname, sizeof tname, name, "zeros");
    st = q->host->model_put_tensor(model, tname, &t, err);
  }
out:
  free(w);
  free(codes);
  free(scales);
  free(zeros);
  return st;
}

/* ---- the stored tensors of one module, checked ---- */

typedef struct qf__rtn_module {
  const uint8_t *codes;
  const float *scales;
  const uint8_t *zeros;
  const float *bias;
  int64_t rows, cols;
} qf__rtn_module;

static qf_status qf__find(qf_quantizer *q, const qf_model *model, const char *wname,
                          const char *suffix, qf_tensor_info *ti, int required, qf_error *err) {
  char tname[600];
  qf__tensor_name(tname, sizeof tname, wname, suffix);
  qf_error e;
  if (q->host->model_find_tensor(model, tname, ti, &e) == QF_OK) return QF_OK;
  if (!required) return QF_ERR_NOT_FOUND;
  return qf_fail(err, QF_ERR_FORMAT, NAME, "load", "quantized module '%s' has no '%s' tensor",
                 wname, tname);
}

static qf_status qf__module(qf_quantizer *q, const qf_model *model, const char *wname,
                            int64_t cols_hint, qf__rtn_module *m, qf_error *err) {
  qf_tensor_info c, s, z, b;
  qf_status st;
  memset(m, 0, sizeof *m);
  if ((st = qf__find(q, model, wname, "qweight", &c, 1, err)) != QF_OK) return st;
  if ((st = qf__find(q, model, wname, "scales", &s, 1, err)) != QF_OK) return st;
  if (c.tensor.ndim != 2 || c.tensor.dtype.code != kDLUInt || c.tensor.dtype.bits != 8)
    return qf_fail(err, QF_ERR_FORMAT, NAME, "load", "'%s': qweight must be U8 [rows, bytes]",
                   wname);
  if (s.tensor.ndim != 2 || s.tensor.dtype.code != kDLFloat || s.tensor.dtype.bits != 32)
    return qf_fail(err, QF_ERR_FORMAT, NAME, "load", "'%s': scales must be F32 [rows, groups]",
                   wname);
  m->rows = c.tensor.shape[0];
  int64_t rb = c.tensor.shape[1];
  m->cols = cols_hint > 0 ? cols_hint : (q->p.bits == 4 ? rb * 2 : rb);
  if (qf_rtn_row_bytes(&q->p, m->cols) != rb || s.tensor.shape[0] != m->rows ||
      s.tensor.shape[1] != qf_rtn_groups(&q->p, m->cols))
    return qf_fail(err, QF_ERR_FORMAT, NAME, "load",
                   "'%s': qweight [%lld, %lld] and scales [%lld, %lld] do not fit %d-bit codes "
                   "with group_size %d", wname, (long long)m->rows, (long long)rb,
                   (long long)s.tensor.shape[0], (long long)s.tensor.shape[1], q->p.bits,
                   q->p.group_size);
  m->codes = c.tensor.data;
  m->scales = s.tensor.data;
  if (!q->p.sym) {
    if ((st = qf__find(q, model, wname, "zeros", &z, 1, err)) != QF_OK) return st;
    if (z.tensor.ndim != 2 || z.tensor.shape[0] != s.tensor.shape[0] ||
        z.tensor.shape[1] != s.tensor.shape[1] || z.tensor.dtype.bits != 8)
      return qf_fail(err, QF_ERR_FORMAT, NAME, "load", "'%s': zeros must be U8 like scales",
                     wname);
    m->zeros = z.tensor.data;
  }
  if (qf__find(q, model, wname, "bias", &b, 0, err) == QF_OK && b.tensor.dtype.bits == 32 &&
      b.tensor.ndim == 1 && b.tensor.shape[0] == m->rows)
    m->bias = b.tensor.data;
  return QF_OK;
}

static qf_status qf__dequantize(qf_quantizer *q, const qf_model *model, const char *name,
                                DLTensor *out, qf_error *err) {
  int64_t rows, cols;
  qf_matrix_shape(out, &rows, &cols);
  qf__rtn_module m;
  qf_status st = qf__module(q, model, name, cols, &m, err);
  if (st != QF_OK) return st;
  if (m.rows != rows || out->dtype.code != kDLFloat || out->dtype.bits != 32)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "dequantize",
                   "'%s': output must be f32 [%lld, %lld]", name, (long long)m.rows,
                   (long long)cols);
  const int64_t G = qf_rtn_groups(&q->p, cols), rb = qf_rtn_row_bytes(&q->p, cols);
  float *o = (float *)((char *)out->data + out->byte_offset);
  for (int64_t r = 0; r < rows; r++)
    qf_rtn_dequantize_row(&q->p, m.codes + r * rb, m.scales + r * G,
                          m.zeros ? m.zeros + r * G : NULL, cols, o + r * cols);
  return QF_OK;
}

/* Pre-quantized loading: a float model expects "<m>.weight"; the checkpoint
 * has "<m>.qweight", "<m>.scales" (and "<m>.zeros") instead. Both sides are
 * accounted for when the quantized tensors are there. */
static int qf__has(qf_quantizer *q, const qf_model *model, const char *name) {
  qf_tensor_info ti;
  qf_error e;
  return q->host->model_find_tensor(model, name, &ti, &e) == QF_OK;
}

static qf_status qf__missing_keys(qf_quantizer *q, const qf_model *model, const char *const *keys,
                                  size_t n, uint8_t *keep, qf_error *err) {
  for (size_t i = 0; i < n; i++) {
    char prefix[512], qn[600];
    if (!qf_strip_suffix(keys[i], "weight", prefix, sizeof prefix)) continue;
    snprintf(qn, sizeof qn, "%sqweight", prefix);
    if (qf__has(q, model, qn)) keep[i] = 0;
  }
  return QF_OK;
}

static qf_status qf__unexpected_keys(qf_quantizer *q, const qf_model *model,
                                     const char *const *keys, size_t n, uint8_t *keep,
                                     qf_error *err) {
  static const char *const suffixes[] = {"qweight", "scales", "zeros"};
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < 3; j++) {
      char prefix[512], qn[600];
      if (!qf_strip_suffix(keys[i], suffixes[j], prefix, sizeof prefix)) continue;
      snprintf(qn, sizeof qn, "%sqweight", prefix);
      if (qf__has(q, model, qn)) keep[i] = 0;
    }
  return QF_OK;
}

/* After loading: every quantized module must be consistent. */
static qf_status qf__postprocess(qf_quantizer *q, qf_model *model, qf_error *err) {
  size_t n = q->host->model_tensor_count(model);
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    if (q->host->model_tensor_at(model, i, &ti, err) != QF_OK) return err->code;
    char prefix[512], wname[600];
    if (!qf_strip_suffix(ti.name, "qweight", prefix, sizeof prefix)) continue;
    snprintf(wname, sizeof wname, "%sweight", prefix);
    qf__rtn_module m;
    qf_status st = qf__module(q, model, wname, 0, &m, err);
    if (st != QF_OK) return st;
  }
  return QF_OK;
}

static qf_status qf__linear_forward(qf_quantizer *q, const qf_model *model, const char *name,
                                    const DLTensor *x, DLTensor *y, qf_error *err) {
  int64_t M, K, M2, N;
  qf_matrix_shape(x, &M, &K);
  qf_matrix_shape(y, &M2, &N);
  qf__rtn_module m;
  qf_status st = qf__module(q, model, name, K, &m, err);
  if (st != QF_OK) return st;
  if (M != M2 || N != m.rows || x->dtype.bits != 32 || y->dtype.bits != 32)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "linear_forward",
                   "'%s': x [%lld, %lld] and y [%lld, %lld] do not fit a [%lld, %lld] weight "
                   "(f32 only)", name, (long long)M, (long long)K, (long long)M2, (long long)N,
                   (long long)m.rows, (long long)m.cols);
  const float *xd = (const float *)((const char *)x->data + x->byte_offset);
  float *yd = (float *)((char *)y->data + y->byte_offset);
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  char msg[256];
  if (qf_rtn_gpu_linear(q->p.bits, q->p.group_size, q->p.sym, m.codes, m.scales, m.zeros, N, K,
                        xd, M, yd, msg, sizeof msg) != 0)
    return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward", "GPU: %s", msg);
#else
  /* dequantize the weight once, then one SGEMM: y = x · Wᵀ */
  const int64_t G = qf_rtn_groups(&q->p, K), rb = qf_rtn_row_bytes(&q->p, K);
  float *w = malloc((size_t)(N * K) * sizeof *w);
  if (!w) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "linear_forward", "out of memory");
  for (int64_t n = 0; n < N; n++)
    qf_rtn_dequantize_row(&q->p, m.codes + n * rb, m.scales + n * G,
                          m.zeros ? m.zeros + n * G : NULL, K, w + n * K);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)N, (blasint)K, 1.0f,
              xd, (blasint)K, w, (blasint)K, 0.0f, yd, (blasint)N);
  free(w);
#endif
  if (m.bias)
    for (int64_t i = 0; i < M; i++)
      for (int64_t n = 0; n < N; n++) yd[i * N + n] += m.bias[n];
  return QF_OK;
}

static qf_status qf__get_config_json(qf_quantizer *q, char **out, qf_error *err) {
  json_t *j = json_object();
  json_object_set_new(j, "quant_method", json_string("rtn"));
  json_object_set_new(j, "bits", json_integer(q->p.bits));
  json_object_set_new(j, "group_size", json_integer(q->p.group_size));
  json_object_set_new(j, "sym", json_boolean(q->p.sym));
  json_t *skip = json_array();
  for (size_t i = 0; i < q->n_skip; i++) json_array_append_new(skip, json_string(q->skip[i]));
  json_object_set_new(j, "modules_to_not_convert", skip);
  char *text = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
  json_decref(j);
  if (!text) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_config_json", "out of memory");
  *out = qf_host_strdup(q->host, text);
  free(text);
  return *out ? QF_OK : qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_config_json", "out of memory");
}

/* ---- descriptor and entry points ---- */

static const qf_quantizer_vtable qf__vtable = {
    .struct_size = sizeof(qf_quantizer_vtable),
    .create = qf__create,
    .destroy = qf__destroy,
    .validate_environment = qf__validate_environment,
    .param_needs_quantization = qf__needs,
    .create_quantized_param = qf__create_quantized_param,
    .update_missing_keys = qf__missing_keys,
    .update_unexpected_keys = qf__unexpected_keys,
    .postprocess_model = qf__postprocess,
    .get_config_json = qf__get_config_json,
    .dequantize = qf__dequantize,
    .linear_forward = qf__linear_forward,
};

static const char *const qf__methods[] = {"rtn", NULL};

static const qf_plugin_desc qf__desc = {
    .struct_size = sizeof(qf_plugin_desc),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .name = NAME,
    .version = "1.0.0",
    .description = "round-to-nearest per-group int4/int8 (SDK example)",
    .quant_methods = qf__methods,
    .backend = QF_RTN_BACKEND,
    .caps = QF_CAP_SERIALIZABLE | QF_CAP_PREQUANTIZED_LOAD | QF_CAP_DEQUANTIZE |
            QF_CAP_LINEAR_FORWARD,
    /* int4 symmetric: |x - x'| <= scale / 2 = absmax / 14 */
    .declared_rel_error = 1.0 / 14.0 + 1e-6,
    .example_config_json = "{\"quant_method\": \"rtn\", \"bits\": 4, \"group_size\": 32, "
                           "\"sym\": true}",
    .vtable = &qf__vtable,
};

QF_PLUGIN_EXPORT qf_status qf_plugin_init(const qf_host *host, const qf_plugin_desc **out,
                                          qf_error *err) {
  qf_status st = qf_plugin_check_host(host, out, NAME, QF_STRUCT_SIZE_TO(qf_host, n_threads), err);
  if (st != QF_OK) return st;
  qf__host = host;
  *out = &qf__desc;
  return QF_OK;
}

QF_PLUGIN_EXPORT int qf_plugin_score(void) {
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  return qf_rtn_gpu_device_count() > 0 ? 10 : 0;
#else
  return 1;
#endif
}
