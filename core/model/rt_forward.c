/*
 * The decoder forward pass: embedding lookup, decoder blocks (RMSNorm →
 * q/k/v (+bias) → RoPE → causal GQA attention → o_proj → residual; RMSNorm →
 * gate/up → SwiGLU → down_proj → residual), final norm and lm_head, plus the
 * KV cache for incremental decoding. Each block reports the input of every
 * linear "site" to an optional observer (calibration capture) and can stop
 * early once a site has been observed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#define OP "forward"

static qf_status observe(const qf_rt_block_opts *o, int layer, qf_rt_site s,
                         const float *x, int64_t M, int64_t K, int *stop,
                         qf_error *err) {
  qf_status st = QF_OK;
  if (o && o->observe) st = o->observe(o->user, layer, s, x, M, K, err);
  if (o && o->stop_after == s) *stop = 1;
  return st;
}

static qf_status nomem(qf_error *err) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory for activations");
}

/* Attention half of a block from its normalised input n1 → out (o_proj). */
static qf_status attn_inner(qf_rt_model *m, int layer, const float *n1,
                            int64_t B, int64_t L, qf_rt_kv *kv, float *out,
                            const qf_rt_block_opts *o, int *stop,
                            qf_error *err) {
  const qf_rt_config *c = &m->cfg;
  int64_t M = B * L, qd = c->n_heads * c->head_dim,
          kvd = c->n_kv_heads * c->head_dim, half = c->head_dim / 2;
  int64_t pos0 = kv ? kv->len : 0;
  float *q = malloc((size_t)(M * qd) * sizeof(float));
  float *k = malloc((size_t)(M * kvd) * sizeof(float));
  float *v = malloc((size_t)(M * kvd) * sizeof(float));
  float *a = malloc((size_t)(M * qd) * sizeof(float));
  float *cs = malloc((size_t)(2 * L * half) * sizeof(float));
  qf_status st = QF_OK;
  if (!q || !k || !v || !a || !cs) {
    st = nomem(err);
    goto done;
  }
  if ((st = qf__rt_linear(m, o, layer, QF_RT_Q, n1, M, q, err)) ||
      (st = qf__rt_linear(m, o, layer, QF_RT_K, n1, M, k, err)) ||
      (st = qf__rt_linear(m, o, layer, QF_RT_V, n1, M, v, err)))
    goto done;
  qf__rope_table(c, pos0, L, cs, cs + L * half);
  qf__rope_apply(q, B, L, c->n_heads, c->head_dim, cs, cs + L * half);
  qf__rope_apply(k, B, L, c->n_kv_heads, c->head_dim, cs, cs + L * half);
  const float *kp = k, *vp = v;
  int64_t rows = L;
  if (kv) {
    size_t lay = (size_t)layer * (size_t)(kv->batch * kv->max_len * kvd);
    float *kc = kv->k + lay, *vc = kv->v + lay;
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < L; t++) {
        size_t dst = (size_t)((b * kv->max_len + pos0 + t) * kvd);
        size_t src = (size_t)((b * L + t) * kvd);
        memcpy(kc + dst, k + src, (size_t)kvd * sizeof(float));
        memcpy(vc + dst, v + src, (size_t)kvd * sizeof(float));
      }
    kp = kc;
    vp = vc;
    rows = kv->max_len;
  }
  if ((st = qf__rt_attention(c, m->n_threads, q, B, L, pos0, kp, vp, rows, a,
                             err)))
    goto done;
  if ((st = observe(o, layer, QF_RT_SITE_O_IN, a, M, qd, stop, err)) || *stop)
    goto done;
  st = qf__rt_linear(m, o, layer, QF_RT_O, a, M, out, err);
done:
  free(q);
  free(k);
  free(v);
  free(a);
  free(cs);
  return st;
}

/* MLP half of a block from its normalised input n2 → out (down_proj). */
static qf_status mlp_inner(qf_rt_model *m, int layer, const float *n2,
                           int64_t M, float *out, const qf_rt_block_opts *o,
                           int *stop, qf_error *err) {
  int64_t I = m->cfg.intermediate;
  float *g = malloc((size_t)(M * I) * sizeof(float));
  float *u = malloc((size_t)(M * I) * sizeof(float));
  qf_status st = QF_OK;
  if (!g || !u) {
    st = nomem(err);
    goto done;
  }
  if ((st = qf__rt_linear(m, o, layer, QF_RT_GATE, n2, M, g, err)) ||
      (st = qf__rt_linear(m, o, layer, QF_RT_UP, n2, M, u, err)))
    goto done;
  qf__silu_mul(g, u, M * I);
  if ((st = observe(o, layer, QF_RT_SITE_DOWN_IN, g, M, I, stop, err)) || *stop)
    goto done;
  st = qf__rt_linear(m, o, layer, QF_RT_DOWN, g, M, out, err);
done:
  free(g);
  free(u);
  return st;
}

