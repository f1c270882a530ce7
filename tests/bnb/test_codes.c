/*
 * Code selection at its edges: every NF4 / FP4 threshold (spec 1.3/1.4,
 * taken here as the float32 hex of the spec tables, independent of the
 * library's literals) and its float neighbours at ±1 and ±2 ulp, zeros,
 * -0, NaN, denormals, all-zero and denormal-only blocks, blocks that
 * straddle rows, odd element counts; the dynamic map against the spec's
 * Appendix A; the 8-bit code search against bucketize on float32
 * midpoints with the CUDA tie rule.
 */
#include <math.h>

#include "bnb_test_util.h"

static const uint32_t k_nf4_thr[15] = {
    0xbf591cd9u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu,
    0xbe0d38bcu, 0xbd3a7871u, 0x3d22faffu, 0x3df64863u, 0x3e5067e0u,
    0x3e9582d4u, 0x3ec753f9u, 0x3f006d03u, 0x3f248dafu, 0x3f5c89d9u};
static const uint32_t k_nf4_lut[16] = {
    0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du,
    0xbe3d353fu, 0xbdba7871u, 0x00000000u, 0x3da2faffu, 0x3e24cae3u,
    0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u,
    0x3f800000u};
/* FP4 magnitude thresholds and the 3-bit code of each magnitude rank */
static const uint32_t k_fp4_thr[7] = {0x3b2aaab9u, 0x3db00000u, 0x3e555555u,
                                      0x3e955555u, 0x3ed55556u, 0x3f155550u,
                                      0x3f555555u};
static const uint8_t k_fp4_rank[8] = {0, 1, 6, 7, 4, 5, 2, 3};
static const uint32_t k_fp4_mag[8] = {0x00000000u, 0x3baaaaabu, 0x3f2aaaabu,
                                      0x3f800000u, 0x3eaaaaabu, 0x3f000000u,
                                      0x3e2aaaabu, 0x3e800000u};

static const uint32_t k_dyn_pos[128] = {
    0x3513a3b7u, 0x365a1a94u, 0x370205ffu, 0x37b24206u, 0x38378034u, 0x388aefb3u,
    0x38ba1f4bu, 0x3923d70bu, 0x398ce705u, 0x39c7e283u, 0x3a016f01u, 0x3a1eecc1u,
    0x3a3c6a80u, 0x3a59e83eu, 0x3a7765ffu, 0x3aa7ef9du, 0x3af1a9fcu, 0x3b1db22du,
    0x3b428f5cu, 0x3b676c8au, 0x3b8624ddu, 0x3b989374u, 0x3bab020du, 0x3bbd70a4u,
    0x3bcfdf3bu, 0x3be24dd3u, 0x3bf4bc6au, 0x3c039581u, 0x3c0ccccdu, 0x3c160418u,
    0x3c1f3b64u, 0x3c3ae148u, 0x3c68f5c3u, 0x3c8b851fu, 0x3ca28f5du, 0x3cb9999au,
    0x3cd0a3d7u, 0x3ce7ae15u, 0x3cfeb852u, 0x3d0ae148u, 0x3d166667u, 0x3d21eb85u,
    0x3d2d70a3u, 0x3d38f5c3u, 0x3d447ae1u, 0x3d500000u, 0x3d5b851fu, 0x3d670a3du,
    0x3d728f5du, 0x3d7e147bu, 0x3d84cccdu, 0x3d8a8f5du, 0x3d9051ebu, 0x3d96147bu,
    0x3d9bd70au, 0x3da1999au, 0x3da75c2au, 0x3dad1eb8u, 0x3db2e148u, 0x3db8a3d7u,
    0x3dbe6667u, 0x3dc428f7u, 0x3dc9eb85u, 0x3ddb3334u, 0x3df80000u, 0x3e0a6666u,
    0x3e18cccdu, 0x3e273333u, 0x3e35999au, 0x3e440000u, 0x3e526666u, 0x3e60cccdu,
    0x3e6f3333u, 0x3e7d9999u, 0x3e860000u, 0x3e8d3334u, 0x3e946666u, 0x3e9b999au,
    0x3ea2ccccu, 0x3eaa0000u, 0x3eb13333u, 0x3eb86666u, 0x3ebf999au, 0x3ec6ccccu,
    0x3ece0000u, 0x3ed53333u, 0x3edc6666u, 0x3ee3999au, 0x3eeaccccu, 0x3ef20000u,
    0x3ef93332u, 0x3f003333u, 0x3f03ccccu, 0x3f076666u, 0x3f0b0000u, 0x3f0e999au,
    0x3f123334u, 0x3f15cccdu, 0x3f196666u, 0x3f1d0000u, 0x3f20999au, 0x3f243334u,
    0x3f27cccdu, 0x3f2b6666u, 0x3f2f0000u, 0x3f32999au, 0x3f363334u, 0x3f39cccdu,
    0x3f3d6666u, 0x3f410000u, 0x3f44999au, 0x3f483333u, 0x3f4bcccdu, 0x3f4f6666u,
    0x3f530000u, 0x3f56999au, 0x3f5a3333u, 0x3f5dcccdu, 0x3f616666u, 0x3f650000u,
    0x3f68999au, 0x3f6c3333u, 0x3f6fcccdu, 0x3f736666u, 0x3f770000u, 0x3f7a999au,
    0x3f7e3333u, 0x3f800000u, };

