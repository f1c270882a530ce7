/*
 * Structural validation of one AWQ-quantized linear as found in a checkpoint
 * (qweight / qzeros / scales / optional bias), for the GEMM and GEMV
 * layouts. postprocess_model, dequantize and linear_forward run every module
 * through here before touching its data, so a malformed checkpoint is a
 * QF_ERR_FORMAT with a message that names the module, the tensor and what
 * was expected — never an out-of-bounds read. Checks: presence, dtypes
 * (int32 words; f16/bf16/f32 scales and bias), ranks, compact strides, the
 * shape relations between the three tensors, the group size of the config,
 * and finite scales.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "awq.h"
#include "qforge/half.h"

qf_status qf__awq_fail(char *msg, size_t msg_size, qf_status code,
                       const char *fmt, ...) {
  if (msg && msg_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_size, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int is_int32(DLDataType t) {
  return t.code == kDLInt && t.bits == 32 && t.lanes == 1;
}

static int is_float_kind(DLDataType t) {
  return t.lanes == 1 && ((t.code == kDLFloat && (t.bits == 16 || t.bits == 32)) ||
                          (t.code == kDLBfloat && t.bits == 16));
}

static int is_compact(const DLTensor *t) {
  if (!t->strides) return 1;
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
    expect *= t->shape[i];
  }
  return 1;
}

static const char *dtype_name(DLDataType t) {
  static _Thread_local char buf[32];
  const char *c = t.code == kDLInt ? "int" : t.code == kDLUInt ? "uint"
                : t.code == kDLFloat ? "float" : t.code == kDLBfloat ? "bfloat"
                : "code?";
  snprintf(buf, sizeof buf, "%s%u", c, (unsigned)t.bits);
  return buf;
}

/* Presence, rank 2, positive dims, compact, data. */
static qf_status check_2d(const char *prefix, const char *what,
                          const DLTensor *t, char *msg, size_t msz) {
  if (!t)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s%s: missing (AWQ module needs qweight, qzeros and scales)",
                prefix, what);
  if (t->ndim != 2 || !t->shape)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s%s: expected a 2-D tensor, got %d dimensions",
                prefix, what, t->ndim);
  if (t->shape[0] <= 0 || t->shape[1] <= 0)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s%s: empty shape [%lld, %lld]", prefix, what,
                (long long)t->shape[0], (long long)t->shape[1]);
  if (t->shape[0] > (INT64_C(1) << 36) || t->shape[1] > (INT64_C(1) << 36))
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s%s: implausible shape [%lld, %lld]", prefix, what,
                (long long)t->shape[0], (long long)t->shape[1]);
  if (!is_compact(t))
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s%s: expected a compact row-major tensor",
                prefix, what);
  if (!t->data)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s%s: no data", prefix, what);
  return QF_OK;
}

void qf_awq_scales_to_f32(const DLTensor *scales, float *out) {
  const int64_t n = scales->shape[0] * scales->shape[1];
  const char *base = (const char *)scales->data + scales->byte_offset;
  if (scales->dtype.code == kDLFloat && scales->dtype.bits == 32) {
    memcpy(out, base, (size_t)n * sizeof *out);
  } else {
    const uint16_t *h = (const uint16_t *)base;
    const int bf = scales->dtype.code == kDLBfloat;
    for (int64_t i = 0; i < n; i++) out[i] = bf ? qf_bf16_to_f32(h[i]) : qf_f16_to_f32(h[i]);
  }
}

static int scales_finite(const DLTensor *s) {
  const int64_t n = s->shape[0] * s->shape[1];
  const char *base = (const char *)s->data + s->byte_offset;
  if (s->dtype.bits == 32) {
    const float *f = (const float *)base;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(f[i])) return 0;
  } else {
    /* f16 and bf16 both keep the exponent in the bits below the sign:
     * all-ones exponent = inf/nan */
    const uint16_t mask = s->dtype.code == kDLBfloat ? 0x7f80u : 0x7c00u;
    const uint16_t *h = (const uint16_t *)base;
    for (int64_t i = 0; i < n; i++)
      if ((h[i] & mask) == mask) return 0;
  }
  return 1;
}

