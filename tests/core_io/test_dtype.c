/*
 * qf_dtype: safetensors names and sizes, the DLPack mapping both ways, and
 * bulk qf_convert between F32/F16/BF16 (every pair, unaligned buffers,
 * in-place narrowing, rejection of other types) checked element by element
 * against the scalar conversions of qforge/half.h.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io_test_util.h"
#include "qforge/qforge.h"

static const struct {
  qf_dtype t;
  const char *name;
  size_t size;
} k_all[] = {
    {QF_DTYPE_F64, "F64", 8},         {QF_DTYPE_F32, "F32", 4},
    {QF_DTYPE_F16, "F16", 2},         {QF_DTYPE_BF16, "BF16", 2},
    {QF_DTYPE_I64, "I64", 8},         {QF_DTYPE_I32, "I32", 4},
    {QF_DTYPE_I16, "I16", 2},         {QF_DTYPE_I8, "I8", 1},
    {QF_DTYPE_U64, "U64", 8},         {QF_DTYPE_U32, "U32", 4},
    {QF_DTYPE_U16, "U16", 2},         {QF_DTYPE_U8, "U8", 1},
    {QF_DTYPE_BOOL, "BOOL", 1},       {QF_DTYPE_F8_E4M3, "F8_E4M3", 1},
    {QF_DTYPE_F8_E5M2, "F8_E5M2", 1},
};
#define N_ALL (sizeof k_all / sizeof k_all[0])

Test(dtype, names_and_sizes) {
  cr_assert_eq(N_ALL, QF_DTYPE_COUNT - 1);
  for (size_t i = 0; i < N_ALL; i++) {
    cr_assert_str_eq(qf_dtype_name(k_all[i].t), k_all[i].name);
    cr_assert_eq(qf_dtype_from_name(k_all[i].name), k_all[i].t);
    cr_assert_eq(qf_dtype_size(k_all[i].t), k_all[i].size);
  }
  cr_assert_str_eq(qf_dtype_name(QF_DTYPE_INVALID), "?");
  cr_assert_str_eq(qf_dtype_name(QF_DTYPE_COUNT), "?");
  cr_assert_str_eq(qf_dtype_name((qf_dtype)-3), "?");
  cr_assert_eq(qf_dtype_size(QF_DTYPE_INVALID), 0);
  cr_assert_eq(qf_dtype_size(QF_DTYPE_COUNT), 0);
  cr_assert_eq(qf_dtype_from_name("f32"), QF_DTYPE_INVALID); /* case matters */
  cr_assert_eq(qf_dtype_from_name("F8_E4M3FN"), QF_DTYPE_INVALID);
  cr_assert_eq(qf_dtype_from_name(""), QF_DTYPE_INVALID);
  cr_assert_eq(qf_dtype_from_name("?"), QF_DTYPE_INVALID);
  cr_assert_eq(qf_dtype_from_name(NULL), QF_DTYPE_INVALID);
}

Test(dtype, dlpack_mapping) {
  DLDataType d;
  for (size_t i = 0; i < N_ALL; i++) {
    qf_dtype t = k_all[i].t;
    int rc = qf_dtype_to_dl(t, &d);
    cr_assert_eq(d.lanes, 1);
    cr_assert_eq((size_t)d.bits, 8 * k_all[i].size, "%s", k_all[i].name);
    if (t == QF_DTYPE_BOOL || t == QF_DTYPE_F8_E4M3 || t == QF_DTYPE_F8_E5M2) {
      cr_assert_eq(rc, -1, "%s has no DLPack 0.6 type", k_all[i].name);
      cr_assert_eq(d.code, kDLUInt);
    } else {
      cr_assert_eq(rc, 0, "%s", k_all[i].name);
      cr_assert_eq(qf_dtype_from_dl(d), t, "%s", k_all[i].name);
    }
  }
  qf_dtype_to_dl(QF_DTYPE_BF16, &d);
  cr_assert_eq(d.code, kDLBfloat);
  qf_dtype_to_dl(QF_DTYPE_I8, &d);
  cr_assert_eq(d.code, kDLInt);
  cr_assert_eq(qf_dtype_to_dl(QF_DTYPE_INVALID, &d), -1);
  cr_assert_eq(qf_dtype_from_dl((DLDataType){kDLUInt, 8, 1}), QF_DTYPE_U8);
  cr_assert_eq(qf_dtype_from_dl((DLDataType){kDLFloat, 32, 4}),
               QF_DTYPE_INVALID);
  cr_assert_eq(qf_dtype_from_dl((DLDataType){kDLFloat, 8, 1}),
               QF_DTYPE_INVALID);
  cr_assert_eq(qf_dtype_from_dl((DLDataType){kDLComplex, 64, 1}),
               QF_DTYPE_INVALID);
  cr_assert_eq(qf_dtype_from_dl((DLDataType){kDLBfloat, 16, 1}),
               QF_DTYPE_BF16);
  cr_assert_eq(qf_dtype_from_dl((DLDataType){6, 8, 1}), QF_DTYPE_BOOL);
}