static float up(float x, int k) {
  while (k-- > 0) x = nextafterf(x, INFINITY);
  return x;
}
static float down(float x, int k) {
  while (k-- > 0) x = nextafterf(x, -INFINITY);
  return x;
}

Test(bnb_codes, tables_match_spec_hex) {
  for (int i = 0; i < 16; i++) {
    cr_expect_eq(tu_bits(qf_bnb_nf4_lut[i]), k_nf4_lut[i], "nf4[%d]", i);
    uint32_t m = k_fp4_mag[i & 7] | (i & 8 ? 0x80000000u : 0);
    cr_expect_eq(tu_bits(qf_bnb_fp4_lut[i]), m, "fp4 lut[%d]", i);
    /* the serialized map has +0.0 at 8 (Python int -0) */
    cr_expect_eq(tu_bits(qf_bnb_fp4_quant_map[i]), i == 8 ? 0u : m, "fp4 map[%d]", i);
  }
  cr_expect_eq(qf_bnb_quant_map(QF_BNB_NF4), qf_bnb_nf4_lut);
}

Test(bnb_codes, nf4_thresholds_and_neighbours) {
  for (int i = 0; i < 15; i++) {
    float t = tu_float(k_nf4_thr[i]);
    cr_expect_eq(qf_bnb_nf4_code(t), i, "x == t[%d] goes to the lower code", i);
    cr_expect_eq(qf_bnb_nf4_code(down(t, 1)), i, "t[%d] - 1ulp", i);
    cr_expect_eq(qf_bnb_nf4_code(down(t, 2)), i, "t[%d] - 2ulp", i);
    cr_expect_eq(qf_bnb_nf4_code(up(t, 1)), i + 1, "t[%d] + 1ulp", i);
    cr_expect_eq(qf_bnb_nf4_code(up(t, 2)), i + 1, "t[%d] + 2ulp", i);
  }
  /* the table values themselves map to their own code */
  for (int c = 0; c < 16; c++)
    cr_expect_eq(qf_bnb_nf4_code(tu_float(k_nf4_lut[c])), c, "lut[%d]", c);
  cr_expect_eq(qf_bnb_nf4_code(0.0f), 7);
  cr_expect_eq(qf_bnb_nf4_code(-0.0f), 7);
  cr_expect_eq(qf_bnb_nf4_code(NAN), 0, "NaN -> code 0 (value -1)");
  cr_expect_eq(qf_bnb_nf4_code(-NAN), 0);
  cr_expect_eq(qf_bnb_nf4_code(1e-45f), 7, "denormal");
  cr_expect_eq(qf_bnb_nf4_code(-1e-45f), 7, "negative denormal");
  cr_expect_eq(qf_bnb_nf4_code(INFINITY), 15);
  cr_expect_eq(qf_bnb_nf4_code(-INFINITY), 0);
  cr_expect_eq(qf_bnb_nf4_code(1.5f), 15);
  cr_expect_eq(qf_bnb_nf4_code(-1.5f), 0);
}

