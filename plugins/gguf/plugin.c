/*
 * plugin.c — the GGUF scheme's plugin table: the one file of gguf-*.so that
 * knows the qforge ABI (plugin.h 1.1). It parses the quantization_config,
 * drives the per-tensor lifecycle (raw ggml blocks as checkpoint tensors),
 * dequantize and linear_forward (CPU here, CUDA / HIP in the GPU builds),
 * and the container slots (GGUF export, requantize, import, describe),
 * adapting the host table to the plain-C interfaces of gguf_plugin.h.
 *
 * Config (the quantization_config object, JSON):
 *   {"quant_method": "gguf",
 *    "type": "Q4_K_M" | "q4_K" | ...,   llama-quantize file type (per-tensor
 *                                       policy) or ggml type name (every
 *                                       weight that type); default Q4_K_M
 *    "pure": false,                     file type -> its base type everywhere
 *    "output_tensor_type": "q8_0", "token_embedding_type": "q8_0",
 *    "imatrix_file": "imatrix.gguf",    importance matrix (GGUF or legacy .dat)
 *    "tokenizer_json": "tokenizer.json" container export: tokenizer metadata
 *    "requantize_from": "in.gguf",      container export without a model
 *    "dequantize": true}                container import: false keeps blocks
 * Checkpoint layout of a quantized weight "<p>weight": "<p>weight" U8
 * [rows, row_bytes] holding ggml blocks, and "<p>weight.ggml_type" I32 [1].
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_plugin.h"
#include "gguf_quants.h"
#include "kernels/cpu_kernels.h"
#include "qforge/plugin_util.h"
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
#include "kernels/gguf_gpu.h"
#endif

#define NAME QF_GGUF_PLUGIN

#if defined(QF_BUILD_CUDA)
#define QF_GGUF_BACKEND QF_BACKEND_CUDA
#define QF_GGUF_DEV kDLCUDA
#elif defined(QF_BUILD_HIP)
#define QF_GGUF_BACKEND QF_BACKEND_HIP
#define QF_GGUF_DEV kDLROCM
#else
#define QF_GGUF_BACKEND QF_BACKEND_CPU
#endif

struct qf_quantizer {
  const qf_host *host;
  int pre_quantized;
  char type_name[32];
  const qf_gguf_ftype *ftype; /* never NULL */
  int pure_type, output_type, token_embd_type, pure, keep_quantized;
  char *imatrix_file, *tokenizer_json, *requantize_from;
  pthread_mutex_t lock; /* guards the lazily loaded state below */
  int hp_state;         /* 0 not read, 1 read, -1 not a Llama-family config */
  qf_gguf_hparams hp;
  qf_gguf_imatrix *imatrix;
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  qf_gguf_gpu_cache *gpu;
#endif
};

/* ------------------------------------------------------------ config */

static qf_status qf__ggml_type_key(json_t *j, const char *key, int *out, qf_error *err) {
  json_t *v = json_object_get(j, key);
  *out = -1;
  if (!v || json_is_null(v)) return QF_OK;
  int t = json_is_string(v) ? qf_gguf_type_from_name(json_string_value(v)) : -1;
  if (t < 0 || !qf_gguf_can_quantize(t))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.%s must name a ggml type this build can produce "
                   "(q8_0, q6_K, f16, ...)",
                   key);
  *out = t;
  return QF_OK;
}

static qf_status qf__string_key(json_t *j, const char *key, char **out, qf_error *err) {
  json_t *v = json_object_get(j, key);
  if (!v || json_is_null(v)) return QF_OK;
  if (!json_is_string(v) || !*json_string_value(v))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.%s must be a non-empty string (a file path)", key);
  *out = strdup(json_string_value(v));
  return *out ? QF_OK : qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create", "out of memory");
}

static qf_status qf__bool_key(json_t *j, const char *key, int def, int *out, qf_error *err) {
  json_t *v = json_object_get(j, key);
  *out = def;
  if (!v || json_is_null(v)) return QF_OK;
  if (!json_is_boolean(v))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.%s must be true or false", key);
  *out = json_is_true(v);
  return QF_OK;
}

