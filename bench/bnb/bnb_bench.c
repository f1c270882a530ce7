/*
 * bitsandbytes benchmark: NF4 blockwise quantization and dequantization
 * throughput (GB/s of float32 processed), batch-1 linear_forward of a
 * 4096 x 14336 NF4 layer (GB/s of quantized weight bytes read, and as a
 * fraction of the measured memcpy bandwidth), scalar vs AVX2 and 1 vs all
 * threads, the batched 4-bit path (dequant + OpenBLAS sgemm), LLM.int8()
 * matmul throughput (GOP/s, 2*M*N*K) at batch 1, 8 and 64, and the peak
 * resident memory. Synthetic Gaussian data; results are printed as text or,
 * with --json, as one JSON object.
 *
 *   bnb_bench [--json] [--threads T] [--reps R]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "bnb.h"

static int g_json;
static int g_first = 1;

static void report(const char *key, double value, const char *unit) {
  if (g_json) {
    printf("%s\"%s\": %.6g", g_first ? "{" : ", ", key, value);
    g_first = 0;
  } else {
    printf("%-44s %12.3f %s\n", key, value, unit);
  }
}

/* Best-of-reps wall time of fn(arg). */
static double best_time(int reps, void (*fn)(void *), void *arg) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = qf_bench_now();
    fn(arg);
    t = qf_bench_now() - t;
    if (t < best) best = t;
  }
  return best;
}

typedef struct ctx {
  int64_t N, K, M;
  const float *w;
  uint8_t *packed;
  float *absmax;
  float *deq;
  float *x, *y;
  int8_t *cb;
  float *scb;
  qf_bnb_isa isa;
  int threads;
} ctx;

static void do_quant(void *p) {
  ctx *c = (ctx *)p;
  qf_bnb_quantize_4bit(QF_BNB_NF4, c->w, c->N * c->K, 64, c->packed, c->absmax);
}
static void do_dequant(void *p) {
  ctx *c = (ctx *)p;
  qf_bnb_dequant4(c->isa, QF_BNB_NF4, c->packed, c->absmax, 64, 0, c->N * c->K, c->deq);
}
static void do_linear4(void *p) {
  ctx *c = (ctx *)p;
  qf_bnb_linear4(c->isa, QF_BNB_NF4, c->packed, c->absmax, 64, c->N, c->K, c->x, c->M,
                 c->y, c->threads);
}
static void do_linear8(void *p) {
  ctx *c = (ctx *)p;
  qf_bnb_linear8(c->isa, c->cb, c->scb, c->N, c->K, c->x, c->M, 6.0f, NULL, c->y,
                 c->threads);
}

