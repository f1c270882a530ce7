/*
 * The runtime's model object: opens an HF folder (or borrows an opened
 * checkpoint), parses config.json, resolves and shape-checks every tensor the
 * forward pass uses into slots, converts f16/bf16 tensors to f32 lazily on
 * first use and keeps them within a byte budget (least recently used first
 * out; f32 tensors are read in place). Also the linear-layer dispatch: weight
 * overrides → float weights or the model's hook → bias, and the helpers that
 * name and order the linear modules.
 */
#include <cblas.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_internal.h"

#define OP "runtime"

static const char *const k_mod_names[QF_RT_MODULE_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
    "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
    "mlp.down_proj"};

const char *qf_rt_module_name(qf_rt_module mod) {
  return (unsigned)mod < QF_RT_MODULE_COUNT ? k_mod_names[mod] : "?";
}

void qf_rt_linear_name(int layer, qf_rt_module mod, char *buf, size_t n) {
  if (!buf || !n) return;
  snprintf(buf, n, "model.layers.%d.%s.weight", layer, qf_rt_module_name(mod));
}

qf_rt_site qf_rt_module_site(qf_rt_module mod) {
  switch (mod) {
    case QF_RT_Q: case QF_RT_K: case QF_RT_V: return QF_RT_SITE_ATTN_IN;
    case QF_RT_O: return QF_RT_SITE_O_IN;
    case QF_RT_GATE: case QF_RT_UP: return QF_RT_SITE_MLP_IN;
    default: return QF_RT_SITE_DOWN_IN;
  }
}

int64_t qf__rt_module_n(const qf_rt_config *c, qf_rt_module mod) {
  switch (mod) {
    case QF_RT_Q: return c->n_heads * c->head_dim;
    case QF_RT_K: case QF_RT_V: return c->n_kv_heads * c->head_dim;
    case QF_RT_GATE: case QF_RT_UP: return c->intermediate;
    default: return c->hidden;
  }
}

int64_t qf__rt_module_k(const qf_rt_config *c, qf_rt_module mod) {
  switch (mod) {
    case QF_RT_O: return c->n_heads * c->head_dim;
    case QF_RT_DOWN: return c->intermediate;
    default: return c->hidden;
  }
}

/* "model.layers.<i>." prefix → layer, and the rest of the name. */
static const char *parse_layer(const char *name, int *layer) {
  static const char pre[] = "model.layers.";
  if (strncmp(name, pre, sizeof pre - 1)) return NULL;
  const char *p = name + sizeof pre - 1;
  if (*p < '0' || *p > '9') return NULL;
  long v = 0;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (*p - '0');
    if (v > 1000000) return NULL;
    p++;
  }
  if (*p != '.') return NULL;
  *layer = (int)v;
  return p + 1;
}

int qf__rt_name_layer(const char *name) {
  int l;
  return name && parse_layer(name, &l) ? l : -1;
}

int qf_rt_parse_linear_name(const char *name, int *layer, qf_rt_module *mod) {
  int l;
  const char *rest = name ? parse_layer(name, &l) : NULL;
  if (!rest) return 0;
  for (int i = 0; i < QF_RT_MODULE_COUNT; i++) {
    size_t n = strlen(k_mod_names[i]);
    if (!strncmp(rest, k_mod_names[i], n) &&
        (rest[n] == '\0' || rest[n] == '.')) {
      if (layer) *layer = l;
      if (mod) *mod = (qf_rt_module)i;
      return 1;
    }
  }
  return 0;
}

int64_t qf_rt_forward_rank(const char *name) {
  static const int64_t tail = INT64_C(1) << 40;
  if (!name) return tail + 3;
  if (!strncmp(name, "model.embed_tokens.", 19)) return 0;
  int layer;
  qf_rt_module mod;
  if (qf_rt_parse_linear_name(name, &layer, &mod)) {
    static const int sub[QF_RT_MODULE_COUNT] = {1, 2, 3, 4, 6, 7, 8};
    return 1 + (int64_t)layer * 16 + sub[mod];
  }
  const char *rest = parse_layer(name, &layer);
  if (rest) {
    int sub = !strncmp(rest, "input_layernorm.", 16)            ? 0
              : !strncmp(rest, "post_attention_layernorm.", 25) ? 5
                                                                : 9;
    return 1 + (int64_t)layer * 16 + sub;
  }
  if (!strncmp(name, "model.norm.", 11)) return tail;
  if (!strncmp(name, "lm_head.", 8)) return tail + 1;
  return tail + 2;
}

/* ------------------------------------------------------------------ slots */

static size_t slot_count(const qf_rt_model *m) {
  return 3 + (size_t)m->cfg.n_layers * (2 * QF_RT_MODULE_COUNT + 2);
}