static qf_status qf__resolve_type(qf_quantizer *q, const char *s, qf_error *err) {
  const qf_gguf_ftype *ft = qf_gguf_ftype_find(s);
  int gt = qf_gguf_type_from_name(s);
  q->pure_type = -1;
  snprintf(q->type_name, sizeof q->type_name, "%s", s);
  if (ft && !q->pure) {
    q->ftype = ft;
    return QF_OK;
  }
  if (ft && gt < 0) gt = ft->base_type;
  if (gt >= 0) {
    const qf_gguf_type_info *ti = qf_gguf_type_get(gt);
    q->ftype = ft ? ft : qf_gguf_ftype_for_type(gt); /* pure Q4_K_M stays file type 15 */
    if (!ti || !q->ftype || ti->vec_dot_type < 0)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                     "quantization_config.type '%s' is not a weight type (activation or integer "
                     "types cannot hold weights)",
                     s);
    if (!q->pre_quantized && !ti->can_quantize)
      return qf_fail(err, QF_ERR_UNSUPPORTED, NAME, "create",
                     "quantization_config.type '%s': this build cannot quantize to %s", s,
                     ti->name);
    q->pure_type = gt;
    return QF_OK;
  }
  return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                 "quantization_config.type '%s' is neither a llama-quantize file type (%s) nor a "
                 "ggml type name (q4_0, q4_K, q6_K, iq4_nl, bf16, ...)",
                 s, qf_gguf_ftype_names());
}

static qf_status qf__parse_config(qf_quantizer *q, const char *text, qf_error *err) {
  json_error_t je;
  json_t *j = json_loads(text ? text : "{}", 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config is not a JSON object%s%s", j ? "" : ": ", j ? "" : je.text);
  }
  qf_status st;
  const char *type = "Q4_K_M";
  json_t *tv = json_object_get(j, "type");
  char num[16];
  if (tv && json_is_integer(tv)) {
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(tv));
    type = num;
  } else if (tv && !json_is_null(tv)) {
    if (!json_is_string(tv)) {
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create",
                   "quantization_config.type must be a string such as \"Q4_K_M\" or \"q8_0\"");
      goto out;
    }
    type = json_string_value(tv);
  }
  if ((st = qf__bool_key(j, "pure", 0, &q->pure, err)) || (st = qf__resolve_type(q, type, err)) ||
      (st = qf__ggml_type_key(j, "output_tensor_type", &q->output_type, err)) ||
      (st = qf__ggml_type_key(j, "token_embedding_type", &q->token_embd_type, err)) ||
      (st = qf__string_key(j, "imatrix_file", &q->imatrix_file, err)) ||
      (st = qf__string_key(j, "tokenizer_json", &q->tokenizer_json, err)) ||
      (st = qf__string_key(j, "requantize_from", &q->requantize_from, err)))
    goto out;
  int deq;
  if ((st = qf__bool_key(j, "dequantize", 1, &deq, err))) goto out;
  q->keep_quantized = !deq;
out:
  json_decref(j);
  return st;
}

static void qf__destroy(qf_quantizer *q) {
  if (!q) return;
  free(q->imatrix_file);
  free(q->tokenizer_json);
  free(q->requantize_from);
  qf_gguf_imatrix_free(q->imatrix);
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  qf_gguf_gpu_cache_free(q->gpu);
#endif
  pthread_mutex_destroy(&q->lock);
  free(q);
}

static qf_status qf__create(const qf_host *host, const char *config_json, int pre_quantized,
                            qf_quantizer **out, qf_error *err) {
  *out = NULL;
  qf_quantizer *q = calloc(1, sizeof *q);
  if (!q) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create", "out of memory");
  pthread_mutex_init(&q->lock, NULL);
  q->host = host;
  q->pre_quantized = pre_quantized;
  q->output_type = q->token_embd_type = q->pure_type = -1;
  qf_status st = qf__parse_config(q, config_json, err);
  if (st != QF_OK) {
    qf__destroy(q);
    return st;
  }
  *out = q;
  return QF_OK;
}

static qf_status qf__validate_environment(qf_quantizer *q, const qf_env *env, qf_error *err) {
  (void)q;
  if (QF_HAS_FIELD(env, qf_env, backend) && env->backend != 0 && env->backend != QF_GGUF_BACKEND)
    return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "validate_environment",
                   "this build runs on backend %d, the host asked for %d", QF_GGUF_BACKEND,
                   (int)env->backend);
  return QF_OK;
}

static qf_status qf__get_config_json(qf_quantizer *q, char **out, qf_error *err) {
  json_t *j = json_object();
  json_object_set_new(j, "quant_method", json_string("gguf"));
  json_object_set_new(j, "type", json_string(q->type_name));
  if (q->pure) json_object_set_new(j, "pure", json_true());
  if (q->output_type >= 0)
    json_object_set_new(j, "output_tensor_type", json_string(qf_gguf_type_name(q->output_type)));
  if (q->token_embd_type >= 0)
    json_object_set_new(j, "token_embedding_type",
                        json_string(qf_gguf_type_name(q->token_embd_type)));
  char *text = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
  json_decref(j);
  *out = text ? qf_host_strdup(q->host, text) : NULL;
  free(text);
  return *out ? QF_OK : qf_fail(err, QF_ERR_NO_MEMORY, NAME, "get_config_json", "out of memory");
}

/* ------------------------------------------------------------ host adapters */

static void qf__env_log(void *user, qf_log_level level, const char *msg) {
  const qf_host *h = user;
  if (h->log) h->log(h, level, NAME, "%s", msg);
}

