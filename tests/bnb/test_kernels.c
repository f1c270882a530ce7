/*
 * CPU kernels: the AVX2 (and, via AUTO, AVX-512) paths give the same bits as
 * the scalar references
 * (dequantize, fused GEMV, int8 matmul incl. -128 weights and K tails);
 * 4-bit linear (GEMV for batch 1, dequant + sgemm above) equals
 * dequantize-then-matmul in double within float tolerance; LLM.int8() with
 * planted activation outliers stays within the int8 error bound of a
 * float64 reference, which it would break without the decomposition.
 */
#include <math.h>

#include "bnb_test_util.h"

static void make4(uint64_t seed, int64_t N, int64_t K, int64_t bs, qf_bnb_qtype t,
                  uint8_t **packed, float **absmax) {
  int64_t n = N * K;
  float *w = malloc((size_t)n * 4);
  uint64_t s = seed;
  for (int64_t i = 0; i < n; i++) w[i] = tu_normal(&s) * 0.02f;
  *packed = malloc((size_t)qf_bnb_packed_bytes(n) + 32);
  *absmax = malloc((size_t)qf_bnb_nblocks(n, bs) * 4);
  qf_bnb_quantize_4bit(t, w, n, bs, *packed, *absmax);
  free(w);
}

Test(bnb_kernels, simd_equals_scalar_4bit) {
  cr_assert(qf_bnb_cpu_has_avx2(), "this suite expects an AVX2 machine");
  static const int64_t shapes[][3] = {{7, 64, 32}, {33, 4096, 64}, {16, 96, 32},
                                      {5, 1024, 4096}, {9, 100, 64}, {4, 33, 32},
                                      {6, 4160, 64}, {11, 96, 64}};
  for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
    int64_t N = shapes[c][0], K = shapes[c][1], bs = shapes[c][2];
    for (int t = 0; t < 2; t++) {
      uint8_t *p;
      float *am;
      make4(11 + c, N, K, bs, (qf_bnb_qtype)t, &p, &am);
      float *x = malloc((size_t)K * 4), *y1 = malloc((size_t)N * 4), *y2 = malloc((size_t)N * 4);
      uint64_t s = 5;
      for (int64_t k = 0; k < K; k++) x[k] = tu_normal(&s);
      qf_bnb_gemv4(QF_BNB_ISA_SCALAR, (qf_bnb_qtype)t, p, am, bs, N, K, x, y1, 0, N);
      qf_bnb_gemv4(QF_BNB_ISA_AVX2, (qf_bnb_qtype)t, p, am, bs, N, K, x, y2, 0, N);
      cr_expect(memcmp(y1, y2, (size_t)N * 4) == 0, "gemv %lldx%lld bs %lld", (long long)N,
                (long long)K, (long long)bs);
      /* AUTO takes the widest path the CPU has (AVX-512 where present) */
      qf_bnb_gemv4(QF_BNB_ISA_AUTO, (qf_bnb_qtype)t, p, am, bs, N, K, x, y2, 0, N);
      cr_expect(memcmp(y1, y2, (size_t)N * 4) == 0, "gemv auto %lldx%lld bs %lld",
                (long long)N, (long long)K, (long long)bs);
      float *d1 = malloc((size_t)(N * K) * 4), *d2 = malloc((size_t)(N * K) * 4);
      qf_bnb_dequant4(QF_BNB_ISA_SCALAR, (qf_bnb_qtype)t, p, am, bs, 3, N * K - 3, d1);
      qf_bnb_dequant4(QF_BNB_ISA_AVX2, (qf_bnb_qtype)t, p, am, bs, 3, N * K - 3, d2);
      cr_expect(memcmp(d1, d2, (size_t)(N * K - 3) * 4) == 0, "dequant");
      qf_bnb_dequant4(QF_BNB_ISA_AUTO, (qf_bnb_qtype)t, p, am, bs, 3, N * K - 3, d2);
      cr_expect(memcmp(d1, d2, (size_t)(N * K - 3) * 4) == 0, "dequant auto");
      free(d1);
      free(d2);
      free(x);
      free(y1);
      free(y2);
      free(p);
      free(am);
    }
  }
}

