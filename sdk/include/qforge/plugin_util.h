/*
 * Small header-only helpers for plugin authors: filling a qf_error,
 * splitting checkpoint names, reading DLTensor shapes, building borrowed
 * CPU tensors, copying text into host memory and converting a borrowed
 * f32/f16/bf16 tensor to float32. Everything here is static inline
 * and depends only on plugin.h and half.h, so a third-party plugin needs no
 * library beyond libc to use it.
 */
#ifndef QFORGE_PLUGIN_UTIL_H
#define QFORGE_PLUGIN_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/half.h"
#include "qforge/plugin.h"

/* Fill `err` (may be NULL) and return `code`, so a slot can write
 *   return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gptq", "create", "...");  */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline qf_status qf_fail(qf_error *err, qf_status code,
                                const char *plugin, const char *op,
                                const char *fmt, ...) {
  if (err) {
    err->struct_size = sizeof *err;
    err->code = code;
    snprintf(err->plugin, sizeof err->plugin, "%s", plugin ? plugin : "");
    snprintf(err->op, sizeof err->op, "%s", op ? op : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Is the tensor the float weight kind a plugin can quantize? */
static inline int qf_dtype_is_float(DLDataType t) {
  return t.lanes == 1 && ((t.code == kDLFloat && (t.bits == 32 || t.bits == 16)) ||
                          (t.code == kDLBfloat && t.bits == 16));
}

static inline DLDataType qf_dl_dtype(uint8_t code, uint8_t bits) {
  DLDataType t;
  t.code = code;
  t.bits = bits;
  t.lanes = 1;
  return t;
}

/* Number of elements of a tensor. */
static inline int64_t qf_numel(const DLTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

/* Rows/cols of a weight seen as a matrix: the last dim is cols, everything
 * before it folds into rows (a 1-D tensor is one row). */
static inline void qf_matrix_shape(const DLTensor *t, int64_t *rows,
                                   int64_t *cols) {
  if (t->ndim <= 0) {
    *rows = 1;
    *cols = 1;
    return;
  }
  *cols = t->shape[t->ndim - 1];
  *rows = *cols ? qf_numel(t) / *cols : 0;
}

/* Convert a compact f32/f16/bf16 tensor into `dst` (numel floats). Returns 0
 * on success, -1 if the dtype is not one of those. */
static inline int qf_tensor_to_f32(const DLTensor *t, float *dst) {
  int64_t n = qf_numel(t);
  const char *base = (const char *)t->data + t->byte_offset;
  if (t->dtype.code == kDLFloat && t->dtype.bits == 32) {
    memcpy(dst, base, (size_t)n * sizeof(float));
  } else if (t->dtype.code == kDLFloat && t->dtype.bits == 16) {
    const uint16_t *s = (const uint16_t *)base;
    for (int64_t i = 0; i < n; i++) dst[i] = qf_f16_to_f32(s[i]);
  } else if (t->dtype.code == kDLBfloat && t->dtype.bits == 16) {
    const uint16_t *s = (const uint16_t *)base;
    for (int64_t i = 0; i < n; i++) dst[i] = qf_bf16_to_f32(s[i]);
  } else {
    return -1;
  }
  return 0;
}

/* Build a borrowed, compact CPU DLTensor over `data` (shape is not copied:
 * keep the array alive while the tensor is used). */
static inline DLTensor qf_cpu_tensor(void *data, DLDataType dtype, int ndim,
                                     int64_t *shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.device.device_id = 0;
  t.ndim = ndim;
  t.dtype = dtype;
  t.shape = shape;
  t.strides = NULL;
  t.byte_offset = 0;
  return t;
}

/* qf_cpu_tensor over float32 data (same borrowing rules). */
static inline DLTensor qf_f32_tensor(void *data, int ndim, int64_t *shape) {
  return qf_cpu_tensor(data, qf_dl_dtype(kDLFloat, 32), ndim, shape);
}

/* Copy the NUL-terminated `text` into memory from host->alloc (the caller,
 * usually the host that asked for it, frees it with host->free). Returns
 * NULL when `host` cannot allocate. */
static inline char *qf_host_strdup(const qf_host *host, const char *text) {
  size_t n = strlen(text) + 1;
  char *out = (char *)host->alloc(n);
  if (out) memcpy(out, text, n);
  return out;
}

/* The model's tensor #index (model_tensor_at) or tensor `name`
 * (model_find_tensor) through `host`, into *ti cleared first with its
 * struct_size set. Same status and err as the host slot. */
static inline qf_status qf_host_tensor_at(const qf_host *host, const qf_model *model,
                                          size_t index, qf_tensor_info *ti, qf_error *err) {
  memset(ti, 0, sizeof *ti);
  ti->struct_size = sizeof *ti;
  return host->model_tensor_at(model, index, ti, err);
}
static inline qf_status qf_host_find_tensor(const qf_host *host, const qf_model *model,
                                            const char *name, qf_tensor_info *ti,
                                            qf_error *err) {
  memset(ti, 0, sizeof *ti);
  ti->struct_size = sizeof *ti;
  return host->model_find_tensor(model, name, ti, err);
}

/* If `name` ends with `suffix`, write the part before it (the module
 * prefix, e.g. "model.layers.0.mlp.up_proj." for ".weight" handling done by
 * the caller) into `out` and return 1. */
static inline int qf_strip_suffix(const char *name, const char *suffix,
                                  char *out, size_t out_size) {
  size_t n = strlen(name), s = strlen(suffix);
  if (n < s || strcmp(name + n - s, suffix) != 0) return 0;
  if (n - s + 1 > out_size) return 0;
  memcpy(out, name, n - s);
  out[n - s] = '\0';
  return 1;
}

/* The checks every qf_plugin_init starts with: a host table and an output
 * pointer, the same ABI major, and a host table at least `min_host_size`
 * bytes long (QF_STRUCT_SIZE_TO(qf_host, <last field the plugin uses>)). */
static inline qf_status qf_plugin_check_host(const qf_host *host, const qf_plugin_desc **out,
                                             const char *plugin, size_t min_host_size,
                                             qf_error *err) {
  if (!host || !out)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, plugin, "init",
                   "qf_plugin_init needs a host table and an output pointer");
  if (host->abi_major != QF_ABI_MAJOR)
    return qf_fail(err, QF_ERR_ABI, plugin, "init",
                   "host speaks ABI %u.%u, this plugin was built for ABI %d.%d (majors must match)",
                   (unsigned)host->abi_major, (unsigned)host->abi_minor, QF_ABI_MAJOR,
                   QF_ABI_MINOR);
  if (host->struct_size < min_host_size)
    return qf_fail(err, QF_ERR_ABI, plugin, "init",
                   "host table is %zu bytes, this plugin needs at least %zu", host->struct_size,
                   min_host_size);
  return QF_OK;
}

#endif /* QFORGE_PLUGIN_UTIL_H */
