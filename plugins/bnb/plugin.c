/*
 * The bitsandbytes plugin: the qforge ABI lifecycle table mirroring
 * transformers' Bnb4BitHfQuantizer / Bnb8BitHfQuantizer (hf_quantizer.md
 * 1.5) on top of qf_bnb_core. It decides which linear weights are
 * quantized (default skip of the output head, llm_int8_skip_modules),
 * emits the exact checkpoint tensors of a 4-bit (weight, absmax, quant_map,
 * nested_*, quant_state JSON) or 8-bit (weight, SCB, weight_format)
 * module, validates pre-quantized checkpoints in postprocess_model, and
 * serves dequantize / linear_forward from a per-module cache of prepared
 * weights (mutex-protected; slots may run concurrently). This is the only
 * file of the plugin that knows the ABI. The CUDA / HIP variants add a
 * device probe (qf_plugin_score) and run linear_forward on the GPU.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"
#include "qforge/plugin.h"
#include "qforge/plugin_util.h"

#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
#define BNB_GPU 1
#include "kernels/gpu_api.h"
#endif

#ifndef QF_PLUGIN_NAME
#define QF_PLUGIN_NAME "bnb"
#endif
#define PN QF_PLUGIN_NAME
#define MSG 1024

/* ------------------------------------------------------------ state */

enum { KIND_4BIT = 4, KIND_8BIT = 8, KIND_FLOAT8 = 16 };

typedef struct entry {
  char *name;
  const qf_model *model;
  int kind;
  int stale;
  qf_bnb_w4 w4;
  qf_bnb_w8 w8;
  int8_t *owned_cb; /* KIND_FLOAT8: weights quantized on the fly */
  float *bias;      /* owned float32 copy, NULL if the module has none */
  void *gpu;        /* device copies (GPU builds) */
  struct entry *next;
} entry;

struct qf_quantizer {
  const qf_host *host;
  qf_bnb_config cfg;
  int pre_quantized;
  char **skip; /* modules_to_not_convert */
  size_t n_skip;
  int skip_ready;
  pthread_mutex_t mu;
  entry *cache;
  size_t n_quantized;
};

#define LOG(q, lvl, ...)                                   \
  do {                                                     \
    if ((q)->host && (q)->host->log)                       \
      (q)->host->log((q)->host, (lvl), PN, __VA_ARGS__);   \
  } while (0)

static void entry_free(entry *e) {
  if (!e) return;
#ifdef BNB_GPU
  if (e->gpu) qf_bnb_gpu_release(e->gpu);
#endif
  qf_bnb_w4_free(&e->w4);
  qf_bnb_w8_free(&e->w8);
  free(e->owned_cb);
  free(e->bias);
  free(e->name);
  free(e);
}

static void free_skip(qf_quantizer *q) {
  for (size_t i = 0; i < q->n_skip; i++) free(q->skip[i]);
  free(q->skip);
  q->skip = NULL;
  q->n_skip = 0;
  q->skip_ready = 0;
}

/* ------------------------------------------------------------ names */

#define weight_prefix qf_bnb_weight_prefix
#define module_of qf_bnb_module_of
#define is_embedding qf_bnb_is_embedding

static int skipped(const qf_quantizer *q, const char *mod) {
  return qf_bnb_module_skipped(mod, q->skip, q->n_skip);
}

static int add_skip(qf_quantizer *q, const char *s) {
  for (size_t i = 0; i < q->n_skip; i++)
    if (strcmp(q->skip[i], s) == 0) return 0;
  char **n = (char **)realloc(q->skip, (q->n_skip + 1) * sizeof(char *));
  if (!n) return -1;
  q->skip = n;
  if (!(q->skip[q->n_skip] = strdup(s))) return -1;
  q->n_skip++;
  return 0;
}

static int find_cb(void *user, const char *name, DLTensor *out);

typedef struct find_ctx {
  const qf_quantizer *q;
  const qf_model *model;
} find_ctx;

static int has_tensor(const qf_quantizer *q, const qf_model *model,
                      const char *name) {
  DLTensor t;
  find_ctx c = {q, model};
  return find_cb(&c, name, &t);
}

/* get_modules_to_not_convert: llm_int8_skip_modules replaces the default
 * (the output head, found from the tensor names). */
static qf_status ensure_skip(qf_quantizer *q, const qf_model *model,
                             qf_error *err) {
  if (q->skip_ready) return QF_OK;
  free_skip(q);
  if (!q->cfg.skip_is_null) {
    for (size_t i = 0; i < q->cfg.n_skip; i++)
      if (add_skip(q, q->cfg.skip_modules[i]))
        return qf_fail(err, QF_ERR_NO_MEMORY, PN, "preprocess_model", "out of memory");
  } else {
    static const char *const heads[] = {"lm_head", "embed_out", "output"};
    if (add_skip(q, "lm_head"))
      return qf_fail(err, QF_ERR_NO_MEMORY, PN, "preprocess_model", "out of memory");
    for (size_t i = 1; model && i < sizeof heads / sizeof heads[0]; i++) {
      char nm[64];
      snprintf(nm, sizeof nm, "%s.weight", heads[i]);
      if (has_tensor(q, model, nm) && add_skip(q, heads[i]))
        return qf_fail(err, QF_ERR_NO_MEMORY, PN, "preprocess_model", "out of memory");
    }
  }
  q->skip_ready = 1;
  return QF_OK;
}