Test(bnb_kernels, simd_equals_scalar_quantize) {
  static const int64_t sizes[][2] = {{4096 * 3 + 17, 64}, {1001, 32}, {8192, 4096}, {77, 128}};
  for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
    int64_t n = sizes[c][0], bs = sizes[c][1], nb = qf_bnb_nblocks(n, bs);
    float *x = malloc((size_t)n * 4);
    uint64_t s = 1000 + c;
    for (int64_t i = 0; i < n; i++) {
      uint64_t r = tu_rand(&s) % 64;
      x[i] = r == 0 ? NAN : r == 1 ? -0.0f : r == 2 ? 1e-40f : r == 3 ? 0.0f
                                                                 : tu_normal(&s);
    }
    /* a whole zero block and exact threshold products */
    for (int64_t i = 0; i < bs && 2 * bs <= n; i++) x[bs + i] = 0.0f;
    for (int t = 0; t < 2; t++) {
      uint8_t *p1 = malloc((size_t)qf_bnb_packed_bytes(n)), *p2 = malloc((size_t)qf_bnb_packed_bytes(n));
      float *a1 = malloc((size_t)nb * 4), *a2 = malloc((size_t)nb * 4);
      qf_bnb_quantize_4bit_isa(QF_BNB_ISA_SCALAR, (qf_bnb_qtype)t, x, n, bs, p1, a1);
      qf_bnb_quantize_4bit_isa(QF_BNB_ISA_AVX2, (qf_bnb_qtype)t, x, n, bs, p2, a2);
      cr_expect(memcmp(p1, p2, (size_t)qf_bnb_packed_bytes(n)) == 0, "codes case %zu t %d", c, t);
      cr_expect(memcmp(a1, a2, (size_t)nb * 4) == 0, "absmax case %zu t %d", c, t);
      free(p1);
      free(p2);
      free(a1);
      free(a2);
    }
    free(x);
  }
}

Test(bnb_kernels, simd_equals_scalar_int8) {
  static const int64_t shapes[][3] = {{1, 7, 4096}, {3, 13, 100}, {8, 5, 31}, {64, 9, 257}};
  for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
    int64_t M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
    int8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(N * K));
    int32_t *c1 = malloc((size_t)(M * N) * 4), *c2 = malloc((size_t)(M * N) * 4);
    uint64_t s = 77 + c;
    for (int64_t i = 0; i < M * K; i++) a[i] = (int8_t)((int)(tu_rand(&s) % 255) - 127);
    for (int64_t i = 0; i < N * K; i++) b[i] = (int8_t)(tu_rand(&s) & 0xff); /* incl. -128 */
    a[0] = -127;
    b[0] = -128;
    qf_bnb_int8_gemm(QF_BNB_ISA_SCALAR, a, M, b, N, K, c1, 0, N);
    qf_bnb_int8_gemm(QF_BNB_ISA_AVX2, a, M, b, N, K, c2, 0, N);
    cr_expect(memcmp(c1, c2, (size_t)(M * N) * 4) == 0, "int8 gemm case %zu", c);
    int64_t ref = 0;
    for (int64_t k = 0; k < K; k++) ref += (int64_t)a[k] * b[k];
    cr_expect_eq(c1[0], ref);
    free(a);
    free(b);
    free(c1);
    free(c2);
  }
}

static double ref_dot4(const float *deq, const float *x, int64_t K, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < K; k++) s += (double)x[k] * deq[n * K + k];
  return s;
}

Test(bnb_kernels, linear4_equals_dequant_then_matmul) {
  static const int64_t cases[][3] = {{1, 64, 256}, {1, 100, 96}, {3, 64, 256},
                                     {17, 130, 512}, {1, 37, 33}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t M = cases[c][0], N = cases[c][1], K = cases[c][2], bs = 64;
    uint8_t *p;
    float *am;
    make4(3 + c, N, K, bs, QF_BNB_NF4, &p, &am);
    float *deq = malloc((size_t)(N * K) * 4), *x = malloc((size_t)(M * K) * 4),
          *y = malloc((size_t)(M * N) * 4), *y1 = malloc((size_t)(M * N) * 4);
    qf_bnb_dequant4(QF_BNB_ISA_SCALAR, QF_BNB_NF4, p, am, bs, 0, N * K, deq);
    uint64_t s = 9;
    for (int64_t i = 0; i < M * K; i++) x[i] = tu_normal(&s);
    cr_assert_eq(qf_bnb_linear4(QF_BNB_ISA_AUTO, QF_BNB_NF4, p, am, bs, N, K, x, M, y, 3), 0);
    cr_assert_eq(qf_bnb_linear4(QF_BNB_ISA_SCALAR, QF_BNB_NF4, p, am, bs, N, K, x, M, y1, 1), 0);
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double r = ref_dot4(deq, x + m * K, K, n), mag = 0;
        for (int64_t k = 0; k < K; k++) mag += fabs((double)x[m * K + k] * deq[n * K + k]);
        cr_expect(fabs(y[m * N + n] - r) <= 1e-5 * mag + 1e-30, "case %zu (%lld,%lld): %g vs %g",
                  c, (long long)m, (long long)n, y[m * N + n], r);
      }
    if (M == 1) cr_expect(memcmp(y, y1, (size_t)N * 4) == 0, "threads/ISA do not change bits");
    free(deq);
    free(x);
    free(y);
    free(y1);
    free(p);
    free(am);
  }
}