static void qf__env_progress(void *user, const char *what, uint64_t done, uint64_t total) {
  const qf_host *h = user;
  if (h->progress) h->progress(h, what, done, total);
}

static qf_gguf_env qf__env(const qf_quantizer *q) {
  qf_gguf_env e;
  e.n_threads = q->host->n_threads ? q->host->n_threads(q->host) : 1;
  if (e.n_threads < 1) e.n_threads = 1;
  e.user = (void *)q->host;
  e.log = qf__env_log;
  e.progress = qf__env_progress;
  return e;
}

/* ------------------------------------------------------------ per-tensor type */

/* "x.weight" / "weight" → prefix "x." / "" */
static int qf__weight_prefix(const char *name, char *prefix, size_t n) {
  if (!strcmp(name, "weight")) {
    prefix[0] = '\0';
    return 1;
  }
  if (!qf_strip_suffix(name, ".weight", prefix, n - 1)) return 0;
  strcat(prefix, ".");
  return 1;
}

/* Hyper-parameters of the model being quantized (parsed once). */
static const qf_gguf_hparams *qf__model_hparams(qf_quantizer *q, const qf_model *model) {
  pthread_mutex_lock(&q->lock);
  if (q->hp_state == 0) {
    qf_error e;
    const char *cfg = model ? q->host->model_config_json(model) : NULL;
    q->hp_state = cfg && qf_gguf_hparams_from_hf(cfg, "config.json", &q->hp, &e) == QF_OK ? 1 : -1;
  }
  pthread_mutex_unlock(&q->lock);
  return q->hp_state == 1 ? &q->hp : NULL;
}

/* ggml type the weight `name` (HF name) with rows of `cols` gets. */
static qf_status qf__tensor_type(qf_quantizer *q, const qf_model *model, const char *name,
                                 int64_t cols, int *out, qf_error *err) {
  char gname[256];
  qf_gguf_name_hf_to_gguf(name, gname, sizeof gname);
  const qf_gguf_hparams *hp = qf__model_hparams(q, model);
  qf_gguf_policy_ctx ctx = {0};
  if (hp) {
    ctx.arch = hp->arch;
    ctx.n_layer = hp->n_layer;
    ctx.n_head = hp->n_head;
    ctx.n_head_kv = hp->n_head_kv;
  }
  qf_tensor_info ti;
  qf_error e;
  ctx.has_output = q->host->model_find_tensor(model, "lm_head.weight", &ti, &e) == QF_OK;
  ctx.has_imatrix = q->imatrix_file != NULL;
  const int base = q->ftype->base_type;
  int t;
  if (q->pure_type >= 0)
    t = qf_gguf_fallback_type(q->pure_type, cols);
  else if (base == QF_GGUF_TYPE_F32 || base == QF_GGUF_TYPE_F16 || base == QF_GGUF_TYPE_BF16)
    t = base;
  else
    t = qf_gguf_policy_type(q->ftype, gname, cols, &ctx);
  if (q->token_embd_type >= 0 && !strcmp(gname, "token_embd.weight")) t = q->token_embd_type;
  if (q->output_type >= 0 &&
      (!strcmp(gname, "output.weight") || (!ctx.has_output && !strcmp(gname, "token_embd.weight"))))
    t = q->output_type;
  if (t < 0 || qf_gguf_row_size(t, cols) == 0)
    return qf_fail(err, QF_ERR_UNSUPPORTED, NAME, "create_quantized_param",
                   "tensor '%s': rows of %lld values fit no block size of type '%s' and "
                   "llama-quantize has no fallback for it",
                   name, (long long)cols, q->type_name);
  if (t != q->pure_type && q->pure_type >= 0 && q->host->log)
    q->host->log(q->host, QF_LOG_WARN, NAME, "tensor '%s': rows of %lld do not fit %s; using %s",
                 name, (long long)cols, qf_gguf_type_name(q->pure_type), qf_gguf_type_name(t));
  *out = t;
  return QF_OK;
}

/* ------------------------------------------------------------ lifecycle */

static qf_status qf__needs(qf_quantizer *q, const qf_model *model, const char *name, int *out,
                           qf_error *err) {
  *out = 0;
  char prefix[512];
  if (!qf__weight_prefix(name, prefix, sizeof prefix)) return QF_OK;
  /* norms stay float; so do the token embeddings (the runtime looks rows up) */
  if (strstr(name, "norm") || strstr(name, "embed_tokens")) return QF_OK;
  qf_tensor_info ti;
  qf_error e;
  if (q->host->model_find_tensor(model, name, &ti, &e) != QF_OK) return QF_OK;
  (void)err;
  *out = ti.tensor.ndim == 2 && qf_dtype_is_float(ti.tensor.dtype);
  return QF_OK;
}

