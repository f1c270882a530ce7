/*
 * GPTQ for one linear layer (AutoGPTQ GPTQ.fasterquant, line for line in
 * float32): initial per-row params on the whole weight, dead input columns
 * (H[i,i] == 0 → H[i,i] = 1, W[:, i] = 0), static groups from the
 * dead-fixed weight, act_order permutation by descending diag(H), relative
 * dampening with GPTQModel-style retries, the inverse Cholesky factor U
 * (spotrf → spotri → spotrf upper, as torch's cholesky → cholesky_inverse →
 * cholesky(upper) sequence does), and the lazy-batch loop with group
 * parameters taken from the global weight at group starts (so groups that
 * start mid-block see the weight as it stood at the block start, exactly as
 * the reference). The weight is kept transposed ([K][N], one input column
 * per row) so column operations are contiguous; rows of W are independent
 * inside a block and are split over threads. Block-end updates are
 * computed as a separate GEMM and then subtracted, as the reference's
 * W -= Err1 · U does. Also the round-to-nearest baseline.
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gptq.h"
#include "qforge/plugin_util.h"

#define OP "quantize"
#define ROW_CHUNK 256
#define GEMM_CHUNK 256

void qf_gptq_opts_default(qf_gptq_opts *o) {
  memset(o, 0, sizeof *o);
  o->bits = 4;
  o->group_size = 128;
  o->sym = 1;
  o->blocksize = 128;
  o->damp_percent = 0.01f;
  o->damp_auto_increment = 0.01f;
  o->n_threads = 1;
}

qf_status qf_gptq_opts_check(const qf_gptq_opts *o, qf_error *err) {
  if (!o)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "no GPTQ options given");
  if (o->bits != 2 && o->bits != 3 && o->bits != 4 && o->bits != 8)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "bits = %d: expected 2, 3, 4 or 8", o->bits);
  if (o->group_size != -1 && o->group_size <= 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "group_size = %d: expected -1 or a positive integer",
                   o->group_size);
  if (!(o->damp_percent > 0.0f && o->damp_percent < 1.0f))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "damp_percent = %g: expected 0 < damp_percent < 1",
                   (double)o->damp_percent);
  if (!(o->damp_auto_increment >= 0.0f && o->damp_auto_increment < 1.0f))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "damp_auto_increment = %g: expected 0 <= x < 1",
                   (double)o->damp_auto_increment);
  if (o->blocksize <= 0 || o->blocksize > 4096)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "blocksize = %d: expected 1..4096", o->blocksize);
  if (!(o->mse_norm >= 0.0f) || isinf(o->mse_norm))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "mse = %g: expected 0 (off) or a positive norm",
                   (double)o->mse_norm);
  return QF_OK;
}

void qf_gptq_out_free(qf_gptq_out *out) {
  if (!out) return;
  free(out->qint);
  free(out->scale);
  free(out->zero);
  free(out->g_idx);
  free(out->deq);
  memset(out, 0, sizeof *out);
}

static qf_gptq_qcfg qcfg_of(const qf_gptq_opts *o) {
  qf_gptq_qcfg q;
  q.bits = o->bits;
  q.sym = o->sym;
  q.mse_norm = o->mse_norm;
  q.mse_grid = 100;
  q.mse_maxshrink = 0.8f;
  return q;
}

/* dst[k][r] = src[r][k] for a [rows][cols] source (blocked). */
static void transpose_f32(const float *src, int64_t rows, int64_t cols,
                          float *dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += 64)
    for (int64_t c0 = 0; c0 < cols; c0 += 64) {
      int64_t r1 = r0 + 64 < rows ? r0 + 64 : rows;
      int64_t c1 = c0 + 64 < cols ? c0 + 64 : cols;
      for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
    }
}

static int all_finite(const float *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(p[i])) return 0;
  return 1;
}