static qf__rt_slot *slot_at(qf_rt_model *m, size_t i) {
  if (i == 0) return &m->embed;
  if (i == 1) return &m->final_norm;
  if (i == 2) return &m->lm_head;
  i -= 3;
  size_t per = 2 * QF_RT_MODULE_COUNT + 2;
  qf__rt_layer *L = &m->layers[i / per];
  i %= per;
  if (i < QF_RT_MODULE_COUNT) return &L->w[i];
  if (i < 2 * QF_RT_MODULE_COUNT) return &L->b[i - QF_RT_MODULE_COUNT];
  return i == 2 * QF_RT_MODULE_COUNT ? &L->norm1 : &L->norm2;
}

static int64_t numel_of(const qf_st_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

static void slot_drop(qf_rt_model *m, qf__rt_slot *s) {
  if (s->conv) {
    m->cache_used -= (uint64_t)numel_of(s->t) * sizeof(float);
    free(s->conv);
    s->conv = NULL;
    s->ptr = NULL;
  }
}

qf_status qf__rt_slot_f32(qf_rt_model *m, qf__rt_slot *s, const float **out,
                          qf_error *err) {
  *out = NULL;
  if (!s->t)
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "a tensor the runtime needs is not in the checkpoint");
  s->stamp = ++m->clock;
  if (s->ptr) {
    *out = s->ptr;
    return QF_OK;
  }
  if (s->t->dtype == QF_DTYPE_F32 && ((uintptr_t)s->t->data & 3u) == 0) {
    s->ptr = s->t->data;
    *out = s->ptr;
    return QF_OK;
  }
  int64_t n = numel_of(s->t);
  uint64_t bytes = (uint64_t)n * sizeof(float);
  while (m->cache_used + bytes > m->cache_budget) {
    qf__rt_slot *victim = NULL;
    for (size_t i = 0; i < slot_count(m); i++) {
      qf__rt_slot *c = slot_at(m, i);
      if (c->conv && c != s && (!victim || c->stamp < victim->stamp))
        victim = c;
    }
    if (!victim) break;
    slot_drop(m, victim);
  }
  s->conv = malloc((size_t)bytes ? (size_t)bytes : 1);
  if (!s->conv)
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP,
                     "out of memory converting '%s' to f32", s->t->name);
  if (qf_convert(s->conv, QF_DTYPE_F32, s->t->data, s->t->dtype, (size_t)n)) {
    free(s->conv);
    s->conv = NULL;
    return qf_errorf(err, QF_ERR_FORMAT, OP, "%s: tensor '%s' has dtype %s "
                     "(expected F32, F16 or BF16)", s->t->file, s->t->name,
                     qf_dtype_name(s->t->dtype));
  }
  m->cache_used += bytes;
  s->ptr = s->conv;
  *out = s->ptr;
  return QF_OK;
}

qf__rt_slot *qf__rt_find_slot(qf_rt_model *m, const char *name) {
  if (!strcmp(name, "model.embed_tokens.weight")) return &m->embed;
  if (!strcmp(name, "model.norm.weight")) return &m->final_norm;
  if (!strcmp(name, "lm_head.weight"))
    return m->lm_head.t ? &m->lm_head : &m->embed;
  int layer;
  const char *rest = parse_layer(name, &layer);
  if (!rest || layer >= m->cfg.n_layers) return NULL;
  qf__rt_layer *L = &m->layers[layer];
  if (!strcmp(rest, "input_layernorm.weight")) return &L->norm1;
  if (!strcmp(rest, "post_attention_layernorm.weight")) return &L->norm2;
  for (int i = 0; i < QF_RT_MODULE_COUNT; i++) {
    size_t n = strlen(k_mod_names[i]);
    if (strncmp(rest, k_mod_names[i], n) || rest[n] != '.') continue;
    if (!strcmp(rest + n + 1, "weight")) return &L->w[i];
    if (!strcmp(rest + n + 1, "bias")) return &L->b[i];
  }
  return NULL;
}

/* Resolve a tensor into a slot, checking dtype and shape. */
static qf_status bind(qf_rt_model *m, qf__rt_slot *s, const char *name,
                      int required, int64_t d0, int64_t d1, qf_error *err) {
  const qf_st_tensor *t = qf_checkpoint_find(m->ckpt, name);
  if (!t) {
    if (!required) return QF_OK;
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "%s: tensor '%s' is missing from the checkpoint",
                     qf_checkpoint_dir(m->ckpt), name);
  }
  int is_float = t->dtype == QF_DTYPE_F32 || t->dtype == QF_DTYPE_F16 ||
                 t->dtype == QF_DTYPE_BF16;
  if (!is_float && !required && d1) {
    /* a quantized linear stored under ".weight" (bitsandbytes int8/4-bit):
     * left to the linear hook */
    qf_log(QF_LOG_DEBUG, "runtime: '%s' is %s: served by the linear hook",
           name, qf_dtype_name(t->dtype));
    return QF_OK;
  }
  if (!is_float)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: tensor '%s' has dtype %s (expected F32, F16 or "
                     "BF16)", t->file, name, qf_dtype_name(t->dtype));
  int ndim = d1 ? 2 : 1;
  if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: tensor '%s' has the wrong shape (expected [%" PRId64
                     "%s%" PRId64 "] from config.json)", t->file, name, d0,
                     ndim == 2 ? ", " : "", ndim == 2 ? d1 : (int64_t)0);
  s->t = t;
  return QF_OK;
}

