/*
 * gguf_kv.c — queries on an open GGUF file: file facts, key/value records,
 * typed getters and the tensor directory.
 *
 * Purpose: everything a caller asks of a validated qf_gguf_file. Values are
 * decoded from their little-endian bytes on demand (records point into the
 * mapping and may be unaligned); typed getters insist on the exact GGUF type,
 * as llama.cpp's loader does, and explain a mismatch with the file, offset
 * and both types.
 */
#include <inttypes.h>
#include <string.h>

#include "gguf_internal.h"
#include "qforge/plugin_util.h"

const char *qf_gguf_path(const qf_gguf_file *f) { return f->path; }
uint32_t qf_gguf_version(const qf_gguf_file *f) { return f->version; }
uint64_t qf_gguf_file_size(const qf_gguf_file *f) { return f->size; }
const void *qf_gguf_file_data(const qf_gguf_file *f) { return f->base; }
uint32_t qf_gguf_alignment(const qf_gguf_file *f) { return f->alignment; }
uint32_t qf_gguf_data_alignment(const qf_gguf_file *f) { return f->data_alignment; }
const char *qf_gguf_layout_note(const qf_gguf_file *f) { return f->note; }
uint64_t qf_gguf_data_offset(const qf_gguf_file *f) { return f->data_offset; }
int qf_gguf_is_strict_layout(const qf_gguf_file *f) { return f->strict_layout; }

size_t qf_gguf_kv_count(const qf_gguf_file *f) { return f->n_kv; }

const qf_gguf_kv *qf_gguf_kv_at(const qf_gguf_file *f, size_t i) {
  return i < f->n_kv ? &f->kvs[i] : NULL;
}

const qf_gguf_kv *qf_gguf_find_kv(const qf_gguf_file *f, const char *key) {
  long long i = qf__gguf_index_find(&f->kv_index, f->kvs, sizeof *f->kvs, key);
  return i < 0 ? NULL : &f->kvs[i];
}

qf_gguf_value qf_gguf_kv_elem(const qf_gguf_kv *kv, uint64_t i) {
  qf_gguf_value v;
  memset(&v, 0, sizeof v);
  if (!kv || i >= kv->n) return v;
  if (kv->elem_type == QF_GGUF_VT_STRING) {
    v.str = kv->strs[i];
    return v;
  }
  const uint8_t *p = kv->value + i * qf_gguf_vtype_size(kv->elem_type);
  uint32_t u32;
  uint64_t u64;
  switch (kv->elem_type) {
    case QF_GGUF_VT_UINT8:
      v.u8 = p[0];
      break;
    case QF_GGUF_VT_INT8:
      v.i8 = (int8_t)p[0];
      break;
    case QF_GGUF_VT_BOOL:
      v.b = p[0] != 0;
      break;
    case QF_GGUF_VT_UINT16:
      v.u16 = qf__rd_u16(p);
      break;
    case QF_GGUF_VT_INT16:
      v.i16 = (int16_t)qf__rd_u16(p);
      break;
    case QF_GGUF_VT_UINT32:
      v.u32 = qf__rd_u32(p);
      break;
    case QF_GGUF_VT_INT32:
      v.i32 = (int32_t)qf__rd_u32(p);
      break;
    case QF_GGUF_VT_FLOAT32:
      u32 = qf__rd_u32(p);
      memcpy(&v.f32, &u32, 4);
      break;
    case QF_GGUF_VT_UINT64:
      v.u64 = qf__rd_u64(p);
      break;
    case QF_GGUF_VT_INT64:
      v.i64 = (int64_t)qf__rd_u64(p);
      break;
    case QF_GGUF_VT_FLOAT64:
      u64 = qf__rd_u64(p);
      memcpy(&v.f64, &u64, 8);
      break;
    default:
      break;
  }
  return v;
}

int qf_gguf_kv_copy(const qf_gguf_kv *kv, void *dst, size_t dst_size) {
  if (!kv || kv->elem_type == QF_GGUF_VT_STRING) return -1;
  size_t es = qf_gguf_vtype_size(kv->elem_type);
  if (es == 0 || kv->n > dst_size / es) return -1;
  uint8_t *d = dst;
  for (uint64_t i = 0; i < kv->n; i++) {
    qf_gguf_value v = qf_gguf_kv_elem(kv, i);
    if (kv->elem_type == QF_GGUF_VT_BOOL) {
      d[i] = v.b ? 1 : 0;
    } else {
      memcpy(d + i * es, &v, es); /* union members start at offset 0 */
    }
  }
  return 0;
}

