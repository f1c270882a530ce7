/*
 * The AWQ plugin's write side with calibration. Two ways in:
 *
 *  - Block level (ABI 1.1: calib_inputs + calib_block_forward, and
 *    calib_part_forward when the host has it). The first claimed tensor of a
 *    Llama-family decoder block (its input_layernorm in the host's forward
 *    order) runs the whole block through qf_awq_block_run — scale search of
 *    the four groups, q/k/v scored on the self-attention output and gate/up
 *    on the MLP output as AutoAWQ does (on the whole block's output when the
 *    host has no calib_part_forward), folding into the norms / v_proj /
 *    up_proj, clip search — and emits every tensor AWQ changes: the seven
 *    quantized linears and the rescaled norms (and v_proj / up_proj / norm
 *    biases when present), in the dtype they came in. Later calls for that
 *    block find it done.
 *  - Per tensor (no block calibration, a block AWQ cannot handle, raw mode):
 *    the clip search from the linear's captured inputs (calib_inputs) or from
 *    a Gram matrix (calib_hessian), else AutoAWQ round-to-nearest with zero
 *    point. A weight handed in here is taken as final ("given scales").
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_internal.h"

/* --------------------------------------------------------------- names */

int qf__awq_block_prefix(const char *name, char *prefix, size_t size) {
  if (!name) return 0;
  const char *p = name;
  for (;;) {
    const char *hit = strstr(p, "layers.");
    if (!hit) return 0;
    if (hit == name || hit[-1] == '.') {
      const char *d = hit + 7;
      if (isdigit((unsigned char)*d)) {
        while (isdigit((unsigned char)*d)) d++;
        if (*d == '.') {
          const size_t n = (size_t)(d + 1 - name);
          if (n + 1 > size) return 0;
          memcpy(prefix, name, n);
          prefix[n] = '\0';
          return 1;
        }
      }
    }
    p = hit + 7;
  }
}

int qf__awq_block_aux(const char *name) {
  static const char *const aux[] = {"input_layernorm.weight", "input_layernorm.bias",
                                    "post_attention_layernorm.weight",
                                    "post_attention_layernorm.bias", "self_attn.v_proj.bias",
                                    "mlp.up_proj.bias"};
  char bp[QF_AWQ_NAME_MAX];
  if (!qf__awq_block_prefix(name, bp, sizeof bp)) return 0;
  const char *rest = name + strlen(bp);
  for (size_t i = 0; i < sizeof aux / sizeof aux[0]; i++)
    if (!strcmp(rest, aux[i])) return 1;
  return 0;
}

int qf__awq_block_is_done(qf_quantizer *q, const char *bprefix) {
  int done = 0;
  pthread_mutex_lock(&q->lock);
  for (size_t i = 0; i < q->n_blocks_done && !done; i++)
    done = !strcmp(q->blocks_done[i], bprefix);
  pthread_mutex_unlock(&q->lock);
  return done;
}

void qf__awq_block_mark_done(qf_quantizer *q, const char *bprefix) {
  pthread_mutex_lock(&q->lock);
  char **grown = realloc(q->blocks_done, (q->n_blocks_done + 1) * sizeof *grown);
  char *copy = strdup(bprefix);
  if (grown) q->blocks_done = grown;
  if (grown && copy) q->blocks_done[q->n_blocks_done++] = copy;
  else free(copy); /* the block would run again: slower, still correct */
  pthread_mutex_unlock(&q->lock);
}

/* ------------------------------------------------------------ emitting */

static qf_status put2(qf_quantizer *q, qf_model *model, const char *prefix,
                      const char *leaf, void *data, DLDataType dt, int64_t d0,
                      int64_t d1, qf_error *err) {
  char name[QF_AWQ_NAME_MAX + 16];
  snprintf(name, sizeof name, "%s%s", prefix, leaf);
  int64_t shape[2] = {d0, d1};
  DLTensor t = qf_cpu_tensor(data, dt, 2, shape);
  return q->host->model_put_tensor(model, name, &t, err);
}

