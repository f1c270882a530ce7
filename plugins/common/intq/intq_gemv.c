/*
 * CPU linear forward for group-quantized integer weights: building the
 * tiled layout described in intq_impl.h from unpacked integers, the
 * scalar reference tile kernel (the AVX2 kernel reproduces its operation
 * order per output lane, so both give the same bytes), the batch-1 fused
 * dequantize + GEMV driver with activations permuted once into group
 * order, the batch > 3 path that dequantizes column tiles and calls
 * cblas_sgemm, the pthread split over output tiles, and a full dequantize
 * for checks. Compiled with -ffp-contract=off: the only fused multiply-add
 * is the explicit fmaf of the GEMV accumulation, which AVX2 mirrors.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "intq_impl.h"
#include "intq.h"
#include "qforge/plugin_util.h"

#define OP "linear_forward"
#define DEFAULT_PLUGIN "intq"
#define GEMV_MAX_M 3
#define GEMM_BUF_BYTES ((size_t)8 << 20)
#define MAX_THREADS 64

void qf_intq_qmat_free(qf_intq_qmat *m) {
  if (!m) return;
  free(m->runs);
  free(m->src);
  free(m->w);
  free(m->s);
  free(m->z);
  free(m->bias);
  free(m);
}

size_t qf_intq_qmat_bytes(const qf_intq_qmat *m) {
  if (!m) return 0;
  size_t b = sizeof *m;
  b += (size_t)m->nruns * sizeof *m->runs + (size_t)m->kp * sizeof *m->src;
  b += (size_t)m->ntiles * (size_t)(m->kp / m->vpw) * QF_INTQ_TILE * 4;
  b += 2 * (size_t)m->ngroups * (size_t)m->np * sizeof(float);
  if (m->bias) b += (size_t)m->np * sizeof(float);
  return b;
}

int64_t qf_intq_qmat_rows(const qf_intq_qmat *m) { return m ? m->n : 0; }
int64_t qf_intq_qmat_cols(const qf_intq_qmat *m) { return m ? m->k : 0; }

int qf_intq_cpu_has_avx2(void) { return qf_intq__avx2_available(); }

qf_status qf_intq_qmat_new(const qf_intq_qmat_src *src, qf_intq_qmat **out,
                           qf_error *err) {
  *out = NULL;
  const char *plugin = src && src->plugin ? src->plugin : DEFAULT_PLUGIN;
  if (!src || src->bits < 1 || src->bits > 8 || src->rows <= 0 ||
      src->cols <= 0 || src->ngroups <= 0 || !src->q || !src->scales ||
      !src->zeros)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, plugin, "prepare",
                   "a quantized matrix needs bits 1..8, positive shapes, "
                   "integers, scales and zeros");
  const int64_t n = src->rows, k = src->cols, ng = src->ngroups;
  const int64_t gs = (k + ng - 1) / ng;
  qf_intq_qmat *m = calloc(1, sizeof *m);
  int64_t *count = calloc((size_t)ng, sizeof *count);
  int32_t *gof = malloc((size_t)k * sizeof *gof);
  if (!m || !count || !gof) goto nomem;
  for (int64_t c = 0; c < k; c++) {
    int32_t g = src->g_idx ? src->g_idx[c] : (int32_t)(c / gs);
    if (g < 0 || g >= ng) {
      free(count);
      free(gof);
      qf_intq_qmat_free(m);
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, plugin, "prepare",
                     "g_idx[%lld] = %d is outside [0, %lld)", (long long)c, g,
                     (long long)ng);
    }
    gof[c] = g;
    count[g]++;
  }
  m->plugin = plugin;
  m->bits = src->bits;
  m->fw = src->bits <= 4 ? 4 : 8;
  m->vpw = 32 / m->fw;
  m->n = n;
  m->k = k;
  m->np = (n + 7) / 8 * 8;
  m->ngroups = ng;
  m->ntiles = (m->np + QF_INTQ_TILE - 1) / QF_INTQ_TILE;
  for (int64_t g = 0; g < ng; g++)
    if (count[g]) m->nruns++;
  m->runs = calloc((size_t)m->nruns, sizeof *m->runs);
  if (!m->runs) goto nomem;
  int64_t *next = calloc((size_t)ng, sizeof *next); /* next position per group */
  if (!next) goto nomem;
  int64_t pos = 0, ri = 0;
  for (int64_t g = 0; g < ng; g++) {
    if (!count[g]) continue;
    m->runs[ri].pos = pos;
    m->runs[ri].len = (count[g] + 7) / 8 * 8;
    m->runs[ri].group = (int32_t)g;
    next[g] = pos;
    pos += m->runs[ri].len;
    ri++;
  }
  m->kp = pos;
  m->src = malloc((size_t)m->kp * sizeof *m->src);
  if (!m->src) {
    free(next);
    goto nomem;
  }
  for (int64_t p = 0; p < m->kp; p++) m->src[p] = -1;
  for (int64_t c = 0; c < k; c++) m->src[next[gof[c]]++] = c; /* stable */
  free(next);

  const int64_t wrows = m->kp / m->vpw;
  m->w = calloc((size_t)m->ntiles * (size_t)wrows * QF_INTQ_TILE, 4);
  m->s = calloc((size_t)ng * (size_t)m->np, sizeof(float));
  m->z = calloc((size_t)ng * (size_t)m->np, sizeof(float));
  if (src->bias) m->bias = calloc((size_t)m->np, sizeof(float));
  if (!m->w || !m->s || !m->z || (src->bias && !m->bias)) goto nomem;
  const uint32_t maxq = (1u << src->bits) - 1u;
  for (int64_t t = 0; t < m->ntiles; t++) {
    const int64_t tw = qf_intq__tile_width(m, t);
    uint32_t *tile = m->w + t * wrows * QF_INTQ_TILE;
    for (int64_t r = 0; r < wrows; r++)
      for (int j = 0; j < m->vpw; j++) {
        const int64_t c = m->src[r * m->vpw + j];
        if (c < 0) continue;
        const uint8_t *qc = src->q + c * src->q_stride_k;
        for (int64_t nn = 0; nn < tw; nn++) {
          const int64_t col = t * QF_INTQ_TILE + nn;
          if (col >= n) break;
          const uint32_t v = qc[col * src->q_stride_n];
          if (v > maxq) {
            free(count);
            free(gof);
            qf_intq_qmat_free(m);
            return qf_fail(err, QF_ERR_INVALID_ARGUMENT, plugin,
                           "prepare", "integer %u at input %lld, output %lld "
                           "exceeds %d bits", v, (long long)c,
                           (long long)col, src->bits);
          }
          tile[r * tw + nn] |= v << (j * m->fw);
        }
      }
  }
  for (int64_t g = 0; g < ng; g++) {
    memcpy(m->s + g * m->np, src->scales + g * n, (size_t)n * sizeof(float));
    memcpy(m->z + g * m->np, src->zeros + g * n, (size_t)n * sizeof(float));
  }
  if (src->bias) memcpy(m->bias, src->bias, (size_t)n * sizeof(float));
  free(count);
  free(gof);
  *out = m;
  return QF_OK;
