/*
 * bench_gguf — throughput of the GGUF plugin's CPU paths:
 *
 *  1. quantization (ggml types, no imatrix) of a 1024 × 4096 float32 matrix,
 *     in MB/s of float32 input: the scalar reference (qf_gguf_quants with
 *     the SCALAR ISA, as QF_FORCE_SCALAR=1 gives) on 1 thread, then the
 *     default ISA (AVX2 where the library has kernels) on 1 and 2 threads
 *     through the plugin's threaded row splitter;
 *  2. batch-1 linear_forward (activation quantized to the dot partner, then
 *     one dot per output row, as ggml does) on a 14336 × 4096 weight (a
 *     Llama-3-8B up_proj), in GB/s of weight bytes read and as a fraction
 *     of the machine's measured memcpy bandwidth, scalar and AVX2, 1 and 2
 *     threads; plus the peak RSS.
 *
 * Usage: bench_gguf [--json] [--quick]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "gguf_plugin.h"
#include "gguf_quants.h"
#include "kernels/cpu_kernels.h"

static const int k_qtypes[] = {QF_GGUF_TYPE_Q4_0, QF_GGUF_TYPE_Q4_1,   QF_GGUF_TYPE_Q5_0,
                               QF_GGUF_TYPE_Q5_1, QF_GGUF_TYPE_Q8_0,   QF_GGUF_TYPE_Q2_K,
                               QF_GGUF_TYPE_Q3_K, QF_GGUF_TYPE_Q4_K,   QF_GGUF_TYPE_Q5_K,
                               QF_GGUF_TYPE_Q6_K, QF_GGUF_TYPE_IQ4_NL, QF_GGUF_TYPE_IQ4_XS,
                               QF_GGUF_TYPE_F16,  QF_GGUF_TYPE_BF16};
static const int k_mtypes[] = {QF_GGUF_TYPE_Q4_0, QF_GGUF_TYPE_Q8_0,  QF_GGUF_TYPE_Q2_K,
                               QF_GGUF_TYPE_Q3_K, QF_GGUF_TYPE_Q4_K,  QF_GGUF_TYPE_Q5_K,
                               QF_GGUF_TYPE_Q6_K, QF_GGUF_TYPE_IQ4_XS};
#define NQ (sizeof k_qtypes / sizeof k_qtypes[0])
#define NM (sizeof k_mtypes / sizeof k_mtypes[0])

/* Best time of `reps` runs (at least min_time seconds in all). */
typedef enum { JOB_Q_SCALAR, JOB_Q_MT, JOB_MATMUL } job_kind;
typedef struct {
  job_kind kind;
  int type, threads, isa;
  const float *src;
  void *dst;
  int64_t rows, cols;
  const float *x;
  float *y;
} job;

static int run_job(const job *j) {
  switch (j->kind) {
    case JOB_Q_SCALAR:
      return qf_gguf_quantize_rows_isa(j->type, QF_GGUF_ISA_SCALAR, j->src, j->dst, j->rows,
                                       j->cols, NULL) > 0
                 ? 0
                 : -1;
    case JOB_Q_MT:
      return qf_gguf_quantize_mt(j->type, j->src, j->dst, j->rows, j->cols, NULL, j->threads) > 0
                 ? 0
                 : -1;
    default:
      return qf_gguf_cpu_linear(j->type, j->dst, j->rows, j->cols, j->x, 1, j->y, j->threads,
                                j->isa);
  }
}

static double best_time(const job *j, int min_reps, double min_time) {
  double best = 1e30, total = 0;
  for (int r = 0; r < min_reps || total < min_time; r++) {
    double t = qf_bench_now();
    if (run_job(j) != 0) return -1;
    t = qf_bench_now() - t;
    total += t;
    if (t < best) best = t;
    if (r > 1000) break;
  }
  return best;
}

