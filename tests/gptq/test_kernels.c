/*
 * CPU kernels: linear forward equals dequantize-then-matmul for every bit
 * width, act_order group indices, groups whose size is not a multiple of
 * 8, output counts that are not a multiple of the tile, batch 1 (fused
 * GEMV) and larger batches (dequantize + sgemm); the AVX2 path gives the
 * same bytes as the scalar reference; one and two threads agree bit for
 * bit; the prepared layout dequantizes exactly like the checkpoint format.
 */
#include "gptq.h"
#include "gptq_test.h"
#include "int_gemv.h"
#include "qforge/half.h"

typedef struct kcase {
  int bits;
  int64_t n, k, gs;
  int act;
  uint8_t *q;   /* [N][K] */
  float *s, *z; /* [G][N] */
  int32_t *gi;
  float *bias;
  int64_t g;
  qf_gptq_qmat *m;
} kcase;

static void kcase_init(kcase *c, int bits, int64_t n, int64_t k, int64_t gs,
                       int act, int with_bias, uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->bits = bits;
  c->n = n;
  c->k = k;
  c->gs = gs;
  c->act = act;
  c->g = (k + gs - 1) / gs;
  const int maxq = (1 << bits) - 1;
  uint64_t s = seed;
  c->q = malloc((size_t)(n * k));
  c->s = malloc((size_t)(c->g * n) * 4);
  c->z = malloc((size_t)(c->g * n) * 4);
  c->gi = malloc((size_t)k * 4);
  c->bias = with_bias ? malloc((size_t)n * 4) : NULL;
  for (int64_t i = 0; i < n * k; i++) c->q[i] = (uint8_t)(gq_rand(&s) * (maxq + 1));
  for (int64_t i = 0; i < c->g * n; i++) {
    c->s[i] = qf_f16_to_f32(qf_f32_to_f16((float)(0.002 + 0.01 * gq_rand(&s))));
    c->z[i] = (float)(int)(gq_rand(&s) * (maxq + 1));
  }
  /* act_order: g_idx = position in a random permutation // gs */
  int64_t *perm = malloc((size_t)k * sizeof *perm);
  for (int64_t i = 0; i < k; i++) perm[i] = i;
  if (act)
    for (int64_t i = k - 1; i > 0; i--) {
      int64_t j = (int64_t)(gq_rand(&s) * (double)(i + 1));
      int64_t t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  for (int64_t p = 0; p < k; p++) c->gi[perm[p]] = (int32_t)(p / gs);
  free(perm);
  if (c->bias)
    for (int64_t i = 0; i < n; i++) c->bias[i] = gq_normal(&s);
  qf_gptq_qmat_src src = {.bits = bits, .rows = n, .cols = k, .ngroups = c->g,
                          .q = c->q, .q_stride_k = 1, .q_stride_n = k,
                          .g_idx = c->gi, .scales = c->s, .zeros = c->z,
                          .bias = c->bias};
  qf_error err = {0};
  cr_assert_eq(qf_gptq_qmat_new(&src, &c->m, &err), QF_OK, "%s", err.message);
}

static void kcase_free(kcase *c) {
  qf_gptq_qmat_free(c->m);
  free(c->q);
  free(c->s);
  free(c->z);
  free(c->gi);
  free(c->bias);
}

static float deq_at(const kcase *c, int64_t n, int64_t k) {
  const int64_t g = c->gi[k];
  return c->s[g * c->n + n] * ((float)c->q[n * c->k + k] - c->z[g * c->n + n]);
}

static void check_forward(kcase *c, int64_t mrows, qf_gptq_isa isa, int threads) {
  uint64_t s = 99 + (uint64_t)mrows;
  float *x = malloc((size_t)(mrows * c->k) * 4), *y = malloc((size_t)(mrows * c->n) * 4);
  for (int64_t i = 0; i < mrows * c->k; i++) x[i] = gq_normal(&s);
  qf_error err = {0};
  cr_assert_eq(qf_gptq_qmat_forward(c->m, x, mrows, y, threads, isa, &err), QF_OK, "%s",
               err.message);
  float *w = malloc((size_t)(c->n * c->k) * 4);
  qf_gptq_qmat_dequant(c->m, w);
  for (int64_t n = 0; n < c->n; n++)
    for (int64_t k = 0; k < c->k; k++)
      cr_assert_eq(w[n * c->k + k], deq_at(c, n, k), "dequant (%lld, %lld)", (long long)n,
                   (long long)k);
  for (int64_t r = 0; r < mrows; r++)
    for (int64_t n = 0; n < c->n; n++) {
      double ref = c->bias ? c->bias[n] : 0.0, mag = fabs(ref);
      for (int64_t k = 0; k < c->k; k++) {
        double p = (double)x[r * c->k + k] * w[n * c->k + k];
        ref += p;
        mag += fabs(p);
      }
      const double d = fabs(ref - y[r * c->n + n]);
      cr_assert(d <= 1e-5 * mag + 1e-6, "%d-bit y[%lld][%lld] = %g, reference %g", c->bits,
                (long long)r, (long long)n, (double)y[r * c->n + n], ref);
    }
  free(w);
  free(x);
  free(y);
}

Test(gptq_kernels, forward_equals_dequant_matmul, .timeout = 60) {
  static const struct { int bits; int64_t n, k, gs; int act, bias; } cs[] = {
      {4, 256, 1024, 128, 0, 1}, {4, 100, 512, 32, 1, 0},  {4, 72, 320, 20, 1, 1},
      {8, 64, 256, 64, 0, 1},   {8, 136, 384, 384, 1, 0}, {3, 96, 256, 32, 1, 1},
      {2, 48, 256, 64, 0, 0},   {4, 8, 64, 64, 0, 1},
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    kcase c;
    kcase_init(&c, cs[i].bits, cs[i].n, cs[i].k, cs[i].gs, cs[i].act, cs[i].bias, 5 + i);
    for (int64_t m = 1; m <= 17; m += (m < 4 ? 1 : 12)) check_forward(&c, m, QF_GPTQ_ISA_AUTO, 2);
    check_forward(&c, 1, QF_GPTQ_ISA_SCALAR, 1);
    kcase_free(&c);
  }
}

static void compare_isa(int bits, int64_t n, int64_t k, int64_t gs, int act, int64_t mrows) {
  kcase c;
  kcase_init(&c, bits, n, k, gs, act, 1, 77);
  uint64_t s = 3;
  float *x = malloc((size_t)(mrows * k) * 4);
  float *y1 = malloc((size_t)(mrows * n) * 4), *y2 = malloc((size_t)(mrows * n) * 4);
  float *y3 = malloc((size_t)(mrows * n) * 4);
  for (int64_t i = 0; i < mrows * k; i++) x[i] = gq_normal(&s);
  qf_error err = {0};
  cr_assert_eq(qf_gptq_qmat_forward(c.m, x, mrows, y1, 1, QF_GPTQ_ISA_SCALAR, &err), QF_OK);
  cr_assert_eq(qf_gptq_qmat_forward(c.m, x, mrows, y2, 1, QF_GPTQ_ISA_AVX2, &err), QF_OK);
  cr_assert_eq(qf_gptq_qmat_forward(c.m, x, mrows, y3, 2, QF_GPTQ_ISA_AUTO, &err), QF_OK);
  cr_assert(memcmp(y1, y2, (size_t)(mrows * n) * 4) == 0,
            "%d-bit %lldx%lld: AVX2 differs from scalar", bits, (long long)n, (long long)k);
  cr_assert(memcmp(y1, y3, (size_t)(mrows * n) * 4) == 0,
            "%d-bit: two threads differ from one", bits);
  free(x);
  free(y1);
  free(y2);
  free(y3);
  kcase_free(&c);
}

Test(gptq_kernels, simd_equals_scalar) {
  if (!qf_gptq_cpu_has_avx2())
    cr_log_warn("this CPU has no AVX2: the comparison runs scalar against scalar");
  compare_isa(4, 256, 1024, 128, 0, 1);
  compare_isa(4, 200, 640, 32, 1, 1);
  compare_isa(4, 72, 320, 20, 1, 3);
  compare_isa(8, 136, 512, 64, 1, 1);
  compare_isa(8, 64, 256, 256, 0, 2);
  compare_isa(3, 96, 256, 32, 0, 1);
  compare_isa(2, 1040, 1024, 128, 1, 1); /* large enough for threads */
  compare_isa(4, 4096, 512, 128, 1, 12);  /* sgemm path, threads */
}

Test(gptq_kernels, prepared_layout_matches_checkpoint_dequant) {
  /* pack a random module, unpack it through the kernel's source interface */
  kcase c;
  kcase_init(&c, 4, 64, 256, 64, 1, 0, 11);
  float *sc = malloc((size_t)(c.n * c.g) * 4), *z = malloc((size_t)(c.n * c.g) * 4);
  for (int64_t g = 0; g < c.g; g++)
    for (int64_t n = 0; n < c.n; n++) {
      sc[n * c.g + g] = c.s[g * c.n + n];
      z[n * c.g + g] = c.z[g * c.n + n];
      if (z[n * c.g + g] == 0.0f) z[n * c.g + g] = 1.0f, c.z[g * c.n + n] = 1.0f;
    }
  qf_gptq_ckpt ck;
  qf_error err = {0};
  cr_assert_eq(qf_gptq_pack(4, c.n, c.k, c.g, c.q, sc, z, c.gi, 0, &ck, NULL, &err), QF_OK);
  float *w1 = malloc((size_t)(c.n * c.k) * 4), *w2 = malloc((size_t)(c.n * c.k) * 4);
  qf_gptq_dequant(&ck, w1);
  qf_gptq_qmat_free(c.m);
  qf_gptq_qmat_src src = {.bits = 4, .rows = c.n, .cols = c.k, .ngroups = c.g, .q = c.q,
                          .q_stride_k = 1, .q_stride_n = c.k, .g_idx = c.gi,
                          .scales = c.s, .zeros = c.z, .bias = NULL};
  cr_assert_eq(qf_gptq_qmat_new(&src, &c.m, &err), QF_OK);
  qf_gptq_qmat_dequant(c.m, w2);
  cr_assert(memcmp(w1, w2, (size_t)(c.n * c.k) * 4) == 0);
  free(w1);
  free(w2);
  free(sc);
  free(z);
  qf_gptq_ckpt_free(&ck);
  kcase_free(&c);
}

Test(gptq_kernels, rejects_bad_sources) {
  uint8_t q[64] = {0};
  float s[8] = {1}, z[8] = {0};
  int32_t gi[8] = {0, 0, 0, 0, 0, 0, 0, 1};
  qf_gptq_qmat_src src = {.bits = 4, .rows = 8, .cols = 8, .ngroups = 1, .q = q,
                          .q_stride_k = 8, .q_stride_n = 1, .g_idx = gi, .scales = s,
                          .zeros = z};
  qf_gptq_qmat *m = NULL;
  qf_error err = {0};
  cr_assert_neq(qf_gptq_qmat_new(&src, &m, &err), QF_OK);
  cr_assert(strstr(err.message, "g_idx"));
  gi[7] = 0;
  q[9] = 16;
  cr_assert_neq(qf_gptq_qmat_new(&src, &m, &err), QF_OK);
  cr_assert(strstr(err.message, "exceeds"));
  src.rows = 0;
  cr_assert_neq(qf_gptq_qmat_new(&src, &m, &err), QF_OK);
  cr_assert_null(m);
}