Test(bnb_codes, fp4_thresholds_and_neighbours) {
  for (int i = 0; i < 7; i++) {
    float t = tu_float(k_fp4_thr[i]);
    for (int s = 0; s < 2; s++) {
      float sg = s ? -1.0f : 1.0f;
      uint8_t sb = s ? 8 : 0;
      cr_expect_eq(qf_bnb_fp4_code(sg * t), sb + k_fp4_rank[i], "%c t[%d]", s ? '-' : '+', i);
      cr_expect_eq(qf_bnb_fp4_code(sg * down(t, 1)), sb + k_fp4_rank[i], "t[%d]-1ulp", i);
      cr_expect_eq(qf_bnb_fp4_code(sg * down(t, 2)), sb + k_fp4_rank[i], "t[%d]-2ulp", i);
      cr_expect_eq(qf_bnb_fp4_code(sg * up(t, 1)), sb + k_fp4_rank[i + 1], "t[%d]+1ulp", i);
      cr_expect_eq(qf_bnb_fp4_code(sg * up(t, 2)), sb + k_fp4_rank[i + 1], "t[%d]+2ulp", i);
    }
  }
  cr_expect_eq(qf_bnb_fp4_code(0.0f), 0);
  cr_expect_eq(qf_bnb_fp4_code(-0.0f), 0, "-0.0 has sign 0");
  cr_expect_eq(qf_bnb_fp4_code(NAN), 0);
  cr_expect_eq(qf_bnb_fp4_code(1e-45f), 0);
  cr_expect_eq(qf_bnb_fp4_code(-1e-45f), 8, "tiny negative keeps its sign (CUDA)");
  cr_expect_eq(qf_bnb_fp4_code(-0.001f), 8);
  cr_expect_eq(qf_bnb_fp4_code(1.0f), 3);
  cr_expect_eq(qf_bnb_fp4_code(-1.0f), 11);
  for (int c = 0; c < 16; c++)
    cr_expect_eq(qf_bnb_fp4_code(qf_bnb_fp4_lut[c]), c == 8 ? 0 : c, "lut[%d]", c);
}

Test(bnb_codes, block_edge_cases) {
  /* all-zero block: absmax 0, x = 0*inf = NaN -> code 0 (0x00 bytes), and
   * NF4 dequantizes to -1 * 0 = -0.0 */
  float z[64] = {0};
  uint8_t p[32];
  float am[1], out[64];
  for (int t = 0; t < 2; t++) {
    qf_bnb_quantize_4bit((qf_bnb_qtype)t, z, 64, 64, p, am);
    cr_expect_eq(am[0], 0.0f);
    for (int i = 0; i < 32; i++) cr_expect_eq(p[i], 0, "zero block byte %d", i);
  }
  qf_bnb_quantize_4bit(QF_BNB_NF4, z, 64, 64, p, am);
  qf_bnb_dequant4(QF_BNB_ISA_SCALAR, QF_BNB_NF4, p, am, 64, 0, 64, out);
  cr_expect_eq(tu_bits(out[0]), 0x80000000u, "-0.0");
  /* denormal-only block with IEEE arithmetic: 1/absmax overflows to inf */
  float d[32] = {1e-40f, -1e-40f, 0.0f, 5e-41f};
  qf_bnb_quantize_4bit(QF_BNB_NF4, d, 32, 32, p, am);
  cr_expect_eq(am[0], 1e-40f);
  cr_expect_eq(p[0], 0xf0, "+inf -> 15, -inf -> 0");
  cr_expect_eq(p[1], 0x0f, "NaN -> 0, +inf -> 15");
  /* -0.0 inside a normal block: NF4 7, FP4 0 */
  float m[32] = {-0.0f, 1.0f};
  qf_bnb_quantize_4bit(QF_BNB_NF4, m, 32, 32, p, am);
  cr_expect_eq(p[0], 0x7f);
  qf_bnb_quantize_4bit(QF_BNB_FP4, m, 32, 32, p, am);
  cr_expect_eq(p[0], 0x03);
  /* NaN in a block: ignored by absmax, coded 0 */
  float n[32] = {NAN, 0.5f};
  qf_bnb_quantize_4bit(QF_BNB_NF4, n, 32, 32, p, am);
  cr_expect_eq(am[0], 0.5f);
  cr_expect_eq(p[0], 0x0f);
}