static qf_status alloc_out(qf_gptq_out *out, int64_t rows, int64_t cols,
                           int64_t ngroups, int want_deq, qf_error *err) {
  memset(out, 0, sizeof *out);
  out->rows = rows;
  out->cols = cols;
  out->ngroups = ngroups;
  out->qint = malloc((size_t)rows * (size_t)cols);
  out->scale = malloc((size_t)rows * (size_t)ngroups * sizeof(float));
  out->zero = malloc((size_t)rows * (size_t)ngroups * sizeof(float));
  out->g_idx = malloc((size_t)cols * sizeof(int32_t));
  if (want_deq) out->deq = malloc((size_t)rows * (size_t)cols * sizeof(float));
  if (!out->qint || !out->scale || !out->zero || !out->g_idx ||
      (want_deq && !out->deq)) {
    qf_gptq_out_free(out);
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP,
                   "cannot allocate the outputs of a %lldx%lld layer",
                   (long long)rows, (long long)cols);
  }
  return QF_OK;
}

/* ------------------------------------------------------------ act order */

static const float *g_sort_key;
static int cmp_desc(const void *a, const void *b) {
  int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
  float x = g_sort_key[i], y = g_sort_key[j];
  if (x > y) return -1;
  if (x < y) return 1;
  return (i > j) - (i < j); /* stable */
}

/* Stable descending argsort of diag. qsort with a static key is guarded by
 * a mutex (the key pointer is process-global). */
static pthread_mutex_t g_sort_mu = PTHREAD_MUTEX_INITIALIZER;
static void argsort_desc(const float *key, int64_t n, int64_t *perm) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  pthread_mutex_lock(&g_sort_mu);
  g_sort_key = key;
  qsort(perm, (size_t)n, sizeof *perm, cmp_desc);
  g_sort_key = NULL;
  pthread_mutex_unlock(&g_sort_mu);
}

/* ------------------------------------------------------------ factor */

/* A = H[perm][:, perm] with dead diagonals set to 1. */
static void build_h(float *a, const float *h, const int64_t *perm, int64_t k,
                    int identity) {
  for (int64_t i = 0; i < k; i++) {
    const float *src = h + perm[i] * k;
    float *dst = a + i * k;
    if (identity)
      memcpy(dst, src, (size_t)k * sizeof(float));
    else
      for (int64_t j = 0; j < k; j++) dst[j] = src[perm[j]];
    if (dst[i] == 0.0f) dst[i] = 1.0f;
  }
}

#define TB 64
/* In a square k×k buffer: mirror the part below the diagonal (index
 * i·k + j with i > j) onto the part above it (swap = 0), or exchange the
 * two (swap = 1, an in-place transpose). Cache-blocked. */
static void mirror(float *a, int64_t k, int swap) {
  for (int64_t i0 = 0; i0 < k; i0 += TB)
    for (int64_t j0 = 0; j0 <= i0; j0 += TB) {
      const int64_t i1 = i0 + TB < k ? i0 + TB : k;
      const int64_t j1 = j0 + TB < k ? j0 + TB : k;
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1 && j < i; j++) {
          const float lo = a[i * k + j];
          if (swap) a[i * k + j] = a[j * k + i];
          a[j * k + i] = lo;
        }
    }
}

/* Row-major a[i k + j] for j > i copied onto a[j k + i] (blocked). */
static void mirror_upper_to_lower(float *a, int64_t k) {
  for (int64_t i0 = 0; i0 < k; i0 += TB)
    for (int64_t j0 = i0; j0 < k; j0 += TB) {
      const int64_t i1 = i0 + TB < k ? i0 + TB : k;
      const int64_t j1 = j0 + TB < k ? j0 + TB : k;
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0 > i + 1 ? j0 : i + 1; j < j1; j++)
          a[j * k + i] = a[i * k + j];
    }
}

/* Dampen and turn A into the upper factor U of (A)⁻¹ (row-major: U[c][j]
 * for j >= c). Returns 0 or the failing stage (1..4). */
