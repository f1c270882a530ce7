/*
 * Shared helpers for the benchmarks: a monotonic clock, peak RSS, the
 * machine's measured memory-copy bandwidth (the yardstick every kernel
 * figure is reported against), and a tiny deterministic RNG.
 */
#ifndef QF_BENCH_UTIL_H
#define QF_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double qf_bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak resident set size of this process in MiB. */
static inline double qf_bench_peak_rss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* Memory-copy bandwidth in GB/s (read + write bytes counted once each as
 * the copy moves them: 2 × size / time), best of a few 256 MiB copies. */
static inline double qf_bench_memcpy_gbps(void) {
  const size_t n = (size_t)256 << 20;
  char *a = malloc(n), *b = malloc(n);
  if (!a || !b) {
    free(a);
    free(b);
    return 0;
  }
  memset(a, 1, n);
  memset(b, 2, n);
  double best = 1e30;
  for (int i = 0; i < 5; i++) {
    double t = qf_bench_now();
    memcpy(b, a, n);
    t = qf_bench_now() - t;
    if (t < best) best = t;
    a[i] = b[n - 1 - (size_t)i];
  }
  free(a);
  free(b);
  return 2.0 * (double)n / best / 1e9;
}

static inline uint64_t qf_bench_rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static inline float qf_bench_gauss(uint64_t *s) {
  double u1 = ((double)(qf_bench_rng(s) >> 11) + 0.5) / 9007199254740992.0;
  double u2 = ((double)(qf_bench_rng(s) >> 11) + 0.5) / 9007199254740992.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif /* QF_BENCH_UTIL_H */
