/*
 * CPU forward: an AWQ GEMM module repacked into the shared integer kernels
 * (qf_awq_cpu_prepare) equals dequantize-then-matmul (batch 1 fused GEMV
 * and the tiled sgemm path, with bias, odd column counts, several group
 * sizes); its dequantization is exactly AWQ's; scalar and AVX2 produce the
 * same bytes; the result does not depend on the thread count.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "awq_test_util.h"
#include "kernels/cpu_kernels.h"
#include "qforge/half.h"

typedef struct module {
  int64_t n, k, g;
  int32_t *qw, *qz, *zeros;
  float *scales, *bias, *deq;
  qf_awq_cpu_weights w;
  qf_intq_qmat *qm;
} module;

static void build(module *m, int64_t n, int64_t k, int64_t g, int with_bias, uint64_t seed) {
  awq_rng r = {seed};
  const int64_t ng = k / g;
  m->n = n, m->k = k, m->g = g;
  float *w = malloc((size_t)(n * k) * 4), *sc = malloc((size_t)(n * ng) * 4),
        *zr = malloc((size_t)(n * ng) * 4);
  for (int64_t i = 0; i < n * k; i++) w[i] = awq_rng_gauss(&r) * 0.05f + 0.01f;
  cr_assert_eq(qf_awq_pseudo_quantize(w, n, k, g, 4, 1, w, sc, zr), QF_OK);
  m->qw = malloc((size_t)(k * n / 8) * 4);
  m->qz = malloc((size_t)(ng * n / 8) * 4);
  uint16_t *s16 = malloc((size_t)(ng * n) * 2);
  cr_assert_eq(qf_awq_gemm_pack(w, sc, zr, n, k, g, m->qw, m->qz, s16), QF_OK);
  m->scales = malloc((size_t)(ng * n) * 4);
  for (int64_t i = 0; i < ng * n; i++) m->scales[i] = qf_f16_to_f32(s16[i]);
  m->zeros = malloc((size_t)(ng * n) * 4);
  qf_awq_cpu_unpack_zeros(m->qz, n, k, g, m->zeros);
  m->bias = NULL;
  if (with_bias) {
    m->bias = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) m->bias[i] = awq_rng_gauss(&r);
  }
  m->deq = malloc((size_t)(n * k) * 4);
  cr_assert_eq(qf_awq_gemm_dequantize(m->qw, m->qz, m->scales, n, k, g, m->deq), QF_OK);
  m->w = (qf_awq_cpu_weights){m->qw, m->zeros, m->scales, m->bias, n, k, g};
  qf_error err = {0};
  cr_assert_eq(qf_awq_cpu_prepare(&m->w, &m->qm, &err), QF_OK, "%s", err.message);
  free(w), free(sc), free(zr), free(s16);
}

static void release(module *m) {
  qf_intq_qmat_free(m->qm);
  free(m->qw), free(m->qz), free(m->zeros), free(m->scales), free(m->bias), free(m->deq);
}

static void check_against_reference(module *m, int64_t rows, uint64_t seed) {
  awq_rng r = {seed};
  const int64_t n = m->n, k = m->k;
  float *x = malloc((size_t)(rows * k) * 4), *y = malloc((size_t)(rows * n) * 4),
        *ref = malloc((size_t)(rows * n) * 4);
  for (int64_t i = 0; i < rows * k; i++) x[i] = awq_rng_gauss(&r);
  awq_matmul_ref(x, m->deq, rows, n, k, ref);
  for (int isa = QF_INTQ_ISA_SCALAR; isa <= QF_INTQ_ISA_AVX2; isa++) {
    cr_assert_eq(qf_intq_qmat_forward(m->qm, x, rows, y, 1, (qf_intq_isa)isa, NULL), QF_OK);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < n; j++) {
        double mag = 0;
        for (int64_t c = 0; c < k; c++) mag += fabs((double)x[i * k + c] * m->deq[j * k + c]);
        const double want = (double)ref[i * n + j] + (m->bias ? m->bias[j] : 0.0);
        const double got = y[i * n + j];
        cr_assert(fabs(got - want) <= 2e-6 * mag + 1e-6,
                  "n=%lld k=%lld rows=%lld (%lld,%lld): %g vs %g", (long long)n, (long long)k,
                  (long long)rows, (long long)i, (long long)j, got, want);
      }
  }
  free(x), free(y), free(ref);
}

Test(awq_kernels, forward_equals_dequantize_matmul) {
  const struct {
    int64_t n, k, g;
    int bias;
  } shapes[] = {{200, 384, 128, 1}, {64, 256, 32, 0}, {8, 64, 64, 1}, {136, 128, 64, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    module m;
    build(&m, shapes[s].n, shapes[s].k, shapes[s].g, shapes[s].bias, 100 + s);
    check_against_reference(&m, 1, 7);
    check_against_reference(&m, 3, 8);
    check_against_reference(&m, 17, 9);
    release(&m);
  }
}

Test(awq_kernels, simd_equals_scalar) {
  if (!qf_intq_cpu_has_avx2()) {
    cr_skip_test("no AVX2 on this CPU: only the scalar kernels run here");
  }
  module m;
  build(&m, 328, 512, 128, 1, 3);
  awq_rng r = {4};
  float x[512], a[328], b[328];
  for (int i = 0; i < 512; i++) x[i] = awq_rng_gauss(&r) * (i % 9 ? 1.0f : 50.0f);
  cr_assert_eq(qf_intq_qmat_forward(m.qm, x, 1, a, 1, QF_INTQ_ISA_SCALAR, NULL), QF_OK);
  cr_assert_eq(qf_intq_qmat_forward(m.qm, x, 1, b, 1, QF_INTQ_ISA_AVX2, NULL), QF_OK);
  cr_assert(memcmp(a, b, sizeof a) == 0, "GEMV: AVX2 differs from scalar");
  /* the kernel's weight is the exact AWQ dequantization */
  float *wd = malloc(328 * 512 * 4);
  qf_intq_qmat_dequant(m.qm, wd);
  cr_assert(memcmp(wd, m.deq, 328 * 512 * 4) == 0, "dequantized weight differs");
  float *ya = malloc(5 * 328 * 4), *yb = malloc(5 * 328 * 4), *x5 = malloc(5 * 512 * 4);
  for (int i = 0; i < 5 * 512; i++) x5[i] = awq_rng_gauss(&r);
  for (int rows = 2; rows <= 5; rows += 3) {
    cr_assert_eq(qf_intq_qmat_forward(m.qm, x5, rows, ya, 1, QF_INTQ_ISA_SCALAR, NULL), QF_OK);
    cr_assert_eq(qf_intq_qmat_forward(m.qm, x5, rows, yb, 1, QF_INTQ_ISA_AVX2, NULL), QF_OK);
    cr_assert(memcmp(ya, yb, (size_t)rows * 328 * 4) == 0);
  }
  free(wd), free(ya), free(yb), free(x5);
  release(&m);
}

Test(awq_kernels, threads_do_not_change_bytes) {
  module m;
  build(&m, 1024, 2048, 128, 0, 5);
  awq_rng r = {6};
  float *x = malloc(2048 * 4), *a = malloc(1024 * 4), *b = malloc(1024 * 4);
  for (int i = 0; i < 2048; i++) x[i] = awq_rng_gauss(&r);
  cr_assert_eq(qf_intq_qmat_forward(m.qm, x, 1, a, 1, QF_INTQ_ISA_AUTO, NULL), QF_OK);
  cr_assert_eq(qf_intq_qmat_forward(m.qm, x, 1, b, 3, QF_INTQ_ISA_AUTO, NULL), QF_OK);
  cr_assert(memcmp(a, b, 1024 * 4) == 0);
  qf_awq_cpu_weights bad = m.w;
  bad.n = 12;
  qf_intq_qmat *qm = NULL;
  qf_error err = {0};
  cr_assert_eq(qf_awq_cpu_prepare(&bad, &qm, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_null(qm);
  cr_assert_str_eq(err.plugin, "awq");
  free(x), free(a), free(b);
  release(&m);
}