static qf_status bind_all(qf_rt_model *m, qf_error *err) {
  const qf_rt_config *c = &m->cfg;
  qf_status st;
  char name[256];
  if ((st = bind(m, &m->embed, "model.embed_tokens.weight", 1, c->vocab,
                 c->hidden, err)) ||
      (st = bind(m, &m->final_norm, "model.norm.weight", 1, c->hidden, 0,
                 err)))
    return st;
  if (!c->tie_word_embeddings) {
    if ((st = bind(m, &m->lm_head, "lm_head.weight", 0, c->vocab, c->hidden,
                   err)))
      return st;
    if (!m->lm_head.t && !qf_checkpoint_find(m->ckpt, "lm_head.weight"))
      qf_log(QF_LOG_WARN, "%s: no lm_head.weight and tie_word_embeddings is "
             "false: using the embeddings as lm_head",
             qf_checkpoint_dir(m->ckpt));
  }
  for (int l = 0; l < c->n_layers; l++) {
    qf__rt_layer *L = &m->layers[l];
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
    if ((st = bind(m, &L->norm1, name, 1, c->hidden, 0, err))) return st;
    snprintf(name, sizeof name,
             "model.layers.%d.post_attention_layernorm.weight", l);
    if ((st = bind(m, &L->norm2, name, 1, c->hidden, 0, err))) return st;
    for (int i = 0; i < QF_RT_MODULE_COUNT; i++) {
      int64_t N = qf__rt_module_n(c, i), K = qf__rt_module_k(c, i);
      snprintf(name, sizeof name, "model.layers.%d.%s.weight", l,
               k_mod_names[i]);
      if ((st = bind(m, &L->w[i], name, 0, N, K, err))) return st;
      snprintf(name, sizeof name, "model.layers.%d.%s.bias", l,
               k_mod_names[i]);
      if ((st = bind(m, &L->b[i], name, 0, N, 0, err))) return st;
    }
  }
  return QF_OK;
}

qf_status qf_rt_new(const qf_checkpoint *ckpt, const qf_rt_options *opt,
                    qf_rt_model **out, qf_error *err) {
  if (!ckpt || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_rt_new needs a checkpoint and an output pointer");
  *out = NULL;
  const char *cfg = qf_checkpoint_config_json(ckpt);
  if (!cfg)
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "%s: config.json is missing (the runtime needs the "
                     "architecture)", qf_checkpoint_dir(ckpt));
  qf_rt_model *m = calloc(1, sizeof *m);
  if (!m) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  m->ckpt = ckpt;
  qf_status st = qf_rt_config_parse(cfg, &m->cfg, err);
  if (st) {
    qf_error_prefix(err, "%s", qf_checkpoint_dir(ckpt));
    free(m);
    return st;
  }
  m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
  if (!m->layers) {
    free(m);
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  }
  if ((st = bind_all(m, err))) {
    qf_rt_free(m);
    return st;
  }
  int nt = opt && opt->n_threads > 0 ? opt->n_threads : 0;
  if (nt > 0) {
    openblas_set_num_threads(nt);
  } else {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nt = n > 0 ? (int)n : 1;
  }
  m->n_threads = nt;
  m->cache_budget = opt && opt->cache_bytes ? opt->cache_bytes
                                            : (UINT64_C(2) << 30);
  *out = m;
  return QF_OK;
}