int main(int argc, char **argv) {
  int as_json = 0, quick = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else {
      fprintf(stderr, "usage: bench_gguf [--json] [--quick]\n");
      return 2;
    }
  }
  const double min_time = quick ? 0.05 : 0.3;
  uint64_t seed = 42;

  /* ---- 1. quantization ---- */
  const int64_t QR = quick ? 256 : 1024, QC = 4096;
  float *src = malloc(sizeof(float) * (size_t)(QR * QC));
  uint8_t *dst = malloc((size_t)(QR * QC) * 4);
  if (!src || !dst) return 1;
  for (int64_t i = 0; i < QR * QC; i++) src[i] = qf_bench_gauss(&seed);
  double q_mbs[NQ][3];
  const double in_mb = (double)(QR * QC) * 4.0 / 1e6;
  for (size_t t = 0; t < NQ; t++) {
    job j = {JOB_Q_SCALAR, k_qtypes[t], 1, 0, src, dst, QR, QC, NULL, NULL};
    double s = best_time(&j, 2, min_time);
    j.kind = JOB_Q_MT;
    double a1 = best_time(&j, 2, min_time);
    j.threads = 2;
    double a2 = best_time(&j, 2, min_time);
    q_mbs[t][0] = s > 0 ? in_mb / s : 0;
    q_mbs[t][1] = a1 > 0 ? in_mb / a1 : 0;
    q_mbs[t][2] = a2 > 0 ? in_mb / a2 : 0;
  }
  free(src);
  free(dst);

  /* ---- 2. batch-1 linear on 14336 x 4096 ---- */
  const int64_t N = quick ? 4096 : 14336, K = 4096;
  float *chunk = malloc(sizeof(float) * 256 * (size_t)K), *x = malloc(sizeof(float) * (size_t)K);
  float *y = malloc(sizeof(float) * (size_t)N);
  uint8_t *w = malloc((size_t)N * (size_t)K * 2 + 1);
  if (!chunk || !x || !y || !w) return 1;
  for (int64_t i = 0; i < K; i++) x[i] = qf_bench_gauss(&seed);
  double m_gbs[NM][4];
  double wbytes[NM];
  const int have_avx2 = qf_gguf_cpu_avx2_supported();
  for (size_t t = 0; t < NM; t++) {
    const int type = k_mtypes[t];
    const size_t rs = qf_gguf_row_size(type, K);
    for (int64_t r0 = 0; r0 < N; r0 += 256) {
      for (int64_t i = 0; i < 256 * K; i++) chunk[i] = 0.02f * qf_bench_gauss(&seed);
      qf_gguf_quantize_mt(type, chunk, w + (size_t)r0 * rs, 256, K, NULL, 2);
    }
    wbytes[t] = (double)rs * (double)N;
    static const int cfg[4][2] = {{QF_GGUF_CPU_SCALAR, 1},
                                  {QF_GGUF_CPU_SCALAR, 2},
                                  {QF_GGUF_CPU_AVX2, 1},
                                  {QF_GGUF_CPU_AVX2, 2}};
    for (int c = 0; c < 4; c++) {
      if (cfg[c][0] == QF_GGUF_CPU_AVX2 && !have_avx2) {
        m_gbs[t][c] = 0;
        continue;
      }
      job j = {JOB_MATMUL, type, cfg[c][1], cfg[c][0], NULL, w, N, K, x, y};
      double s = best_time(&j, 3, min_time);
      m_gbs[t][c] = s > 0 ? wbytes[t] / s / 1e9 : 0;
    }
  }
  free(chunk);
  free(x);
  free(y);
  free(w);
  const double rss = qf_bench_peak_rss_mib(); /* before the 512 MiB memcpy probe */
  const double mem_gbps = qf_bench_memcpy_gbps();

  if (as_json) {
    printf(
        "{\n  \"memcpy_gbps\": %.3f,\n  \"isa\": \"%s\",\n  \"quantize\": {\"rows\": %lld, "
        "\"cols\": %lld, \"unit\": \"MB/s of f32 input\", \"types\": [\n",
        mem_gbps, have_avx2 ? "avx2" : "scalar", (long long)QR, (long long)QC);
    for (size_t t = 0; t < NQ; t++)
      printf(
          "    {\"type\": \"%s\", \"scalar_1t\": %.1f, \"auto_1t\": %.1f, \"auto_2t\": %.1f}%s\n",
          qf_gguf_type_name(k_qtypes[t]), q_mbs[t][0], q_mbs[t][1], q_mbs[t][2],
          t + 1 < NQ ? "," : "");
    printf("  ]},\n  \"linear_batch1\": {\"rows\": %lld, \"cols\": %lld, \"types\": [\n",
           (long long)N, (long long)K);
    for (size_t t = 0; t < NM; t++)
      printf(
          "    {\"type\": \"%s\", \"weight_mb\": %.1f, \"scalar_1t_gbps\": %.2f, "
          "\"scalar_2t_gbps\": %.2f, \"avx2_1t_gbps\": %.2f, \"avx2_2t_gbps\": %.2f, "
          "\"avx2_2t_fraction_of_memcpy\": %.3f}%s\n",
          qf_gguf_type_name(k_mtypes[t]), wbytes[t] / 1e6, m_gbs[t][0], m_gbs[t][1], m_gbs[t][2],
          m_gbs[t][3], mem_gbps > 0 ? m_gbs[t][3] / mem_gbps : 0, t + 1 < NM ? "," : "");
    printf("  ]},\n  \"peak_rss_mib\": %.1f\n}\n", rss);
    return 0;
  }
  printf("GGUF CPU benchmarks (memcpy %.2f GB/s, dot kernels: %s)\n\n", mem_gbps,
         have_avx2 ? "avx2" : "scalar");
  printf("quantize %lld x %lld f32, MB/s of input\n", (long long)QR, (long long)QC);
  printf("  %-8s %12s %12s %12s\n", "type", "scalar 1T", "auto 1T", "auto 2T");
  for (size_t t = 0; t < NQ; t++)
    printf("  %-8s %12.1f %12.1f %12.1f\n", qf_gguf_type_name(k_qtypes[t]), q_mbs[t][0],
           q_mbs[t][1], q_mbs[t][2]);
  printf("\nlinear_forward batch 1, %lld x %lld weight, GB/s of weight read (fraction of memcpy)\n",
         (long long)N, (long long)K);
  printf("  %-8s %8s %12s %12s %12s %12s\n", "type", "MB", "scalar 1T", "scalar 2T", "avx2 1T",
         "avx2 2T");
  for (size_t t = 0; t < NM; t++) {
    printf("  %-8s %8.1f", qf_gguf_type_name(k_mtypes[t]), wbytes[t] / 1e6);
    for (int c = 0; c < 4; c++)
      printf("  %5.2f (%3.0f%%)", m_gbs[t][c], mem_gbps > 0 ? 100.0 * m_gbs[t][c] / mem_gbps : 0);
    printf("\n");
  }
  printf("\npeak RSS %.1f MiB\n", rss);
  return 0;
}