static int factor(float *a, int64_t k, float frac, float floor_add) {
  double sum = 0.0;
  for (int64_t i = 0; i < k; i++) sum += a[i * k + i];
  const float mean = (float)(sum / (double)k);
  const float damp = frac * mean;
  for (int64_t i = 0; i < k; i++) {
    a[i * k + i] += damp;
    if (floor_add > 0.0f) a[i * k + i] += floor_add;
  }
  /* A is symmetric, so the row-major buffer is the same matrix seen
   * column-major: L = chol_lower(H) (torch.linalg.cholesky). */
  lapack_int n = (lapack_int)k;
  if (LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'L', n, a, n) != 0) return 1;
  /* (L Lᵀ)⁻¹ into the lower triangle (torch.cholesky_inverse = potri). */
  if (LAPACKE_spotri_work(LAPACK_COL_MAJOR, 'L', n, a, n) != 0) return 2;
  /* Column-major (i, j) lives at a[i + j k]: its lower triangle (i > j) is
   * the row-major buffer's upper one. Mirror it onto the other half. */
  mirror_upper_to_lower(a, k);
  /* U = chol_upper(Hinv): Hinv = Uᵀ U, U in the column-major upper part. */
  if (LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', n, a, n) != 0) return 3;
  /* U(c, j) sits at a[c + j k]; transpose so that row c is contiguous. */
  mirror(a, k, 1);
  for (int64_t c = 0; c < k; c++)
    if (!isfinite(a[c * k + c]) || a[c * k + c] <= 0.0f) return 4;
  return 0;
}