qf_status qf_rt_open(const char *path, const qf_rt_options *opt,
                     qf_rt_model **out, qf_error *err) {
  if (!path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_rt_open needs a path and an output pointer");
  qf_checkpoint *ck = NULL;
  qf_status st = qf_checkpoint_open(path, &ck, err);
  if (st) return st;
  if ((st = qf_rt_new(ck, opt, out, err))) {
    qf_checkpoint_close(ck);
    return st;
  }
  (*out)->owned_ckpt = ck;
  return QF_OK;
}

void qf_rt_free(qf_rt_model *m) {
  if (!m) return;
  if (m->layers)
    for (size_t i = 0; i < slot_count(m); i++) free(slot_at(m, i)->conv);
  free(m->layers);
  free(m->scratch);
  if (m->owned_ckpt) qf_checkpoint_close(m->owned_ckpt);
  free(m);
}

const qf_rt_config *qf_rt_get_config(const qf_rt_model *m) {
  return m ? &m->cfg : NULL;
}
const qf_checkpoint *qf_rt_checkpoint(const qf_rt_model *m) {
  return m ? m->ckpt : NULL;
}
int qf_rt_n_threads(const qf_rt_model *m) { return m ? m->n_threads : 1; }

void qf_rt_set_linear(qf_rt_model *m, qf_rt_linear_fn fn, void *user,
                      unsigned flags) {
  if (!m) return;
  m->hook = fn;
  m->hook_user = user;
  m->hook_flags = fn ? flags : 0;
}

qf_status qf_rt_tensor_f32(qf_rt_model *m, const char *name, const float **w,
                           int64_t *numel, qf_error *err) {
  if (!m || !name || !w)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_rt_tensor_f32 needs a model, a name and an output");
  qf__rt_slot *s = qf__rt_find_slot(m, name);
  if (s && s->t) {
    qf_status st = qf__rt_slot_f32(m, s, w, err);
    if (!st && numel) *numel = numel_of(s->t);
    return st;
  }
  const qf_st_tensor *t = qf_checkpoint_find(m->ckpt, name);
  if (!t)
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "%s: tensor '%s' is not in the checkpoint (a quantized "
                     "checkpoint needs a linear hook)",
                     qf_checkpoint_dir(m->ckpt), name);
  size_t n = (size_t)numel_of(t);
  if (n > m->scratch_n) {
    float *p = realloc(m->scratch, n * sizeof(float));
    if (!p) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    m->scratch = p;
    m->scratch_n = n;
  }
  if (qf_convert(m->scratch, QF_DTYPE_F32, t->data, t->dtype, n))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: tensor '%s' has dtype %s (expected F32, F16 or "
                     "BF16)", t->file, name, qf_dtype_name(t->dtype));
  *w = m->scratch;
  if (numel) *numel = (int64_t)n;
  return QF_OK;
}

static void sgemm_xwt(const float *x, const float *w, int64_t M, int64_t K,
                      int64_t N, float *y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)N,
              (blasint)K, 1.0f, x, (blasint)K, w, (blasint)K, 0.0f, y,
              (blasint)N);
}

qf_status qf_rt_linear_float(void *user, qf_rt_model *m,
                             const char *weight_name, const float *x,
                             int64_t M, int64_t K, float *y, int64_t N,
                             qf_error *err) {
  (void)user;
  const float *w;
  int64_t numel = 0;
  qf_status st = qf_rt_tensor_f32(m, weight_name, &w, &numel, err);
  if (st) return st;
  if (numel != N * K)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "tensor '%s' has %" PRId64 " elements (expected [%" PRId64
                     ", %" PRId64 "])", weight_name, numel, N, K);
  sgemm_xwt(x, w, M, K, N, y);
  return QF_OK;
}

qf_status qf__rt_linear(qf_rt_model *m, const qf_rt_block_opts *o, int layer,
                        qf_rt_module mod, const float *x, int64_t M, float *y,
                        qf_error *err) {
  char name[128];
  qf_rt_linear_name(layer, mod, name, sizeof name);
  int64_t N = qf__rt_module_n(&m->cfg, mod), K = qf__rt_module_k(&m->cfg, mod);
  int bias_done = 0;
  qf_status st = QF_OK;
  const float *ov = qf__rt_override(o, name);
  if (ov) {
    sgemm_xwt(x, ov, M, K, N, y);
  } else if ((o && o->float_weights) || !m->hook) {
    st = qf_rt_linear_float(NULL, m, name, x, M, K, y, N, err);
  } else {
    st = m->hook(m->hook_user, m, name, x, M, K, y, N, err);
    bias_done = (m->hook_flags & QF_RT_LINEAR_ADDS_BIAS) != 0;
    if (st) qf_error_prefix(err, "linear hook for '%s'", name);
  }
  if (st) return st;
  qf__rt_slot *b = &m->layers[layer].b[mod];
  if (!bias_done && b->t) {
    const float *bv;
    snprintf(name, sizeof name, "model.layers.%d.%s.bias", layer,
             qf_rt_module_name(mod));
    if (!(bv = qf__rt_override(o, name)) &&
        (st = qf__rt_slot_f32(m, b, &bv, err)))
      return st;
    qf__add_bias(y, bv, M, N);
  }
  return QF_OK;
}

const float *qf__rt_override(const qf_rt_block_opts *o, const char *name) {
  if (!o) return NULL;
  for (size_t i = 0; i < o->n_overrides; i++)
    if (o->overrides[i].name && !strcmp(o->overrides[i].name, name))
      return o->overrides[i].w;
  return NULL;
}