/* ------------------------------------------------------------ tensors */

static int find_cb(void *user, const char *name, DLTensor *out) {
  find_ctx *c = (find_ctx *)user;
  const qf_host *h = c->q->host;
  if (!h || !h->model_find_tensor || !c->model) return 0;
  qf_tensor_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  qf_error e;
  memset(&e, 0, sizeof e);
  e.struct_size = sizeof e;
  if (h->model_find_tensor(c->model, name, &info, &e) != QF_OK) return 0;
  *out = info.tensor;
  return 1;
}

static int is_compact(const DLTensor *t) {
  if (!t->strides) return 1;
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

static qf_status put(qf_quantizer *q, qf_model *model, const char *prefix,
                     const char *suffix, void *data, DLDataType dt, int ndim,
                     int64_t *shape, qf_error *err) {
  char name[1024];
  int64_t dummy = 1;
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  DLTensor t = qf_cpu_tensor(data, dt, ndim, shape ? shape : &dummy);
  qf_status st = q->host->model_put_tensor(model, name, &t, err);
  if (st != QF_OK && err->message[0] == '\0')
    qf_fail(err, st, PN, "create_quantized_param", "could not emit '%s'", name);
  return st;
}

/* ------------------------------------------------------------ cache */

static void invalidate(qf_quantizer *q, const qf_model *model, const char *name) {
  pthread_mutex_lock(&q->mu);
  for (entry *e = q->cache; e; e = e->next)
    if (e->model == model && strcmp(e->name, name) == 0) e->stale = 1;
  pthread_mutex_unlock(&q->mu);
}

static qf_status load_bias(qf_quantizer *q, const qf_model *model,
                           const char *prefix, int64_t n, entry *e,
                           const char *op, qf_error *err) {
  char name[1024];
  snprintf(name, sizeof name, "%sbias", prefix);
  DLTensor b;
  find_ctx c = {q, model};
  if (!find_cb(&c, name, &b)) return QF_OK;
  if (!qf_dtype_is_float(b.dtype) || qf_numel(&b) != n || !b.data)
    return qf_fail(err, QF_ERR_FORMAT, PN, op,
                   "tensor '%s': expected a float bias of %lld elements", name,
                   (long long)n);
  e->bias = (float *)malloc((size_t)(n ? n : 1) * sizeof(float));
  if (!e->bias) return qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
  qf_tensor_to_f32(&b, e->bias);
  return QF_OK;
}

/* Build the prepared state of the module whose weight is `name`. */
static qf_status prepare(qf_quantizer *q, const qf_model *model,
                         const char *name, const char *op, entry **out,
                         qf_error *err) {
  char prefix[1024], msg[MSG], key[1100];
  if (!weight_prefix(name, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "'%s' is not a weight name (expected '<module>.weight')", name);
  entry *e = (entry *)calloc(1, sizeof *e);
  if (!e || !(e->name = strdup(name))) {
    free(e);
    return qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
  }
  e->model = model;
  find_ctx c = {q, model};
  qf_status st = QF_OK;
  snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "nf4", prefix);
  int is4 = has_tensor(q, model, key);
  snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "fp4", prefix);
  is4 |= has_tensor(q, model, key);
  snprintf(key, sizeof key, "%s" QF_BNB_K_SCB, prefix);
  int is8 = has_tensor(q, model, key);
  snprintf(key, sizeof key, "%s" QF_BNB_K_WFMT, prefix);
  is8 |= has_tensor(q, model, key);
  int64_t n_out = 0;
  if (is4 || (!is8 && q->cfg.load_in_4bit)) {
    e->kind = KIND_4BIT;
    if (qf_bnb_load4(prefix, find_cb, &c, &e->w4, msg, sizeof msg)) {
      st = qf_fail(err, QF_ERR_FORMAT, PN, op, "%s", msg);
      goto fail;
    }
    n_out = e->w4.rows;
  } else if (is8) {
    e->kind = KIND_8BIT;
    if (qf_bnb_load8(prefix, find_cb, &c, &e->w8, msg, sizeof msg)) {
      st = qf_fail(err, QF_ERR_FORMAT, PN, op, "%s", msg);
      goto fail;
    }
    n_out = e->w8.rows;
  } else {
    /* 8-bit with llm_int8_has_fp16_weight: float weight, int8 on the fly */
    DLTensor w;
    if (!find_cb(&c, name, &w)) {
      st = qf_fail(err, QF_ERR_NOT_FOUND, PN, op, "tensor '%s' not found", name);
      goto fail;
    }
    if (!qf_dtype_is_float(w.dtype) || w.ndim != 2 || !w.data) {
      st = qf_fail(err, QF_ERR_FORMAT, PN, op,
                   "tensor '%s' is not a bitsandbytes weight: no SCB beside "
                   "it and not a 2-D float weight",
                   name);
      goto fail;
    }
    e->kind = KIND_FLOAT8;
    int64_t r = w.shape[0], k = w.shape[1];
    float *f = (float *)malloc((size_t)(r * k + 1) * sizeof(float));
    e->owned_cb = (int8_t *)malloc((size_t)(r * k + 1));
    e->w8.scb = (float *)malloc((size_t)(r + 1) * sizeof(float));
    if (!f || !e->owned_cb || !e->w8.scb) {
      free(f);
      st = qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
      goto fail;
    }
    qf_tensor_to_f32(&w, f);
    int64_t bad = 0;
    int rc = qf_bnb_int8_quantize_weight(f, r, k, e->owned_cb, e->w8.scb, &bad);
    free(f);
    if (rc) {
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "tensor '%s': row %lld overflows float16", name, (long long)bad);
      goto fail;
    }
    e->w8.rows = r;
    e->w8.cols = k;
    e->w8.cb = e->owned_cb;
    n_out = r;
  }
  if ((st = load_bias(q, model, prefix, n_out, e, op, err)) != QF_OK) goto fail;
  *out = e;
  return QF_OK;
