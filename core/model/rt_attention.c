/*
 * Causal grouped-query attention on the CPU. One task per (sequence, head),
 * spread over a pthread pool: scores q·k / sqrt(d) against the keys the
 * query may see (positions ≤ its own, within the sliding window when set),
 * a max-subtracted softmax in float, then the weighted sum of values. Query
 * head h reads key/value head h / (n_heads / n_kv_heads). Keys and values
 * may live in a KV cache (row stride per sequence = cache length).
 */
#include <math.h>
#include <stdlib.h>

#include "rt_internal.h"

typedef struct attn_ctx {
  const qf_rt_config *c;
  const float *q, *k, *v;
  float *out;
  int64_t len, pos0, kv_rows;
  float **scratch;   /* per thread: pos0 + len scores */
} attn_ctx;

static float dot(const float *a, const float *b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

static void attn_task(void *arg, int64_t task, int thread) {
  attn_ctx *a = arg;
  const qf_rt_config *c = a->c;
  int64_t nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;
  int64_t b = task / nh, h = task % nh, g = h / (nh / nkv);
  int64_t qrow = nh * hd, kvrow = nkv * hd;
  float *s = a->scratch[thread];
  float scale = (float)(1.0 / sqrt((double)hd));
  const float *kb = a->k + b * a->kv_rows * kvrow + g * hd;
  const float *vb = a->v + b * a->kv_rows * kvrow + g * hd;
  for (int64_t t = 0; t < a->len; t++) {
    int64_t p = a->pos0 + t;
    int64_t lo = 0;
    if (c->sliding_window > 0 && p - c->sliding_window + 1 > 0)
      lo = p - c->sliding_window + 1;
    const float *qv = a->q + (b * a->len + t) * qrow + h * hd;
    float mx = -INFINITY;
    for (int64_t j = lo; j <= p; j++) {
      float sc = dot(qv, kb + j * kvrow, hd) * scale;
      s[j] = sc;
      if (sc > mx) mx = sc;
    }
    double sum = 0;
    for (int64_t j = lo; j <= p; j++) {
      s[j] = expf(s[j] - mx);
      sum += s[j];
    }
    float inv = (float)(1.0 / sum);
    float *o = a->out + (b * a->len + t) * qrow + h * hd;
    for (int64_t d = 0; d < hd; d++) o[d] = 0;
    for (int64_t j = lo; j <= p; j++) {
      float w = s[j] * inv;
      const float *vr = vb + j * kvrow;
      for (int64_t d = 0; d < hd; d++) o[d] += w * vr[d];
    }
  }
}

qf_status qf__rt_attention(const qf_rt_config *c, int n_threads,
                           const float *q, int64_t batch, int64_t len,
                           int64_t pos0, const float *k, const float *v,
                           int64_t kv_rows, float *out, qf_error *err) {
  int64_t tasks = batch * c->n_heads;
  int nt = n_threads < 1 ? 1 : n_threads > 64 ? 64 : n_threads;
  if (nt > tasks) nt = (int)tasks;
  float *buf = malloc((size_t)nt * (size_t)(pos0 + len) * sizeof(float));
  float *ptrs[64];
  if (!buf)
    return qf_errorf(err, QF_ERR_NO_MEMORY, "runtime",
                     "out of memory for attention scores");
  for (int i = 0; i < nt; i++) ptrs[i] = buf + (size_t)i * (size_t)(pos0 + len);
  attn_ctx a = {c, q, k, v, out, len, pos0, kv_rows, ptrs};
  qf__parallel_for(nt, tasks, attn_task, &a);
  free(buf);
  return QF_OK;
}
