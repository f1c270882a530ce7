/*
 * Exhaustive checks of the scalar f16 / bf16 conversions in qforge/half.h.
 *
 * f16: every one of the 65,536 bit patterns is widened and compared with
 * gcc's _Float16 conversion (an independent implementation in libgcc), and
 * round-tripped; narrowing is checked on every f16 value, on every midpoint
 * between neighbours (ties to even), just above and below each midpoint, on
 * overflow, subnormals, NaN and ±0, and on a strided sweep of all float32
 * patterns against _Float16.
 * bf16: every pattern widened against a value computed in double, round
 * tripped, and narrowing checked around every bf16 value (midpoints, their
 * neighbours, all 65,536 low halves for a spread of high halves) against a
 * nearest-neighbour decision made in double arithmetic.
 *
 * Signalling NaNs are the one designed exception to "round trip exact": the
 * conversions quiet them (as F16C, libgcc and the IEEE rules do), keeping
 * sign and payload. The tests pin that down exactly.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "qforge/half.h"

/* ---- helpers ---- */

/* Criterion reports every assertion to its runner; in loops of millions of
 * checks only the failures should pay that price. */
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) cr_assert_fail(__VA_ARGS__);     \
  } while (0)
#define CHECK_EQ(a, b, ...) CHECK((a) == (b), __VA_ARGS__)

static uint32_t oracle_f16_to_f32_bits(uint16_t h) {
  _Float16 x;
  memcpy(&x, &h, 2);
  float f = (float)x;
  return qf_f32_bits(f);
}

static uint16_t oracle_f32_to_f16(float f) {
  _Float16 x = (_Float16)f;
  uint16_t h;
  memcpy(&h, &x, 2);
  return h;
}

static int f16_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu); }
static int bf16_is_nan(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu); }

/* Value of an f16 pattern in double, computed from the fields. */
static double f16_value(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 0x1f) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp(m, -24);
  else v = ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

static double bf16_value(uint16_t b) {
  int s = b >> 15, e = (b >> 7) & 0xff, m = b & 0x7f;
  double v;
  if (e == 0xff) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp(m, -133);
  else v = ldexp(128 + m, e - 134);
  return s ? -v : v;
}

/* Nearest of two adjacent non-negative patterns lo < hi (hi may be Inf,
 * standing for the next power of two), ties to the even pattern. */
static uint16_t rne_pick(double x, uint16_t lo, uint16_t hi, double vlo,
                         double vhi) {
  double dlo = x - vlo, dhi = vhi - x;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

/* ---- f16 ---- */

Test(half_f16, widen_all_patterns_matches_Float16) {
  for (uint32_t h = 0; h < 65536; h++) {
    uint32_t ours = qf_f32_bits(qf_f16_to_f32((uint16_t)h));
    uint32_t ref = oracle_f16_to_f32_bits((uint16_t)h);
    CHECK_EQ(ours, ref, "f16 0x%04x: got 0x%08x, _Float16 gives 0x%08x", h,
                 ours, ref);
    if (!f16_is_nan((uint16_t)h)) {
      double v = f16_value((uint16_t)h);
      CHECK(qf_f16_to_f32((uint16_t)h) == (float)v,
                "f16 0x%04x value mismatch", h);
    }
  }
}

Test(half_f16, round_trip_all_patterns) {
  int snan = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    uint16_t back = qf_f32_to_f16(qf_f16_to_f32((uint16_t)h));
    uint16_t want = (uint16_t)h;
    if (f16_is_nan(want) && !(want & 0x200u)) {
      want |= 0x200u; /* signalling NaN comes back quiet, payload kept */
      snan++;
    }
    CHECK_EQ(back, want, "f16 0x%04x -> f32 -> 0x%04x, expected 0x%04x",
                 h, back, want);
  }
  cr_assert_eq(snan, 2 * 511);
}

Test(half_f16, narrow_every_value_matches_Float16) {
  for (uint32_t h = 0; h < 65536; h++) {
    float f = qf_f16_to_f32((uint16_t)h);
    CHECK_EQ(qf_f32_to_f16(f), oracle_f32_to_f16(f), "f16 0x%04x", h);
  }
}

/* Every pair of neighbours (a, a+1) among the non-negative finite f16 values,
 * plus (max finite, Inf) whose "midpoint" 65520 decides overflow. */