fail:
  entry_free(e);
  return st;
}

static qf_status get_entry(qf_quantizer *q, const qf_model *model,
                           const char *name, const char *op, entry **out,
                           qf_error *err) {
  pthread_mutex_lock(&q->mu);
  for (entry *e = q->cache; e; e = e->next) {
    if (!e->stale && e->model == model && strcmp(e->name, name) == 0) {
      *out = e;
      pthread_mutex_unlock(&q->mu);
      return QF_OK;
    }
  }
  entry *e = NULL;
  qf_status st = prepare(q, model, name, op, &e, err);
  if (st == QF_OK) {
    e->next = q->cache;
    q->cache = e;
    *out = e;
  }
  pthread_mutex_unlock(&q->mu);
  return st;
}

/* ------------------------------------------------------------ lifecycle */

static qf_status bnb_create(const qf_host *host, const char *config_json,
                            int pre_quantized, qf_quantizer **out,
                            qf_error *err) {
  if (!out) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, "create", "out is NULL");
  *out = NULL;
  qf_quantizer *q = (qf_quantizer *)calloc(1, sizeof *q);
  if (!q) return qf_fail(err, QF_ERR_NO_MEMORY, PN, "create", "out of memory");
  char msg[MSG];
  if (qf_bnb_config_parse(config_json, &q->cfg, msg, sizeof msg)) {
    qf_bnb_config_free(&q->cfg);
    free(q);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, "create", "%s", msg);
  }
  q->host = host;
  q->pre_quantized = pre_quantized;
  pthread_mutex_init(&q->mu, NULL);
  *out = q;
  return QF_OK;
}

static void bnb_destroy(qf_quantizer *q) {
  if (!q) return;
  entry *e = q->cache;
  while (e) {
    entry *nx = e->next;
    entry_free(e);
    e = nx;
  }
  free_skip(q);
  qf_bnb_config_free(&q->cfg);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

static qf_status bnb_validate_environment(qf_quantizer *q, const qf_env *env,
                                          qf_error *err) {
  if (!env) return QF_OK;
#ifdef BNB_GPU
  if (QF_HAS_FIELD(env, qf_env, device_count) && env->backend != QF_BACKEND_CPU &&
      env->backend != 0 && env->device_count == 0)
    return qf_fail(err, QF_ERR_ENVIRONMENT, PN, "validate_environment",
                   "no %s device is available for the bitsandbytes GPU build",
                   env->backend == QF_BACKEND_HIP ? "HIP" : "CUDA");
#endif
  if (!QF_HAS_FIELD(env, qf_env, device_map_json) || !env->device_map_json)
    return QF_OK;
  json_error_t jerr;
  json_t *map = json_loads(env->device_map_json, 0, &jerr);
  if (!map)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, "validate_environment",
                   "device_map is not valid JSON: %s", jerr.text);
  qf_status st = QF_OK;
  if (json_is_object(map)) {
    const char *k;
    json_t *v;
    size_t n_cpu = 0, n_disk = 0, n = 0;
    json_object_foreach(map, k, v) {
      n++;
      if (json_is_string(v) && strcmp(json_string_value(v), "cpu") == 0) n_cpu++;
      if (json_is_string(v) && strcmp(json_string_value(v), "disk") == 0) n_disk++;
    }
    /* multi-backend bitsandbytes accepts an all-cpu map */
    if ((n_disk > 0 || (n_cpu > 0 && n_cpu < n)) && !q->cfg.fp32_cpu_offload)
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, "validate_environment",
                   "Some modules are dispatched on the CPU or the disk. If you "
                   "want to dispatch the model on the CPU or the disk while "
                   "keeping these modules in 32-bit, set "
                   "llm_int8_enable_fp32_cpu_offload=true");
  }
  json_decref(map);
  return st;
}

static qf_status bnb_update_dtype(qf_quantizer *q, DLDataType *dtype,
                                  qf_error *err) {
  if (dtype && dtype->bits == 0) {
    LOG(q, QF_LOG_DEBUG,
        "dtype not given: using float16 as bitsandbytes requires (set a dtype "
        "to override)");
    *dtype = qf_dl_dtype(kDLFloat, 16);
  }
  return QF_OK;
}