nomem:
  free(count);
  free(gof);
  qf_intq_qmat_free(m);
  return qf_fail(err, QF_ERR_NO_MEMORY, plugin, "prepare",
                 "cannot allocate a prepared %lldx%lld matrix", (long long)n,
                 (long long)k);
}

void qf_intq__gemv_tile_scalar(const struct qf_intq_qmat *m, int64_t t,
                               const float *xq, const float *xsum, float *yt) {
  const int64_t tw = qf_intq__tile_width(m, t);
  const uint32_t *tile = qf_intq__tile_words(m, t);
  const uint32_t base = (1u << m->fw) - 1u;
  const int top = m->vpw - 1;
  float acc[QF_INTQ_TILE];
  for (int64_t nn = 0; nn < tw; nn++) yt[nn] = 0.0f;
  for (int64_t ri = 0; ri < m->nruns; ri++) {
    const qf_intq_run *run = &m->runs[ri];
    for (int64_t nn = 0; nn < tw; nn++) acc[nn] = 0.0f;
    const int64_t r0 = run->pos / m->vpw, r1 = (run->pos + run->len) / m->vpw;
    for (int64_t r = r0; r < r1; r++) {
      const uint32_t *wr = tile + r * tw;
      for (int j = 0; j < m->vpw; j++) {
        const float xv = xq[r * m->vpw + j];
        const uint32_t mk = base << (j * m->fw);
        for (int64_t nn = 0; nn < tw; nn++) {
          const uint32_t f = j < top ? (wr[nn] & mk) : (wr[nn] >> (j * m->fw));
          acc[nn] = fmaf(xv, (float)(int32_t)f, acc[nn]);
        }
      }
    }
    const float *s = m->s + (int64_t)run->group * m->np + t * QF_INTQ_TILE;
    const float *z = m->z + (int64_t)run->group * m->np + t * QF_INTQ_TILE;
    const float xs = xsum[ri];
    for (int64_t nn = 0; nn < tw; nn++) {
      const float a = z[nn] * xs;
      const float u = acc[nn] - a;
      const float v = s[nn] * u;
      yt[nn] = yt[nn] + v;
    }
  }
}

