/*
 * AWQ layouts on hand-built matrices: the GEMM interleave (every nibble
 * position of every word), the true-zero convention of qzeros, AutoAWQ's
 * OR-spill of out-of-range integers, the GEMV layout and its zeros width,
 * and the exact AWQ GEMM <-> GPTQ conversion (v1 "zero-1" with borrow, v2).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "awq_test_util.h"
#include "qforge/half.h"

Test(awq_pack, order_maps_are_inverse) {
  for (int m = 0; m < 8; m++) {
    cr_assert_eq(qf_awq_order[qf_awq_reverse_order[m]], m);
    cr_assert_eq(qf_awq_reverse_order[qf_awq_order[m]], m);
  }
  const int expect[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int i = 0; i < 8; i++) cr_assert_eq(qf_awq_order[i], expect[i]);
}

/* A single non-zero integer at each (k, n) lands in word (k, n/8) at
 * nibble reverse_order[n % 8] and nowhere else; same for zeros. */
Test(awq_pack, every_nibble_position) {
  const int64_t n = 16, k = 8, g = 4;
  int32_t iw[8 * 16], iz[2 * 16], qw[8 * 2], qz[2 * 2];
  for (int64_t kk = 0; kk < k; kk++)
    for (int64_t c = 0; c < n; c++) {
      memset(iw, 0, sizeof iw);
      memset(iz, 0, sizeof iz);
      const int v = 1 + (int)((kk * 5 + c * 3) % 15);
      iw[kk * n + c] = v;
      iz[(kk / g) * n + c] = 15 - v + 1;
      cr_assert_eq(qf_awq_gemm_pack_ints(iw, iz, n, k, g, qw, qz), QF_OK);
      for (int64_t w = 0; w < k * n / 8; w++) {
        const uint32_t want = w == kk * 2 + c / 8
                                  ? (uint32_t)v << (4 * qf_awq_reverse_order[c % 8]) : 0u;
        cr_assert_eq((uint32_t)qw[w], want, "k=%lld n=%lld word %lld", (long long)kk,
                     (long long)c, (long long)w);
      }
      for (int64_t w = 0; w < 4; w++) {
        const uint32_t want = w == (kk / g) * 2 + c / 8
                                  ? (uint32_t)(16 - v) << (4 * qf_awq_reverse_order[c % 8]) : 0u;
        cr_assert_eq((uint32_t)qz[w], want);
      }
      uint8_t q[8 * 16], z[2 * 16];
      cr_assert_eq(qf_awq_gemm_unpack(qw, qz, n, k, g, q, z), QF_OK);
      for (int64_t i = 0; i < k * n; i++) cr_assert_eq(q[i], (uint8_t)iw[i]);
      for (int64_t i = 0; i < 2 * n; i++) cr_assert_eq(z[i], (uint8_t)iz[i]);
    }
}

/* Columns 0..7 holding 0..7: the word reads 0x75316420 (nibbles low→high
 * = columns 0,2,4,6,1,3,5,7). */
Test(awq_pack, known_word) {
  int32_t iw[8] = {0, 1, 2, 3, 4, 5, 6, 7}, qw[1];
  cr_assert_eq(qf_awq_gemm_pack_ints(iw, NULL, 8, 1, 1, qw, NULL), QF_OK);
  cr_assert_eq((uint32_t)qw[0], 0x75316420u);
}

/* AutoAWQ does not clamp the re-derived integers: 16 spills into the next
 * nibble and -1 sets every higher bit, as torch's |= of int32 << 4i. */
Test(awq_pack, out_of_range_spills_like_autoawq) {
  int32_t iw[8] = {0}, qw[1];
  iw[0] = 16; /* nibble 0 */
  cr_assert_eq(qf_awq_gemm_pack_ints(iw, NULL, 8, 1, 1, qw, NULL), QF_OK);
  cr_assert_eq((uint32_t)qw[0], 0x10u);
  iw[0] = 0;
  iw[2] = -1; /* column 2 = nibble 1 */
  cr_assert_eq(qf_awq_gemm_pack_ints(iw, NULL, 8, 1, 1, qw, NULL), QF_OK);
  cr_assert_eq((uint32_t)qw[0], 0xFFFFFFF0u);
}