static qf_status check_layer(const qf_rt_model *m, int layer, qf_error *err) {
  if (layer < 0 || layer >= m->cfg.n_layers)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "layer %d is out of range (the model has %" PRId64 ")",
                     layer, m->cfg.n_layers);
  return QF_OK;
}

qf_status qf__rt_block_kv(qf_rt_model *m, int layer, float *x, int64_t B,
                          int64_t L, qf_rt_kv *kv, const qf_rt_block_opts *o,
                          qf_error *err) {
  qf_status st = check_layer(m, layer, err);
  if (st) return st;
  const qf_rt_config *c = &m->cfg;
  int64_t M = B * L, H = c->hidden;
  qf__rt_layer *ly = &m->layers[layer];
  float *n = malloc((size_t)(M * H) * sizeof(float));
  float *y = malloc((size_t)(M * H) * sizeof(float));
  const float *w;
  int stop = 0;
  if (!n || !y) {
    st = nomem(err);
    goto done;
  }
  char nm[96];
  snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", layer);
  if (!(w = qf__rt_override(o, nm)) &&
      (st = qf__rt_slot_f32(m, &ly->norm1, &w, err)))
    goto done;
  qf__rmsnorm(x, w, M, H, c->rms_eps, n);
  if ((st = observe(o, layer, QF_RT_SITE_ATTN_IN, n, M, H, &stop, err)) || stop)
    goto done;
  if ((st = attn_inner(m, layer, n, B, L, kv, y, o, &stop, err)) || stop)
    goto done;
  /* from here x holds x + attention(x); calib_awq.c relies on it being
   * left so when the block stops after the MLP_IN site */
  for (int64_t i = 0; i < M * H; i++) x[i] += y[i];
  snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight",
           layer);
  if (!(w = qf__rt_override(o, nm)) &&
      (st = qf__rt_slot_f32(m, &ly->norm2, &w, err)))
    goto done;
  qf__rmsnorm(x, w, M, H, c->rms_eps, n);
  if ((st = observe(o, layer, QF_RT_SITE_MLP_IN, n, M, H, &stop, err)) || stop)
    goto done;
  if ((st = mlp_inner(m, layer, n, M, y, o, &stop, err)) || stop) goto done;
  for (int64_t i = 0; i < M * H; i++) x[i] += y[i];
done:
  free(n);
  free(y);
  return st;
}

qf_status qf_rt_block(qf_rt_model *m, int layer, float *x, int64_t batch,
                      int64_t len, const qf_rt_block_opts *o, qf_error *err) {
  if (!m || !x || batch <= 0 || len <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_rt_block needs a model, activations and sizes > 0");
  return qf__rt_block_kv(m, layer, x, batch, len, NULL, o, err);
}

qf_status qf_rt_attn_part(qf_rt_model *m, int layer, const float *n1,
                          int64_t batch, int64_t len, float *out,
                          const qf_rt_block_opts *o, qf_error *err) {
  qf_status st = check_layer(m, layer, err);
  int stop = 0;
  if (st) return st;
  return attn_inner(m, layer, n1, batch, len, NULL, out, o, &stop, err);
}

qf_status qf_rt_mlp_part(qf_rt_model *m, int layer, const float *n2,
                         int64_t M, float *out, const qf_rt_block_opts *o,
                         qf_error *err) {
  qf_status st = check_layer(m, layer, err);
  int stop = 0;
  if (st) return st;
  return mlp_inner(m, layer, n2, M, out, o, &stop, err);
}

qf_status qf_rt_embed(qf_rt_model *m, const int32_t *tokens, int64_t n,
                      float *x, qf_error *err) {
  const qf_st_tensor *t = m->embed.t;
  int64_t H = m->cfg.hidden;
  size_t es = qf_dtype_size(t->dtype);
  for (int64_t i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab)
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                       "token #%" PRId64 " is %d, outside the vocabulary "
                       "[0, %" PRId64 ")", i, tokens[i], m->cfg.vocab);
    const unsigned char *row =
        (const unsigned char *)t->data + (size_t)tokens[i] * (size_t)H * es;
    if (qf_convert(x + i * H, QF_DTYPE_F32, row, t->dtype, (size_t)H))
      return qf_errorf(err, QF_ERR_FORMAT, OP, "embeddings have dtype %s",
                       qf_dtype_name(t->dtype));
  }
  return QF_OK;
}