static qf_status qf__param_element_size(qf_quantizer *q, const qf_model *model, const char *name,
                                        double *bytes, qf_error *err) {
  qf_tensor_info ti;
  if (q->host->model_find_tensor(model, name, &ti, err) != QF_OK) return err->code;
  int64_t rows, cols;
  qf_matrix_shape(&ti.tensor, &rows, &cols);
  int t;
  qf_status st = qf__tensor_type(q, model, name, cols, &t, err);
  if (st != QF_OK) return st;
  *bytes = (double)qf_gguf_type_size(t) / (double)qf_gguf_blck_size(t);
  return QF_OK;
}

/* Importance values are means of squares: finite and >= 0. */
static qf_status qf__check_importance(const char *name, const char *from, const float *v, int64_t k,
                                      qf_error *err) {
  for (int64_t i = 0; i < k; i++)
    if (!(v[i] >= 0.0f) || v[i] > 3.4e38f)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                     "tensor '%s': importance value %lld from %s is %g (mean squared "
                     "activations must be finite and >= 0)",
                     name, (long long)i, from, (double)v[i]);
  return QF_OK;
}

/* The importance vector for `name`: calibration first, then imatrix_file. */
static qf_status qf__importance(qf_quantizer *q, const char *name, qf_calib *calib, int64_t cols,
                                const float **out, qf_error *err) {
  *out = NULL;
  if (calib && q->host->calib_importance) {
    const float *v;
    int64_t k;
    qf_error e;
    if (q->host->calib_importance(calib, name, &v, &k, &e) == QF_OK) {
      if (k != cols)
        return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                       "tensor '%s': the importance vector has %lld values, expected %lld (one "
                       "per input column): imatrix size mismatch",
                       name, (long long)k, (long long)cols);
      *out = v;
      return qf__check_importance(name, "the calibration", v, k, err);
    }
  }
  if (!q->imatrix_file) return QF_OK;
  pthread_mutex_lock(&q->lock);
  qf_status st = q->imatrix ? QF_OK : qf_gguf_imatrix_load(q->imatrix_file, &q->imatrix, err);
  pthread_mutex_unlock(&q->lock);
  if (st != QF_OK) return st;
  char gname[256];
  qf_gguf_name_hf_to_gguf(name, gname, sizeof gname);
  const qf_gguf_imatrix_entry *e = qf_gguf_imatrix_find(q->imatrix, gname);
  if (!e) e = qf_gguf_imatrix_find(q->imatrix, name);
  if (!e) return QF_OK;
  if (e->ne0 != cols || e->n_mat != 1)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                   "%s: entry '%s' has %lld x %lld values, tensor '%s' has rows of %lld: imatrix "
                   "size mismatch",
                   q->imatrix_file, e->name, (long long)e->ne0, (long long)e->n_mat, name,
                   (long long)cols);
  *out = e->values;
  return qf__check_importance(name, q->imatrix_file, e->values, cols, err);
}

static qf_status qf__create_quantized_param(qf_quantizer *q, qf_model *model, const char *name,
                                            const DLTensor *value, qf_calib *calib, qf_error *err) {
  int64_t rows, cols;
  qf_matrix_shape(value, &rows, &cols);
  char prefix[512], tname[600];
  if (!qf__weight_prefix(name, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                   "tensor '%s' is not a weight ('weight' or '<module>.weight')", name);
  int type;
  qf_status st = qf__tensor_type(q, model, name, cols, &type, err);
  if (st != QF_OK) return st;
  const float *imat = NULL;
  if ((st = qf__importance(q, name, calib, cols, &imat, err)) != QF_OK) return st;
  char gname[256];
  qf_gguf_name_hf_to_gguf(name, gname, sizeof gname);
  if (!imat && qf_gguf_type_needs_imatrix(type, q->ftype, gname))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                   "tensor '%s': type %s needs an importance matrix (give --imatrix or "
                   "imatrix_file)",
                   name, qf_gguf_type_name(type));
  const size_t rs = qf_gguf_row_size(type, cols);
  float *w = malloc((size_t)(rows * cols) * sizeof *w + 1);
  uint8_t *blocks = malloc(rs * (size_t)rows + 1);
  if (!w || !blocks) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "create_quantized_param", "out of memory for '%s'",
                 name);
    goto out;
  }
  if (qf_tensor_to_f32(value, w) != 0) {
    st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "create_quantized_param",
                 "tensor '%s' must be f32, f16 or bf16", name);
    goto out;
  }
  qf_gguf_env env = qf__env(q);
  if (qf_gguf_quantize_mt(type, w, blocks, rows, cols, imat, env.n_threads) != rs * (size_t)rows) {
    st = qf_fail(err, QF_ERR_INTERNAL, NAME, "create_quantized_param",
                 "tensor '%s': quantizing %lld x %lld to %s failed", name, (long long)rows,
                 (long long)cols, qf_gguf_type_name(type));
    goto out;
  }
  int64_t bshape[2] = {rows, (int64_t)rs}, tshape[1] = {1};
  int32_t tid = type;
  DLTensor t = qf_cpu_tensor(blocks, qf_dl_dtype(kDLUInt, 8), 2, bshape);
  snprintf(tname, sizeof tname, "%sweight", prefix);
  if ((st = q->host->model_put_tensor(model, tname, &t, err)) != QF_OK) goto out;
  t = qf_cpu_tensor(&tid, qf_dl_dtype(kDLInt, 32), 1, tshape);
  snprintf(tname, sizeof tname, "%sweight.ggml_type", prefix);
  st = q->host->model_put_tensor(model, tname, &t, err);