qf_status qf__awq_emit_linear(qf_quantizer *q, qf_model *model,
                              const char *prefix, float *w, int64_t n,
                              int64_t k, const char *op, qf_error *err) {
  const int64_t g = q->cfg.group_size > 0 ? q->cfg.group_size : k;
  const int gemv = q->cfg.layout == QF_AWQ_LAYOUT_GEMV;
  const int64_t ng = k / g, zw = gemv ? qf_awq_gemv_zeros_width(k, g) : 0;
  const size_t words = (size_t)(n * k / 8);
  const size_t zwords = gemv ? (size_t)(n * zw) : (size_t)(ng * n / 8);
  const size_t nscale = gemv ? (size_t)(n * zw * 8) : (size_t)(ng * n);
  float *sc = malloc((size_t)(n * ng) * sizeof *sc), *zr = malloc((size_t)(n * ng) * sizeof *zr);
  int32_t *qw = malloc(words * sizeof *qw), *qz = malloc(zwords * sizeof *qz);
  uint16_t *s16 = malloc(nscale * sizeof *s16);
  qf_status st = QF_OK;
  if (!sc || !zr || !qw || !qz || !s16) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, op, "%sweight: out of memory", prefix);
    goto done;
  }
  st = qf_awq_pseudo_quantize(w, n, k, g, q->cfg.bits, 1, w, sc, zr);
  if (st != QF_OK) {
    st = qf_fail(err, st, QF_AWQ_PLUGIN, op,
                 "%sweight: contains inf or NaN (or its range overflows float)", prefix);
    goto done;
  }
  const DLDataType i32 = qf_dl_dtype(kDLInt, 32), f16 = qf_dl_dtype(kDLFloat, 16);
  if (gemv) {
    st = qf_awq_gemv_pack(w, sc, zr, n, k, g, qw, qz, s16);
    if (st == QF_OK) st = put2(q, model, prefix, "qweight", qw, i32, n, k / 8, err);
    if (st == QF_OK) st = put2(q, model, prefix, "qzeros", qz, i32, n, zw, err);
    if (st == QF_OK) st = put2(q, model, prefix, "scales", s16, f16, n, zw * 8, err);
  } else {
    st = qf_awq_gemm_pack(w, sc, zr, n, k, g, qw, qz, s16);
    if (st == QF_OK) st = put2(q, model, prefix, "qweight", qw, i32, k, n / 8, err);
    if (st == QF_OK) st = put2(q, model, prefix, "qzeros", qz, i32, ng, n / 8, err);
    if (st == QF_OK) st = put2(q, model, prefix, "scales", s16, f16, ng, n, err);
  }
done:
  free(sc);
  free(zr);
  free(qw);
  free(qz);
  free(s16);
  return st;
}

/* Emit `v` (float32) under `name` in the dtype and shape of `like`. */
static qf_status emit_like(qf_quantizer *q, qf_model *model, const char *name,
                           const float *v, const DLTensor *like, qf_error *err) {
  const int64_t n = qf_numel(like);
  const int bits = like->dtype.bits;
  void *buf = malloc((size_t)n * (size_t)(bits / 8));
  if (!buf) return qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, "create_quantized_param", "out of memory");
  if (bits == 32) {
    memcpy(buf, v, (size_t)n * sizeof(float));
  } else {
    uint16_t *h = buf;
    const int bf = like->dtype.code == kDLBfloat;
    for (int64_t i = 0; i < n; i++) h[i] = bf ? qf_f32_to_bf16(v[i]) : qf_f32_to_f16(v[i]);
  }
  DLTensor t = qf_cpu_tensor(buf, like->dtype, like->ndim, like->shape);
  qf_status st = q->host->model_put_tensor(model, name, &t, err);
  free(buf);
  return st;
}

/* ------------------------------------------------------ per-tensor clip */

qf_status qf__awq_clip_linear(qf_quantizer *q, const char *name, float *w,
                              int64_t n, int64_t k, qf_calib *calib, int *done,
                              qf_error *err) {
  static const char *op = "create_quantized_param";
  *done = 0;
  if (!calib || !q->cfg.apply_clip || qf_awq_clip_skipped(name)) return QF_OK;
  const qf_host *h = q->host;
  const int64_t g = q->cfg.group_size > 0 ? q->cfg.group_size : k;
  qf_awq_clip_opts o = qf_awq_clip_opts_default();
  o.bits = q->cfg.bits;
  const float *x = NULL, *gram = NULL;
  int64_t t = 0, xk = 0, hk = 0;
  qf_error e;
  memset(&e, 0, sizeof e);
  qf_status st = QF_ERR_NOT_FOUND;
  if (QF_HAS_FIELD(h, qf_host, calib_inputs) && h->calib_inputs)
    st = h->calib_inputs(calib, name, &x, &t, &xk, &e);
  if (st == QF_ERR_NOT_FOUND && QF_HAS_FIELD(h, qf_host, calib_hessian) && h->calib_hessian) {
    x = NULL;
    st = h->calib_hessian(calib, name, &gram, &hk, &e);
    xk = hk;
  }
  if (st == QF_ERR_NOT_FOUND) return QF_OK;
  if (st != QF_OK) {
    *err = e;
    return st;
  }
  if (xk != k || (x && t <= 0) || (!x && !gram))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op,
                   "%s: calibration gives %lld input features, the weight has %lld", name,
                   (long long)xk, (long long)k);
  float *best = malloc((size_t)(n * (k / g)) * sizeof *best);
  if (!best) return qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, op, "out of memory");
  st = x ? qf_awq_clip_search_x(w, n, k, g, x, t, &o, best)
         : qf_awq_clip_search_gram(w, n, k, g, gram, &o, best);
  if (st == QF_OK) {
    qf_awq_apply_clip(w, n, k, g, best);
    *done = 1;
  }
  free(best);
  if (st != QF_OK)
    return qf_fail(err, st, QF_AWQ_PLUGIN, op, "%s: clip search failed", name);
  return QF_OK;
}