static qf_status bnb_update_device_map(qf_quantizer *q, const char *in_json,
                                       char **out_json, qf_error *err) {
  if (!out_json) return QF_OK;
  *out_json = NULL;
  if (in_json) return QF_OK;
#ifdef BNB_GPU
  const char *def = "{\"\": 0}";
#else
  const char *def = "{\"\": \"cpu\"}";
#endif
  char *s = qf_host_strdup(q->host, def);
  if (!s) return qf_fail(err, QF_ERR_NO_MEMORY, PN, "update_device_map", "out of memory");
  *out_json = s;
  LOG(q, QF_LOG_INFO, "device_map not given: using %s", def);
  return QF_OK;
}

static qf_status bnb_adjust_target_dtype(qf_quantizer *q, DLDataType *dtype,
                                         qf_error *err) {
  if (dtype) *dtype = qf_dl_dtype(kDLInt, q->cfg.load_in_4bit ? 4 : 8);
  return QF_OK;
}

static qf_status bnb_adjust_max_memory(qf_quantizer *q, uint64_t *budgets,
                                       size_t n, qf_error *err) {
  for (size_t i = 0; budgets && i < n; i++)
    budgets[i] = (uint64_t)((double)budgets[i] * 0.90);
  return QF_OK;
}

static qf_status bnb_preprocess_model(qf_quantizer *q, qf_model *model,
                                      qf_error *err) {
  q->skip_ready = 0;
  return ensure_skip(q, model, err);
}

/* Is `name` a float Linear weight this quantizer converts? */
static int convertible(qf_quantizer *q, const qf_model *model, const char *name,
                       DLTensor *t) {
  char prefix[1024], mod[1024];
  if (!weight_prefix(name, prefix, sizeof prefix)) return 0;
  module_of(prefix, mod, sizeof mod);
  if (skipped(q, mod) || is_embedding(mod)) return 0;
  find_ctx c = {q, model};
  DLTensor tmp;
  if (!t) t = &tmp;
  if (!find_cb(&c, name, t)) return 0;
  return t->ndim == 2 && qf_dtype_is_float(t->dtype);
}

static qf_status bnb_param_needs_quantization(qf_quantizer *q,
                                              const qf_model *model,
                                              const char *name, int *out,
                                              qf_error *err) {
  *out = 0;
  qf_status st = ensure_skip(q, model, err);
  if (st != QF_OK) return st;
  if (q->pre_quantized) {
    char prefix[1024], key[1100];
    if (qf_bnb_is_stat_key(name, NULL, 0)) {
      *out = 1;
    } else if (weight_prefix(name, prefix, sizeof prefix)) {
      snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "nf4", prefix);
      int yes = has_tensor(q, model, key);
      snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "fp4", prefix);
      yes |= has_tensor(q, model, key);
      snprintf(key, sizeof key, "%s" QF_BNB_K_SCB, prefix);
      yes |= has_tensor(q, model, key);
      *out = yes;
    }
    return QF_OK;
  }
  if (q->cfg.load_in_8bit && q->cfg.has_fp16_weight) return QF_OK;
  *out = convertible(q, model, name, NULL);
  return QF_OK;
}

static qf_status bnb_param_element_size(qf_quantizer *q, const qf_model *model,
                                        const char *name, double *bytes,
                                        qf_error *err) {
  int needs = 0;
  qf_status st = bnb_param_needs_quantization(q, model, name, &needs, err);
  if (st != QF_OK) return st;
  if (needs && !q->pre_quantized) {
    *bytes = q->cfg.load_in_4bit ? 0.5 : 1.0;
    return QF_OK;
  }
  DLTensor t;
  find_ctx c = {q, model};
  if (!find_cb(&c, name, &t))
    return qf_fail(err, QF_ERR_NOT_FOUND, PN, "param_element_size",
                   "tensor '%s' not found", name);
  *bytes = (double)t.dtype.bits * (t.dtype.lanes ? t.dtype.lanes : 1) / 8.0;
  return QF_OK;
}

/* GPT-2 style Conv1D weights are stored [in, out]; transformers transposes
 * them when quantizing on the fly. */
static int is_conv1d(const qf_quantizer *q, const qf_model *model,
                     const char *mod) {
  const char *cfg = q->host->model_config_json ? q->host->model_config_json(model) : NULL;
  if (!cfg) return 0;
  json_t *root = json_loads(cfg, 0, NULL);
  int yes = 0;
  if (root) {
    json_t *mt = json_object_get(root, "model_type");
    if (json_is_string(mt) && strcmp(json_string_value(mt), "gpt2") == 0) {
      const char *last = strrchr(mod, '.');
      last = last ? last + 1 : mod;
      yes = strcmp(last, "c_attn") == 0 || strcmp(last, "c_proj") == 0 ||
            strcmp(last, "c_fc") == 0;
    }
    json_decref(root);
  }
  return yes;
}