out:
  free(w);
  free(blocks);
  return st;
}

/* ------------------------------------------------------------ loaded modules */

typedef struct {
  int type;
  const uint8_t *blocks;
  int64_t rows, row_bytes;
  const DLTensor *bias;
} qf__module;

static qf_status qf__find_module(qf_quantizer *q, const qf_model *model, const char *wname,
                                 const char *op, qf__module *m, qf_error *err) {
  memset(m, 0, sizeof *m);
  char tname[600], prefix[512];
  if (!qf__weight_prefix(wname, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "'%s' is not a weight name ('weight' or '<module>.weight')", wname);
  qf_tensor_info w, t;
  qf_error e;
  snprintf(tname, sizeof tname, "%sweight.ggml_type", prefix);
  if (q->host->model_find_tensor(model, wname, &w, &e) != QF_OK ||
      q->host->model_find_tensor(model, tname, &t, &e) != QF_OK)
    return qf_fail(err, QF_ERR_NOT_FOUND, NAME, op,
                   "quantized module '%s' needs tensors '%s' (U8 blocks) and '%s' (I32)", wname,
                   wname, tname);
  if (t.tensor.dtype.code != kDLInt || t.tensor.dtype.bits != 32 || qf_numel(&t.tensor) != 1)
    return qf_fail(err, QF_ERR_FORMAT, NAME, op, "'%s' must be one I32 value (a ggml type id)",
                   tname);
  int32_t type;
  memcpy(&type, (const char *)t.tensor.data + t.tensor.byte_offset, 4);
  const qf_gguf_type_info *ti = qf_gguf_type_get(type);
  if (!ti || !ti->can_dequantize || ti->vec_dot_type < 0)
    return qf_fail(err, QF_ERR_FORMAT, NAME, op,
                   "'%s' holds %d, not a ggml weight type this "
                   "build can read",
                   tname, (int)type);
  if (w.tensor.ndim != 2 || w.tensor.dtype.code != kDLUInt || w.tensor.dtype.bits != 8)
    return qf_fail(err, QF_ERR_FORMAT, NAME, op, "'%s' must be U8 [rows, row_bytes] of %s blocks",
                   wname, ti->name);
  if (w.tensor.shape[1] % (int64_t)ti->type_size != 0)
    return qf_fail(err, QF_ERR_FORMAT, NAME, op,
                   "'%s': %lld bytes per row is not a whole number "
                   "of %s blocks (%zu bytes)",
                   wname, (long long)w.tensor.shape[1], ti->name, ti->type_size);
  m->type = type;
  m->blocks = (const uint8_t *)w.tensor.data + w.tensor.byte_offset;
  m->rows = w.tensor.shape[0];
  m->row_bytes = w.tensor.shape[1];
  return QF_OK;
}

/* Columns of a module: the row bytes in elements. */
static int64_t qf__module_cols(const qf__module *m) {
  return m->row_bytes / (int64_t)qf_gguf_type_size(m->type) * qf_gguf_blck_size(m->type);
}

static qf_status qf__dequantize(qf_quantizer *q, const qf_model *model, const char *name,
                                DLTensor *out, qf_error *err) {
  qf__module m;
  qf_status st = qf__find_module(q, model, name, "dequantize", &m, err);
  if (st != QF_OK) return st;
  int64_t rows, cols;
  qf_matrix_shape(out, &rows, &cols);
  if (rows != m.rows || cols != qf__module_cols(&m) || out->dtype.code != kDLFloat ||
      out->dtype.bits != 32 || out->device.device_type != kDLCPU)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "dequantize",
                   "'%s': the output must be a CPU f32 [%lld, %lld] tensor (got [%lld, %lld])",
                   name, (long long)m.rows, (long long)qf__module_cols(&m), (long long)rows,
                   (long long)cols);
  float *o = (float *)((char *)out->data + out->byte_offset);
  qf_gguf_env env = qf__env(q);
  if (qf_gguf_dequantize_mt(m.type, m.blocks, o, rows, cols, env.n_threads) != 0)
    return qf_fail(err, QF_ERR_FORMAT, NAME, "dequantize", "'%s': cannot dequantize %s rows", name,
                   qf_gguf_type_name(m.type));
  return QF_OK;
}