int main(int argc, char **argv) {
  int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), reps = 5;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) g_json = 1;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bnb_bench [--json] [--threads T] [--reps R]\n");
      return 2;
    }
  }
  if (threads < 1) threads = 1;
  const int64_t N = 4096, K = 14336, n = N * K, M_MAX = 64;
  ctx c;
  memset(&c, 0, sizeof c);
  c.N = N;
  c.K = K;
  float *w = malloc((size_t)n * 4);
  c.packed = malloc((size_t)qf_bnb_packed_bytes(n));
  c.absmax = malloc((size_t)qf_bnb_nblocks(n, 64) * 4);
  c.deq = malloc((size_t)n * 4);
  c.x = malloc((size_t)(M_MAX * K) * 4);
  c.y = malloc((size_t)(M_MAX * N) * 4);
  c.cb = malloc((size_t)n);
  c.scb = malloc((size_t)N * 4);
  if (!w || !c.packed || !c.absmax || !c.deq || !c.x || !c.y || !c.cb || !c.scb) {
    fprintf(stderr, "bnb_bench: out of memory\n");
    return 1;
  }
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int64_t i = 0; i < n; i++) w[i] = qf_bench_gauss(&s) * 0.02f;
  for (int64_t i = 0; i < M_MAX * K; i++)
    c.x[i] = qf_bench_gauss(&s) * ((i % K) % 97 == 0 ? 20.0f : 1.0f);
  c.w = w;

  double bw = qf_bench_memcpy_gbps();
  report("memcpy_bandwidth_GBps", bw, "GB/s");
  report("avx2", qf_bnb_cpu_has_avx2(), "");
  report("threads", threads, "");

  double gb_f32 = (double)n * 4 / 1e9;
  double t = best_time(reps < 3 ? reps : 3, do_quant, &c);
  report("nf4_quantize_GBps_f32_in", gb_f32 / t, "GB/s");
  c.isa = QF_BNB_ISA_SCALAR;
  t = best_time(reps, do_dequant, &c);
  report("nf4_dequantize_scalar_GBps_f32_out", gb_f32 / t, "GB/s");
  c.isa = QF_BNB_ISA_AUTO;
  t = best_time(reps, do_dequant, &c);
  report("nf4_dequantize_avx2_GBps_f32_out", gb_f32 / t, "GB/s");

  /* batch-1 GEMV: bytes of the quantized weight read */
  double wbytes = (double)qf_bnb_packed_bytes(n) + (double)qf_bnb_nblocks(n, 64) * 4;
  static const struct {
    qf_bnb_isa isa;
    int all_threads;
    const char *key;
  } g[] = {{QF_BNB_ISA_SCALAR, 0, "gemv_nf4_scalar_1t"},
           {QF_BNB_ISA_AUTO, 0, "gemv_nf4_avx2_1t"},
           {QF_BNB_ISA_AUTO, 1, "gemv_nf4_avx2_allt"}};
  c.M = 1;
  for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
    char key[96];
    c.isa = g[i].isa;
    c.threads = g[i].all_threads ? threads : 1;
    t = best_time(reps, do_linear4, &c);
    snprintf(key, sizeof key, "%s_GBps", g[i].key);
    report(key, wbytes / t / 1e9, "GB/s");
    snprintf(key, sizeof key, "%s_frac_of_memcpy", g[i].key);
    report(key, bw > 0 ? wbytes / t / 1e9 / bw : 0, "");
    snprintf(key, sizeof key, "%s_ms", g[i].key);
    report(key, t * 1e3, "ms");
  }
  /* batched 4-bit: dequant tiles + sgemm */
  c.isa = QF_BNB_ISA_AUTO;
  c.threads = threads;
  for (int64_t M = 8; M <= 64; M *= 8) {
    char key[96];
    c.M = M;
    t = best_time(reps < 3 ? reps : 3, do_linear4, &c);
    snprintf(key, sizeof key, "linear_nf4_M%lld_GFLOPs", (long long)M);
    report(key, 2.0 * (double)M * N * K / t / 1e9, "GFLOP/s");
  }

  /* LLM.int8() */
  int64_t bad;
  qf_bnb_int8_quantize_weight(w, N, K, c.cb, c.scb, &bad);
  free(w);
  c.w = NULL;
  static const int64_t ms[3] = {1, 8, 64};
  for (int i = 0; i < 3; i++) {
    for (int isa = 0; isa < 2; isa++) {
      char key[96];
      c.M = ms[i];
      c.isa = isa ? QF_BNB_ISA_AUTO : QF_BNB_ISA_SCALAR;
      c.threads = threads;
      if (!isa && ms[i] == 64) continue; /* the scalar path is slow */
      t = best_time(ms[i] == 64 ? 2 : reps, do_linear8, &c);
      snprintf(key, sizeof key, "int8_matmul_%s_M%lld_GOPs", isa ? "avx2" : "scalar",
               (long long)ms[i]);
      report(key, 2.0 * (double)ms[i] * N * K / t / 1e9, "GOP/s");
    }
  }
  report("peak_rss_MiB", qf_bench_peak_rss_mib(), "MiB");
  if (g_json) printf("}\n");
  free(c.packed);
  free(c.absmax);
  free(c.deq);
  free(c.x);
  free(c.y);
  free(c.cb);
  free(c.scb);
  return 0;
}
