/*
 * Validation of one GPTQ module of a pre-quantized checkpoint (AutoGPTQ,
 * GPTQModel, optimum; v1 or v2) before anything reads it: presence of
 * qweight / qzeros / scales, their dtypes, ranks and shapes against each
 * other and against the config's bits and group_size, the g_idx length and
 * range, and the bias shape. Every failure names the module prefix, the
 * tensor and what was expected, and mentions a bit-width mismatch when the
 * shapes fit another width. Also turns validated tensors into an owned
 * qf_gptq_ckpt (scales as float16 bits, g_idx defaulted to k / group_size
 * when the checkpoint has none).
 */
#include <stdlib.h>
#include <string.h>

#include "gptq.h"
#include "qforge/half.h"
#include "qforge/plugin_util.h"

#define OP "load"

static const char *dtype_name(DLDataType t) {
  if (t.lanes != 1) return "vector";
  if (t.code == kDLInt && t.bits == 32) return "int32";
  if (t.code == kDLInt && t.bits == 16) return "int16";
  if (t.code == kDLInt && t.bits == 8) return "int8";
  if (t.code == kDLInt && t.bits == 64) return "int64";
  if (t.code == kDLUInt && t.bits == 32) return "uint32";
  if (t.code == kDLUInt && t.bits == 8) return "uint8";
  if (t.code == kDLFloat && t.bits == 16) return "float16";
  if (t.code == kDLFloat && t.bits == 32) return "float32";
  if (t.code == kDLFloat && t.bits == 64) return "float64";
  if (t.code == kDLBfloat && t.bits == 16) return "bfloat16";
  return "unknown";
}

static int is_i32(DLDataType t) {
  return t.lanes == 1 && t.code == kDLInt && t.bits == 32;
}

static int compact(const DLTensor *t) {
  if (!t->strides) return 1;
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

/* Common checks of one tensor: present, data, rank, dtype kind, compact. */
static qf_status check_basic(const char *prefix, const char *what,
                             const DLTensor *t, int ndim, int want_i32,
                             qf_error *err) {
  if (!t)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "module '%s': tensor '%s%s' is missing (a GPTQ module "
                   "needs qweight, qzeros and scales)", prefix, prefix, what);
  if (t->ndim != ndim)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%s%s' has %d dimensions, expected %d", prefix,
                   what, t->ndim, ndim);
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] <= 0)
      return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                     "tensor '%s%s' has an empty dimension %d", prefix, what,
                     i);
  if (want_i32 && !is_i32(t->dtype))
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%s%s' has dtype %s, expected int32", prefix, what,
                   dtype_name(t->dtype));
  if (!want_i32 && !qf_dtype_is_float(t->dtype))
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%s%s' has dtype %s, expected float16 (or "
                   "float32/bfloat16)", prefix, what, dtype_name(t->dtype));
  if (!compact(t))
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%s%s' is not compact row-major", prefix, what);
  if (!t->data)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%s%s' has no data", prefix, what);
  return QF_OK;
}

/* Which bit width would make `words` words out of `n` values. */
static int width_of(int64_t words, int64_t n) {
  static const int cand[] = {2, 3, 4, 8};
  for (int i = 0; i < 4; i++)
    if (n * cand[i] == words * 32) return cand[i];
  return 0;
}