static qf_status emit_4bit(qf_quantizer *q, qf_model *model, const char *prefix,
                           const float *w, int64_t n, const char *dtype_name,
                           int ndim, const int64_t *shape, qf_error *err) {
  const char *op = "create_quantized_param";
  const qf_bnb_config *c = &q->cfg;
  DLDataType sdt;
  qf_bnb_dtype_from_name(c->quant_storage, &sdt);
  int64_t s = (int64_t)qf_bnb_dtype_size(sdt);
  qf_bnb_q4 r;
  char msg[MSG];
  int rc = qf_bnb_q4_make(c->quant_type, c->blocksize, c->use_double_quant, w,
                          n, dtype_name, ndim, shape, s, &r, msg, sizeof msg);
  qf_status st = QF_OK;
  if (rc) {
    st = qf_fail(err, rc == -2 ? QF_ERR_NO_MEMORY : QF_ERR_INVALID_ARGUMENT, PN,
                 op, "'%sweight': %s", prefix, msg);
    goto done;
  }
  int64_t wshape[2] = {r.bytes / s, 1}, nb = r.nb, nnb = r.nnb, s16 = 16,
          s256 = 256, jl = r.json_len;
  DLDataType f32 = qf_dl_dtype(kDLFloat, 32), u8 = qf_dl_dtype(kDLUInt, 8);
  char key[64];
  snprintf(key, sizeof key, QF_BNB_K_QSTATE "%s", qf_bnb_qtype_name(c->quant_type));
  if ((st = put(q, model, prefix, QF_BNB_K_WEIGHT, r.packed, sdt, 2, wshape, err)))
    goto done;
  if (c->use_double_quant)
    st = put(q, model, prefix, QF_BNB_K_ABSMAX, r.codes, u8, 1, &nb, err);
  else
    st = put(q, model, prefix, QF_BNB_K_ABSMAX, r.absmax, f32, 1, &nb, err);
  if (st ||
      (st = put(q, model, prefix, QF_BNB_K_QMAP,
                (void *)qf_bnb_quant_map(c->quant_type), f32, 1, &s16, err)))
    goto done;
  if (c->use_double_quant &&
      ((st = put(q, model, prefix, QF_BNB_K_NABSMAX, r.nested_absmax, f32, 1,
                 &nnb, err)) ||
       (st = put(q, model, prefix, QF_BNB_K_NQMAP, (void *)qf_bnb_dynamic_map(),
                 f32, 1, &s256, err))))
    goto done;
  st = put(q, model, prefix, key, r.json, u8, 1, &jl, err);
done:
  qf_bnb_q4_free(&r);
  return st;
}

static qf_status emit_8bit(qf_quantizer *q, qf_model *model, const char *prefix,
                           const float *w, int64_t rows, int64_t cols, int ndim,
                           int64_t *shape, qf_error *err) {
  const char *op = "create_quantized_param";
  int8_t *cb = (int8_t *)malloc((size_t)(rows * cols) + 1);
  float *scb = (float *)malloc((size_t)(rows + 1) * sizeof(float));
  qf_status st = QF_OK;
  if (!cb || !scb) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
    goto done;
  }
  int64_t bad = 0;
  if (qf_bnb_int8_quantize_weight(w, rows, cols, cb, scb, &bad)) {
    st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                 "'%sweight': row %lld has a value beyond the float16 range "
                 "(LLM.int8 quantizes the float16 weight)",
                 prefix, (long long)bad);
    goto done;
  }
  int64_t srows = rows;
  uint8_t fmt = 0;
  if ((st = put(q, model, prefix, QF_BNB_K_WEIGHT, cb, qf_dl_dtype(kDLInt, 8), ndim,
                shape, err)) ||
      (st = put(q, model, prefix, QF_BNB_K_SCB, scb, qf_dl_dtype(kDLFloat, 32), 1,
                &srows, err)) ||
      (st = put(q, model, prefix, QF_BNB_K_WFMT, &fmt, qf_dl_dtype(kDLUInt, 8), 0,
                NULL, err)))
    goto done;
done:
  free(cb);
  free(scb);
  return st;
}