typedef void (*tile_fn)(const struct qf_intq_qmat *, int64_t, const float *,
                        const float *, float *);

/* ------------------------------------------------------------ threads */

typedef struct job {
  const qf_intq_qmat *m;
  tile_fn fn;
  int64_t t0, t1;       /* tile range */
  int64_t mrows;
  const float *xp;      /* [mrows][kp] scaled activations (GEMV) */
  const float *xsum;    /* [mrows][nruns] */
  float *y;             /* [mrows][n] */
  /* dequant-tile mode (fn == NULL): */
  float *buf;           /* [kp][ld] */
  int64_t ld, n0;
} job;

static void dequant_tile(const qf_intq_qmat *m, int64_t t, float *buf,
                         int64_t ld) {
  const int64_t tw = qf_intq__tile_width(m, t);
  const uint32_t *tile = qf_intq__tile_words(m, t);
  const uint32_t mask = (1u << m->fw) - 1u;
  for (int64_t ri = 0; ri < m->nruns; ri++) {
    const qf_intq_run *run = &m->runs[ri];
    const float *s = m->s + (int64_t)run->group * m->np + t * QF_INTQ_TILE;
    const float *z = m->z + (int64_t)run->group * m->np + t * QF_INTQ_TILE;
    for (int64_t p = run->pos; p < run->pos + run->len; p++) {
      float *dst = buf + p * ld;
      if (m->src[p] < 0) {
        memset(dst, 0, (size_t)tw * sizeof(float));
        continue;
      }
      const uint32_t *wr = tile + (p / m->vpw) * tw;
      const int sh = (int)(p % m->vpw) * m->fw;
      for (int64_t nn = 0; nn < tw; nn++) {
        const float q = (float)(int32_t)((wr[nn] >> sh) & mask);
        dst[nn] = s[nn] * (q - z[nn]);
      }
    }
  }
}

