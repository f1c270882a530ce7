/*
 * Evaluation of a model's predictions: pure per-row metrics (next-token
 * negative log-likelihood, KL divergence between two softmaxes, argmax,
 * squared error sums), perplexity over a token set, and a driver that runs a
 * reference model and a second model (e.g. quantized, through its linear
 * hook) side by side, block by block, to report perplexities, mean KL,
 * top-1 agreement and the relative error of every block's output. All
 * reductions are in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#define OP "eval"

static double log_sum_exp(const float *x, int64_t V) {
  float mx = x[0];
  for (int64_t i = 1; i < V; i++)
    if (x[i] > mx) mx = x[i];
  double s = 0;
  for (int64_t i = 0; i < V; i++) s += exp((double)x[i] - (double)mx);
  return (double)mx + log(s);
}

double qf_eval_nll(const float *logits, int64_t V, int32_t target) {
  return log_sum_exp(logits, V) - (double)logits[target];
}

double qf_eval_kl(const float *ref, const float *logits, int64_t V) {
  double lr = log_sum_exp(ref, V), lq = log_sum_exp(logits, V), kl = 0;
  for (int64_t i = 0; i < V; i++) {
    double a = (double)ref[i] - lr, b = (double)logits[i] - lq;
    kl += exp(a) * (a - b);
  }
  return kl > 0 ? kl : 0;
}

int64_t qf_eval_argmax(const float *logits, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; i++)
    if (logits[i] > logits[best]) best = i;
  return best;
}

void qf_eval_sq_err(const float *ref, const float *x, int64_t n, double *num,
                    double *den) {
  double a = 0, b = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)x[i] - (double)ref[i];
    a += d * d;
    b += (double)ref[i] * ref[i];
  }
  *num += a;
  *den += b;
}

/* Consecutive sequences of one length, at most `bs` of them. */
static int next_batch(const qf_token_set *t, int bs, int64_t *s0, int64_t *n,
                      int64_t *len) {
  int64_t s = *s0 + *n;
  if (s >= t->n_seq) return 0;
  int64_t L = t->offsets[s + 1] - t->offsets[s], k = 1;
  while (s + k < t->n_seq && k < bs &&
         t->offsets[s + k + 1] - t->offsets[s + k] == L)
    k++;
  *s0 = s;
  *n = k;
  *len = L;
  return 1;
}

static qf_status check_set(const qf_rt_model *m, const qf_token_set *t,
                           qf_error *err) {
  if (!m || !t || t->n_seq <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "evaluation needs a model and a non-empty token set");
  if (qf_tokens_max_id(t) > m->cfg.vocab)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "token id %lld is outside the vocabulary [0, %lld)",
                     (long long)qf_tokens_max_id(t) - 1,
                     (long long)m->cfg.vocab);
  return QF_OK;
}

qf_status qf_eval_perplexity(qf_rt_model *m, const qf_token_set *t,
                             int batch_size, double *ppl, qf_error *err) {
  qf_status st = check_set(m, t, err);
  if (st) return st;
  if (!ppl)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP, "no output given");
  int bs = batch_size > 0 ? batch_size : 4;
  int64_t V = m->cfg.vocab, s0 = 0, n = 0, L = 0, count = 0;
  double sum = 0;
  while (!st && next_batch(t, bs, &s0, &n, &L)) {
    if (L < 2) continue;
    float *lg = malloc((size_t)(n * L * V) * sizeof(float));
    if (!lg) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    const int32_t *ids = t->ids + t->offsets[s0];
    st = qf_rt_forward(m, ids, n, L, NULL, lg, 0, err);
    for (int64_t b = 0; !st && b < n; b++)
      for (int64_t p = 0; p + 1 < L; p++) {
        sum += qf_eval_nll(lg + (b * L + p) * V, V, ids[b * L + p + 1]);
        count++;
      }
    free(lg);
  }
  if (st) return st;
  if (!count)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "no sequence has two tokens or more");
  *ppl = exp(sum / (double)count);
  return QF_OK;
}

void qf_eval_report_clear(qf_eval_report *r) {
  if (!r) return;
  free(r->layer_rel_err);
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
}