static qf_status bnb_create_quantized_param(qf_quantizer *q, qf_model *model,
                                            const char *name,
                                            const DLTensor *value,
                                            qf_calib *calib, qf_error *err) {
  const char *op = "create_quantized_param";
  char prefix[1024], mod[1024];
  if (!name || !value || !weight_prefix(name, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "'%s' is not a weight name (expected '<module>.weight')",
                   name ? name : "(null)");
  const char *dtn = qf_bnb_dtype_name(value->dtype);
  if (!qf_dtype_is_float(value->dtype) || !dtn)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "tensor '%s': expected float32, float16 or bfloat16", name);
  if (value->device.device_type != kDLCPU || !value->data || !is_compact(value) ||
      value->ndim < 1 || value->ndim > 8)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "tensor '%s': expected a compact CPU tensor of 1 to 8 dims",
                   name);
  int64_t n = qf_numel(value);
  int64_t shape[8];
  for (int i = 0; i < value->ndim; i++) shape[i] = value->shape[i];
  module_of(prefix, mod, sizeof mod);
  int conv1d = value->ndim == 2 && is_conv1d(q, model, mod);
  /* float32 input is used in place unless it must be transposed */
  const float *w = NULL;
  float *owned = NULL;
  if (value->dtype.code == kDLFloat && value->dtype.bits == 32 && !conv1d) {
    w = (const float *)((const char *)value->data + value->byte_offset);
  } else {
    float *tmp = (float *)malloc((size_t)(n + 1) * sizeof(float));
    owned = conv1d ? (float *)malloc((size_t)(n + 1) * sizeof(float)) : tmp;
    if (!tmp || !owned) {
      free(tmp);
      if (owned != tmp) free(owned);
      return qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
    }
    qf_tensor_to_f32(value, tmp);
    if (conv1d) { /* GPT-2 Conv1D [in, out] -> Linear [out, in] */
      for (int64_t i = 0; i < shape[0]; i++)
        for (int64_t j = 0; j < shape[1]; j++) owned[j * shape[0] + i] = tmp[i * shape[1] + j];
      free(tmp);
      int64_t t = shape[0];
      shape[0] = shape[1];
      shape[1] = t;
    }
    w = owned;
  }
  invalidate(q, model, name);
  qf_status st;
  if (q->cfg.load_in_4bit) {
    st = emit_4bit(q, model, prefix, w, n, dtn, value->ndim, shape, err);
  } else {
    int64_t cols = shape[value->ndim - 1];
    int64_t rows = cols ? n / cols : 0;
    st = emit_8bit(q, model, prefix, w, rows, cols, value->ndim, shape, err);
  }
  free(owned);
  if (st == QF_OK) {
    pthread_mutex_lock(&q->mu);
    q->n_quantized++;
    pthread_mutex_unlock(&q->mu);
  }
  return st;
}

static qf_status bnb_update_unexpected_keys(qf_quantizer *q,
                                            const qf_model *model,
                                            const char *const *keys, size_t n,
                                            uint8_t *keep, qf_error *err) {
  for (size_t i = 0; i < n; i++)
    if (keys[i] && qf_bnb_is_stat_key(keys[i], NULL, 0)) keep[i] = 0;
  return QF_OK;
}

/* Pre-quantized load: every module with bnb statistics must be complete and
 * consistent; a packed / int8 weight without statistics is an error. */
static qf_status bnb_postprocess_model(qf_quantizer *q, qf_model *model,
                                       qf_error *err) {
  const char *op = "postprocess_model";
  if (!q->pre_quantized) {
    LOG(q, QF_LOG_INFO, "quantized %zu linear weights to %s", q->n_quantized,
        q->cfg.load_in_4bit ? qf_bnb_qtype_name(q->cfg.quant_type) : "int8");
    return QF_OK;
  }
  const qf_host *h = q->host;
  if (!h->model_tensor_count || !h->model_tensor_at) return QF_OK;
  size_t n = h->model_tensor_count(model);
  const char **names = (const char **)calloc(n + 1, sizeof(char *));
  DLTensor *ts = (DLTensor *)calloc(n + 1, sizeof(DLTensor));
  qf_status st = QF_OK;
  if (!names || !ts) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info info;
    if ((st = qf_host_tensor_at(h, model, i, &info, err)) != QF_OK) goto done;
    names[i] = info.name;
    ts[i] = info.tensor;
  }
  char prefix[1024], wname[1100], msg[MSG];
  size_t n_mod = 0;
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !qf_bnb_is_stat_key(names[i], prefix, sizeof prefix)) continue;
    snprintf(wname, sizeof wname, "%sweight", prefix);
    if (strcmp(names[i] + strlen(prefix), QF_BNB_K_SCB) != 0 &&
        strcmp(names[i] + strlen(prefix), QF_BNB_K_WFMT) != 0 &&
        qf_bnb_check_stat_keys(prefix, names, n, msg, sizeof msg)) {
      st = qf_fail(err, QF_ERR_FORMAT, PN, op, "%s", msg);
      goto done;
    }
    entry *e;
    if ((st = get_entry(q, model, wname, op, &e, err)) != QF_OK) goto done;
    const char *sfx = names[i] + strlen(prefix);
    n_mod += strcmp(sfx, QF_BNB_K_SCB) == 0 || strncmp(sfx, QF_BNB_K_QSTATE, strlen(QF_BNB_K_QSTATE)) == 0;
  }
  /* packed weights whose statistics are gone */
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !weight_prefix(names[i], prefix, sizeof prefix)) continue;
    char mod[1024], key[1100];
    module_of(prefix, mod, sizeof mod);
    if (skipped(q, mod) || is_embedding(mod) || ts[i].ndim != 2) continue;
    snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "nf4", prefix);
    int has4 = has_tensor(q, model, key);
    snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "fp4", prefix);
    has4 |= has_tensor(q, model, key);
    snprintf(key, sizeof key, "%s" QF_BNB_K_SCB, prefix);
    int has8 = has_tensor(q, model, key);
    if (q->cfg.load_in_4bit && !has4 && ts[i].dtype.code == kDLUInt &&
        ts[i].dtype.bits == 8) {
      st = qf_fail(err, QF_ERR_FORMAT, PN, op,
                   "tensor '%s' is a packed 4-bit weight but '%s' (or __fp4) "
                   "is missing", names[i],
                   (snprintf(key, sizeof key, "%s" QF_BNB_K_QSTATE "nf4", prefix), key));
      goto done;
    }
    if (q->cfg.load_in_8bit && !has8 && ts[i].dtype.code == kDLInt &&
        ts[i].dtype.bits == 8) {
      st = qf_fail(err, QF_ERR_FORMAT, PN, op,
                   "tensor '%s' is an int8 weight but '%sSCB' is missing",
                   names[i], prefix);
      goto done;
    }
  }
  LOG(q, QF_LOG_INFO, "loaded %zu bitsandbytes modules", n_mod);