Test(half_f16, midpoints_ties_to_even_and_neighbours) {
  for (uint32_t a = 0; a < 0x7c00; a++) {
    uint16_t lo = (uint16_t)a, hi = (uint16_t)(a + 1);
    double vlo = f16_value(lo);
    double vhi = hi == 0x7c00 ? 65536.0 : f16_value(hi);
    double mid = (vlo + vhi) / 2;
    float fm = (float)mid;
    CHECK(fm == mid, "midpoint of 0x%04x not exact in f32", a);
    uint16_t even = (lo & 1u) ? hi : lo;
    float above = nextafterf(fm, INFINITY), below = nextafterf(fm, 0.0f);
    for (int neg = 0; neg < 2; neg++) {
      float sgn = neg ? -1.0f : 1.0f;
      uint16_t sb = neg ? 0x8000u : 0;
      CHECK_EQ(qf_f32_to_f16(sgn * fm), sb | even, "tie at 0x%04x", a);
      CHECK_EQ(qf_f32_to_f16(sgn * above), sb | hi, "above mid 0x%04x", a);
      CHECK_EQ(qf_f32_to_f16(sgn * below), sb | lo, "below mid 0x%04x", a);
      CHECK_EQ(qf_f32_to_f16(sgn * fm), oracle_f32_to_f16(sgn * fm), "oracle tie 0x%04x", a);
      CHECK_EQ(qf_f32_to_f16(sgn * above), oracle_f32_to_f16(sgn * above), "oracle above 0x%04x", a);
      CHECK_EQ(qf_f32_to_f16(sgn * below), oracle_f32_to_f16(sgn * below), "oracle below 0x%04x", a);
      /* every f32 strictly between the neighbours, on a sparse grid */
      for (int k = 1; k < 8; k++) {
        double x = vlo + (vhi - vlo) * k / 8.0;
        float fx = (float)x;
        uint16_t want = rne_pick(fx, lo, hi, vlo, vhi);
        CHECK_EQ(qf_f32_to_f16(sgn * fx), sb | want, "0x%04x + %d/8", a, k);
      }
    }
  }
}

Test(half_f16, overflow_underflow_zero_nan) {
  cr_assert_eq(qf_f32_to_f16(65504.0f), 0x7bff);
  cr_assert_eq(qf_f32_to_f16(65519.99f), 0x7bff);
  cr_assert_eq(qf_f32_to_f16(65520.0f), 0x7c00);
  cr_assert_eq(qf_f32_to_f16(1e10f), 0x7c00);
  cr_assert_eq(qf_f32_to_f16(-1e10f), 0xfc00);
  cr_assert_eq(qf_f32_to_f16(3.4028235e38f), 0x7c00);
  cr_assert_eq(qf_f32_to_f16(INFINITY), 0x7c00);
  cr_assert_eq(qf_f32_to_f16(-INFINITY), 0xfc00);
  cr_assert_eq(qf_f32_to_f16(0.0f), 0x0000);
  cr_assert_eq(qf_f32_to_f16(-0.0f), 0x8000);
  cr_assert_eq(qf_f16_to_f32(0x8000) == 0.0f && signbit(qf_f16_to_f32(0x8000)), 1);
  /* smallest subnormal 2^-24, half of it ties to zero, just above rounds up */
  cr_assert_eq(qf_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);
  cr_assert_eq(qf_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);
  cr_assert_eq(qf_f32_to_f16(nextafterf(ldexpf(1.0f, -25), 1.0f)), 0x0001);
  cr_assert_eq(qf_f32_to_f16(-ldexpf(1.0f, -25)), 0x8000);
  cr_assert_eq(qf_f32_to_f16(1e-30f), 0x0000);
  cr_assert_eq(qf_f32_to_f16(-1e-30f), 0x8000);
  cr_assert_eq(qf_f32_to_f16(ldexpf(1.0f, -149)), 0x0000); /* f32 subnormal */
  /* 1.5 * 2^-24 ties to even (2 * 2^-24), 2.5 * 2^-24 ties to 2 */
  cr_assert_eq(qf_f32_to_f16(1.5f * ldexpf(1.0f, -24)), 0x0002);
  cr_assert_eq(qf_f32_to_f16(2.5f * ldexpf(1.0f, -24)), 0x0002);
  /* largest subnormal rounding up into the smallest normal */
  cr_assert_eq(qf_f32_to_f16(nextafterf(ldexpf(1023.5f, -24), 1.0f)), 0x0400);
  /* every f32 NaN payload stays NaN with its sign */
  for (uint32_t m = 1; m < 0x800000u; m++) {
    for (uint32_t s = 0; s < 2; s++) {
      uint32_t u = (s << 31) | 0x7f800000u | m;
      uint16_t h = qf_f32_to_f16(qf_bits_f32(u));
      CHECK(f16_is_nan(h), "f32 NaN 0x%08x -> 0x%04x is not NaN", u, h);
      CHECK_EQ(h >> 15, s, "NaN sign 0x%08x", u);
      if ((m & 0x3fu) == 0) /* keep the check fast: a strided oracle */
        CHECK_EQ(h, oracle_f32_to_f16(qf_bits_f32(u)), "NaN 0x%08x", u);
    }
  }
}

