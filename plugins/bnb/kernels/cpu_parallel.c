/*
 * A minimal parallel-for for the CPU kernels: splits an index range into
 * contiguous chunks and runs them on short-lived pthreads (the caller's
 * thread takes the first chunk). Kernel calls are coarse (a whole GEMV or a
 * GEMM epilogue), so thread start-up cost is negligible and no pool has to
 * outlive a call. Results never depend on the thread count: every output
 * element is computed by exactly one thread in a fixed order.
 */
#include <pthread.h>
#include <stdlib.h>

#include "../bnb.h"

typedef struct job {
  void (*fn)(void *arg, int64_t lo, int64_t hi);
  void *arg;
  int64_t lo, hi;
} job;

static void *run_job(void *p) {
  job *j = (job *)p;
  j->fn(j->arg, j->lo, j->hi);
  return NULL;
}

int qf_bnb_parallel_for(int threads, int64_t n, int64_t min_chunk,
                        void (*fn)(void *arg, int64_t lo, int64_t hi),
                        void *arg) {
  if (n <= 0) return 0;
  if (min_chunk < 1) min_chunk = 1;
  int64_t t = threads < 1 ? 1 : threads;
  if (t > 64) t = 64;
  if (t > n / min_chunk) t = n / min_chunk;
  if (t <= 1) {
    fn(arg, 0, n);
    return 0;
  }
  job jobs[64];
  pthread_t tids[64];
  int started[64] = {0};
  int rc = 0;
  for (int64_t i = 0; i < t; i++) {
    jobs[i].fn = fn;
    jobs[i].arg = arg;
    jobs[i].lo = n * i / t;
    jobs[i].hi = n * (i + 1) / t;
  }
  for (int64_t i = 1; i < t; i++)
    started[i] = pthread_create(&tids[i], NULL, run_job, &jobs[i]) == 0;
  run_job(&jobs[0]);
  for (int64_t i = 1; i < t; i++) {
    if (started[i]) {
      pthread_join(tids[i], NULL);
    } else {
      rc = -1;
      run_job(&jobs[i]);
    }
  }
  return rc;
}
