/*
 * Sequential calibration capture for the model case (GPTQ spec §1.1, §2):
 * walks the decoder block by block over the calibration sequences, keeping
 * one block's input activations. For the block a requested module belongs
 * to, it runs the block up to the module's input site and accumulates the
 * Hessian exactly as the reference add_batch does — one "batch" per
 * sequence, H ← H·n/(n+1), x scaled by sqrt(2/n) in float32, H += xᵀx —
 * once per site, so q/k/v and gate/up share one Hessian. Blocks are
 * advanced through the model's linear hook (GPTQ: block i+1 sees the
 * quantized block i) or with float weights (AWQ). The capture is exposed to
 * plugins as the ABI's qf_calib through the host's calib ops table.
 */
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"
#include "capture_internal.h"

#define OP "calibration"

void qf_capture_options_default(qf_capture_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->mode = QF_CAPTURE_QUANTIZED;
  o->true_sequential = 1;
  o->batch_size = 8;
  o->importance = 1;
}

qf_status qf_capture_new(qf_rt_model *m, const qf_token_set *tokens,
                         const qf_capture_options *o, qf_capture **out,
                         qf_error *err) {
  if (!m || !tokens || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_new needs a model, tokens and an output");
  *out = NULL;
  const qf_rt_config *cfg = qf_rt_get_config(m);
  if (qf_tokens_total(tokens) <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "the calibration set holds no tokens");
  if (qf_tokens_max_id(tokens) > cfg->vocab)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "calibration token id %" PRId64 " is outside the "
                     "vocabulary [0, %" PRId64 ")",
                     qf_tokens_max_id(tokens) - 1, cfg->vocab);
  qf_capture *c = calloc(1, sizeof *c);
  if (!c) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  qf_capture_options_default(&c->o);
  if (o) {
    size_t n = o->struct_size < sizeof *o ? o->struct_size : sizeof *o;
    memcpy(&c->o, o, n);
    c->o.struct_size = sizeof *o;
  }
  if (c->o.batch_size <= 0) c->o.batch_size = 8;
  c->m = m;
  c->H = cfg->hidden;
  c->layer = -1;
  for (int i = 0; i < 3; i++) c->ref_layer[i] = -1;
  c->mid_layer = -1;
  qf_status st = qf__tokens_copy(tokens, &c->tok, err);
  c->T = st ? 0 : qf_tokens_total(c->tok);
  if (!st) {
    c->x = malloc((size_t)(c->T * c->H) * sizeof(float));
    if (!c->x) st = qf_errorf(err, QF_ERR_NO_MEMORY, OP,
                              "out of memory for %" PRId64 " calibration "
                              "activations", c->T);
  }
  for (int s = 0; !st && s < QF_RT_SITE_COUNT; s++)
    c->site[s].K = s == QF_RT_SITE_O_IN ? cfg->n_heads * cfg->head_dim
                   : s == QF_RT_SITE_DOWN_IN ? cfg->intermediate
                                             : cfg->hidden;
  if (st) {
    qf_capture_free(c);
    return st;
  }
  *out = c;
  return QF_OK;
}

void qf_capture_free(qf_capture *c) {
  if (!c) return;
  for (int s = 0; s < QF_RT_SITE_COUNT; s++) {
    qf__cap_site *t = &c->site[s];
    free(t->h);
    free(t->hfull);
    free(t->imp);
    free(t->impf);
    free(t->scaled);
    free(t->inputs);
  }
  for (int i = 0; i < 3; i++) free(c->ref[i]);
  free(c->mid);
  qf_tokens_free(c->tok);
  free(c->x);
  free(c);
}

int qf_capture_layer(const qf_capture *c) { return c ? c->layer : -1; }
int64_t qf_capture_tokens(const qf_capture *c) { return c ? c->T : 0; }

int qf__cap_next_batch(const qf_capture *c, int64_t *s0, int64_t *n,
                       int64_t *len, int64_t *row0) {
  const qf_token_set *t = c->tok;
  int64_t s = *s0 + *n;
  if (s >= t->n_seq) return 0;
  int64_t L = t->offsets[s + 1] - t->offsets[s];
  int64_t k = 1;
  while (s + k < t->n_seq && k < c->o.batch_size &&
         t->offsets[s + k + 1] - t->offsets[s + k] == L)
    k++;
  *s0 = s;
  *n = k;
  *len = L;
  *row0 = t->offsets[s] - t->offsets[0];
  return 1;
}

/* ---------------------------------------------------------------- add_batch */