static void load(const unsigned char *p, qf_dtype t, size_t i, uint32_t *bits) {
  if (t == QF_DTYPE_F32) {
    memcpy(bits, p + 4 * i, 4);
  } else {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    *bits = h;
  }
}

/* Expected dst element for src element bits `s`. */
static uint32_t expect(qf_dtype dst, qf_dtype src, uint32_t s) {
  if (dst == src) return s; /* same type: a plain copy, bits untouched */
  float f = src == QF_DTYPE_F32   ? qf_bits_f32(s)
            : src == QF_DTYPE_F16 ? qf_f16_to_f32((uint16_t)s)
                                  : qf_bf16_to_f32((uint16_t)s);
  if (dst == QF_DTYPE_F32) return qf_f32_bits(f);
  return dst == QF_DTYPE_F16 ? qf_f32_to_f16(f) : qf_f32_to_bf16(f);
}

Test(dtype, convert_every_pair_unaligned) {
  const qf_dtype fl[] = {QF_DTYPE_F32, QF_DTYPE_F16, QF_DTYPE_BF16};
  const size_t n = 70001;
  unsigned char *src = malloc(4 * n + 1), *dst = malloc(4 * n + 3);
  cr_assert(src && dst);
  for (int a = 0; a < 3; a++) {
    for (int b = 0; b < 3; b++) {
      qf_dtype st = fl[a], dt = fl[b];
      unsigned char *s = src + 1, *d = dst + 3; /* deliberately unaligned */
      iot_fill(s, n * qf_dtype_size(st), (unsigned)(a * 3 + b));
      cr_assert_eq(qf_convert(d, dt, s, st, n), 0);
      for (size_t i = 0; i < n; i++) {
        uint32_t sb, db;
        load(s, st, i, &sb);
        load(d, dt, i, &db);
        if (db != expect(dt, st, sb))
          cr_assert_fail("%s->%s element %zu: src 0x%x got 0x%x want 0x%x",
                         qf_dtype_name(st), qf_dtype_name(dt), i, sb, db,
                         expect(dt, st, sb));
      }
    }
  }
  free(src);
  free(dst);
}

Test(dtype, convert_in_place_narrowing_and_errors) {
  float v[5] = {1.0f, -2.5f, 65504.0f, 1e-8f, 3.14159265f};
  uint16_t want[5];
  for (int i = 0; i < 5; i++) want[i] = qf_f32_to_f16(v[i]);
  cr_assert_eq(qf_convert(v, QF_DTYPE_F16, v, QF_DTYPE_F32, 5), 0);
  cr_assert_eq(memcmp(v, want, sizeof want), 0);

  uint16_t x[2] = {0x3c00, 0xc000};
  float y[2];
  cr_assert_eq(qf_convert(y, QF_DTYPE_F32, x, QF_DTYPE_F16, 2), 0);
  cr_assert_float_eq(y[0], 1.0f, 0);
  cr_assert_float_eq(y[1], -2.0f, 0);
  cr_assert_eq(qf_convert(y, QF_DTYPE_F32, x, QF_DTYPE_I32, 2), -1);
  cr_assert_eq(qf_convert(y, QF_DTYPE_F64, x, QF_DTYPE_F16, 2), -1);
  cr_assert_eq(qf_convert(y, QF_DTYPE_U8, x, QF_DTYPE_U8, 2), -1);
  cr_assert_eq(qf_convert(NULL, QF_DTYPE_F32, NULL, QF_DTYPE_F16, 0), 0);
  cr_assert_eq(qf_convert(NULL, QF_DTYPE_F32, x, QF_DTYPE_F16, 1), -1);
  /* same type copies */
  uint16_t z[2] = {0};
  cr_assert_eq(qf_convert(z, QF_DTYPE_BF16, x, QF_DTYPE_BF16, 2), 0);
  cr_assert_eq(memcmp(z, x, sizeof z), 0);
  /* F16 -> BF16: 1 + 2^-10 is below half a bf16 ulp (2^-8) -> 1.0 */
  uint16_t h = 0x3c01, bf = 0;
  cr_assert_eq(qf_convert(&bf, QF_DTYPE_BF16, &h, QF_DTYPE_F16, 1), 0);
  cr_assert_eq(bf, 0x3f80);
}