Test(bnb_kernels, int8_outliers_vs_float64_reference) {
  int64_t M = 4, N = 48, K = 256;
  float *w = malloc((size_t)(N * K) * 4), *x = malloc((size_t)(M * K) * 4);
  int8_t *cb = malloc((size_t)(N * K));
  float scb[48], *wd = malloc((size_t)(N * K) * 4);
  uint64_t s = 31;
  for (int64_t i = 0; i < N * K; i++) w[i] = tu_normal(&s) * 0.05f;
  for (int64_t i = 0; i < M * K; i++) x[i] = tu_normal(&s);
  /* planted outlier features: large in every row (columns 5, 77) or one */
  for (int64_t m = 0; m < M; m++) {
    x[m * K + 5] = 60.0f + (float)m;
    x[m * K + 77] = -45.0f;
  }
  x[2 * K + 200] = 30.0f;
  int64_t bad;
  cr_assert_eq(qf_bnb_int8_quantize_weight(w, N, K, cb, scb, &bad), 0);
  qf_bnb_int8_dequantize(cb, scb, N, K, wd);
  float *y = malloc((size_t)(M * N) * 4), *y0 = malloc((size_t)(M * N) * 4);
  float bias[48];
  for (int n = 0; n < 48; n++) bias[n] = (float)n * 0.01f;
  cr_assert_eq(qf_bnb_linear8(QF_BNB_ISA_AUTO, cb, scb, N, K, x, M, 6.0f, bias, y, 2), 0);
  cr_assert_eq(qf_bnb_linear8(QF_BNB_ISA_AUTO, cb, scb, N, K, x, M, 0.0f, bias, y0, 2), 0);
  double err_split = 0, err_plain = 0;
  for (int64_t m = 0; m < M; m++) {
    /* int8 part: activation error <= SCA/254 per element (non-outliers) */
    float sca = 0;
    for (int64_t k = 0; k < K; k++)
      if (fabsf(x[m * K + k]) < 6.0f && fabsf(x[m * K + k]) > sca) sca = fabsf(x[m * K + k]);
    for (int64_t n = 0; n < N; n++) {
      double r = bias[n], wsum = 0;
      for (int64_t k = 0; k < K; k++) {
        r += (double)x[m * K + k] * wd[n * K + k];
        wsum += fabs(wd[n * K + k]);
      }
      double bound = wsum * sca / 254.0 * 1.01 + 1e-4 * fabs(r) + 1e-5;
      cr_expect(fabs(y[m * N + n] - r) <= bound, "(%lld,%lld): %g vs %g (bound %g)",
                (long long)m, (long long)n, y[m * N + n], r, bound);
      err_split += fabs(y[m * N + n] - r);
      err_plain += fabs(y0[m * N + n] - r);
    }
  }
  cr_expect(err_plain > 5 * err_split, "the decomposition matters: %g vs %g", err_plain,
            err_split);
  /* SIMD and scalar give the same bits for the whole layer */
  float *y2 = malloc((size_t)(M * N) * 4);
  cr_assert_eq(qf_bnb_linear8(QF_BNB_ISA_SCALAR, cb, scb, N, K, x, M, 6.0f, bias, y2, 1), 0);
  cr_expect(memcmp(y, y2, (size_t)(M * N) * 4) == 0);
  free(w);
  free(x);
  free(cb);
  free(wd);
  free(y);
  free(y0);
  free(y2);
}

Test(bnb_kernels, int8_activation_quantization) {
  float x[2 * 8] = {1, -2, 7, 0.5f, 0, 0, 0, 0, /* row 1 all zero but col 2 */
                    0, 0, 1, 0, 0, 0, 0, 0};
  int8_t ca[16];
  float sca[2];
  uint8_t oc[8];
  int64_t n = qf_bnb_int8_quantize_act(x, 2, 8, 6.0f, ca, sca, oc);
  cr_expect_eq(n, 1);
  cr_expect_eq(oc[2], 1);
  cr_expect_eq(sca[0], 2.0f, "outlier entries are left out of the absmax");
  cr_expect_eq(ca[2], 0, "outlier column zeroed");
  cr_expect_eq(ca[10], 0, "whole column zeroed in every row");
  cr_expect_eq(ca[1], -127);
  cr_expect_eq(ca[0], 64, "round(63.5) = 64 (half to even)");
  cr_expect_eq(sca[1], 1.0f, "values below threshold in outlier columns count");
  float z[4] = {0};
  int8_t cz[4] = {1, 1, 1, 1};
  qf_bnb_int8_quantize_act(z, 1, 4, 0.0f, cz, sca, NULL);
  cr_expect_eq(sca[0], 0.0f);
  cr_expect_eq(cz[0], 0, "zero row: 0 * inf = NaN -> 0");
}