static qf_status add_sequence(qf__cap_site *t, const float *x, int64_t L,
                              int want_imp, qf_error *err) {
  int64_t K = t->K;
  size_t need = (size_t)(L * K);
  if (!t->h) {
    t->h = calloc((size_t)(K * K), sizeof(float));
    if (!t->h) return qf_errorf(err, QF_ERR_NO_MEMORY, OP,
                                "out of memory for a %" PRId64 "² Hessian", K);
  }
  if (need > t->scaled_n) {
    float *p = realloc(t->scaled, need * sizeof(float));
    if (!p) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    t->scaled = p;
    t->scaled_n = need;
  }
  /* H *= n / (n + 1): the ratio in double, applied as a float32 scalar
   * (folded into syrk's beta). */
  float ratio = (float)((double)t->nsamples / (double)(t->nsamples + 1));
  t->nsamples += 1;
  float sc = (float)sqrt(2.0 / (double)t->nsamples);
  for (size_t i = 0; i < need; i++) t->scaled[i] = sc * x[i];
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (blasint)K, (blasint)L,
              1.0f, t->scaled, (blasint)K, ratio, t->h, (blasint)K);
  if (want_imp) {
    if (!t->imp) {
      t->imp = calloc((size_t)K, sizeof(double));
      if (!t->imp) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    }
    for (int64_t r = 0; r < L; r++)
      for (int64_t k = 0; k < K; k++) {
        double v = x[r * K + k];
        t->imp[k] += v * v;
      }
    t->imp_tokens += L;
  }
  return QF_OK;
}

typedef struct pass_ctx {
  qf_capture *c;
  unsigned want_h, want_in;
  int64_t row0, len;
} pass_ctx;

static qf_status pass_observe(void *user, int layer, qf_rt_site site,
                              const float *x, int64_t M, int64_t K,
                              qf_error *err) {
  (void)layer;
  pass_ctx *p = user;
  qf__cap_site *t = &p->c->site[site];
  qf_status st = QF_OK;
  if (p->want_h & (1u << site))
    for (int64_t r = 0; !st && r < M; r += p->len)
      st = add_sequence(t, x + r * K, p->len, p->c->o.importance, err);
  if (!st && (p->want_in & (1u << site)))
    memcpy(t->inputs + p->row0 * K, x, (size_t)(M * K) * sizeof(float));
  return st;
}

qf_status qf__cap_pass(qf_capture *c, unsigned want_h, unsigned want_in,
                       qf_rt_site stop, qf_error *err) {
  pass_ctx p = {c, want_h, want_in, 0, 0};
  qf_rt_block_opts o = {sizeof o, pass_observe, &p, stop,
                        c->o.mode == QF_CAPTURE_FLOAT, NULL, 0};
  int whole = stop == QF_RT_SITE_COUNT;
  float *buf = NULL;
  size_t buf_n = 0;
  int64_t s0 = 0, n = 0, len = 0, row0 = 0;
  qf_status st = QF_OK;
  while (!st && qf__cap_next_batch(c, &s0, &n, &len, &row0)) {
    float *x = c->x + row0 * c->H;
    size_t need = (size_t)(n * len * c->H);
    if (!whole) {
      if (need > buf_n) {
        float *q = realloc(buf, need * sizeof(float));
        if (!q) {
          st = qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
          break;
        }
        buf = q;
        buf_n = need;
      }
      memcpy(buf, x, need * sizeof(float));
      x = buf;
    }
    p.row0 = row0;
    p.len = len;
    st = qf_rt_block(c->m, c->layer, x, n, len, &o, err);
  }
  free(buf);
  if (st) qf_error_prefix(err, "calibration block %d", c->layer);
  return st;
}

/* ---------------------------------------------------------------- walk */

static void invalidate(qf_capture *c) {
  for (int s = 0; s < QF_RT_SITE_COUNT; s++) {
    qf__cap_site *t = &c->site[s];
    t->valid = 0;
    t->inputs_valid = 0;
    t->nsamples = 0;
    t->imp_tokens = 0;
    if (t->h) memset(t->h, 0, (size_t)(t->K * t->K) * sizeof(float));
    if (t->imp) memset(t->imp, 0, (size_t)t->K * sizeof(double));
  }
  for (int i = 0; i < 3; i++) c->ref_layer[i] = -1;
  c->mid_layer = -1;
}

qf_status qf_capture_seek(qf_capture *c, int layer, qf_error *err) {
  if (!c)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP, "no capture given");
  const qf_rt_config *cfg = qf_rt_get_config(c->m);
  if (layer < 0 || layer >= cfg->n_layers)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "block %d is out of range (the model has %" PRId64 ")",
                     layer, cfg->n_layers);
  if (c->layer == layer) return QF_OK;
  qf_status st;
  if (c->layer < 0 || layer < c->layer) {
    if (c->layer >= 0)
      qf_log(QF_LOG_WARN, "calibration: block %d requested after block %d; "
             "recomputing from the embeddings", layer, c->layer);
    invalidate(c);
    if ((st = qf_rt_embed(c->m, c->tok->ids, c->T, c->x, err))) return st;
    c->layer = 0;
  }
  while (c->layer < layer) {
    qf_log(QF_LOG_DEBUG, "calibration: running block %d", c->layer);
    if ((st = qf__cap_pass(c, 0, 0, QF_RT_SITE_COUNT, err))) {
      c->layer = -1; /* activations are half-updated: start over next time */
      invalidate(c);
      return st;
    }
    c->layer++;
    invalidate(c);
  }
  return QF_OK;
}