static qf_status qf__postprocess(qf_quantizer *q, qf_model *model, qf_error *err) {
  size_t n = q->host->model_tensor_count(model);
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    if (q->host->model_tensor_at(model, i, &ti, err) != QF_OK) return err->code;
    char prefix[512], wname[600];
    if (!qf_strip_suffix(ti.name, "weight.ggml_type", prefix, sizeof prefix)) continue;
    snprintf(wname, sizeof wname, "%sweight", prefix);
    qf__module m;
    qf_status st = qf__find_module(q, model, wname, "postprocess_model", &m, err);
    if (st != QF_OK) return st;
  }
  return QF_OK;
}

static qf_status qf__unexpected(qf_quantizer *q, const qf_model *model, const char *const *keys,
                                size_t n, uint8_t *keep, qf_error *err) {
  (void)q;
  (void)model;
  (void)err;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(keys[i]);
    if (l >= 10 && !strcmp(keys[i] + l - 10, ".ggml_type")) keep[i] = 0;
  }
  return QF_OK;
}

/* Bias of the module as f32 (caller frees), NULL when absent. */
static qf_status qf__bias(qf_quantizer *q, const qf_model *model, const char *wname, int64_t n,
                          float **out, qf_error *err) {
  *out = NULL;
  char prefix[512], bname[600];
  qf__weight_prefix(wname, prefix, sizeof prefix);
  snprintf(bname, sizeof bname, "%sbias", prefix);
  qf_tensor_info b;
  qf_error e;
  if (q->host->model_find_tensor(model, bname, &b, &e) != QF_OK) return QF_OK;
  if (qf_numel(&b.tensor) != n || !qf_dtype_is_float(b.tensor.dtype))
    return qf_fail(err, QF_ERR_FORMAT, NAME, "linear_forward",
                   "'%s' must be a float vector of %lld values", bname, (long long)n);
  *out = malloc((size_t)n * sizeof(float) + 1);
  if (!*out) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "linear_forward", "out of memory");
  qf_tensor_to_f32(&b.tensor, *out);
  return QF_OK;
}

static qf_status qf__linear_forward(qf_quantizer *q, const qf_model *model, const char *name,
                                    const DLTensor *x, DLTensor *y, qf_error *err) {
  qf__module m;
  qf_status st = qf__find_module(q, model, name, "linear_forward", &m, err);
  if (st != QF_OK) return st;
  int64_t M, K, M2, N;
  qf_matrix_shape(x, &M, &K);
  qf_matrix_shape(y, &M2, &N);
  if (M != M2 || N != m.rows || K != qf__module_cols(&m) || x->dtype.code != kDLFloat ||
      x->dtype.bits != 32 || y->dtype.code != kDLFloat || y->dtype.bits != 32)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "linear_forward",
                   "'%s': x [%lld, %lld] and y [%lld, %lld] must be f32 and fit the [%lld, %lld] "
                   "%s weight",
                   name, (long long)M, (long long)K, (long long)M2, (long long)N, (long long)m.rows,
                   (long long)qf__module_cols(&m), qf_gguf_type_name(m.type));
  float *bias = NULL;
  if ((st = qf__bias(q, model, name, N, &bias, err)) != QF_OK) return st;
  const float *xd = (const float *)((const char *)x->data + x->byte_offset);
  float *yd = (float *)((char *)y->data + y->byte_offset);
  qf_gguf_env env = qf__env(q);
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  const int x_dev = x->device.device_type == QF_GGUF_DEV,
            y_dev = y->device.device_type == QF_GGUF_DEV;
  char msg[256] = "";
  if (qf_gguf_gpu_supports(m.type) && qf_gguf_gpu_device_count() > 0) {
    pthread_mutex_lock(&q->lock);
    if (!q->gpu) q->gpu = qf_gguf_gpu_cache_new();
    pthread_mutex_unlock(&q->lock);
    if (qf_gguf_gpu_linear(q->gpu, m.type, m.blocks, (size_t)(m.rows * m.row_bytes), N, K, xd,
                           x_dev, M, yd, y_dev, bias, msg, sizeof msg) != 0)
      st = qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward", "'%s' on the GPU: %s", name,
                   msg);
    free(bias);
    return st;
  }
  /* no GPU kernel for this type: run on the CPU, copying device tensors */
  float *xh = NULL, *yh = NULL;
  if (x_dev || y_dev) {
    xh = malloc((size_t)(M * K) * sizeof(float) + 1);
    yh = malloc((size_t)(M * N) * sizeof(float) + 1);
    if (!xh || !yh ||
        (x_dev &&
         qf_gguf_gpu_memcpy(xh, xd, (size_t)(M * K) * sizeof(float), 0, msg, sizeof msg))) {
      free(xh);
      free(yh);
      free(bias);
      return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward", "'%s': %s", name,
                     msg[0] ? msg : "out of memory");
    }
    if (!x_dev) memcpy(xh, xd, (size_t)(M * K) * sizeof(float));
  }
  const float *xc = xh ? xh : xd;
  float *yc = yh ? yh : yd;