/* ------------------------------------------------------------ blocks */

typedef struct block_ctx {
  qf_quantizer *q;
  qf_calib *calib;
  char names[QF_AWQ_N_LINEAR][QF_AWQ_NAME_MAX + 32];
  int64_t rows[QF_AWQ_N_LINEAR], cols[QF_AWQ_N_LINEAR];
  qf_error *err;
  int failed; /* a host callback failed: its message is in err */
} block_ctx;

static qf_status bio_inputs(void *vctx, int linear, const float **x, int64_t *t, int64_t *k) {
  block_ctx *c = vctx;
  qf_status st = c->q->host->calib_inputs(c->calib, c->names[linear], x, t, k, c->err);
  if (st != QF_OK) c->failed = 1;
  return st;
}

/* part < 0: calib_block_forward, else calib_part_forward(part). */
static qf_status bio_run(block_ctx *c, int part, const int *linears, const float *const *w,
                         int n, float *out) {
  DLTensor ts[QF_AWQ_N_LINEAR];
  const char *nm[QF_AWQ_N_LINEAR];
  int64_t shapes[QF_AWQ_N_LINEAR][2];
  for (int i = 0; i < n && i < QF_AWQ_N_LINEAR; i++) {
    nm[i] = c->names[linears[i]];
    shapes[i][0] = c->rows[linears[i]];
    shapes[i][1] = c->cols[linears[i]];
    ts[i] = qf_cpu_tensor((void *)w[i], qf_dl_dtype(kDLFloat, 32), 2, shapes[i]);
  }
  const qf_host *h = c->q->host;
  qf_status st =
      part < 0 ? h->calib_block_forward(c->calib, c->names[0], nm, ts, (size_t)n, out, c->err)
               : h->calib_part_forward(c->calib, c->names[0], part, nm, ts, (size_t)n, out,
                                       c->err);
  if (st != QF_OK) c->failed = 1;
  return st;
}

static qf_status bio_forward(void *vctx, const int *linears, const float *const *w, int n,
                             float *out) {
  return bio_run(vctx, -1, linears, w, n, out);
}

static qf_status bio_part_forward(void *vctx, int part, const int *linears,
                                  const float *const *w, int n, float *out) {
  return bio_run(vctx, part, linears, w, n, out);
}

/* A float32 copy of a block tensor, or NULL (absent / not float / 2-D
 * when a vector is expected). */
static float *load_f32(qf_quantizer *q, const qf_model *model, const char *name, int ndim,
                       qf_tensor_info *ti) {
  qf_error e;
  if (qf_host_find_tensor(q->host, model, name, ti, &e) != QF_OK) return NULL;
  if (ti->tensor.ndim != ndim || !ti->tensor.data || !qf_dtype_is_float(ti->tensor.dtype))
    return NULL;
  float *v = malloc((size_t)qf_numel(&ti->tensor) * sizeof *v);
  if (v) qf_tensor_to_f32(&ti->tensor, v);
  return v;
}

#define N_AUX 6