qf_status qf_awq_validate_module(qf_awq_layout layout, const char *prefix,
                                 const DLTensor *qweight,
                                 const DLTensor *qzeros,
                                 const DLTensor *scales, const DLTensor *bias,
                                 int bits, int64_t group_size,
                                 qf_awq_module_shape *shape, char *msg,
                                 size_t msz) {
  if (!prefix) prefix = "";
  if (bits != 4)
    return qf__awq_fail(msg, msz, QF_ERR_UNSUPPORTED, "%s: AWQ layouts exist for 4-bit only (bits = %d)",
                prefix[0] ? prefix : "module", bits);
  qf_status st;
  if ((st = check_2d(prefix, "qweight", qweight, msg, msz)) != QF_OK) return st;
  if ((st = check_2d(prefix, "qzeros", qzeros, msg, msz)) != QF_OK) return st;
  if ((st = check_2d(prefix, "scales", scales, msg, msz)) != QF_OK) return st;
  if (!is_int32(qweight->dtype))
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sqweight: expected int32, got %s", prefix,
                dtype_name(qweight->dtype));
  if (!is_int32(qzeros->dtype))
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sqzeros: expected int32, got %s", prefix,
                dtype_name(qzeros->dtype));
  if (!is_float_kind(scales->dtype))
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sscales: expected float16 (or bfloat16/float32), got %s",
                prefix, dtype_name(scales->dtype));

  const int64_t *qw = qweight->shape, *qz = qzeros->shape, *sc = scales->shape;
  int64_t n, k, groups;
  if (layout == QF_AWQ_LAYOUT_GEMM) {
    k = qw[0];
    n = qw[1] * 8;
    groups = sc[0];
    if (qz[1] != qw[1])
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                  "%sqzeros: expected %lld columns (N/8, like qweight [%lld, %lld]), got %lld",
                  prefix, (long long)qw[1], (long long)qw[0], (long long)qw[1], (long long)qz[1]);
    if (sc[1] != n)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                  "%sscales: expected %lld columns (8 x qweight columns), got %lld", prefix,
                  (long long)n, (long long)sc[1]);
    if (qz[0] != groups)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                  "%sqzeros: expected %lld rows (one per group, like scales), got %lld", prefix,
                  (long long)groups, (long long)qz[0]);
  } else {
    n = qw[0];
    k = qw[1] * 8;
    if (n % 8 != 0)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sqweight: out_features %lld is not a multiple of 8",
                  prefix, (long long)n);
    if (qz[0] != n || sc[0] != n)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                  "%sqzeros/scales: expected %lld rows (out_features, like qweight), got %lld/%lld",
                  prefix, (long long)n, (long long)qz[0], (long long)sc[0]);
    if (sc[1] != qz[1] * 8)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                  "%sscales: expected %lld columns (8 x qzeros columns), got %lld", prefix,
                  (long long)(qz[1] * 8), (long long)sc[1]);
    const int64_t g = group_size > 0 ? group_size : k;
    if (g <= 0 || k % g != 0)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sqweight: in_features %lld is not a multiple of group_size %lld",
                  prefix, (long long)k, (long long)g);
    groups = k / g;
    const int64_t zw = qf_awq_gemv_zeros_width(k, g);
    if (zw < 0)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%s: GEMV layout needs group_size 32, 64 or >= 128 (got %lld)",
                  prefix, (long long)g);
    if (qz[1] != zw)
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sqzeros: expected %lld columns for in_features %lld, group %lld; got %lld",
                  prefix, (long long)zw, (long long)k, (long long)g, (long long)qz[1]);
  }
  if (groups <= 0 || k % groups != 0)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                "%sscales: %lld groups do not divide in_features %lld", prefix,
                (long long)groups, (long long)k);
  const int64_t g = k / groups;
  if (group_size > 0 && g != group_size)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                "%sscales: %lld groups over in_features %lld means group size %lld, config says %lld",
                prefix, (long long)groups, (long long)k, (long long)g, (long long)group_size);
  if (group_size <= 0 && groups != 1)
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT,
                "%sscales: group_size -1 expects one group, got %lld", prefix, (long long)groups);
  if (!scales_finite(scales))
    return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sscales: contains inf or NaN", prefix);
  if (bias) {
    if (!is_float_kind(bias->dtype) || bias->ndim != 1 || !bias->shape || bias->shape[0] != n ||
        !bias->data || !is_compact(bias))
      return qf__awq_fail(msg, msz, QF_ERR_FORMAT, "%sbias: expected a float vector of %lld values",
                  prefix, (long long)n);
  }
  if (shape) {
    shape->n = n;
    shape->k = k;
    shape->g = g;
    shape->groups = groups;
  }
  return QF_OK;
}
