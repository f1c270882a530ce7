/*
 * Checkpoint element types: the safetensors spellings, element sizes, the
 * mapping to and from DLPack 0.6 data types, and bulk conversion between the
 * three floating types models are stored in (F32, F16, BF16). The scalar
 * conversions come from qforge/half.h so the core, the plugins and the tests
 * round exactly alike (RNE on narrowing, NaN kept, Inf/±0 preserved).
 */
#include <string.h>

#include "qforge/qforge.h"

typedef struct dtype_info {
  const char *name;
  size_t size;
  uint8_t dl_code;
  uint8_t dl_bits;
  int dl_exact; /* 0: DLPack 0.6 has no such type; dl_* give the storage */
} dtype_info;

static const dtype_info k_dtypes[QF_DTYPE_COUNT] = {
    [QF_DTYPE_INVALID] = {"?", 0, 0, 0, 0},
    [QF_DTYPE_F64] = {"F64", 8, kDLFloat, 64, 1},
    [QF_DTYPE_F32] = {"F32", 4, kDLFloat, 32, 1},
    [QF_DTYPE_F16] = {"F16", 2, kDLFloat, 16, 1},
    [QF_DTYPE_BF16] = {"BF16", 2, kDLBfloat, 16, 1},
    [QF_DTYPE_I64] = {"I64", 8, kDLInt, 64, 1},
    [QF_DTYPE_I32] = {"I32", 4, kDLInt, 32, 1},
    [QF_DTYPE_I16] = {"I16", 2, kDLInt, 16, 1},
    [QF_DTYPE_I8] = {"I8", 1, kDLInt, 8, 1},
    [QF_DTYPE_U64] = {"U64", 8, kDLUInt, 64, 1},
    [QF_DTYPE_U32] = {"U32", 4, kDLUInt, 32, 1},
    [QF_DTYPE_U16] = {"U16", 2, kDLUInt, 16, 1},
    [QF_DTYPE_U8] = {"U8", 1, kDLUInt, 8, 1},
    [QF_DTYPE_BOOL] = {"BOOL", 1, kDLUInt, 8, 0},
    [QF_DTYPE_F8_E4M3] = {"F8_E4M3", 1, kDLUInt, 8, 0},
    [QF_DTYPE_F8_E5M2] = {"F8_E5M2", 1, kDLUInt, 8, 0},
};

static int valid(qf_dtype t) { return t > QF_DTYPE_INVALID && t < QF_DTYPE_COUNT; }

const char *qf_dtype_name(qf_dtype t) {
  return valid(t) ? k_dtypes[t].name : "?";
}

qf_dtype qf_dtype_from_name(const char *name) {
  if (!name) return QF_DTYPE_INVALID;
  for (int t = QF_DTYPE_INVALID + 1; t < QF_DTYPE_COUNT; t++)
    if (strcmp(name, k_dtypes[t].name) == 0) return (qf_dtype)t;
  return QF_DTYPE_INVALID;
}

size_t qf_dtype_size(qf_dtype t) { return valid(t) ? k_dtypes[t].size : 0; }

/* BOOL and the FP8 types have no DLPack 0.6 code: *out still receives their
 * storage type (kDLUInt, 8 bits) so a caller may move the bytes, and the
 * return value -1 tells it that the type itself was not expressed. */
int qf_dtype_to_dl(qf_dtype t, DLDataType *out) {
  if (!valid(t)) {
    if (out) memset(out, 0, sizeof *out);
    return -1;
  }
  if (out) {
    out->code = k_dtypes[t].dl_code;
    out->bits = k_dtypes[t].dl_bits;
    out->lanes = 1;
  }
  return k_dtypes[t].dl_exact ? 0 : -1;
}

qf_dtype qf_dtype_from_dl(DLDataType t) {
  if (t.lanes != 1) return QF_DTYPE_INVALID;
  /* kDLBool (6) arrived in DLPack 0.8; accept it when a newer producer
   * hands it over even though the 0.6 header does not name it. */
  if (t.code == 6 && t.bits == 8) return QF_DTYPE_BOOL;
  for (int i = QF_DTYPE_INVALID + 1; i < QF_DTYPE_COUNT; i++)
    if (k_dtypes[i].dl_exact && k_dtypes[i].dl_code == t.code &&
        k_dtypes[i].dl_bits == t.bits)
      return (qf_dtype)i;
  return QF_DTYPE_INVALID;
}

static int is_float3(qf_dtype t) {
  return t == QF_DTYPE_F32 || t == QF_DTYPE_F16 || t == QF_DTYPE_BF16;
}

/* Load element i of a (possibly unaligned) buffer of type t as float. */
static inline float load_f(const unsigned char *p, qf_dtype t, size_t i) {
  if (t == QF_DTYPE_F32) {
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  memcpy(&h, p + 2 * i, 2);
  return t == QF_DTYPE_F16 ? qf_f16_to_f32(h) : qf_bf16_to_f32(h);
}

static inline void store_f(unsigned char *p, qf_dtype t, size_t i, float f) {
  if (t == QF_DTYPE_F32) {
    memcpy(p + 4 * i, &f, 4);
    return;
  }
  uint16_t h = t == QF_DTYPE_F16 ? qf_f32_to_f16(f) : qf_f32_to_bf16(f);
  memcpy(p + 2 * i, &h, 2);
}

/* dst and src must not overlap, except that dst == src is allowed when
 * dst_t is not wider than src_t (narrowing in place) or the types match. */
int qf_convert(void *dst, qf_dtype dst_t, const void *src, qf_dtype src_t,
               size_t n) {
  if (!is_float3(dst_t) || !is_float3(src_t)) return -1;
  if (n == 0) return 0;
  if (!dst || !src) return -1;
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (dst_t == src_t) {
    memmove(d, s, n * qf_dtype_size(src_t));
    return 0;
  }
  /* The specialised loops let the compiler keep the common pairs tight. */
  if (src_t == QF_DTYPE_F32 && dst_t == QF_DTYPE_F16) {
    for (size_t i = 0; i < n; i++) store_f(d, QF_DTYPE_F16, i, load_f(s, QF_DTYPE_F32, i));
  } else if (src_t == QF_DTYPE_F32 && dst_t == QF_DTYPE_BF16) {
    for (size_t i = 0; i < n; i++) store_f(d, QF_DTYPE_BF16, i, load_f(s, QF_DTYPE_F32, i));
  } else if (src_t == QF_DTYPE_F16 && dst_t == QF_DTYPE_F32) {
    for (size_t i = 0; i < n; i++) store_f(d, QF_DTYPE_F32, i, load_f(s, QF_DTYPE_F16, i));
  } else if (src_t == QF_DTYPE_BF16 && dst_t == QF_DTYPE_F32) {
    for (size_t i = 0; i < n; i++) store_f(d, QF_DTYPE_F32, i, load_f(s, QF_DTYPE_BF16, i));
  } else {
    /* F16 <-> BF16: widening to F32 is exact, so one rounding happens. */
    for (size_t i = 0; i < n; i++) store_f(d, dst_t, i, load_f(s, src_t, i));
  }
  return 0;
}