done:
  free(names);
  free(ts);
  return st;
}

static qf_status bnb_get_config_json(qf_quantizer *q, char **out_json,
                                     qf_error *err) {
  char *s = qf_bnb_config_to_json(&q->cfg);
  if (!s) return qf_fail(err, QF_ERR_NO_MEMORY, PN, "get_config_json", "out of memory");
  *out_json = qf_host_strdup(q->host, s);
  free(s);
  return *out_json ? QF_OK
                   : qf_fail(err, QF_ERR_NO_MEMORY, PN, "get_config_json", "out of memory");
}

static qf_status bnb_dequantize(qf_quantizer *q, const qf_model *model,
                                const char *name, DLTensor *out, qf_error *err) {
  const char *op = "dequantize";
  if (!out || !out->data || out->device.device_type != kDLCPU ||
      out->dtype.code != kDLFloat || out->dtype.bits != 32 || !is_compact(out))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "output for '%s' must be a compact float32 CPU tensor", name);
  entry *e;
  qf_status st = get_entry(q, model, name, op, &e, err);
  if (st != QF_OK) return st;
  float *y = (float *)((char *)out->data + out->byte_offset);
  int64_t n = qf_numel(out);
  if (e->kind == KIND_4BIT) {
    if (n != e->w4.n)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                     "output for '%s' has %lld elements, the weight has %lld",
                     name, (long long)n, (long long)e->w4.n);
    qf_bnb_dequant4(QF_BNB_ISA_AUTO, e->w4.meta.qtype, e->w4.packed,
                    e->w4.absmax, e->w4.meta.blocksize, 0, n, y);
    return QF_OK;
  }
  if (e->kind == KIND_FLOAT8)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "'%s' is kept in float (llm_int8_has_fp16_weight)", name);
  if (n != e->w8.rows * e->w8.cols)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "output for '%s' has %lld elements, the weight has %lld",
                   name, (long long)n, (long long)(e->w8.rows * e->w8.cols));
  qf_bnb_int8_dequantize(e->w8.cb, e->w8.scb, e->w8.rows, e->w8.cols, y);
  return QF_OK;
}

#ifndef BNB_GPU
static int host_threads(const qf_quantizer *q) {
  const qf_host *h = q->host;
  if (h && QF_HAS_FIELD(h, qf_host, n_threads) && h->n_threads) {
    int t = h->n_threads(h);
    return t > 0 ? t : 1;
  }
  return 1;
}
#endif

#ifdef BNB_GPU
static int on_gpu(const DLTensor *t) {
  return t->device.device_type == kDLCUDA || t->device.device_type == kDLROCM;
}

/* Run the module on the GPU (weights uploaded once per module). */
static qf_status gpu_forward(qf_quantizer *q, entry *e, const DLTensor *x,
                             const float *xp, int64_t m, DLTensor *y, float *yp,
                             qf_error *err) {
  char msg[MSG] = "";
  pthread_mutex_lock(&q->mu);
  if (!e->gpu) {
    if (e->kind == KIND_4BIT)
      e->gpu = qf_bnb_gpu_upload4(e->w4.packed, qf_bnb_packed_bytes(e->w4.n),
                                  e->w4.absmax, e->w4.nblocks, msg, sizeof msg);
    else
      e->gpu = qf_bnb_gpu_upload8(e->w8.cb, e->w8.scb, e->w8.rows, e->w8.cols,
                                  msg, sizeof msg);
  }
  void *h = e->gpu;
  pthread_mutex_unlock(&q->mu);
  if (!h) return qf_fail(err, QF_ERR_ENVIRONMENT, PN, "linear_forward", "%s", msg);
  int rc = e->kind == KIND_4BIT
               ? qf_bnb_gpu_linear4(h, (int)e->w4.meta.qtype,
                                    e->w4.meta.blocksize, e->w4.rows,
                                    e->w4.cols, xp, m, e->bias, yp, on_gpu(x),
                                    on_gpu(y), msg, sizeof msg)
               : qf_bnb_gpu_linear8(h, e->w8.rows, e->w8.cols, xp, m,
                                    (float)q->cfg.llm_int8_threshold, e->bias,
                                    yp, on_gpu(x), on_gpu(y), msg, sizeof msg);
  if (rc) return qf_fail(err, QF_ERR_ENVIRONMENT, PN, "linear_forward", "%s", msg);
  return QF_OK;
}
#endif