Test(half_f16, strided_sweep_of_all_f32_matches_Float16) {
  /* 97 is odd, so the sweep visits every residue of the low bits */
  for (uint64_t u = 0; u < (1ull << 32); u += 97) {
    float f = qf_bits_f32((uint32_t)u);
    uint16_t ours = qf_f32_to_f16(f), ref = oracle_f32_to_f16(f);
    if (isnan(f)) {
      CHECK(f16_is_nan(ours), "NaN 0x%08x", (uint32_t)u);
      continue;
    }
    CHECK_EQ(ours, ref, "f32 0x%08x: 0x%04x vs _Float16 0x%04x",
                 (uint32_t)u, ours, ref);
  }
}

/* ---- bf16 ---- */

Test(half_bf16, widen_all_patterns) {
  for (uint32_t b = 0; b < 65536; b++) {
    float f = qf_bf16_to_f32((uint16_t)b);
    CHECK_EQ(qf_f32_bits(f), b << 16, "bf16 0x%04x", b);
    if (bf16_is_nan((uint16_t)b)) {
      CHECK(isnan(f), "bf16 0x%04x", b);
    } else {
      CHECK((double)f == bf16_value((uint16_t)b), "bf16 0x%04x value", b);
      CHECK_EQ((uint32_t)!!signbit(f), b >> 15, "bf16 0x%04x sign", b);
    }
  }
}

Test(half_bf16, round_trip_all_patterns) {
  int snan = 0;
  for (uint32_t b = 0; b < 65536; b++) {
    uint16_t back = qf_f32_to_bf16(qf_bf16_to_f32((uint16_t)b));
    uint16_t want = (uint16_t)b;
    if (bf16_is_nan(want) && !(want & 0x40u)) {
      want |= 0x40u;
      snan++;
    }
    CHECK_EQ(back, want, "bf16 0x%04x -> 0x%04x", b, back);
  }
  cr_assert_eq(snan, 2 * 63);
}

/* The expected bf16 for any f32, decided in double arithmetic. */
static uint16_t bf16_expected(uint32_t u) {
  float f = qf_bits_f32(u);
  if (isnan(f)) return (uint16_t)((u >> 16) | 0x40u);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint16_t lo = (uint16_t)((u & 0x7fffffffu) >> 16); /* truncation */
  if (lo == 0x7f80u) return sign | lo;               /* Inf */
  uint16_t hi = (uint16_t)(lo + 1);
  double x = fabs((double)f);
  double vlo = bf16_value(lo);
  double vhi = hi == 0x7f80u ? ldexp(1.0, 128) : bf16_value(hi);
  return sign | rne_pick(x, lo, hi, vlo, vhi);
}

Test(half_bf16, narrow_around_every_value) {
  static const uint32_t lows[] = {0x0000, 0x0001, 0x3fff, 0x7fff, 0x8000,
                                  0x8001, 0xc000, 0xffff};
  for (uint32_t b = 0; b < 65536; b++) {
    for (size_t k = 0; k < sizeof lows / sizeof lows[0]; k++) {
      uint32_t u = (b << 16) | lows[k];
      uint16_t got = qf_f32_to_bf16(qf_bits_f32(u));
      uint16_t want = bf16_expected(u);
      CHECK_EQ(got, want, "f32 0x%08x -> 0x%04x, expected 0x%04x", u, got,
                   want);
    }
  }
}

Test(half_bf16, narrow_all_low_halves_for_spread_of_high) {
  for (uint32_t b = 0; b < 65536; b += 251) { /* 262 high halves */
    for (uint32_t low = 0; low < 65536; low++) {
      uint32_t u = (b << 16) | low;
      CHECK_EQ(qf_f32_to_bf16(qf_bits_f32(u)), bf16_expected(u),
                   "f32 0x%08x", u);
    }
  }
  /* overflow boundary: max finite bf16 0x7f7f, the midpoint to 2^128 */
  cr_assert_eq(qf_f32_to_bf16(qf_bits_f32(0x7f7f7fffu)), 0x7f7f);
  cr_assert_eq(qf_f32_to_bf16(qf_bits_f32(0x7f7f8000u)), 0x7f80);
  cr_assert_eq(qf_f32_to_bf16(qf_bits_f32(0xff7f8000u)), 0xff80);
  cr_assert_eq(qf_f32_to_bf16(INFINITY), 0x7f80);
  cr_assert_eq(qf_f32_to_bf16(-0.0f), 0x8000);
  cr_assert_eq(qf_f32_to_bf16(0.0f), 0x0000);
  /* NaN with payload only in the low half stays NaN */
  cr_assert_eq(qf_f32_to_bf16(qf_bits_f32(0x7f800001u)), 0x7fc0);
  cr_assert_eq(qf_f32_to_bf16(qf_bits_f32(0xffffffffu)), 0xffff);
}