/* qzeros holds the true zero (no -1) and dequantization subtracts it. */
Test(awq_pack, zero_convention_true_zero) {
  const int64_t n = 8, k = 4, g = 4;
  float deq[8 * 4], sc[8], zr[8];
  for (int r = 0; r < 8; r++) {
    sc[r] = 0.5f;
    zr[r] = (float)(r * 2);                 /* 0, 2, …, 14 */
    for (int c = 0; c < 4; c++) deq[r * 4 + c] = ((float)c - zr[r]) * 0.5f; /* q = c */
  }
  int32_t qw[4], qz[1];
  uint16_t s16[8];
  cr_assert_eq(qf_awq_gemm_pack(deq, sc, zr, n, k, g, qw, qz, s16), QF_OK);
  /* zeros 0,2,4,…,14 interleaved: nibbles = z[0],z[2],z[4],z[6],z[1],z[3],z[5],z[7] */
  cr_assert_eq((uint32_t)qz[0], 0xEA62C840u);
  for (int c = 0; c < 4; c++) cr_assert_eq((uint32_t)qw[c], 0x11111111u * (uint32_t)c);
  float back[8 * 4], s32[8];
  for (int r = 0; r < 8; r++) s32[r] = qf_f16_to_f32(s16[r]);
  cr_assert_eq(qf_awq_gemm_dequantize(qw, qz, s32, n, k, g, back), QF_OK);
  cr_assert(memcmp(back, deq, sizeof back) == 0);
}

Test(awq_pack, gptq_v1_borrow_and_round_trip) {
  const int64_t n = 8, k = 8, g = 8;
  int32_t iw[8 * 8], iz[8], qw[8], qz[1], gq[8], gz[1], bq[8], bz[1], gidx[8];
  awq_rng rng = {42};
  for (int i = 0; i < 64; i++) iw[i] = (int32_t)(awq_rng_uniform(&rng) * 16) & 15;
  for (int zero = 0; zero < 16; zero++) {
    for (int i = 0; i < 8; i++) iz[i] = zero;
    cr_assert_eq(qf_awq_gemm_pack_ints(iw, iz, n, k, g, qw, qz), QF_OK);
    /* v2 stores the true zero, v1 zero-1 per nibble as one word subtraction */
    cr_assert_eq(qf_awq_gemm_to_gptq(qw, qz, n, k, g, 0, gq, gz, gidx), QF_OK);
    cr_assert_eq((uint32_t)gz[0], 0x11111111u * (uint32_t)zero);
    cr_assert_eq(qf_awq_gemm_to_gptq(qw, qz, n, k, g, 1, gq, gz, gidx), QF_OK);
    cr_assert_eq((uint32_t)gz[0], 0x11111111u * (uint32_t)zero - 0x11111111u);
    if (zero == 0) cr_assert_eq((uint32_t)gz[0], 0xEEEEEEEFu); /* the v1 hazard */
    if (zero == 8) cr_assert_eq((uint32_t)gz[0], 0x77777777u); /* sym: stored 7 */
    /* GPTQ weight words: nibble j of (r, col) = q[8r + j, col] */
    for (int col = 0; col < 8; col++) {
      uint32_t want = 0;
      for (int j = 0; j < 8; j++) want |= (uint32_t)iw[j * 8 + col] << (4 * j);
      cr_assert_eq((uint32_t)gq[col], want);
    }
    for (int i = 0; i < 8; i++) cr_assert_eq(gidx[i], 0);
    cr_assert_eq(qf_awq_gptq_to_gemm(gq, gz, n, k, g, 1, bq, bz), QF_OK);
    cr_assert(memcmp(bq, qw, sizeof qw) == 0 && memcmp(bz, qz, sizeof qz) == 0);
  }
  /* mixed zeros with 0 next to others: the borrow still round-trips */
  int32_t mixed[8] = {0, 15, 0, 1, 0, 0, 7, 0};
  cr_assert_eq(qf_awq_gemm_pack_ints(iw, mixed, n, k, g, qw, qz), QF_OK);
  cr_assert_eq(qf_awq_gemm_to_gptq(qw, qz, n, k, g, 1, gq, gz, NULL), QF_OK);
  cr_assert_eq(qf_awq_gptq_to_gemm(gq, gz, n, k, g, 1, bq, bz), QF_OK);
  cr_assert_eq(bz[0], qz[0]);
}

Test(awq_pack, gemv_zeros_width) {
  cr_assert_eq(qf_awq_gemv_zeros_width(4096, 128), 4);   /* 32 groups -> 4 words */
  cr_assert_eq(qf_awq_gemv_zeros_width(4096, 64), 8);    /* 64 -> 8, mult 2 */
  cr_assert_eq(qf_awq_gemv_zeros_width(4096, 32), 16);   /* 128 -> 16, mult 4 */
  cr_assert_eq(qf_awq_gemv_zeros_width(256, 32), 4);     /* 8 groups -> 1 word -> 4 */
  cr_assert_eq(qf_awq_gemv_zeros_width(11008, 128), 11); /* 86 groups -> 11 */
  cr_assert_eq(qf_awq_gemv_zeros_width(512, 16), -1);
}