static qf_status bnb_linear_forward(qf_quantizer *q, const qf_model *model,
                                    const char *name, const DLTensor *x,
                                    DLTensor *y, qf_error *err) {
  const char *op = "linear_forward";
  if (!x || !y || !x->data || !y->data || x->dtype.code != kDLFloat ||
      x->dtype.bits != 32 || y->dtype.code != kDLFloat || y->dtype.bits != 32 ||
      x->ndim < 1 || y->ndim < 1 || !is_compact(x) || !is_compact(y))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "x and y for '%s' must be compact float32 tensors", name);
  entry *e;
  qf_status st = get_entry(q, model, name, op, &e, err);
  if (st != QF_OK) return st;
  int64_t N = e->kind == KIND_4BIT ? e->w4.rows : e->w8.rows;
  int64_t K = e->kind == KIND_4BIT ? e->w4.cols : e->w8.cols;
  int64_t kx = x->shape[x->ndim - 1];
  int64_t M = kx ? qf_numel(x) / kx : 0;
  if (kx != K || qf_numel(y) != M * N || y->shape[y->ndim - 1] != N)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "'%s' is [%lld, %lld]: x must be [M, %lld] and y [M, %lld]",
                   name, (long long)N, (long long)K, (long long)K, (long long)N);
  const float *xp = (const float *)((const char *)x->data + x->byte_offset);
  float *yp = (float *)((char *)y->data + y->byte_offset);
#ifdef BNB_GPU
  return gpu_forward(q, e, x, xp, M, y, yp, err);
#else
  if (x->device.device_type != kDLCPU || y->device.device_type != kDLCPU)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PN, op,
                   "the CPU build takes CPU tensors only");
  int threads = host_threads(q);
  if (e->kind == KIND_4BIT) {
    if (qf_bnb_linear4(QF_BNB_ISA_AUTO, e->w4.meta.qtype, e->w4.packed,
                       e->w4.absmax, e->w4.meta.blocksize, N, K, xp, M, yp,
                       threads))
      return qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
    if (e->bias)
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) yp[m * N + n] += e->bias[n];
    return QF_OK;
  }
  if (qf_bnb_linear8(QF_BNB_ISA_AUTO, e->w8.cb, e->w8.scb, N, K, xp, M,
                     (float)q->cfg.llm_int8_threshold, e->bias, yp, threads))
    return qf_fail(err, QF_ERR_NO_MEMORY, PN, op, "out of memory");
  return QF_OK;
#endif
}

/* ------------------------------------------------------------ descriptor */

static const qf_quantizer_vtable k_vtable = {
    .struct_size = sizeof(qf_quantizer_vtable),
    .create = bnb_create,
    .destroy = bnb_destroy,
    .validate_environment = bnb_validate_environment,
    .update_dtype = bnb_update_dtype,
    .update_device_map = bnb_update_device_map,
    .adjust_target_dtype = bnb_adjust_target_dtype,
    .adjust_max_memory = bnb_adjust_max_memory,
    .param_element_size = bnb_param_element_size,
    .preprocess_model = bnb_preprocess_model,
    .param_needs_quantization = bnb_param_needs_quantization,
    .create_quantized_param = bnb_create_quantized_param,
    .update_missing_keys = NULL,
    .update_unexpected_keys = bnb_update_unexpected_keys,
    .postprocess_model = bnb_postprocess_model,
    .get_config_json = bnb_get_config_json,
    .dequantize = bnb_dequantize,
    .linear_forward = bnb_linear_forward,
};

static const char *const k_methods[] = {"bitsandbytes", NULL};

static const qf_plugin_desc k_desc = {
    .struct_size = sizeof(qf_plugin_desc),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .name = PN,
    .version = "0.1.0",
#if defined(QF_BUILD_CUDA)
    .description = "bitsandbytes NF4/FP4 (+double quant) and LLM.int8(), CUDA",
    .backend = QF_BACKEND_CUDA,
#elif defined(QF_BUILD_HIP)
    .description = "bitsandbytes NF4/FP4 (+double quant) and LLM.int8(), HIP",
    .backend = QF_BACKEND_HIP,
#else
    .description = "bitsandbytes NF4/FP4 (+double quant) and LLM.int8(), CPU",
    .backend = QF_BACKEND_CPU,
#endif
    .quant_methods = k_methods,
    .caps = QF_CAP_SERIALIZABLE | QF_CAP_TRAINABLE | QF_CAP_PREQUANTIZED_LOAD |
            QF_CAP_DEQUANTIZE | QF_CAP_LINEAR_FORWARD |
            QF_CAP_PARAMETERS_QUANTIZATION,
    /* NF4: the widest distance to a code (-1.0 vs the threshold -0.8481) is
     * 0.152 of the block absmax, which is at most the row absmax */
    .declared_rel_error = 0.16,
    .example_config_json =
        "{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\", "
        "\"bnb_4bit_use_double_quant\": false}",
    .vtable = &k_vtable,
};

QF_PLUGIN_EXPORT qf_status qf_plugin_init(const qf_host *host,
                                          const qf_plugin_desc **out,
                                          qf_error *err) {
  qf_status st = qf_plugin_check_host(host, out, PN, QF_STRUCT_SIZE_TO(qf_host, model_put_tensor), err);
  if (st != QF_OK) return st;
  *out = &k_desc;
  return QF_OK;
}

QF_PLUGIN_EXPORT int qf_plugin_score(void) {
#ifdef BNB_GPU
  return qf_bnb_gpu_device_count() > 0 ? 10 : 0;
#else
  return 1;
#endif
}