typedef struct acc {
  double nll_ref, nll, kl;
  int64_t top1, pos, pred;
  double *num, *den;
} acc;

static qf_status compare_batch(qf_rt_model *ref, qf_rt_model *m,
                               const int32_t *ids, int64_t B, int64_t L,
                               acc *a, qf_error *err) {
  int64_t M = B * L, H = ref->cfg.hidden, V = ref->cfg.vocab;
  float *xr = malloc((size_t)(M * H) * sizeof(float));
  float *xq = malloc((size_t)(M * H) * sizeof(float));
  float *lr = malloc((size_t)(M * V) * sizeof(float));
  float *lq = malloc((size_t)(M * V) * sizeof(float));
  qf_status st = QF_OK;
  if (!xr || !xq || !lr || !lq) {
    st = qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    goto done;
  }
  if ((st = qf_rt_embed(ref, ids, M, xr, err)) ||
      (st = qf_rt_embed(m, ids, M, xq, err)))
    goto done;
  for (int l = 0; l < ref->cfg.n_layers; l++) {
    if ((st = qf_rt_block(ref, l, xr, B, L, NULL, err)) ||
        (st = qf_rt_block(m, l, xq, B, L, NULL, err)))
      goto done;
    qf_eval_sq_err(xr, xq, M * H, &a->num[l], &a->den[l]);
  }
  if ((st = qf_rt_head(ref, xr, M, lr, err)) ||
      (st = qf_rt_head(m, xq, M, lq, err)))
    goto done;
  for (int64_t b = 0; b < B; b++)
    for (int64_t p = 0; p < L; p++) {
      const float *r = lr + (b * L + p) * V, *q = lq + (b * L + p) * V;
      a->kl += qf_eval_kl(r, q, V);
      a->top1 += qf_eval_argmax(r, V) == qf_eval_argmax(q, V);
      a->pos++;
      if (p + 1 < L) {
        int32_t tgt = ids[b * L + p + 1];
        a->nll_ref += qf_eval_nll(r, V, tgt);
        a->nll += qf_eval_nll(q, V, tgt);
        a->pred++;
      }
    }
done:
  free(xr);
  free(xq);
  free(lr);
  free(lq);
  return st;
}

qf_status qf_eval_compare(qf_rt_model *ref, qf_rt_model *m,
                          const qf_token_set *t, int batch_size,
                          qf_eval_report *out, qf_error *err) {
  qf_status st = check_set(ref, t, err);
  if (st) return st;
  if (!m || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_eval_compare needs two models and an output");
  const qf_rt_config *a = &ref->cfg, *b = &m->cfg;
  if (a->hidden != b->hidden || a->n_layers != b->n_layers ||
      a->vocab != b->vocab)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "the two models differ in hidden size, layer count or "
                     "vocabulary");
  int nl = (int)a->n_layers;
  acc s = {0};
  s.num = calloc((size_t)nl, sizeof(double));
  s.den = calloc((size_t)nl, sizeof(double));
  if (!s.num || !s.den) {
    free(s.num);
    free(s.den);
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  }
  int bs = batch_size > 0 ? batch_size : 4;
  int64_t s0 = 0, n = 0, L = 0;
  while (!st && next_batch(t, bs, &s0, &n, &L))
    st = compare_batch(ref, m, t->ids + t->offsets[s0], n, L, &s, err);
  if (!st) {
    qf_eval_report_clear(out);
    out->n_positions = s.pos;
    out->n_predicted = s.pred;
    out->ppl_ref = s.pred ? exp(s.nll_ref / (double)s.pred) : NAN;
    out->ppl = s.pred ? exp(s.nll / (double)s.pred) : NAN;
    out->kl_mean = s.pos ? s.kl / (double)s.pos : 0;
    out->top1 = s.pos ? (double)s.top1 / (double)s.pos : 0;
    out->n_layers = nl;
    out->layer_rel_err = s.num;
    for (int l = 0; l < nl; l++)
      s.num[l] = s.den[l] > 0 ? s.num[l] / s.den[l] : 0;
    s.num = NULL;
  }
  free(s.num);
  free(s.den);
  return st;
}
