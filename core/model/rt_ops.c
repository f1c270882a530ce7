/*
 * Elementwise kernels of the Llama forward pass, written to the equations of
 * transformers' modeling_llama: RMSNorm (mean of squares in double, then
 * x · rsqrt(ms + eps) · weight), SwiGLU's silu(g)·u, rotary embeddings with
 * the rotate_half pairing (i, i + d/2) and the default / linear / llama3
 * inverse-frequency tables, bias addition, and a small pthread parallel-for
 * used by attention.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "rt_internal.h"

void qf__rmsnorm(const float *x, const float *w, int64_t M, int64_t H,
                 double eps, float *out) {
  for (int64_t r = 0; r < M; r++) {
    const float *xr = x + r * H;
    float *o = out + r * H;
    double ss = 0;
    for (int64_t i = 0; i < H; i++) ss += (double)xr[i] * xr[i];
    float inv = (float)(1.0 / sqrt(ss / (double)H + eps));
    for (int64_t i = 0; i < H; i++) o[i] = w[i] * (xr[i] * inv);
  }
}

void qf__silu_mul(float *g, const float *u, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = g[i];
    g[i] = v / (1.0f + expf(-v)) * u[i];
  }
}

void qf__add_bias(float *y, const float *b, int64_t M, int64_t N) {
  for (int64_t r = 0; r < M; r++)
    for (int64_t j = 0; j < N; j++) y[r * N + j] += b[j];
}

/* Inverse frequency of pair i (0 ≤ i < d/2) with the configured scaling. */
static double inv_freq(const qf_rt_config *c, int64_t i) {
  double d = (double)c->head_dim;
  double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / d);
  if (c->rope_type == QF_RT_ROPE_LINEAR) return f / c->rope_factor;
  if (c->rope_type != QF_RT_ROPE_LLAMA3) return f;
  const double pi = 3.14159265358979323846;
  double old_ctx = (double)c->rope_original_max_position;
  double low_wavelen = old_ctx / c->rope_low_freq_factor;
  double high_wavelen = old_ctx / c->rope_high_freq_factor;
  double wavelen = 2 * pi / f;
  if (wavelen < high_wavelen) return f;
  if (wavelen > low_wavelen) return f / c->rope_factor;
  double smooth = (old_ctx / wavelen - c->rope_low_freq_factor) /
                  (c->rope_high_freq_factor - c->rope_low_freq_factor);
  return (1 - smooth) * f / c->rope_factor + smooth * f;
}

void qf__rope_table(const qf_rt_config *c, int64_t pos0, int64_t len,
                    float *cos_t, float *sin_t) {
  int64_t half = c->head_dim / 2;
  for (int64_t i = 0; i < half; i++) {
    double f = inv_freq(c, i);
    for (int64_t t = 0; t < len; t++) {
      double a = (double)(pos0 + t) * f;
      cos_t[t * half + i] = (float)cos(a);
      sin_t[t * half + i] = (float)sin(a);
    }
  }
}

void qf__rope_apply(float *x, int64_t batch, int64_t len, int64_t n_heads,
                    int64_t head_dim, const float *cos_t, const float *sin_t) {
  int64_t half = head_dim / 2, row = n_heads * head_dim;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t t = 0; t < len; t++) {
      const float *cs = cos_t + t * half, *sn = sin_t + t * half;
      float *xr = x + (b * len + t) * row;
      for (int64_t h = 0; h < n_heads; h++) {
        float *v = xr + h * head_dim;
        for (int64_t i = 0; i < half; i++) {
          float a = v[i], bb = v[i + half];
          v[i] = a * cs[i] - bb * sn[i];
          v[i + half] = bb * cs[i] + a * sn[i];
        }
      }
    }
}

/* ------------------------------------------------------------ parallel for */

typedef struct pf_ctx {
  qf__task_fn fn;
  void *ctx;
  int64_t n;
  atomic_llong next;
} pf_ctx;

typedef struct pf_arg {
  pf_ctx *pc;
  int thread;
} pf_arg;

static void *pf_worker(void *p) {
  pf_arg *a = p;
  for (;;) {
    long long t = atomic_fetch_add(&a->pc->next, 1);
    if (t >= a->pc->n) break;
    a->pc->fn(a->pc->ctx, (int64_t)t, a->thread);
  }
  return NULL;
}

void qf__parallel_for(int n_threads, int64_t n_tasks, qf__task_fn fn,
                      void *ctx) {
  if (n_tasks <= 0) return;
  if (n_threads > n_tasks) n_threads = (int)n_tasks;
  if (n_threads < 1) n_threads = 1;
  pf_ctx pc = {fn, ctx, n_tasks, 0};
  atomic_init(&pc.next, 0);
  pthread_t tid[64];
  pf_arg args[64];
  if (n_threads > 64) n_threads = 64;
  int started = 0;
  for (int i = 1; i < n_threads; i++) {
    args[i].pc = &pc;
    args[i].thread = i;
    if (pthread_create(&tid[i], NULL, pf_worker, &args[i])) break;
    started = i;
  }
  args[0].pc = &pc;
  args[0].thread = 0;
  pf_worker(&args[0]);
  for (int i = 1; i <= started; i++) pthread_join(tid[i], NULL);
}
