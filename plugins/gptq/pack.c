/*
 * The GPTQ checkpoint layout of AutoGPTQ / GPTQModel / optimum
 * (`checkpoint_format` "gptq" = v1 and "gptq_v2"): qweight packs the
 * integers along K (input rows) into int32 words, qzeros packs the zero
 * points along N per group, scales are float16 [groups][N] and g_idx gives
 * each input row its group. One rule covers 2, 3, 4 and 8 bits: for a fixed
 * column, values form a little-endian bit stream, value i at bits
 * [b·i, b·i + b), so 3-bit values 10 and 21 of every 32 straddle word
 * boundaries exactly as AutoGPTQ's "10 | 1 | 10 | 1 | 10" loop writes them.
 * v1 stores zero − 1 (a true zero of 0 is written as maxq, which readers
 * that mask (stored + 1) recover); v2 stores the zero itself. Unpacking,
 * dequantization and in-place v1↔v2 conversion (field-wise, no borrow
 * across fields) live here too.
 */
#include <stdlib.h>
#include <string.h>

#include "gptq.h"
#include "qforge/half.h"
#include "qforge/plugin_util.h"

void qf_gptq_bitpack(const int32_t *vals, int64_t stride, int64_t n, int bits,
                     uint32_t *words, int64_t wstride) {
  const int64_t nw = (n * bits + 31) / 32;
  const uint32_t mask = (1u << bits) - 1u;
  for (int64_t j = 0; j < nw; j++) words[j * wstride] = 0;
  for (int64_t i = 0; i < n; i++) {
    const uint32_t v = (uint32_t)vals[i * stride] & mask;
    const int64_t bit = (int64_t)bits * i;
    const int64_t w = bit >> 5;
    const int s = (int)(bit & 31);
    words[w * wstride] |= v << s;
    if (s + bits > 32) words[(w + 1) * wstride] |= v >> (32 - s);
  }
}

void qf_gptq_ckpt_free(qf_gptq_ckpt *c) {
  if (!c) return;
  if (c->owned) {
    free(c->qweight);
    free(c->qzeros);
    free(c->scales);
    free(c->g_idx);
  }
  memset(c, 0, sizeof *c);
}

qf_status qf_gptq_pack(int bits, int64_t rows, int64_t cols, int64_t ngroups,
                       const uint8_t *q, const float *scale,
                       const float *zero, const int32_t *g_idx, int v2,
                       qf_gptq_ckpt *out, int64_t *v1_zero_underflow,
                       qf_error *err) {
  memset(out, 0, sizeof *out);
  if (v1_zero_underflow) *v1_zero_underflow = 0;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "pack",
                   "bits = %d: expected 2, 3, 4 or 8", bits);
  if (rows <= 0 || cols <= 0 || ngroups <= 0 || ngroups > cols)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "pack",
                   "bad layer shape %lldx%lld with %lld groups",
                   (long long)rows, (long long)cols, (long long)ngroups);
  if (cols % 32 != 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "pack",
                   "in_features = %lld: the GPTQ layout needs a multiple of 32",
                   (long long)cols);
  if ((rows * bits) % 32 != 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "pack",
                   "out_features = %lld: %d-bit qzeros need out_features·%d "
                   "to be a multiple of 32", (long long)rows, bits, bits);
  const int64_t kw = qf_gptq_words(cols, bits), nw = qf_gptq_words(rows, bits);
  const int32_t maxq = (1 << bits) - 1;
  out->bits = bits;
  out->v2 = v2 ? 1 : 0;
  out->rows = rows;
  out->cols = cols;
  out->ngroups = ngroups;
  out->owned = 1;
  out->qweight = malloc((size_t)kw * (size_t)rows * sizeof(int32_t));
  out->qzeros = malloc((size_t)ngroups * (size_t)nw * sizeof(int32_t));
  out->scales = malloc((size_t)ngroups * (size_t)rows * sizeof(uint16_t));
  out->g_idx = malloc((size_t)cols * sizeof(int32_t));
  int32_t *tmp = malloc((size_t)(cols > rows ? cols : rows) * sizeof(int32_t));
  if (!out->qweight || !out->qzeros || !out->scales || !out->g_idx || !tmp) {
    free(tmp);
    qf_gptq_ckpt_free(out);
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, "pack",
                   "cannot allocate packed tensors");
  }
  for (int64_t k = 0; k < cols; k++) {
    if (g_idx[k] < 0 || g_idx[k] >= ngroups) {
      free(tmp);
      qf_gptq_ckpt_free(out);
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "pack",
                     "g_idx[%lld] = %d is outside [0, %lld)", (long long)k,
                     g_idx[k], (long long)ngroups);
    }
    out->g_idx[k] = g_idx[k];
  }
  for (int64_t n = 0; n < rows; n++) {
    const uint8_t *src = q + n * cols;
    for (int64_t k = 0; k < cols; k++) {
      if (src[k] > maxq) {
        free(tmp);
        qf_gptq_ckpt_free(out);
        return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, "pack",
                       "integer %u at (%lld, %lld) exceeds %d bits", src[k],
                       (long long)n, (long long)k, bits);
      }
      tmp[k] = src[k];
    }
    qf_gptq_bitpack(tmp, 1, cols, bits, (uint32_t *)out->qweight + n, rows);
  }
  int64_t under = 0;
  for (int64_t g = 0; g < ngroups; g++) {
    for (int64_t n = 0; n < rows; n++) {
      const float z = zero[n * ngroups + g];
      int32_t zi = (int32_t)z;
      if (zi < 0) zi = 0;
      if (zi > maxq) zi = maxq;
      if (!v2) {
        if (zi == 0) under++;
        zi = (zi - 1) & maxq;
      }
      tmp[n] = zi;
      out->scales[g * rows + n] = qf_f32_to_f16(scale[n * ngroups + g]);
    }
    qf_gptq_bitpack(tmp, 1, rows, bits, (uint32_t *)out->qzeros + g * nw, 1);
  }
  if (v1_zero_underflow) *v1_zero_underflow = under;
  free(tmp);
  return QF_OK;
}