qf_status qf_rt_head(qf_rt_model *m, const float *x, int64_t n, float *logits,
                     qf_error *err) {
  int64_t H = m->cfg.hidden, V = m->cfg.vocab;
  float *h = malloc((size_t)(n * H) * sizeof(float));
  if (!h) return nomem(err);
  const float *w;
  qf_status st = qf__rt_slot_f32(m, &m->final_norm, &w, err);
  if (!st) {
    qf__rmsnorm(x, w, n, H, m->cfg.rms_eps, h);
    if (m->hook) {
      st = m->hook(m->hook_user, m, "lm_head.weight", h, n, H, logits, V, err);
      if (st) qf_error_prefix(err, "linear hook for 'lm_head.weight'");
    } else {
      st = qf_rt_linear_float(NULL, m, "lm_head.weight", h, n, H, logits, V,
                              err);
    }
  }
  free(h);
  return st;
}

qf_status qf_rt_forward(qf_rt_model *m, const int32_t *tokens, int64_t batch,
                        int64_t len, qf_rt_kv *kv, float *logits,
                        unsigned flags, qf_error *err) {
  if (!m || !tokens || !logits || batch <= 0 || len <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_rt_forward needs a model, tokens, logits and "
                     "sizes > 0");
  if (kv && (kv->batch != batch || kv->len + len > kv->max_len ||
             kv->n_layers != m->cfg.n_layers))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "KV cache mismatch: batch %" PRId64 " (cache %" PRId64
                     "), %" PRId64 " + %" PRId64 " tokens (cache holds %" PRId64
                     ")", batch, kv->batch, kv->len, len, kv->max_len);
  int64_t M = batch * len, H = m->cfg.hidden;
  float *x = malloc((size_t)(M * H) * sizeof(float));
  if (!x) return nomem(err);
  qf_status st = qf_rt_embed(m, tokens, M, x, err);
  for (int l = 0; !st && l < m->cfg.n_layers; l++)
    st = qf__rt_block_kv(m, l, x, batch, len, kv, NULL, err);
  if (!st && kv) kv->len += len;
  if (!st && (flags & QF_RT_LOGITS_LAST)) {
    for (int64_t b = 0; b < batch; b++)
      memmove(x + b * H, x + ((b + 1) * len - 1) * H,
              (size_t)H * sizeof(float));
    st = qf_rt_head(m, x, batch, logits, err);
  } else if (!st) {
    st = qf_rt_head(m, x, M, logits, err);
  }
  free(x);
  return st;
}

/* ---------------------------------------------------------------- KV cache */

qf_status qf_rt_kv_new(const qf_rt_model *m, int64_t batch, int64_t max_len,
                       qf_rt_kv **out, qf_error *err) {
  if (!m || !out || batch <= 0 || max_len <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_rt_kv_new needs a model, an output and sizes > 0");
  qf_rt_kv *kv = calloc(1, sizeof *kv);
  if (!kv) return nomem(err);
  kv->batch = batch;
  kv->max_len = max_len;
  kv->n_layers = m->cfg.n_layers;
  kv->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
  size_t n = (size_t)(kv->n_layers * batch * max_len * kv->kv_dim);
  kv->k = calloc(n, sizeof(float));
  kv->v = calloc(n, sizeof(float));
  if (!kv->k || !kv->v) {
    qf_rt_kv_free(kv);
    return nomem(err);
  }
  *out = kv;
  return QF_OK;
}

void qf_rt_kv_free(qf_rt_kv *kv) {
  if (!kv) return;
  free(kv->k);
  free(kv->v);
  free(kv);
}

int64_t qf_rt_kv_len(const qf_rt_kv *kv) { return kv ? kv->len : 0; }
void qf_rt_kv_reset(qf_rt_kv *kv) {
  if (kv) kv->len = 0;
}