static void logf_(qf_gptq_log_fn log, void *user, qf_log_level lvl,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void logf_(qf_gptq_log_fn log, void *user, qf_log_level lvl,
                  const char *fmt, ...) {
  if (!log) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log(user, lvl, buf);
}

/* Build, dampen and factor with retries (GPTQModel): raise the damp
 * fraction by damp_auto_increment while it stays below 1, then add a
 * diagonal floor of 1e-6·max|diag|·10^t for up to 6 attempts. */
static qf_status factor_with_retry(float *a, const float *h,
                                   const int64_t *perm, int64_t k,
                                   const qf_gptq_opts *o, qf_gptq_log_fn log,
                                   void *user, float *frac_used, int *retries,
                                   qf_error *err) {
  double frac = o->damp_percent;
  int tries = 0, floor_try = 0;
  float floor_add = 0.0f;
  for (;;) {
    build_h(a, h, perm, k, !o->desc_act);
    int stage = factor(a, k, (float)frac, floor_add);
    if (stage == 0) break;
    tries++;
    if (o->damp_auto_increment <= 0.0f)
      return qf_fail(err, QF_ERR_NUMERIC, QF_GPTQ_PLUGIN, OP,
                     "Cholesky of the dampened Hessian failed (stage %d, "
                     "damp_percent %g): the Hessian is not positive definite; "
                     "raise damp_percent (0.1 is common) or add samples",
                     stage, frac);
    if (frac + o->damp_auto_increment < 1.0) {
      double next = frac + o->damp_auto_increment;
      logf_(log, user, QF_LOG_WARN,
            "Hessian not positive definite at damp_percent %.4g (stage %d); "
            "retrying with %.4g", frac, stage, next);
      frac = next;
      continue;
    }
    if (floor_try >= 6)
      return qf_fail(err, QF_ERR_NUMERIC, QF_GPTQ_PLUGIN, OP,
                     "Cholesky of the Hessian failed after %d dampening "
                     "retries (last damp_percent %g): the Hessian is "
                     "degenerate; add calibration samples", tries, frac);
    float maxd = 0.0f;
    for (int64_t i = 0; i < k; i++) {
      float v = fabsf(h[perm[i] * k + perm[i]]);
      if (v > maxd) maxd = v;
    }
    floor_add = 1e-6f * (maxd > 0.0f ? maxd : 1.0f) * powf(10.0f, (float)floor_try);
    floor_try++;
    logf_(log, user, QF_LOG_WARN,
          "Hessian not positive definite at damp_percent %.4g; adding a "
          "diagonal floor of %g", frac, (double)floor_add);
  }
  *frac_used = (float)frac;
  *retries = tries;
  return QF_OK;
}

/* ------------------------------------------------------------ block loop */

typedef struct loop_ctx {
  qf_gptq_qcfg qc;
  float maxq;
  int64_t n, k, ngroups, g; /* g = group size, or 0 for one group */
  int static_groups, desc_act;
  int64_t i1, i2;
  const float *wp;      /* [K][N] global permuted weight */
  float *w1;            /* [cnt][N] block copy */
  float *e;             /* [cnt][N] errors */
  const float *u;       /* [K][K] upper factor */
  const int64_t *perm;
  float *cur_s, *cur_z; /* [N] current params */
  const float *st_s, *st_z; /* [ngroups][N] static params */
  float *scale_out, *zero_out; /* [N][ngroups] */
  uint8_t *qk;          /* [K][N] integers, processing order */
  float *dk;            /* [K][N] fake-quantized, processing order, or NULL */
  float *work;          /* [2N] find_params scratch */
} loop_ctx;

static double block_rows(const loop_ctx *x, int64_t r0, int64_t r1) {
  const int64_t n = x->n, k = x->k, cnt = x->i2 - x->i1;
  double loss = 0.0;
  for (int64_t c0 = r0; c0 < r1; c0 += ROW_CHUNK) {
    const int64_t a = c0, b = c0 + ROW_CHUNK < r1 ? c0 + ROW_CHUNK : r1;
    for (int64_t i = 0; i < cnt; i++) {
      const int64_t c = x->i1 + i;
      const float *sp = x->cur_s, *zp = x->cur_z;
      if (x->g > 0 && !x->static_groups) {
        if (c % x->g == 0) {
          int64_t w = k - c < x->g ? k - c : x->g;
          qf_gptq_find_params(&x->qc, x->wp + c * n + a, b - a, w, n,
                              x->cur_s + a, x->cur_z + a, x->work + 2 * a);
          const int64_t gi = c / x->g;
          for (int64_t r = a; r < b; r++) {
            x->scale_out[r * x->ngroups + gi] = x->cur_s[r];
            x->zero_out[r * x->ngroups + gi] = x->cur_z[r];
          }
        }
      } else if (x->g > 0) {
        int64_t idx = x->desc_act ? x->perm[c] : c;
        sp = x->st_s + (idx / x->g) * n;
        zp = x->st_z + (idx / x->g) * n;
      }
      const float d = x->u[c * k + c];
      const float d2 = d * d;
      float *w1 = x->w1 + i * n;
      float *e = x->e + i * n;
      uint8_t *qrow = x->qk + c * n;
      float *drow = x->dk ? x->dk + c * n : NULL;
      for (int64_t r = a; r < b; r++) {
        const float w = w1[r];
        const float qi = qf_gptq_qint(w, sp[r], zp[r], x->maxq);
        const float q = sp[r] * (qi - zp[r]);
        qrow[r] = (uint8_t)qi;
        if (drow) drow[r] = q;
        const float diff = w - q;
        const float l = (diff * diff) / d2;
        loss += (double)l;
        e[r] = diff / d;
      }
      const float *urow = x->u + c * k + x->i1;
      const float *restrict er = e;
      for (int64_t j = i + 1; j < cnt; j++) {
        const float uj = urow[j];
        float *restrict wj = x->w1 + j * n;
        for (int64_t r = a; r < b; r++) {
          const float p = er[r] * uj;
          wj[r] = wj[r] - p;
        }
      }
    }
  }
  return loss / 2.0;
}

typedef struct worker {
  const loop_ctx *ctx;
  int64_t r0, r1;
  double loss;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  w->loss = block_rows(w->ctx, w->r0, w->r1);
  return NULL;
}

/* Rows of one block over n_threads (the caller thread takes the first). */
static double run_block(const loop_ctx *x, int n_threads) {
  if (n_threads <= 1 || x->n < 64) return block_rows(x, 0, x->n);
  if (n_threads > 64) n_threads = 64;
  worker ws[64];
  pthread_t th[64];
  int started[64] = {0};
  int64_t per = (x->n + n_threads - 1) / n_threads;
  per = (per + 15) / 16 * 16;
  int nt = 0;
  for (int64_t r = 0; r < x->n; r += per, nt++) {
    ws[nt].ctx = x;
    ws[nt].r0 = r;
    ws[nt].r1 = r + per < x->n ? r + per : x->n;
    ws[nt].loss = 0.0;
  }
  for (int t = 1; t < nt; t++)
    started[t] = pthread_create(&th[t], NULL, worker_main, &ws[t]) == 0;
  worker_main(&ws[0]);
  for (int t = 1; t < nt; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      worker_main(&ws[t]); /* could not start a thread: do it here */
  }
  double loss = 0.0;
  for (int t = 0; t < nt; t++) loss += ws[t].loss;
  return loss;
}

/* W[:, i2:] -= Err1 · U[i1:i2, i2:], i.e. wp[j][r] -= Σ_i U[i][j] E[i][r],
 * as a GEMM into a temporary followed by a subtraction. */
static void block_end(float *wp, const float *u, const float *e, int64_t n,
                      int64_t k, int64_t i1, int64_t i2, float *t) {
  const int64_t cnt = i2 - i1;
  for (int64_t j0 = i2; j0 < k; j0 += GEMM_CHUNK) {
    const int64_t cj = k - j0 < GEMM_CHUNK ? k - j0 : GEMM_CHUNK;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)cj,
                (blasint)n, (blasint)cnt, 1.0f, u + i1 * k + j0, (blasint)k,
                e, (blasint)n, 0.0f, t, (blasint)n);
    float *restrict dst = wp + j0 * n;
    const float *restrict src = t;
    const size_t m = (size_t)cj * (size_t)n;
    for (size_t i = 0; i < m; i++) dst[i] = dst[i] - src[i];
  }
}