void qf_gptq_unpack_ints(const qf_gptq_ckpt *c, uint8_t *q) {
  const uint32_t *qw = (const uint32_t *)c->qweight;
  for (int64_t n = 0; n < c->rows; n++)
    for (int64_t k = 0; k < c->cols; k++)
      q[n * c->cols + k] = (uint8_t)qf_gptq_field(qw + n, c->rows, k, c->bits);
}

void qf_gptq_unpack_zeros(const qf_gptq_ckpt *c, int32_t *z) {
  const int64_t nw = qf_gptq_words(c->rows, c->bits);
  const uint32_t maxq = (1u << c->bits) - 1u;
  for (int64_t g = 0; g < c->ngroups; g++) {
    const uint32_t *row = (const uint32_t *)c->qzeros + g * nw;
    for (int64_t n = 0; n < c->rows; n++) {
      uint32_t f = qf_gptq_field(row, 1, n, c->bits);
      z[g * c->rows + n] = (int32_t)(c->v2 ? f : ((f + 1u) & maxq));
    }
  }
}

void qf_gptq_dequant(const qf_gptq_ckpt *c, float *w) {
  int32_t *z = malloc((size_t)c->ngroups * (size_t)c->rows * sizeof(int32_t));
  float *s = malloc((size_t)c->ngroups * (size_t)c->rows * sizeof(float));
  const uint32_t *qw = (const uint32_t *)c->qweight;
  if (!z || !s) {
    /* no memory: still defined output (zeros) rather than a crash */
    memset(w, 0, (size_t)c->rows * (size_t)c->cols * sizeof(float));
    free(z);
    free(s);
    return;
  }
  qf_gptq_unpack_zeros(c, z);
  for (int64_t i = 0; i < c->ngroups * c->rows; i++)
    s[i] = qf_f16_to_f32(c->scales[i]);
  for (int64_t n = 0; n < c->rows; n++)
    for (int64_t k = 0; k < c->cols; k++) {
      const int64_t g = c->g_idx[k];
      const int32_t qi = (int32_t)qf_gptq_field(qw + n, c->rows, k, c->bits);
      w[n * c->cols + k] =
          s[g * c->rows + n] * (float)(qi - z[g * c->rows + n]);
    }
  free(z);
  free(s);
}

void qf_gptq_qzeros_convert(int32_t *qzeros, int64_t ngroups, int64_t rows,
                            int bits, int to_v2) {
  const int64_t nw = qf_gptq_words(rows, bits);
  const uint32_t maxq = (1u << bits) - 1u;
  int32_t *tmp = malloc((size_t)rows * sizeof(int32_t));
  if (!tmp) return;
  for (int64_t g = 0; g < ngroups; g++) {
    uint32_t *row = (uint32_t *)qzeros + g * nw;
    for (int64_t n = 0; n < rows; n++) {
      uint32_t f = qf_gptq_field(row, 1, n, bits);
      tmp[n] = (int32_t)((to_v2 ? f + 1u : f - 1u) & maxq);
    }
    qf_gptq_bitpack(tmp, 1, rows, bits, row, 1);
  }
  free(tmp);
}