static qf_status ensure_site(qf_capture *c, int layer, qf_rt_site site,
                             qf_error *err) {
  qf_status st = qf_capture_seek(c, layer, err);
  if (st || c->site[site].valid) return st;
  unsigned want = 0;
  qf_rt_site stop = site;
  if (c->o.true_sequential && c->o.mode == QF_CAPTURE_QUANTIZED) {
    want = 1u << site;
  } else {
    for (int s = 0; s < QF_RT_SITE_COUNT; s++)
      if (!c->site[s].valid) want |= 1u << s;
    stop = QF_RT_SITE_DOWN_IN;
  }
  if ((st = qf__cap_pass(c, want, 0, stop, err))) return st;
  for (int s = 0; s < QF_RT_SITE_COUNT; s++)
    if (want & (1u << s)) c->site[s].valid = 1;
  return QF_OK;
}

static qf_status site_of(const char *name, int *layer, qf_rt_site *site,
                         qf_error *err) {
  qf_rt_module mod;
  if (!name || !qf_rt_parse_linear_name(name, layer, &mod))
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "no calibration for tensor '%s' (only the linear layers "
                     "of decoder blocks are captured)", name ? name : "(null)");
  *site = qf_rt_module_site(mod);
  return QF_OK;
}

qf_status qf_capture_hessian(qf_capture *c, const char *name, const float **h,
                             int64_t *k, int64_t *nsamples, qf_error *err) {
  int layer;
  qf_rt_site s;
  qf_status st;
  if (!c || !h || !k)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_hessian needs a capture and outputs");
  if ((st = site_of(name, &layer, &s, err)) ||
      (st = ensure_site(c, layer, s, err)))
    return st;
  qf__cap_site *t = &c->site[s];
  int64_t K = t->K;
  if (!t->hfull && !(t->hfull = malloc((size_t)(K * K) * sizeof(float))))
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  for (int64_t i = 0; i < K; i++) {
    t->hfull[i * K + i] = t->h[i * K + i];
    for (int64_t j = i + 1; j < K; j++)
      t->hfull[i * K + j] = t->hfull[j * K + i] = t->h[i * K + j];
  }
  *h = t->hfull;
  *k = K;
  if (nsamples) *nsamples = t->nsamples;
  return QF_OK;
}

qf_status qf_capture_importance(qf_capture *c, const char *name,
                                const float **v, int64_t *k, qf_error *err) {
  int layer;
  qf_rt_site s;
  qf_status st;
  if (!c || !v || !k)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_importance needs a capture and outputs");
  if (!c->o.importance)
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "this capture does not accumulate importance vectors");
  if ((st = site_of(name, &layer, &s, err)) ||
      (st = ensure_site(c, layer, s, err)))
    return st;
  qf__cap_site *t = &c->site[s];
  if (!t->impf && !(t->impf = malloc((size_t)t->K * sizeof(float))))
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  for (int64_t i = 0; i < t->K; i++)
    t->impf[i] = t->imp_tokens ? (float)(t->imp[i] / (double)t->imp_tokens)
                               : 0.0f;
  *v = t->impf;
  *k = t->K;
  return QF_OK;
}

/* ---------------------------------------------------------------- qf_calib */

static qf_status cap_hessian(void *impl, const char *name, const float **h,
                             int64_t *k, qf_error *err) {
  return qf_capture_hessian(impl, name, h, k, NULL, err);
}
static qf_status cap_importance(void *impl, const char *name, const float **v,
                                int64_t *k, qf_error *err) {
  return qf_capture_importance(impl, name, v, k, err);
}
static void cap_destroy(void *impl) { qf_capture_free(impl); }

static const qf__calib_ops k_capture_ops = {
    .hessian = cap_hessian,
    .importance = cap_importance,
    .destroy = cap_destroy,
    .inputs = qf__cap_op_inputs,
    .block_forward = qf__cap_op_block_forward,
    .block_shape = qf__cap_op_block_shape,
    .part_forward = qf__cap_op_part_forward};

qf_status qf_calib_new_capture(qf_capture *c, qf_calib **out, qf_error *err) {
  if (!c || !out) {
    qf_capture_free(c);
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_calib_new_capture needs a capture and an output");
  }
  *out = qf__calib_wrap(&k_capture_ops, c);
  if (!*out) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  return QF_OK;
}

qf_capture *qf_calib_get_capture(qf_calib *c) {
  return c && c->ops == &k_capture_ops ? c->impl : NULL;
}