static void type_text(const qf_gguf_kv *kv, char *buf, size_t n) {
  if (kv->type == QF_GGUF_VT_ARRAY)
    snprintf(buf, n, "arr[%s]", qf_gguf_vtype_name(kv->elem_type));
  else
    snprintf(buf, n, "%s", qf_gguf_vtype_name(kv->type));
}

/* Find `key` and check it is a scalar of `vt` (or, with arr, an array of vt). */
static qf_status lookup(const qf_gguf_file *f, const char *key, qf_gguf_vtype vt, int arr,
                        const qf_gguf_kv **out, qf_error *err) {
  const qf_gguf_kv *kv = key ? qf_gguf_find_kv(f, key) : NULL;
  if (!kv)
    return qf_fail(err, QF_ERR_NOT_FOUND, "gguf", "get", "%s: key '%s' not found", f->path,
                   key ? key : "(null)");
  int ok = arr ? (kv->type == QF_GGUF_VT_ARRAY && kv->elem_type == vt) : kv->type == vt;
  if (!ok) {
    char have[32];
    type_text(kv, have, sizeof have);
    return qf_fail(err, QF_ERR_FORMAT, "gguf", "get",
                   "%s: offset %" PRIu64 ": key '%s' has type %s, expected %s%s%s", f->path,
                   kv->offset, kv->key, have, arr ? "arr[" : "", qf_gguf_vtype_name(vt),
                   arr ? "]" : "");
  }
  *out = kv;
  return QF_OK;
}

#define QF_GGUF_GETTER(fn, ctype, vt, member)                                       \
  qf_status fn(const qf_gguf_file *f, const char *key, ctype *out, qf_error *err) { \
    const qf_gguf_kv *kv;                                                           \
    qf_status st = lookup(f, key, vt, 0, &kv, err);                                 \
    if (st == QF_OK && out) *out = qf_gguf_kv_elem(kv, 0).member;                   \
    return st;                                                                      \
  }

QF_GGUF_GETTER(qf_gguf_get_u8, uint8_t, QF_GGUF_VT_UINT8, u8)
QF_GGUF_GETTER(qf_gguf_get_i8, int8_t, QF_GGUF_VT_INT8, i8)
QF_GGUF_GETTER(qf_gguf_get_u16, uint16_t, QF_GGUF_VT_UINT16, u16)
QF_GGUF_GETTER(qf_gguf_get_i16, int16_t, QF_GGUF_VT_INT16, i16)
QF_GGUF_GETTER(qf_gguf_get_u32, uint32_t, QF_GGUF_VT_UINT32, u32)
QF_GGUF_GETTER(qf_gguf_get_i32, int32_t, QF_GGUF_VT_INT32, i32)
QF_GGUF_GETTER(qf_gguf_get_f32, float, QF_GGUF_VT_FLOAT32, f32)
QF_GGUF_GETTER(qf_gguf_get_bool, bool, QF_GGUF_VT_BOOL, b)
QF_GGUF_GETTER(qf_gguf_get_u64, uint64_t, QF_GGUF_VT_UINT64, u64)
QF_GGUF_GETTER(qf_gguf_get_i64, int64_t, QF_GGUF_VT_INT64, i64)
QF_GGUF_GETTER(qf_gguf_get_f64, double, QF_GGUF_VT_FLOAT64, f64)
QF_GGUF_GETTER(qf_gguf_get_str, qf_gguf_string, QF_GGUF_VT_STRING, str)

qf_status qf_gguf_get_arr(const qf_gguf_file *f, const char *key, qf_gguf_vtype elem_type,
                          const qf_gguf_kv **out, qf_error *err) {
  const qf_gguf_kv *kv;
  qf_status st = lookup(f, key, elem_type, 1, &kv, err);
  if (st == QF_OK && out) *out = kv;
  return st;
}

size_t qf_gguf_tensor_count(const qf_gguf_file *f) { return f->n_tensors; }

const qf_gguf_tensor *qf_gguf_tensor_at(const qf_gguf_file *f, size_t i) {
  return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const qf_gguf_tensor *qf_gguf_find_tensor(const qf_gguf_file *f, const char *name) {
  long long i = qf__gguf_index_find(&f->tensor_index, f->tensors, sizeof *f->tensors, name);
  return i < 0 ? NULL : &f->tensors[i];
}

int64_t qf_gguf_tensor_nelements(const qf_gguf_tensor *t) {
  return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