#else
  if (x->device.device_type != kDLCPU || y->device.device_type != kDLCPU) {
    free(bias);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "linear_forward",
                   "'%s': the CPU build needs x and y in CPU memory", name);
  }
  const float *xc = xd;
  float *yc = yd;
#endif
  if (qf_gguf_cpu_linear(m.type, m.blocks, N, K, xc, M, yc, env.n_threads, 0) != 0) {
    st = qf_fail(err, QF_ERR_INTERNAL, NAME, "linear_forward",
                 "'%s': %s matmul failed (out of "
                 "memory?)",
                 name, qf_gguf_type_name(m.type));
  } else if (bias) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t n = 0; n < N; n++) yc[i * N + n] += bias[n];
  }
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  if (st == QF_OK && y_dev &&
      qf_gguf_gpu_memcpy(yd, yc, (size_t)(M * N) * sizeof(float), 1, msg, sizeof msg) != 0)
    st = qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward", "'%s': %s", name, msg);
  else if (st == QF_OK && yh)
    memcpy(yd, yh, (size_t)(M * N) * sizeof(float));
  free(xh);
  free(yh);
#endif
  free(bias);
  return st;
}

/* ------------------------------------------------------------ containers */

static qf_gguf_export_opts qf__export_opts(const qf_quantizer *q) {
  qf_gguf_export_opts o;
  o.ftype = q->ftype;
  o.pure_type = q->pure_type;
  o.output_type = q->output_type;
  o.token_embd_type = q->token_embd_type;
  o.imatrix_file = q->imatrix_file;
  o.tokenizer_json = q->tokenizer_json;
  return o;
}

static qf_status qf__container_export(qf_quantizer *q, qf_model *model, const char *out_path,
                                      qf_error *err) {
  qf_gguf_export_opts o = qf__export_opts(q);
  qf_gguf_env env = qf__env(q);
  if (!model) {
    if (!q->requantize_from)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "container_export",
                     "writing %s needs a model or quantization_config.requantize_from (a GGUF "
                     "file)",
                     out_path);
    return qf_gguf_requantize(&o, &env, q->requantize_from, out_path, err);
  }
  size_t n = q->host->model_tensor_count(model);
  qf_gguf_src_tensor *t = calloc(n + 1, sizeof *t);
  if (!t) return qf_fail(err, QF_ERR_NO_MEMORY, NAME, "container_export", "out of memory");
  qf_status st = QF_OK;
  for (size_t i = 0; i < n && st == QF_OK; i++) {
    qf_tensor_info ti;
    if ((st = q->host->model_tensor_at(model, i, &ti, err)) != QF_OK) break;
    DLDataType d = ti.tensor.dtype;
    t[i].name = ti.name;
    t[i].type = d.code == kDLFloat && d.bits == 32    ? QF_GGUF_TYPE_F32
                : d.code == kDLFloat && d.bits == 16  ? QF_GGUF_TYPE_F16
                : d.code == kDLBfloat && d.bits == 16 ? QF_GGUF_TYPE_BF16
                                                      : -1;
    if (t[i].type < 0 || d.lanes != 1)
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "container_export",
                   "tensor '%s' is not F32, F16 or BF16: GGUF export needs a float checkpoint "
                   "(dequantize it first)",
                   ti.name);
    else if (ti.tensor.ndim < 1 || ti.tensor.ndim > 4)
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "container_export",
                   "tensor '%s' has %d dimensions", ti.name, ti.tensor.ndim);
    t[i].ndim = ti.tensor.ndim;
    for (int d2 = 0; d2 < ti.tensor.ndim && d2 < 4; d2++) t[i].shape[d2] = ti.tensor.shape[d2];
    t[i].data = (const char *)ti.tensor.data + ti.tensor.byte_offset;
  }
  if (st == QF_OK)
    st = qf_gguf_export_hf(&o, &env, q->host->model_config_json(model), t, n, out_path, err);
  free(t);
  return st;
}

typedef struct {
  const qf_host *host;
  qf_model *model;
} qf__put_ctx;