Test(bnb_codes, blocks_straddle_rows) {
  /* [3, 48] with blocksize 64: block 0 = row 0 + 16 values of row 1 */
  float w[144];
  for (int i = 0; i < 144; i++) w[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  w[50] = 4.0f; /* row 1, col 2: inside block 0 */
  w[70] = -8.0f; /* row 1, col 22: inside block 1 */
  uint8_t p[72];
  float am[3];
  qf_bnb_quantize_4bit(QF_BNB_NF4, w, 144, 64, p, am);
  cr_expect_eq(am[0], 4.0f, "block 0 covers flat [0, 64)");
  cr_expect_eq(am[1], 8.0f, "block 1 covers flat [64, 128)");
  /* every code follows x = v * (1/absmax of its flat block) */
  for (int i = 0; i < 144; i++) {
    uint8_t q = i & 1 ? (p[i / 2] & 15) : (p[i / 2] >> 4);
    cr_expect_eq(q, qf_bnb_nf4_code(w[i] * (1.0f / am[i / 64])), "elem %d", i);
  }
  float out[144];
  qf_bnb_dequant4(QF_BNB_ISA_AUTO, QF_BNB_NF4, p, am, 64, 0, 144, out);
  for (int i = 0; i < 144; i++) {
    uint8_t q = i & 1 ? (p[i / 2] & 15) : (p[i / 2] >> 4);
    cr_expect_eq(tu_bits(out[i]), tu_bits(qf_bnb_nf4_lut[q] * am[i / 64]));
  }
}

Test(bnb_codes, odd_sizes) {
  float w[65];
  for (int i = 0; i < 65; i++) w[i] = (float)(i - 30) / 31.0f;
  uint8_t p[33];
  float am[2];
  qf_bnb_quantize_4bit(QF_BNB_NF4, w, 65, 64, p, am);
  cr_expect_eq(p[32] & 15, 7, "odd n: pad nibble is the NF4 code of 0.0");
  cr_expect_eq(p[32] >> 4, qf_bnb_nf4_code(w[64] * (1.0f / am[1])));
  qf_bnb_quantize_4bit(QF_BNB_FP4, w, 65, 64, p, am);
  cr_expect_eq(p[32] & 15, 0, "odd n: pad nibble is the FP4 code of 0.0");
  /* last block of one zero value: the kernel's 0.0 padding also becomes NaN */
  w[64] = 0.0f;
  qf_bnb_quantize_4bit(QF_BNB_NF4, w, 65, 64, p, am);
  cr_expect_eq(p[32], 0x00);
  /* odd sizes in both dequant paths and unaligned ranges */
  for (int64_t n = 1; n < 300; n += 7) {
    float *x = malloc((size_t)n * 4), *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    uint64_t s = 99 + (uint64_t)n;
    for (int64_t i = 0; i < n; i++) x[i] = tu_normal(&s);
    uint8_t *pk = malloc((size_t)qf_bnb_packed_bytes(n));
    float amx[16];
    qf_bnb_quantize_4bit(QF_BNB_NF4, x, n, 32, pk, amx);
    for (int64_t st = 0; st < n; st += 5) {
      qf_bnb_dequant4(QF_BNB_ISA_SCALAR, QF_BNB_NF4, pk, amx, 32, st, n - st, a);
      qf_bnb_dequant4(QF_BNB_ISA_AVX2, QF_BNB_NF4, pk, amx, 32, st, n - st, b);
      cr_expect(memcmp(a, b, (size_t)(n - st) * 4) == 0, "n=%lld start=%lld",
                (long long)n, (long long)st);
    }
    free(x);
    free(a);
    free(b);
    free(pk);
  }
}

Test(bnb_codes, dynamic_map_matches_appendix_a) {
  const float *m = qf_bnb_dynamic_map();
  cr_expect_eq(tu_bits(m[127]), 0u);
  for (int k = 0; k < 128; k++)
    cr_expect_eq(tu_bits(m[128 + k]), k_dyn_pos[k], "map[%d] = %08x, want %08x",
                 128 + k, tu_bits(m[128 + k]), k_dyn_pos[k]);
  for (int k = 1; k < 128; k++)
    cr_expect_eq(tu_bits(m[127 - k]), tu_bits(m[127 + k]) ^ 0x80000000u, "map[%d]", 127 - k);
  cr_expect_eq(tu_bits(m[0]), tu_bits(m[254]) ^ 0x80000000u);
  for (int i = 0; i < 255; i++) cr_expect(m[i] < m[i + 1], "sorted at %d", i);
}

/* bucketize on float32 midpoints: number of midpoints strictly below x */
static int bucketize(const float *c, float x) {
  int r = 0;
  for (int i = 0; i < 255; i++) r += ((c[i] + c[i + 1]) * 0.5f) < x;
  return r;
}

Test(bnb_codes, code8_search_is_bucketize_except_ties) {
  const float *c = qf_bnb_dynamic_map();
  uint64_t s = 12345;
  for (int i = 0; i < 200000; i++) {
    float x;
    if (i & 1)
      x = tu_uniform(&s) * 2.0f - 1.0f;
    else /* log-uniform small magnitudes */
      x = (tu_rand(&s) & 1 ? 1.0f : -1.0f) * powf(10.0f, -8.0f * tu_uniform(&s));
    int b = bucketize(c, x);
    int g = qf_bnb_code8(c, x);
    int tie = 0;
    for (int j = 0; j < 255; j++)
      if (x == (c[j] + c[j + 1]) * 0.5f) tie = 1;
    if (!tie) cr_assert_eq(g, b, "x=%a: search %d, bucketize %d", (double)x, g, b);
  }
  /* exact midpoints: one of the two neighbours (the final pivot); just off
   * them, the bucketize answer */
  int upper_ties = 0;
  for (int j = 0; j < 255; j++) {
    float mid = (c[j] + c[j + 1]) * 0.5f;
    int g = qf_bnb_code8(c, mid);
    cr_expect(g == j || g == j + 1, "midpoint %d -> %d", j, g);
    upper_ties += g == j + 1;
    cr_expect_eq(qf_bnb_code8(c, nextafterf(mid, INFINITY)), j + 1, "mid %d +1ulp", j);
    cr_expect_eq(qf_bnb_code8(c, nextafterf(mid, -INFINITY)), j, "mid %d -1ulp", j);
  }
  cr_expect(upper_ties > 0, "the CUDA rule differs from bucketize at some ties");
  cr_expect_eq(qf_bnb_code8(c, NAN), 0);
  cr_expect_eq(qf_bnb_code8(c, 2.0f), 255);
  cr_expect_eq(qf_bnb_code8(c, -2.0f), 0);
  cr_expect_eq(qf_bnb_code8(c, 0.0f), 127);
  for (int j = 0; j < 256; j++) cr_expect_eq(qf_bnb_code8(c, c[j]), j, "code %d", j);
}

Test(bnb_codes, blockwise8_roundtrip) {
  const float *c = qf_bnb_dynamic_map();
  float x[1000], y[1000], am[4];
  uint8_t q[1000];
  uint64_t s = 7;
  for (int i = 0; i < 1000; i++) x[i] = tu_normal(&s);
  qf_bnb_quantize_blockwise8(c, x, 1000, 256, q, am);
  qf_bnb_dequantize_blockwise8(c, q, am, 1000, 256, y);
  for (int i = 0; i < 1000; i++) {
    cr_expect(fabsf(x[i] - y[i]) <= am[i / 256] * 0.0075f, "i=%d %g vs %g", i, x[i], y[i]);
    cr_expect_eq(tu_bits(y[i]), tu_bits(c[q[i]] * am[i / 256]));
  }
}
