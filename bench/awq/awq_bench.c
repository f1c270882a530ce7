/*
 * AWQ benchmark: (1) quantization cost of one 4096x4096 layer — AutoAWQ
 * pseudo-quantize + GEMM packing — and of the two searches on a 1024x1024
 * layer with 512 calibration tokens (clip search; scale search with the
 * linear itself as the inspected module); (2) CPU linear_forward of a
 * 4-bit group-128 layer (4096 inputs, 4096 and 11008 outputs) on the shared
 * integer kernels (module repacked once by qf_awq_cpu_prepare): batch 1
 * (fused GEMV) in GB/s of the prepared weights read per call (4-bit words,
 * float32 zeros and scales) and as a fraction of the measured memcpy
 * bandwidth, scalar and AVX2, 1 and 2 threads; batch 16 (tiled dequant +
 * sgemm) in GFLOP/s. Synthetic Gaussian data with salient input channels.
 *
 *   awq_bench [--no-quant] [--no-forward]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awq.h"
#include "bench_util.h"
#include "kernels/cpu_kernels.h"
#include "qforge/half.h"

/* CPU time of the calling thread: what the kernel gets on a shared machine. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *gauss(int64_t n, float sd, uint64_t seed) {
  uint64_t s = seed;
  float *v = malloc((size_t)n * sizeof *v);
  if (v)
    for (int64_t i = 0; i < n; i++) v[i] = qf_bench_gauss(&s) * sd;
  return v;
}

static void bench_quant(void) {
  const int64_t n = 4096, k = 4096, g = 128, ng = k / g;
  float *w = gauss(n * k, 0.02f, 1), *sc = malloc((size_t)(n * ng) * 4),
        *zr = malloc((size_t)(n * ng) * 4);
  int32_t *qw = malloc((size_t)(n * k / 8) * 4), *qz = malloc((size_t)(ng * n / 8) * 4);
  uint16_t *s16 = malloc((size_t)(ng * n) * 2);
  if (!w || !sc || !zr || !qw || !qz || !s16) return;
  double t = qf_bench_now();
  qf_awq_pseudo_quantize(w, n, k, g, 4, 1, w, sc, zr);
  const double t_pq = qf_bench_now() - t;
  t = qf_bench_now();
  qf_awq_gemm_pack(w, sc, zr, n, k, g, qw, qz, s16);
  const double t_pack = qf_bench_now() - t;
  printf("quantize 4096 x 4096 (4-bit, g128): pseudo_quantize %.3f s, GEMM pack %.3f s\n", t_pq,
         t_pack);
  free(w), free(sc), free(zr), free(qw), free(qz), free(s16);

  const int64_t n2 = 1024, k2 = 1024, t2 = 512;
  float *w2 = gauss(n2 * k2, 0.02f, 2), *x = gauss(t2 * k2, 1.0f, 3);
  float *best = malloc((size_t)(n2 * k2 / g) * 4), *xm = malloc((size_t)k2 * 4),
        *s = malloc((size_t)k2 * 4);
  if (!w2 || !x || !best || !xm || !s) return;
  for (int64_t i = 0; i < t2; i++)
    for (int64_t c = 0; c < k2; c += 37) x[i * k2 + c] *= 10.0f;
  t = qf_bench_now();
  qf_awq_clip_search_x(w2, n2, k2, g, x, t2, NULL, best);
  const double t_clip = qf_bench_now() - t;
  qf_awq_x_mean(x, t2, k2, xm);
  const float *wl[1] = {w2};
  int64_t rows[1] = {n2};
  qf_awq_linear_ctx lc = {x, t2, k2, rows};
  qf_awq_scale_problem p;
  memset(&p, 0, sizeof p);
  p.n_layers = 1, p.w = wl, p.rows = rows, p.k = k2, p.group_size = g, p.bits = 4;
  p.zero_point = 1, p.x_mean = xm, p.duo_scaling = 1, p.forward = qf_awq_forward_linears;
  p.ctx = &lc, p.out_len = t2 * n2;
  int ratio = -1;
  t = qf_bench_now();
  qf_awq_search_scale(&p, s, &ratio, NULL, NULL);
  const double t_scale = qf_bench_now() - t;
  printf("searches 1024 x 1024, 512 tokens: clip %.3f s, scale %.3f s (ratio %d/20)\n", t_clip,
         t_scale, ratio);
  free(w2), free(x), free(best), free(xm), free(s);
}

static void bench_forward(int64_t n, int64_t k, double mbw) {
  const int64_t g = 128, ng = k / g;
  float *w = gauss(n * k, 0.02f, 4), *sc = malloc((size_t)(n * ng) * 4),
        *zr = malloc((size_t)(n * ng) * 4), *x = gauss(16 * k, 1.0f, 5),
        *y = malloc((size_t)(16 * n) * 4);
  int32_t *qw = malloc((size_t)(n * k / 8) * 4), *qz = malloc((size_t)(ng * n / 8) * 4),
          *zeros = malloc((size_t)(ng * n) * 4);
  uint16_t *s16 = malloc((size_t)(ng * n) * 2);
  float *scales = malloc((size_t)(ng * n) * 4);
  if (!w || !sc || !zr || !x || !y || !qw || !qz || !zeros || !s16 || !scales) return;
  qf_awq_pseudo_quantize(w, n, k, g, 4, 1, w, sc, zr);
  qf_awq_gemm_pack(w, sc, zr, n, k, g, qw, qz, s16);
  for (int64_t i = 0; i < ng * n; i++) scales[i] = qf_f16_to_f32(s16[i]);
  qf_awq_cpu_unpack_zeros(qz, n, k, g, zeros);
  qf_awq_cpu_weights cw = {qw, zeros, scales, NULL, n, k, g};
  qf_intq_qmat *qm = NULL;
  if (qf_awq_cpu_prepare(&cw, &qm, NULL) != QF_OK) return;
  const double bytes = (double)(n * k / 2) + (double)(ng * n) * 8.0;
  printf("linear_forward %lld outputs x %lld inputs, 4-bit g128: %.1f MiB prepared\n",
         (long long)n, (long long)k, bytes / 1048576.0);
  for (int isa = QF_INTQ_ISA_SCALAR; isa <= QF_INTQ_ISA_AVX2; isa++) {
    if (isa == QF_INTQ_ISA_AVX2 && !qf_intq_cpu_has_avx2()) continue;
    for (int th = 1; th <= 2; th++) {
      double best = 1e30, best_cpu = 1e30;
      for (int r = 0; r < 8; r++) {
        double t = qf_bench_now(), c = cpu_now();
        qf_intq_qmat_forward(qm, x, 1, y, th, (qf_intq_isa)isa, NULL);
        t = qf_bench_now() - t;
        c = cpu_now() - c;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
      }
      const double gbps = bytes / best / 1e9;
      printf("  batch 1  %-6s %d thread(s): %7.3f ms  %6.2f GB/s  (%.0f%% of memcpy)",
             isa == QF_INTQ_ISA_AVX2 ? "avx2" : "scalar", th, best * 1e3, gbps,
             mbw > 0 ? 100.0 * gbps / mbw : 0.0);
      if (th == 1)
        printf("  [on-CPU %.3f ms: %.2f GB/s]", best_cpu * 1e3, bytes / best_cpu / 1e9);
      printf("\n");
    }
  }
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double t = qf_bench_now();
    qf_intq_qmat_forward(qm, x, 16, y, 1, QF_INTQ_ISA_AUTO, NULL);
    t = qf_bench_now() - t;
    if (t < best) best = t;
  }
  printf("  batch 16 (dequant tiles + sgemm): %7.3f ms  %.1f GFLOP/s\n", best * 1e3,
         2.0 * 16 * (double)n * (double)k / best / 1e9);
  free(w), free(sc), free(zr), free(x), free(y), free(qw), free(qz), free(zeros), free(s16);
  free(scales);
  qf_intq_qmat_free(qm);
}

int main(int argc, char **argv) {
  int quant = 1, fwd = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-quant")) quant = 0;
    else if (!strcmp(argv[i], "--no-forward")) fwd = 0;
    else {
      fprintf(stderr, "usage: awq_bench [--no-quant] [--no-forward]\n");
      return 2;
    }
  }
  if (quant) bench_quant();
  if (fwd) {
    const double mbw = qf_bench_memcpy_gbps();
    printf("memcpy bandwidth (read + write): %.2f GB/s\n", mbw);
    bench_forward(4096, 4096, mbw);
    bench_forward(11008, 4096, mbw);
  }
  printf("peak RSS %.0f MiB\n", qf_bench_peak_rss_mib());
  return 0;
}