static qf_status qf__import_put(void *user, const char *name, const char *dtype, int ndim,
                                const int64_t *shape, const void *data, qf_error *err) {
  qf__put_ctx *c = user;
  DLDataType dt = !strcmp(dtype, "F16")    ? qf_dl_dtype(kDLFloat, 16)
                  : !strcmp(dtype, "BF16") ? qf_dl_dtype(kDLBfloat, 16)
                  : !strcmp(dtype, "U8")   ? qf_dl_dtype(kDLUInt, 8)
                  : !strcmp(dtype, "I32")  ? qf_dl_dtype(kDLInt, 32)
                                           : qf_dl_dtype(kDLFloat, 32);
  int64_t sh[4];
  for (int i = 0; i < ndim && i < 4; i++) sh[i] = shape[i];
  DLTensor t = qf_cpu_tensor((void *)data, dt, ndim, sh);
  return c->host->model_put_tensor(c->model, name, &t, err);
}

static qf_status qf__container_import(qf_quantizer *q, const char *in_path, qf_model *model,
                                      qf_error *err) {
  if (!QF_HAS_FIELD(q->host, qf_host, model_set_config_json) || !q->host->model_set_config_json)
    return qf_fail(err, QF_ERR_ABI, NAME, "container_import",
                   "the host (ABI %u.%u) has no model_set_config_json (ABI 1.1 needed)",
                   q->host->abi_major, q->host->abi_minor);
  qf_gguf_env env = qf__env(q);
  qf__put_ctx c = {q->host, model};
  char *cfg = NULL;
  qf_status st = qf_gguf_import(in_path, q->keep_quantized, &env, qf__import_put, &c, &cfg, err);
  if (st == QF_OK && q->keep_quantized) {
    json_error_t je;
    json_t *j = json_loads(cfg, 0, &je);
    json_t *qc = json_object();
    json_object_set_new(qc, "quant_method", json_string("gguf"));
    json_object_set_new(qc, "type", json_string(q->type_name));
    json_object_set_new(j, "quantization_config", qc);
    free(cfg);
    cfg = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
  }
  if (st == QF_OK) st = q->host->model_set_config_json(model, cfg ? cfg : "{}", err);
  free(cfg);
  return st;
}

static qf_status qf__container_describe(qf_quantizer *q, const char *in_path, char **out_json,
                                        qf_error *err) {
  char *text = NULL;
  qf_status st = qf_gguf_describe(in_path, &text, err);
  if (st != QF_OK) return st;
  *out_json = qf_host_strdup(q->host, text);
  free(text);
  return *out_json ? QF_OK
                   : qf_fail(err, QF_ERR_NO_MEMORY, NAME, "container_describe", "out of memory");
}

/* ------------------------------------------------------------ descriptor */

static const qf_quantizer_vtable qf__vtable = {
    .struct_size = sizeof(qf_quantizer_vtable),
    .create = qf__create,
    .destroy = qf__destroy,
    .validate_environment = qf__validate_environment,
    .param_element_size = qf__param_element_size,
    .param_needs_quantization = qf__needs,
    .create_quantized_param = qf__create_quantized_param,
    .update_unexpected_keys = qf__unexpected,
    .postprocess_model = qf__postprocess,
    .get_config_json = qf__get_config_json,
    .dequantize = qf__dequantize,
    .linear_forward = qf__linear_forward,
    .container_export = qf__container_export,
    .container_import = qf__container_import,
    .container_describe = qf__container_describe,
};

static const char *const qf__methods[] = {"gguf", NULL};
static const char *const qf__extensions[] = {".gguf", NULL};

static const qf_plugin_desc qf__desc = {
    .struct_size = sizeof(qf_plugin_desc),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .name = NAME,
    .version = "1.0.0",
    .description =
        "llama.cpp GGUF: ggml quantization types, llama-quantize file types, "
        "GGUF import/export",
    .quant_methods = qf__methods,
    .backend = QF_GGUF_BACKEND,
    .caps =
        QF_CAP_SERIALIZABLE | QF_CAP_PREQUANTIZED_LOAD | QF_CAP_DEQUANTIZE | QF_CAP_LINEAR_FORWARD,
    /* q8_0: |x - x'| <= d/2 + 127·|d - fp16(d)| with d = absmax/127, i.e.
     * absmax · (1/254 + 2^-11) <= 0.00443 of the 32-block (so row) absmax */
    .declared_rel_error = 0.005,
    .example_config_json = "{\"quant_method\": \"gguf\", \"type\": \"q8_0\"}",
    .vtable = &qf__vtable,
    .container_extensions = qf__extensions,
};

QF_PLUGIN_EXPORT qf_status qf_plugin_init(const qf_host *host, const qf_plugin_desc **out,
                                          qf_error *err) {
  qf_status st = qf_plugin_check_host(host, out, NAME, QF_STRUCT_SIZE_TO(qf_host, n_threads), err);
  if (st != QF_OK) return st;
  *out = &qf__desc;
  return QF_OK;
}

QF_PLUGIN_EXPORT int qf_plugin_score(void) {
#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
  return qf_gguf_gpu_device_count() > 0 ? 10 : 0;
#else
  return 1;
#endif
}