/* out[r][perm[c]] = src[c][r] for a [K][N] source. */
static void unpermute_u8(const uint8_t *src, const int64_t *perm, int64_t n,
                         int64_t k, uint8_t *out) {
  for (int64_t r0 = 0; r0 < n; r0 += 64)
    for (int64_t c = 0; c < k; c++) {
      const int64_t r1 = r0 + 64 < n ? r0 + 64 : n;
      const int64_t col = perm[c];
      for (int64_t r = r0; r < r1; r++) out[r * k + col] = src[c * n + r];
    }
}

static void unpermute_f32(const float *src, const int64_t *perm, int64_t n,
                          int64_t k, float *out) {
  for (int64_t r0 = 0; r0 < n; r0 += 64)
    for (int64_t c = 0; c < k; c++) {
      const int64_t r1 = r0 + 64 < n ? r0 + 64 : n;
      const int64_t col = perm[c];
      for (int64_t r = r0; r < r1; r++) out[r * k + col] = src[c * n + r];
    }
}

qf_status qf_gptq_quantize(const float *w, const float *h, int64_t rows,
                           int64_t cols, const qf_gptq_opts *o, int want_deq,
                           qf_gptq_log_fn log, void *log_user,
                           qf_gptq_out *out, qf_error *err) {
  qf_status st = qf_gptq_opts_check(o, err);
  if (st != QF_OK) return st;
  if (!w || !h || !out || rows <= 0 || cols <= 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "GPTQ needs a weight, a Hessian and rows, cols > 0 "
                   "(got %lldx%lld)", (long long)rows, (long long)cols);
  const int64_t n = rows, k = cols;
  if (!all_finite(w, (size_t)n * (size_t)k))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "the weight contains NaN or Inf");
  if (!all_finite(h, (size_t)k * (size_t)k))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "the Hessian contains NaN or Inf");
  const int64_t g = o->group_size > 0 ? o->group_size : 0;
  const int64_t ngroups = g ? (k + g - 1) / g : 1;
  st = alloc_out(out, n, k, ngroups, want_deq, err);
  if (st != QF_OK) return st;

  const qf_gptq_qcfg qc = qcfg_of(o);
  const int64_t bs = o->blocksize;
  float *wt = malloc((size_t)k * (size_t)n * sizeof(float));
  float *a = malloc((size_t)k * (size_t)k * sizeof(float));
  float *diag = malloc((size_t)k * sizeof(float));
  int64_t *perm = malloc((size_t)k * sizeof(int64_t));
  float *cur = malloc((size_t)n * 4 * sizeof(float));
  float *w1 = malloc((size_t)bs * (size_t)n * sizeof(float));
  float *e = malloc((size_t)bs * (size_t)n * sizeof(float));
  float *t = malloc((size_t)GEMM_CHUNK * (size_t)n * sizeof(float));
  uint8_t *qk = malloc((size_t)k * (size_t)n);
  float *dk = want_deq ? malloc((size_t)k * (size_t)n * sizeof(float)) : NULL;
  float *st_s = NULL, *st_z = NULL, *wp = NULL;
  if (!wt || !a || !diag || !perm || !cur || !w1 || !e || !t || !qk ||
      (want_deq && !dk)) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP,
                 "cannot allocate GPTQ work buffers for a %lldx%lld layer",
                 (long long)n, (long long)k);
    goto done;
  }
  float *cur_s = cur, *cur_z = cur + n, *work = cur + 2 * n;
  transpose_f32(w, n, k, wt);

  /* 1. initial params on the whole W (final params when g = -1) */
  qf_gptq_find_params(&qc, wt, n, k, n, cur_s, cur_z, work);
  if (!g)
    for (int64_t r = 0; r < n; r++) {
      out->scale[r] = cur_s[r];
      out->zero[r] = cur_z[r];
    }
  /* 2. dead columns */
  for (int64_t i = 0; i < k; i++) {
    diag[i] = h[i * k + i];
    if (diag[i] == 0.0f) {
      diag[i] = 1.0f;
      memset(wt + i * n, 0, (size_t)n * sizeof(float));
    }
  }
  /* 3. static groups on the dead-fixed, unpermuted weight */
  if (g && o->static_groups) {
    st_s = malloc((size_t)ngroups * (size_t)n * sizeof(float));
    st_z = malloc((size_t)ngroups * (size_t)n * sizeof(float));
    if (!st_s || !st_z) {
      st = qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP,
                   "cannot allocate static group parameters");
      goto done;
    }
    for (int64_t gi = 0; gi < ngroups; gi++) {
      int64_t c = gi * g, wdt = k - c < g ? k - c : g;
      qf_gptq_find_params(&qc, wt + c * n, n, wdt, n, st_s + gi * n,
                          st_z + gi * n, work);
      for (int64_t r = 0; r < n; r++) {
        out->scale[r * ngroups + gi] = st_s[gi * n + r];
        out->zero[r * ngroups + gi] = st_z[gi * n + r];
      }
    }
  }
  /* 4. act order */
  if (o->desc_act) {
    argsort_desc(diag, k, perm);
    wp = malloc((size_t)k * (size_t)n * sizeof(float));
    if (!wp) {
      st = qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP,
                   "cannot allocate the permuted weight");
      goto done;
    }
    for (int64_t j = 0; j < k; j++)
      memcpy(wp + j * n, wt + perm[j] * n, (size_t)n * sizeof(float));
    free(wt);
    wt = NULL;
  } else {
    for (int64_t j = 0; j < k; j++) perm[j] = j;
    wp = wt;
    wt = NULL;
  }
  /* 5-6. dampening and the inverse factor */
  st = factor_with_retry(a, h, perm, k, o, log, log_user, &out->damp_used,
                         &out->retries, err);
  if (st != QF_OK) goto done;

  /* 7. lazy-batch loop */
  loop_ctx x;
  memset(&x, 0, sizeof x);
  x.qc = qc;
  x.maxq = qf_gptq_maxq(o->bits);
  x.n = n;
  x.k = k;
  x.ngroups = ngroups;
  x.g = g;
  x.static_groups = o->static_groups;
  x.desc_act = o->desc_act;
  x.wp = wp;
  x.w1 = w1;
  x.e = e;
  x.u = a;
  x.perm = perm;
  x.cur_s = cur_s;
  x.cur_z = cur_z;
  x.st_s = st_s;
  x.st_z = st_z;
  x.scale_out = out->scale;
  x.zero_out = out->zero;
  x.qk = qk;
  x.dk = dk;
  x.work = work;
  double loss = 0.0;
  for (int64_t i1 = 0; i1 < k; i1 += bs) {
    const int64_t i2 = i1 + bs < k ? i1 + bs : k;
    x.i1 = i1;
    x.i2 = i2;
    memcpy(w1, wp + i1 * n, (size_t)(i2 - i1) * (size_t)n * sizeof(float));
    loss += run_block(&x, o->n_threads);
    if (i2 < k) block_end(wp, a, e, n, k, i1, i2, t);
  }
  out->loss = loss;

  /* 8. un-permute and g_idx */
  unpermute_u8(qk, perm, n, k, out->qint);
  if (dk) unpermute_f32(dk, perm, n, k, out->deq);
  /* dynamic act_order: the group of the processing position; otherwise
   * (including static groups) the group of the original column. */
  for (int64_t c = 0; c < k; c++) {
    const int64_t pos = (o->desc_act && !o->static_groups) ? c : perm[c];
    out->g_idx[perm[c]] = g ? (int32_t)(pos / g) : 0;
  }
  st = QF_OK;

