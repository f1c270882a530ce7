/*
 * GPTQ benchmark: (1) quantization time of one layer from a given Hessian
 * (4096×4096 and a 4096-output × 11008-input layer, 4-bit, group 128) at 1
 * and 2 threads (GPTQ's own threads and OpenBLAS's); (2) batch-1
 * linear_forward throughput of a 4-bit group-128 layer of 4096×14336 in
 * both orientations, in GB/s of the prepared matrix's bytes (packed
 * weights, scales, zeros) read per call and as a fraction of the measured
 * memcpy bandwidth (bench_util.h: bytes read + written per second), scalar
 * and AVX2, 1 and 2 threads, plus the single-thread figure on CPU time
 * (what the kernel reaches when the shared machine lets it run); (3) peak
 * resident memory. Synthetic data: Gaussian weights, calibration inputs
 * with a few outlier channels.
 *
 *   gptq_bench [--no-quant] [--no-gemv] [--big-only|--small-only]
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "gptq.h"
#include "int_gemv.h"

static double now(void) { return qf_bench_now(); }

/* CPU time of the calling thread (excludes time the scheduler gave to
 * other processes on a shared machine). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all threads). */
static double proc_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float gauss(void) { return qf_bench_gauss(&rng); }

static double peak_rss_mib(void) { return qf_bench_peak_rss_mib(); }

/* H from T synthetic tokens through add_batch (256-token samples). */
static int make_hessian(int64_t k, int64_t tokens, qf_gptq_hessian *hs) {
  qf_error err = {0};
  if (qf_gptq_hessian_init(hs, k, &err) != QF_OK) return -1;
  float *x = malloc((size_t)256 * (size_t)k * sizeof(float));
  if (!x) return -1;
  for (int64_t t0 = 0; t0 < tokens; t0 += 256) {
    for (int64_t i = 0; i < 256 * k; i++)
      x[i] = gauss() * ((i % k) % 61 == 0 ? 8.0f : 1.0f);
    if (qf_gptq_hessian_add_batch(hs, x, 256, 1, &err) != QF_OK) {
      free(x);
      return -1;
    }
  }
  free(x);
  return 0;
}

static void bench_quant(int64_t n, int64_t k) {
  printf("quantize %lld x %lld (4-bit, group 128, sym), Hessian from 2048 tokens\n",
         (long long)n, (long long)k);
  qf_gptq_hessian hs;
  double t0 = now();
  if (make_hessian(k, 2048, &hs) != 0) {
    printf("  cannot build the Hessian (memory?)\n");
    return;
  }
  printf("  Hessian accumulation: %.2f s\n", now() - t0);
  float *w = malloc((size_t)n * (size_t)k * sizeof(float));
  if (!w) {
    qf_gptq_hessian_free(&hs);
    return;
  }
  for (int64_t i = 0; i < n * k; i++) w[i] = 0.02f * gauss();
  for (int th = 1; th <= 2; th++) {
    openblas_set_num_threads(th);
    qf_gptq_opts o;
    qf_gptq_opts_default(&o);
    o.n_threads = th;
    qf_gptq_out out;
    qf_error err = {0};
    t0 = now();
    const double c0 = proc_cpu_now();
    qf_status st = qf_gptq_quantize(w, hs.h, n, k, &o, 0, NULL, NULL, &out, &err);
    double dt = now() - t0, dc = proc_cpu_now() - c0;
    if (st != QF_OK) {
      printf("  %d thread(s): failed: %s\n", th, err.message);
      continue;
    }
    printf("  %d thread(s): %.2f s wall, %.2f s CPU (loss %.4g)   peak RSS %.0f MiB\n",
           th, dt, dc, out.loss, peak_rss_mib());
    qf_gptq_out_free(&out);
  }
  free(w);
  qf_gptq_hessian_free(&hs);
}