qf_status qf_gptq_check_module(const char *prefix,
                               const qf_gptq_module_tensors *t, int bits,
                               int group_size, int64_t *rows, int64_t *cols,
                               int64_t *ngroups, qf_error *err) {
  if (!prefix) prefix = "";
  qf_status st;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "bits = %d in the config: expected 2, 3, 4 or 8", bits);
  if ((st = check_basic(prefix, "qweight", t->qweight, 2, 1, err))) return st;
  if ((st = check_basic(prefix, "qzeros", t->qzeros, 2, 1, err))) return st;
  if ((st = check_basic(prefix, "scales", t->scales, 2, 0, err))) return st;
  if (t->g_idx && (st = check_basic(prefix, "g_idx", t->g_idx, 1, 1, err)))
    return st;
  if (t->bias && (st = check_basic(prefix, "bias", t->bias, 1, 0, err)))
    return st;

  const int64_t qr = t->qweight->shape[0], n = t->qweight->shape[1];
  if ((qr * 32) % bits != 0)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sqweight' has %lld rows, not a whole number of "
                   "%d-bit values (bits mismatch?)", prefix, (long long)qr,
                   bits);
  const int64_t k = qr * 32 / bits;
  if (t->scales->shape[1] != n)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sscales' is [%lld, %lld]; expected %lld columns "
                   "(out_features from qweight [%lld, %lld])", prefix,
                   (long long)t->scales->shape[0],
                   (long long)t->scales->shape[1], (long long)n, (long long)qr,
                   (long long)n);
  const int64_t g = t->scales->shape[0];
  if (t->qzeros->shape[0] != g)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sqzeros' has %lld group rows but scales has "
                   "%lld", prefix, (long long)t->qzeros->shape[0],
                   (long long)g);
  if ((n * bits) % 32 != 0 || t->qzeros->shape[1] != n * bits / 32) {
    int other = width_of(t->qzeros->shape[1], n);
    if (other && other != bits)
      return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                     "tensor '%sqzeros' is [%lld, %lld], which is %d-bit "
                     "packing for %lld outputs, but the config says bits = %d "
                     "(bits mismatch)", prefix, (long long)g,
                     (long long)t->qzeros->shape[1], other, (long long)n,
                     bits);
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sqzeros' is [%lld, %lld]; expected [%lld, %lld] "
                   "for %d-bit zeros of %lld outputs", prefix, (long long)g,
                   (long long)t->qzeros->shape[1], (long long)g,
                   (long long)(n * bits / 32), bits, (long long)n);
  }
  if (t->g_idx && t->g_idx->shape[0] != k) {
    int other = width_of(qr, t->g_idx->shape[0]);
    if (other && other != bits)
      return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                     "tensor '%sqweight' has %lld rows for %lld inputs "
                     "(g_idx length): that is %d-bit packing, but the config "
                     "says bits = %d (bits mismatch)", prefix, (long long)qr,
                     (long long)t->g_idx->shape[0], other, bits);
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sg_idx' has %lld entries; expected %lld "
                   "(in_features implied by qweight with bits = %d)", prefix,
                   (long long)t->g_idx->shape[0], (long long)k, bits);
  }
  const int64_t want_g = group_size > 0 ? (k + group_size - 1) / group_size : 1;
  if (g != want_g)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sscales' has %lld groups; group_size = %d with "
                   "%lld inputs implies %lld", prefix, (long long)g,
                   group_size, (long long)k, (long long)want_g);
  if (t->g_idx) {
    const int32_t *gi = (const int32_t *)((const char *)t->g_idx->data +
                                          t->g_idx->byte_offset);
    for (int64_t i = 0; i < k; i++)
      if (gi[i] < 0 || gi[i] >= g)
        return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                       "tensor '%sg_idx'[%lld] = %d is outside [0, %lld)",
                       prefix, (long long)i, gi[i], (long long)g);
  }
  if (t->bias && t->bias->shape[0] != n)
    return qf_fail(err, QF_ERR_FORMAT, QF_GPTQ_PLUGIN, OP,
                   "tensor '%sbias' has %lld entries; expected %lld", prefix,
                   (long long)t->bias->shape[0], (long long)n);
  if (rows) *rows = n;
  if (cols) *cols = k;
  if (ngroups) *ngroups = g;
  return QF_OK;
}

qf_status qf_gptq_ckpt_from_tensors(const qf_gptq_module_tensors *t, int bits,
                                    int group_size, int v2, int64_t rows,
                                    int64_t cols, int64_t ngroups,
                                    qf_gptq_ckpt *out, qf_error *err) {
  memset(out, 0, sizeof *out);
  out->bits = bits;
  out->v2 = v2 ? 1 : 0;
  out->rows = rows;
  out->cols = cols;
  out->ngroups = ngroups;
  out->owned = 1;
  const size_t nqw = (size_t)qf_gptq_words(cols, bits) * (size_t)rows;
  const size_t nqz = (size_t)ngroups * (size_t)qf_gptq_words(rows, bits);
  const size_t nsc = (size_t)ngroups * (size_t)rows;
  out->qweight = malloc(nqw * sizeof(int32_t));
  out->qzeros = malloc(nqz * sizeof(int32_t));
  out->scales = malloc(nsc * sizeof(uint16_t));
  out->g_idx = malloc((size_t)cols * sizeof(int32_t));
  float *tmp = malloc(nsc * sizeof(float));
  if (!out->qweight || !out->qzeros || !out->scales || !out->g_idx || !tmp) {
    free(tmp);
    qf_gptq_ckpt_free(out);
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP,
                   "cannot copy a %lldx%lld GPTQ module", (long long)rows,
                   (long long)cols);
  }
  memcpy(out->qweight, (const char *)t->qweight->data + t->qweight->byte_offset,
         nqw * sizeof(int32_t));
  memcpy(out->qzeros, (const char *)t->qzeros->data + t->qzeros->byte_offset,
         nqz * sizeof(int32_t));
  const DLTensor *s = t->scales;
  if (s->dtype.code == kDLFloat && s->dtype.bits == 16) {
    memcpy(out->scales, (const char *)s->data + s->byte_offset,
           nsc * sizeof(uint16_t));
  } else {
    qf_tensor_to_f32(s, tmp);
    for (size_t i = 0; i < nsc; i++) out->scales[i] = qf_f32_to_f16(tmp[i]);
  }
  free(tmp);
  if (t->g_idx) {
    memcpy(out->g_idx, (const char *)t->g_idx->data + t->g_idx->byte_offset,
           (size_t)cols * sizeof(int32_t));
  } else {
    const int64_t g = group_size > 0 ? group_size : cols;
    for (int64_t i = 0; i < cols; i++) out->g_idx[i] = (int32_t)(i / g);
  }
  return QF_OK;
}