qf_status qf__awq_run_block(qf_quantizer *q, qf_model *model,
                            const char *bp, qf_calib *calib, int *ran,
                            qf_error *err) {
  static const char *op = "create_quantized_param";
  static const char *const aux_leaf[N_AUX] = {
      "input_layernorm.weight", "post_attention_layernorm.weight", "input_layernorm.bias",
      "post_attention_layernorm.bias", "self_attn.v_proj.bias", "mlp.up_proj.bias"};
  const qf_host *h = q->host;
  *ran = 0;
  if (!calib || q->pre_quantized || !QF_HAS_FIELD(h, qf_host, calib_block_shape) ||
      !h->calib_inputs || !h->calib_block_forward || !h->calib_block_shape)
    return QF_OK;
  block_ctx c;
  memset(&c, 0, sizeof c);
  c.q = q;
  c.calib = calib;
  c.err = err;
  qf_awq_block b;
  memset(&b, 0, sizeof b);
  int n_quant = 0;
  for (int i = 0; i < QF_AWQ_N_LINEAR; i++) {
    snprintf(c.names[i], sizeof c.names[i], "%s%s.weight", bp, qf_awq_block_linear_names[i]);
    b.keep[i] = !qf__awq_wants(q, model, c.names[i]); /* stays float, untouched */
    n_quant += !b.keep[i];
  }
  if (!n_quant) return QF_OK;
  int64_t tokens = 0, hidden = 0;
  qf_error e;
  memset(&e, 0, sizeof e);
  qf_status st = h->calib_block_shape(calib, c.names[0], &tokens, &hidden, &e);
  if (st == QF_ERR_NOT_FOUND) return QF_OK; /* no model calibration running */
  if (st != QF_OK) {
    *err = e;
    return st;
  }
  qf_tensor_info lin[QF_AWQ_N_LINEAR], aux[N_AUX];
  float *av[N_AUX] = {NULL};
  int ok = 1;
  for (int i = 0; i < QF_AWQ_N_LINEAR && ok; i++) {
    b.w[i] = load_f32(q, model, c.names[i], 2, &lin[i]);
    ok = b.w[i] != NULL;
    if (ok) {
      b.rows[i] = c.rows[i] = lin[i].tensor.shape[0];
      b.cols[i] = c.cols[i] = lin[i].tensor.shape[1];
    }
  }
  char names_aux[N_AUX][QF_AWQ_NAME_MAX + 40];
  for (int i = 0; i < N_AUX && ok; i++) {
    snprintf(names_aux[i], sizeof names_aux[i], "%s%s", bp, aux_leaf[i]);
    av[i] = load_f32(q, model, names_aux[i], 1, &aux[i]);
    if (i < 2 && !av[i]) ok = 0; /* both norms are required */
  }
  b.hidden = hidden;
  b.ln1 = av[0];
  b.ln2 = av[1];
  b.ln1_bias = av[2];
  b.ln2_bias = av[3];
  b.v_bias = av[4];
  b.up_bias = av[5];
  if (ok && (aux[0].tensor.shape[0] != hidden || aux[1].tensor.shape[0] != hidden ||
             (av[2] && aux[2].tensor.shape[0] != hidden) ||
             (av[3] && aux[3].tensor.shape[0] != hidden) ||
             (av[4] && aux[4].tensor.shape[0] != b.rows[QF_AWQ_V]) ||
             (av[5] && aux[5].tensor.shape[0] != b.rows[QF_AWQ_UP])))
    ok = 0;
  if (ok) {
    /* AutoAWQ's losses (self_attn / MLP output) when the host runs block
     * parts, else the whole block's output (see block.c) */
    const int parts = QF_HAS_FIELD(h, qf_host, calib_part_forward) && h->calib_part_forward;
    qf_awq_block_io io = {&c, bio_inputs, bio_forward, tokens * hidden,
                          parts ? bio_part_forward : NULL};
    qf_awq_block_opts o = qf_awq_block_opts_default();
    o.group_size = q->cfg.group_size;
    o.duo_scaling = q->cfg.duo_scaling;
    o.apply_clip = q->cfg.apply_clip;
    o.clip.bits = q->cfg.bits;
    st = qf_awq_block_run(&b, &io, &o);
    if (st == QF_ERR_INVALID_ARGUMENT && !c.failed) {
      ok = 0; /* shapes are not a Llama block: per-tensor path */
      st = QF_OK;
    } else if (st != QF_OK && !c.failed) {
      st = qf_fail(err, st, QF_AWQ_PLUGIN, op, "%s: AWQ search failed (%s)", bp,
                   st == QF_ERR_NUMERIC ? "every candidate loss is NaN" : "internal error");
    }
  }
  if (ok && st == QF_OK) {
    QF_AWQ_LOG(q, QF_LOG_DEBUG, "%s: scale ratios %d %d %d %d (of 20)%s", bp, b.ratio[0],
               b.ratio[1], b.ratio[2], b.ratio[3], b.scaled_vo ? "" : ", v->o skipped (GQA)");
    for (int i = 0; i < QF_AWQ_N_LINEAR && st == QF_OK; i++) {
      if (b.keep[i]) continue; /* the host copies it as it is */
      char prefix[QF_AWQ_NAME_MAX + 32];
      snprintf(prefix, sizeof prefix, "%s%s.", bp, qf_awq_block_linear_names[i]);
      st = qf__awq_emit_linear(q, model, prefix, b.w[i], b.rows[i], b.cols[i], op, err);
    }
    for (int i = 0; i < N_AUX && st == QF_OK; i++)
      if (av[i]) st = emit_like(q, model, names_aux[i], av[i], &aux[i].tensor, err);
    if (st == QF_OK) *ran = 1;
  }
  for (int i = 0; i < QF_AWQ_N_LINEAR; i++) free(b.w[i]);
  for (int i = 0; i < N_AUX; i++) free(av[i]);
  return st;
}