/* GEMV and GEMM store the same integers: dequantization agrees bit for bit
 * and the GEMV -> GEMM repack equals the GEMM pack. */
Test(awq_pack, gemv_matches_gemm) {
  const int64_t n = 16, k = 256, g = 32, ng = k / g;
  awq_rng rng = {7};
  float *w = malloc((size_t)(n * k) * 4), *sc = malloc((size_t)(n * ng) * 4),
        *zr = malloc((size_t)(n * ng) * 4);
  for (int64_t i = 0; i < n * k; i++) w[i] = awq_rng_gauss(&rng);
  cr_assert_eq(qf_awq_pseudo_quantize(w, n, k, g, 4, 1, w, sc, zr), QF_OK);
  const int64_t zw = qf_awq_gemv_zeros_width(k, g);
  int32_t *vq = malloc((size_t)(n * k / 8) * 4), *vz = malloc((size_t)(n * zw) * 4);
  uint16_t *vs = malloc((size_t)(n * zw * 8) * 2);
  cr_assert_eq(qf_awq_gemv_pack(w, sc, zr, n, k, g, vq, vz, vs), QF_OK);
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = ng; j < zw * 8; j++) cr_assert_eq(vs[r * zw * 8 + j], 0);
  /* natural nibble order along k */
  for (int64_t r = 0; r < n; r++)
    for (int64_t kk = 0; kk < k; kk++) {
      const int q = (int)(((uint32_t)vq[r * (k / 8) + kk / 8] >> (4 * (kk % 8))) & 15u);
      const float s16 = qf_f16_to_f32(vs[r * zw * 8 + kk / g]);
      const int z = (int)zr[r * ng + kk / g];
      cr_assert_eq((float)(q - z) * sc[r * ng + kk / g], w[r * k + kk]);
      (void)s16;
    }
  int32_t *gq = malloc((size_t)(n * k / 8) * 4), *gz = malloc((size_t)(ng * n / 8) * 4);
  uint16_t *gs = malloc((size_t)(ng * n) * 2);
  cr_assert_eq(qf_awq_gemm_pack(w, sc, zr, n, k, g, gq, gz, gs), QF_OK);
  int32_t *cq = malloc((size_t)(n * k / 8) * 4), *cz = malloc((size_t)(ng * n / 8) * 4);
  cr_assert_eq(qf_awq_gemv_to_gemm(vq, vz, n, k, g, cq, cz), QF_OK);
  cr_assert(memcmp(cq, gq, (size_t)(n * k / 8) * 4) == 0);
  cr_assert(memcmp(cz, gz, (size_t)(ng * n / 8) * 4) == 0);
  float *vsf = malloc((size_t)(n * zw * 8) * 4), *gsf = malloc((size_t)(ng * n) * 4);
  for (int64_t i = 0; i < n * zw * 8; i++) vsf[i] = qf_f16_to_f32(vs[i]);
  for (int64_t i = 0; i < ng * n; i++) gsf[i] = qf_f16_to_f32(gs[i]);
  float *a = malloc((size_t)(n * k) * 4), *b = malloc((size_t)(n * k) * 4);
  cr_assert_eq(qf_awq_gemv_dequantize(vq, vz, vsf, n, k, g, a), QF_OK);
  cr_assert_eq(qf_awq_gemm_dequantize(gq, gz, gsf, n, k, g, b), QF_OK);
  cr_assert(memcmp(a, b, (size_t)(n * k) * 4) == 0);
  free(w), free(sc), free(zr), free(vq), free(vz), free(vs), free(gq), free(gz), free(gs);
  free(cq), free(cz), free(vsf), free(gsf), free(a), free(b);
}

Test(awq_pack, bad_shapes_rejected) {
  int32_t iw[64] = {0}, qw[64], qz[64];
  float f[64] = {0};
  uint16_t s[64];
  cr_assert_eq(qf_awq_gemm_pack_ints(iw, NULL, 12, 4, 4, qw, qz), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_awq_gemm_pack(f, f, f, 8, 6, 4, qw, qz, s), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_awq_gemm_to_gptq(qw, qz, 8, 4, 4, 1, iw, iw, NULL), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_awq_gemv_pack(f, f, f, 8, 32, 16, qw, qz, s), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_awq_gemm_pack(NULL, f, f, 8, 8, 8, qw, qz, s), QF_ERR_INVALID_ARGUMENT);
}
