/*
 * quantize_mt.c — ggml row quantization and dequantization split over POSIX
 * threads. Rows are independent in every ggml type, so each thread takes a
 * contiguous range of rows and the output bytes do not depend on the number
 * of threads. Small jobs run on the calling thread.
 */
#include <pthread.h>
#include <stdlib.h>

#include "gguf_plugin.h"
#include "gguf_quants.h"

typedef struct {
  int type, dequant;
  const float *src;
  const void *qsrc;
  void *dst;
  float *fdst;
  int64_t r0, r1, ncols;
  size_t row_size;
  const float *imatrix;
  int ok;
} qf__mt_job;

static void *qf__mt_run(void *arg) {
  qf__mt_job *j = arg;
  const int64_t n = j->r1 - j->r0;
  if (n <= 0) {
    j->ok = 1;
    return NULL;
  }
  if (j->dequant) {
    j->ok = qf_gguf_dequantize_rows(j->type, (const uint8_t *)j->qsrc + (size_t)j->r0 * j->row_size,
                                    j->fdst + j->r0 * j->ncols, n, j->ncols) == 0;
  } else {
    size_t w = qf_gguf_quantize_rows(j->type, j->src + j->r0 * j->ncols,
                                     (uint8_t *)j->dst + (size_t)j->r0 * j->row_size, n, j->ncols,
                                     j->imatrix);
    j->ok = w == (size_t)n * j->row_size;
  }
  return NULL;
}

/* Threads worth starting for nrows × ncols elements. */
static int qf__threads_for(int64_t nrows, int64_t ncols, int n_threads) {
  int64_t work = nrows * ncols;
  int t = n_threads < 1 ? 1 : n_threads;
  if (t > 64) t = 64;
  if (t > nrows) t = (int)nrows;
  if (work < (int64_t)1 << 16) t = 1;
  return t < 1 ? 1 : t;
}

static int qf__mt(qf__mt_job *proto, int64_t nrows, int n_threads) {
  int t = qf__threads_for(nrows, proto->ncols, n_threads);
  if (t == 1) {
    qf__mt_job j = *proto;
    j.r0 = 0;
    j.r1 = nrows;
    qf__mt_run(&j);
    return j.ok;
  }
  qf__mt_job jobs[64];
  pthread_t tid[64];
  int started[64] = {0};
  int64_t per = (nrows + t - 1) / t;
  for (int i = 0; i < t; i++) {
    jobs[i] = *proto;
    jobs[i].r0 = (int64_t)i * per < nrows ? (int64_t)i * per : nrows;
    jobs[i].r1 = jobs[i].r0 + per < nrows ? jobs[i].r0 + per : nrows;
    jobs[i].ok = 0;
    if (i > 0) started[i] = pthread_create(&tid[i], NULL, qf__mt_run, &jobs[i]) == 0;
  }
  qf__mt_run(&jobs[0]);
  int ok = jobs[0].ok;
  for (int i = 1; i < t; i++) {
    if (started[i])
      pthread_join(tid[i], NULL);
    else
      qf__mt_run(&jobs[i]); /* could not start a thread: do it here */
    ok = ok && jobs[i].ok;
  }
  return ok;
}

size_t qf_gguf_quantize_mt(int type, const float *src, void *dst, int64_t nrows, int64_t ncols,
                           const float *imatrix, int n_threads) {
  size_t rs = qf_gguf_row_size(type, ncols);
  if (!rs || nrows < 0 || !qf_gguf_can_quantize(type)) return 0;
  if (nrows == 0) return 0;
  qf__mt_job p = {0};
  p.type = type;
  p.src = src;
  p.dst = dst;
  p.ncols = ncols;
  p.row_size = rs;
  p.imatrix = imatrix;
  return qf__mt(&p, nrows, n_threads) ? rs * (size_t)nrows : 0;
}

int qf_gguf_dequantize_mt(int type, const void *src, float *dst, int64_t nrows, int64_t ncols,
                          int n_threads) {
  size_t rs = qf_gguf_row_size(type, ncols);
  if (!rs || nrows < 0 || !qf_gguf_can_dequantize(type)) return -1;
  if (nrows == 0) return 0;
  qf__mt_job p = {0};
  p.type = type;
  p.dequant = 1;
  p.qsrc = src;
  p.fdst = dst;
  p.ncols = ncols;
  p.row_size = rs;
  return qf__mt(&p, nrows, n_threads) ? 0 : -1;
}
