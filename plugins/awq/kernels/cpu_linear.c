/*
 * Driver of the AWQ CPU forward: picks scalar or AVX2 at run time, runs the
 * fused GEMV for a single input row (split over threads by column ranges
 * when the host allows more than one thread and the layer is large enough),
 * and for more rows dequantizes column tiles of Wᵀ into a float32 buffer
 * and multiplies them with cblas_sgemm (OpenBLAS threads internally).
 * Column ranges never change a column's arithmetic, so the result does not
 * depend on the number of threads.
 */
#include <pthread.h>
#include <stdlib.h>

#include <cblas.h>

#include "cpu_kernels.h"

#define QF_AWQ_TILE_BYTES (2u << 20)          /* dequantized tile budget */
#define QF_AWQ_GEMV_MIN_PER_THREAD (1 << 20)  /* weights per GEMV thread */
#define QF_AWQ_MAX_THREADS 64

typedef void (*gemv_fn)(const qf_awq_cpu_weights *, const float *, float *,
                        int64_t, int64_t);
typedef void (*tile_fn)(const qf_awq_cpu_weights *, int64_t, int64_t, float *);

typedef struct gemv_task {
  const qf_awq_cpu_weights *w;
  const float *x;
  float *y;
  int64_t n0, n1;
  gemv_fn fn;
} gemv_task;

static void *gemv_thread(void *arg) {
  gemv_task *t = arg;
  t->fn(t->w, t->x, t->y, t->n0, t->n1);
  return NULL;
}

static void run_gemv(const qf_awq_cpu_weights *w, const float *x, float *y,
                     int n_threads, gemv_fn fn) {
  const int64_t nc = w->n / 8;
  int64_t want = (w->n * w->k) / QF_AWQ_GEMV_MIN_PER_THREAD;
  if (want < 1) want = 1;
  if (want > n_threads) want = n_threads;
  if (want > nc) want = nc;
  if (want > QF_AWQ_MAX_THREADS) want = QF_AWQ_MAX_THREADS;
  if (want <= 1) {
    fn(w, x, y, 0, w->n);
    return;
  }
  gemv_task tasks[QF_AWQ_MAX_THREADS];
  pthread_t th[QF_AWQ_MAX_THREADS];
  int started[QF_AWQ_MAX_THREADS] = {0};
  for (int64_t i = 0; i < want; i++) {
    tasks[i].w = w;
    tasks[i].x = x;
    tasks[i].y = y;
    tasks[i].n0 = nc * i / want * 8;
    tasks[i].n1 = nc * (i + 1) / want * 8;
    tasks[i].fn = fn;
  }
  /* task 0 runs here; a thread that cannot start runs here too */
  for (int64_t i = 1; i < want; i++)
    started[i] = pthread_create(&th[i], NULL, gemv_thread, &tasks[i]) == 0;
  gemv_thread(&tasks[0]);
  for (int64_t i = 1; i < want; i++) {
    if (started[i]) pthread_join(th[i], NULL);
    else gemv_thread(&tasks[i]);
  }
}

qf_status qf_awq_cpu_linear(const qf_awq_cpu_weights *w, const float *x,
                            int64_t m, float *y, int n_threads, qf_awq_isa isa) {
  if (!w || !w->qweight || !w->zeros || !w->scales || !x || !y || m < 0 ||
      w->n <= 0 || w->k <= 0 || w->g <= 0 || w->n % 8 || w->k % w->g)
    return QF_ERR_INVALID_ARGUMENT;
  if (m == 0) return QF_OK;
  int avx2;
  if (isa == QF_AWQ_ISA_SCALAR) avx2 = 0;
  else if (isa == QF_AWQ_ISA_AVX2) avx2 = qf_awq_cpu_has_avx2();
  else avx2 = qf_awq_cpu_has_avx2();
  if (n_threads < 1) n_threads = 1;

  if (m == 1) {
    run_gemv(w, x, y, n_threads, avx2 ? qf_awq_gemv_avx2 : qf_awq_gemv_scalar);
    return QF_OK;
  }
  if (m > INT32_MAX || w->k > INT32_MAX || w->n > INT32_MAX)
    return QF_ERR_INVALID_ARGUMENT;
  const tile_fn tile_of = avx2 ? qf_awq_dequant_tile_avx2 : qf_awq_dequant_tile_scalar;
  int64_t nt = (int64_t)(QF_AWQ_TILE_BYTES / sizeof(float)) / w->k;
  nt = nt / 8 * 8;
  if (nt < 8) nt = 8;
  if (nt > w->n) nt = w->n;
  float *tile = malloc((size_t)(nt * w->k) * sizeof *tile);
  if (!tile) return QF_ERR_NO_MEMORY;
  for (int64_t n0 = 0; n0 < w->n; n0 += nt) {
    const int64_t cur = w->n - n0 < nt ? w->n - n0 : nt;
    tile_of(w, n0, cur, tile);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)cur,
                (int)w->k, 1.0f, x, (int)w->k, tile, (int)cur, 0.0f, y + n0,
                (int)w->n);
  }
  free(tile);
  if (w->bias)
    for (int64_t r = 0; r < m; r++)
      for (int64_t j = 0; j < w->n; j++) y[r * w->n + j] = y[r * w->n + j] + w->bias[j];
  return QF_OK;
}
