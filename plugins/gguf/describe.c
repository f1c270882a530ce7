/*
 * describe.c — a GGUF file as the JSON that container_describe returns
 * (`qforge inspect x.gguf [--json]`):
 *   {"format": "gguf", "version": 3, "alignment": 32, "data_offset": N,
 *    "file_size": N, "metadata": {key: value},
 *    "metadata_types": {key: "u32" | "arr[str]" | …},
 *    "tensors": [{"name", "type", "shape" (ne order, as in the file), "bytes",
 *                 "bits_per_weight", "offset"}],
 *    "tensor_count": N, "parameters": N, "bits_per_weight": overall}
 * Scalars become JSON numbers, booleans and strings; arrays of up to 16
 * elements are written out, longer ones are summarized as
 * {"type": "array", "element_type": "str", "length": n, "head": [first 8]}.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_plugin.h"
#include "qforge/plugin_util.h"

#define QF__ARRAY_FULL 16
#define QF__ARRAY_HEAD 8

static json_t *qf__value(const qf_gguf_kv *kv, uint64_t i) {
  qf_gguf_value v = qf_gguf_kv_elem(kv, i);
  switch (kv->elem_type) {
    case QF_GGUF_VT_UINT8:
      return json_integer(v.u8);
    case QF_GGUF_VT_INT8:
      return json_integer(v.i8);
    case QF_GGUF_VT_UINT16:
      return json_integer(v.u16);
    case QF_GGUF_VT_INT16:
      return json_integer(v.i16);
    case QF_GGUF_VT_UINT32:
      return json_integer(v.u32);
    case QF_GGUF_VT_INT32:
      return json_integer(v.i32);
    case QF_GGUF_VT_FLOAT32:
      return json_real(v.f32);
    case QF_GGUF_VT_BOOL:
      return json_boolean(v.b);
    case QF_GGUF_VT_UINT64:
      return json_integer((json_int_t)v.u64);
    case QF_GGUF_VT_INT64:
      return json_integer(v.i64);
    case QF_GGUF_VT_FLOAT64:
      return json_real(v.f64);
    case QF_GGUF_VT_STRING: {
      json_t *s = json_stringn(v.str.data, (size_t)v.str.len);
      if (s) return s;
      /* not UTF-8 (or an embedded NUL): keep the ASCII, mark the rest */
      char *c = malloc((size_t)v.str.len + 1);
      if (!c) return json_null();
      for (uint64_t k = 0; k < v.str.len; k++) {
        unsigned char b = (unsigned char)v.str.data[k];
        c[k] = b >= 0x20 && b < 0x7f ? (char)b : '?';
      }
      s = json_stringn(c, (size_t)v.str.len);
      free(c);
      return s ? s : json_null();
    }
    default:
      return json_null();
  }
}

static json_t *qf__kv_json(const qf_gguf_kv *kv) {
  if (kv->type != QF_GGUF_VT_ARRAY) return qf__value(kv, 0);
  json_t *arr = json_array();
  uint64_t shown = kv->n <= QF__ARRAY_FULL ? kv->n : QF__ARRAY_HEAD;
  for (uint64_t i = 0; i < shown; i++) json_array_append_new(arr, qf__value(kv, i));
  if (kv->n <= QF__ARRAY_FULL) return arr;
  json_t *o = json_object();
  json_object_set_new(o, "type", json_string("array"));
  json_object_set_new(o, "element_type", json_string(qf_gguf_vtype_name(kv->elem_type)));
  json_object_set_new(o, "length", json_integer((json_int_t)kv->n));
  json_object_set_new(o, "head", arr);
  return o;
}

qf_status qf_gguf_describe(const char *in_path, char **json_out, qf_error *err) {
  qf_gguf_file *f = NULL;
  qf_status st = qf_gguf_open(in_path, &f, err);
  if (st != QF_OK) return st;
  json_t *root = json_object(), *meta = json_object(), *types = json_object();
  json_object_set_new(root, "format", json_string("gguf"));
  json_object_set_new(root, "version", json_integer(qf_gguf_version(f)));
  json_object_set_new(root, "alignment", json_integer(qf_gguf_alignment(f)));
  json_object_set_new(root, "data_offset", json_integer((json_int_t)qf_gguf_data_offset(f)));
  json_object_set_new(root, "file_size", json_integer((json_int_t)qf_gguf_file_size(f)));
  for (size_t i = 0; i < qf_gguf_kv_count(f); i++) {
    const qf_gguf_kv *kv = qf_gguf_kv_at(f, i);
    json_object_set_new(meta, kv->key, qf__kv_json(kv));
    char tn[48];
    if (kv->type == QF_GGUF_VT_ARRAY)
      snprintf(tn, sizeof tn, "arr[%s]", qf_gguf_vtype_name(kv->elem_type));
    else
      snprintf(tn, sizeof tn, "%s", qf_gguf_vtype_name(kv->type));
    json_object_set_new(types, kv->key, json_string(tn));
  }
  json_object_set_new(root, "metadata", meta);
  json_object_set_new(root, "metadata_types", types);
  json_t *tensors = json_array();
  double bits = 0, params = 0;
  for (size_t i = 0; i < qf_gguf_tensor_count(f); i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
    json_t *jt = json_object(), *shape = json_array();
    const char *tname = NULL;
    qf_gguf_ggml_type_info(t->type, &tname, NULL, NULL);
    uint32_t nd = t->n_dims ? t->n_dims : 1;
    for (uint32_t d = 0; d < nd; d++) json_array_append_new(shape, json_integer(t->ne[d]));
    int64_t ne = qf_gguf_tensor_nelements(t);
    json_object_set_new(jt, "name", json_string(t->name));
    json_object_set_new(jt, "type", json_string(tname ? tname : "?"));
    json_object_set_new(jt, "shape", shape);
    json_object_set_new(jt, "bytes", json_integer((json_int_t)t->nbytes));
    json_object_set_new(jt, "bits_per_weight",
                        json_real(ne > 0 ? 8.0 * (double)t->nbytes / (double)ne : 0.0));
    json_object_set_new(jt, "offset", json_integer((json_int_t)t->offset));
    json_array_append_new(tensors, jt);
    bits += 8.0 * (double)t->nbytes;
    params += (double)ne;
  }
  json_object_set_new(root, "tensors", tensors);
  json_object_set_new(root, "tensor_count", json_integer((json_int_t)qf_gguf_tensor_count(f)));
  json_object_set_new(root, "parameters", json_integer((json_int_t)params));
  json_object_set_new(root, "bits_per_weight", json_real(params > 0 ? bits / params : 0.0));
  *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(root);
  qf_gguf_close(f);
  if (!*json_out)
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_GGUF_PLUGIN, "describe", "out of memory");
  return QF_OK;
}