static void *job_main(void *arg) {
  job *j = arg;
  const qf_intq_qmat *m = j->m;
  if (!j->fn) {
    for (int64_t t = j->t0; t < j->t1; t++)
      dequant_tile(m, t, j->buf + (t * QF_INTQ_TILE - j->n0), j->ld);
    return NULL;
  }
  float yt[QF_INTQ_TILE];
  for (int64_t t = j->t0; t < j->t1; t++) /* a tile stays in cache over rows */
    for (int64_t r = 0; r < j->mrows; r++) {
      j->fn(m, t, j->xp + r * m->kp, j->xsum + r * m->nruns, yt);
      const int64_t c0 = t * QF_INTQ_TILE;
      int64_t cw = qf_intq__tile_width(m, t);
      if (c0 + cw > m->n) cw = m->n - c0;
      float *dst = j->y + r * m->n + c0;
      if (m->bias)
        for (int64_t nn = 0; nn < cw; nn++) dst[nn] = yt[nn] + m->bias[c0 + nn];
      else
        memcpy(dst, yt, (size_t)cw * sizeof(float));
    }
  return NULL;
}

/* Run `proto` over tiles [t0, t1) split across up to n_threads threads. */
static void run_jobs(const job *proto, int64_t t0, int64_t t1, int n_threads) {
  int64_t nt = t1 - t0;
  if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
  if (n_threads > nt) n_threads = (int)nt;
  if (n_threads <= 1) {
    job j = *proto;
    j.t0 = t0;
    j.t1 = t1;
    job_main(&j);
    return;
  }
  job js[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  int ok[MAX_THREADS] = {0};
  for (int i = 0; i < n_threads; i++) {
    js[i] = *proto;
    js[i].t0 = t0 + nt * i / n_threads;
    js[i].t1 = t0 + nt * (i + 1) / n_threads;
  }
  for (int i = 1; i < n_threads; i++)
    ok[i] = pthread_create(&th[i], NULL, job_main, &js[i]) == 0;
  job_main(&js[0]);
  for (int i = 1; i < n_threads; i++) {
    if (ok[i])
      pthread_join(th[i], NULL);
    else
      job_main(&js[i]);
  }
}

/* ------------------------------------------------------------ forward */

/* xp[r][p] = x[r][src[p]] (0 for padding); with xq, the GEMV's scaled
 * copy (see intq_impl.h) and the per-run sums. */
static void permute_x(const qf_intq_qmat *m, const float *x, int64_t mrows,
                      float *xp, float *xq, float *xsum) {
  for (int64_t r = 0; r < mrows; r++) {
    const float *xr = x + r * m->k;
    float *dst = xp + r * m->kp;
    for (int64_t p = 0; p < m->kp; p++)
      dst[p] = m->src[p] >= 0 ? xr[m->src[p]] : 0.0f;
    if (!xq) continue;
    float *dq = xq + r * m->kp;
    for (int64_t p = 0; p < m->kp; p++) {
      const int j = (int)(p % m->vpw);
      dq[p] = j == m->vpw - 1 ? dst[p] : ldexpf(dst[p], -j * m->fw);
    }
    for (int64_t ri = 0; ri < m->nruns; ri++) {
      float s = 0.0f;
      for (int64_t p = m->runs[ri].pos; p < m->runs[ri].pos + m->runs[ri].len; p++)
        s = s + dst[p];
      xsum[r * m->nruns + ri] = s;
    }
  }
}

qf_status qf_intq_qmat_forward(const qf_intq_qmat *m, const float *x,
                               int64_t m_rows, float *y, int n_threads,
                               qf_intq_isa isa, qf_error *err) {
  if (!m || !x || !y || m_rows < 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT,
                   m ? m->plugin : DEFAULT_PLUGIN, OP,
                   "forward needs a prepared matrix, x and y");
  if (m_rows == 0) return QF_OK;
  if (n_threads < 1) n_threads = 1;
  /* small matrices are not worth a thread */
  if ((double)m->n * (double)m->k * (double)m_rows < 1048576.0) n_threads = 1;
  tile_fn fn = qf_intq__gemv_tile_scalar;
  if (isa != QF_INTQ_ISA_SCALAR && qf_intq__avx2_available())
    fn = qf_intq__gemv_tile_avx2;

  if (m_rows <= GEMV_MAX_M) {
    float *xp = malloc((size_t)m_rows * (size_t)m->kp * sizeof(float));
    float *xq = malloc((size_t)m_rows * (size_t)m->kp * sizeof(float));
    float *xsum = malloc((size_t)m_rows * (size_t)m->nruns * sizeof(float));
    if (!xp || !xq || !xsum) {
      free(xp);
      free(xq);
      free(xsum);
      return qf_fail(err, QF_ERR_NO_MEMORY, m->plugin, OP,
                     "cannot allocate permuted activations");
    }
    permute_x(m, x, m_rows, xp, xq, xsum);
    job j;
    memset(&j, 0, sizeof j);
    j.m = m;
    j.fn = fn;
    j.mrows = m_rows;
    j.xp = xq;
    j.xsum = xsum;
    j.y = y;
    run_jobs(&j, 0, m->ntiles, n_threads);
    free(xp);
    free(xq);
    free(xsum);
    return QF_OK;
  }

  /* dequantize column tiles, then sgemm */
  int64_t st = (int64_t)(GEMM_BUF_BYTES / ((size_t)m->kp * sizeof(float)));
  st = st / QF_INTQ_TILE * QF_INTQ_TILE;
  if (st < QF_INTQ_TILE) st = QF_INTQ_TILE;
  if (st > m->ntiles * QF_INTQ_TILE) st = m->ntiles * QF_INTQ_TILE;
  float *xp = malloc((size_t)m_rows * (size_t)m->kp * sizeof(float));
  float *buf = malloc((size_t)m->kp * (size_t)st * sizeof(float));
  if (!xp || !buf) {
    free(xp);
    free(buf);
    return qf_fail(err, QF_ERR_NO_MEMORY, m->plugin, OP,
                   "cannot allocate the dequantization tile");
  }
  permute_x(m, x, m_rows, xp, NULL, NULL);
  for (int64_t n0 = 0; n0 < m->n; n0 += st) {
    job j;
    memset(&j, 0, sizeof j);
    j.m = m;
    j.buf = buf;
    j.ld = st;
    j.n0 = n0;
    const int64_t t0 = n0 / QF_INTQ_TILE;
    int64_t t1 = (n0 + st) / QF_INTQ_TILE;
    if (t1 > m->ntiles) t1 = m->ntiles;
    run_jobs(&j, t0, t1, n_threads);
    const int64_t ncols = m->n - n0 < st ? m->n - n0 : st;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m_rows,
                (blasint)ncols, (blasint)m->kp, 1.0f, xp, (blasint)m->kp, buf,
                (blasint)st, 0.0f, y + n0, (blasint)m->n);
  }
  if (m->bias)
    for (int64_t r = 0; r < m_rows; r++)
      for (int64_t c = 0; c < m->n; c++) y[r * m->n + c] += m->bias[c];
  free(xp);
  free(buf);
  return QF_OK;
}

void qf_intq_qmat_dequant(const qf_intq_qmat *m, float *w) {
  const uint32_t mask = (1u << m->fw) - 1u;
  for (int64_t ri = 0; ri < m->nruns; ri++) {
    const qf_intq_run *run = &m->runs[ri];
    for (int64_t p = run->pos; p < run->pos + run->len; p++) {
      const int64_t c = m->src[p];
      if (c < 0) continue;
      for (int64_t t = 0; t < m->ntiles; t++) {
        const int64_t tw = qf_intq__tile_width(m, t);
        const uint32_t *wr = qf_intq__tile_words(m, t) + (p / m->vpw) * tw;
        const int sh = (int)(p % m->vpw) * m->fw;
        for (int64_t nn = 0; nn < tw; nn++) {
          const int64_t n = t * QF_INTQ_TILE + nn;
          if (n >= m->n) break;
          const float q = (float)(int32_t)((wr[nn] >> sh) & mask);
          const int64_t gi = (int64_t)run->group * m->np + n;
          w[n * m->k + c] = m->s[gi] * (q - m->z[gi]);
        }
      }
    }
  }
}