done:
  free(wt);
  free(wp);
  free(a);
  free(diag);
  free(perm);
  free(cur);
  free(w1);
  free(e);
  free(t);
  free(qk);
  free(dk);
  free(st_s);
  free(st_z);
  if (st != QF_OK) qf_gptq_out_free(out);
  return st;
}

qf_status qf_gptq_rtn(const float *w, int64_t rows, int64_t cols,
                      const qf_gptq_opts *o, int want_deq, qf_gptq_out *out,
                      qf_error *err) {
  qf_status st = qf_gptq_opts_check(o, err);
  if (st != QF_OK) return st;
  if (!w || !out || rows <= 0 || cols <= 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "rtn",
                   "RTN needs a weight and rows, cols > 0");
  const int64_t n = rows, k = cols;
  const int64_t g = o->group_size > 0 ? o->group_size : k;
  const int64_t ngroups = (k + g - 1) / g;
  st = alloc_out(out, n, k, ngroups, want_deq, err);
  if (st != QF_OK) return st;
  const qf_gptq_qcfg qc = qcfg_of(o);
  const float maxq = qf_gptq_maxq(o->bits);
  float *wt = malloc((size_t)k * (size_t)n * sizeof(float));
  float *buf = malloc((size_t)n * 4 * sizeof(float));
  if (!wt || !buf) {
    free(wt);
    free(buf);
    qf_gptq_out_free(out);
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, "rtn",
                   "cannot allocate RTN buffers");
  }
  transpose_f32(w, n, k, wt);
  float *s = buf, *z = buf + n, *work = buf + 2 * n;
  for (int64_t gi = 0; gi < ngroups; gi++) {
    const int64_t c0 = gi * g, c1 = c0 + g < k ? c0 + g : k;
    qf_gptq_find_params(&qc, wt + c0 * n, n, c1 - c0, n, s, z, work);
    for (int64_t r = 0; r < n; r++) {
      out->scale[r * ngroups + gi] = s[r];
      out->zero[r * ngroups + gi] = z[r];
      for (int64_t c = c0; c < c1; c++) {
        float qi = qf_gptq_qint(w[r * k + c], s[r], z[r], maxq);
        out->qint[r * k + c] = (uint8_t)qi;
        if (out->deq) out->deq[r * k + c] = s[r] * (qi - z[r]);
      }
    }
    for (int64_t c = c0; c < c1; c++) out->g_idx[c] = (int32_t)gi;
  }
  out->loss = 0.0;
  out->damp_used = 0.0f;
  free(wt);
  free(buf);
  return QF_OK;
}
