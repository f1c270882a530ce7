/*
 * IEEE binary16 (f16) and bfloat16 (bf16) conversions to and from float32.
 *
 * Header-only so that the core, every plugin and every test share one exact
 * implementation. Narrowing rounds to nearest, ties to even; NaN stays NaN
 * (quiet, sign kept), infinities and signed zeros are preserved, f16
 * subnormals are produced and read exactly. Pure integer arithmetic: the
 * result never depends on compiler flags, FPU mode or ISA.
 */
#ifndef QFORGE_HALF_H
#define QFORGE_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t qf_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float qf_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* f16 bits → float32 (exact: every f16 value is representable). */
static inline float qf_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t out;
  if (exp == 0x1f) {
    out = sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0);
  } else if (exp != 0) {
    out = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    out = sign;
  } else {
    /* subnormal: normalise the mantissa */
    uint32_t e = 113;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      e--;
    }
    out = sign | (e << 23) | ((man & 0x3ffu) << 13);
  }
  return qf_bits_f32(out);
}

/* float32 → f16 bits, round to nearest even, overflow to ±Inf. */
static inline uint16_t qf_f32_to_f16(float f) {
  uint32_t u = qf_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t exp = (u >> 23) & 0xffu;
  uint32_t man = u & 0x7fffffu;
  if (exp == 0xff) {
    if (man) return (uint16_t)(sign | 0x7e00u | (man >> 13)); /* quiet NaN */
    return (uint16_t)(sign | 0x7c00u);
  }
  int32_t e = (int32_t)exp - 127 + 15;
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    /* result is subnormal or zero: shift the full mantissa right */
    if (e < -10) return sign;
    uint32_t m = man | 0x800000u;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t half_bits = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_bits & 1u))) half_bits++;
    return (uint16_t)(sign | half_bits);
  }
  uint32_t half_bits = ((uint32_t)e << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half_bits & 1u))) half_bits++;
  /* a carry may run into the exponent, up to Inf: that is correct */
  return (uint16_t)(sign | half_bits);
}

/* bf16 bits → float32 (exact). */
static inline float qf_bf16_to_f32(uint16_t b) {
  return qf_bits_f32((uint32_t)b << 16);
}

/* float32 → bf16 bits, round to nearest even; NaN kept quiet. */
static inline uint16_t qf_f32_to_bf16(float f) {
  uint32_t u = qf_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)((u + rounding) >> 16);
}

#endif /* QFORGE_HALF_H */