static void bench_gemv(int64_t n, int64_t k, double mbw) {
  const int64_t gs = 128, g = k / gs;
  uint8_t *q = malloc((size_t)n * (size_t)k);
  float *s = malloc((size_t)g * (size_t)n * 4), *z = malloc((size_t)g * (size_t)n * 4);
  int32_t *gi = malloc((size_t)k * 4);
  float *x = malloc((size_t)k * 4), *y = malloc((size_t)n * 4);
  if (!q || !s || !z || !gi || !x || !y) goto done;
  for (int64_t i = 0; i < n * k; i++) q[i] = (uint8_t)(qf_bench_rng(&rng) >> 60);
  for (int64_t i = 0; i < g * n; i++) {
    s[i] = 0.01f;
    z[i] = 8.0f;
  }
  for (int64_t i = 0; i < k; i++) {
    gi[i] = (int32_t)(i / gs);
    x[i] = gauss();
  }
  qf_gptq_qmat_src src = {.bits = 4, .rows = n, .cols = k, .ngroups = g, .q = q,
                          .q_stride_k = 1, .q_stride_n = k, .g_idx = gi, .scales = s,
                          .zeros = z, .bias = NULL};
  qf_gptq_qmat *m = NULL;
  qf_error err = {0};
  if (qf_gptq_qmat_new(&src, &m, &err) != QF_OK) {
    printf("  prepare failed: %s\n", err.message);
    goto done;
  }
  free(q);
  q = NULL;
  const double wbytes = (double)n * (double)k / 2.0;
  const double allbytes = (double)qf_gptq_qmat_bytes(m);
  printf("linear_forward batch 1, %lld outputs x %lld inputs, 4-bit g128: %.1f MiB packed "
         "weights (%.1f MiB prepared incl. scales/zeros)\n", (long long)n, (long long)k,
         wbytes / 1048576.0, allbytes / 1048576.0);
  static const struct { qf_gptq_isa isa; const char *name; } isas[] = {
      {QF_GPTQ_ISA_SCALAR, "scalar"}, {QF_GPTQ_ISA_AVX2, "avx2"}};
  for (int ii = 0; ii < 2; ii++) {
    if (isas[ii].isa == QF_GPTQ_ISA_AVX2 && !qf_gptq_cpu_has_avx2()) continue;
    for (int th = 1; th <= 2; th++) {
      qf_gptq_qmat_forward(m, x, 1, y, th, isas[ii].isa, &err); /* warm */
      double best = 1e30, best_cpu = 1e30;
      const int reps = isas[ii].isa == QF_GPTQ_ISA_SCALAR ? 3 : 20;
      for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        qf_gptq_qmat_forward(m, x, 1, y, th, isas[ii].isa, &err);
        double dt = now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
      }
      const double gbs = allbytes / best / 1e9;
      printf("  %-6s %d thread(s): %7.3f ms  %6.2f GB/s  (%.0f%% of memcpy %.2f GB/s)",
             isas[ii].name, th, best * 1e3, gbs, 100.0 * gbs / mbw, mbw);
      if (th == 1)
        printf("  [on-CPU time %.3f ms: %.2f GB/s]", best_cpu * 1e3,
               allbytes / best_cpu / 1e9);
      printf("\n");
    }
  }
  qf_gptq_qmat_free(m);
done:
  free(q);
  free(s);
  free(z);
  free(gi);
  free(x);
  free(y);
}

int main(int argc, char **argv) {
  int quant = 1, gemv = 1, small = 1, big = 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-quant")) quant = 0;
    else if (!strcmp(argv[i], "--no-gemv")) gemv = 0;
    else if (!strcmp(argv[i], "--big-only")) small = 0;
    else if (!strcmp(argv[i], "--small-only")) big = 0;
    else {
      fprintf(stderr, "usage: gptq_bench [--no-quant] [--no-gemv] [--big-only|--small-only]\n");
      return 2;
    }
  }
  if (gemv) {
    double mbw = qf_bench_memcpy_gbps();
    printf("memcpy bandwidth (read + write): %.2f GB/s\n", mbw);
    bench_gemv(4096, 14336, mbw);
    bench_gemv(14336, 4096, mbw);
  }
  if (quant) {
    if (small) bench_quant(4096, 4096);
    if (big) bench_quant(4096, 11008);
  }
  printf("peak RSS %.0f MiB\n", peak_rss_mib());
  return 0;
}
