/*
 * Text formats of bitsandbytes checkpoints: the packed QuantState JSON blob
 * stored as `weight.quant_state.bitsandbytes__<type>` (spec 6.2: json.dumps
 * defaults, fixed key order, Python float repr), and the
 * `quantization_config` dict (BitsAndBytesConfig.to_dict, hf_quantizer 3.4,
 * sorted keys as config.json holds it). Output is hand-formatted because
 * json.dumps' separators and number formatting must be reproduced byte
 * for byte; input is parsed with jansson. Also the torch dtype names used
 * in both.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"

/* ------------------------------------------------------------ helpers */

void qf__bnb_set_msg(char *msg, size_t size, const char *fmt, ...) {
  if (!msg || !size) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, size, fmt, ap);
  va_end(ap);
}

/* A growable string; on allocation failure `oom` sticks. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = (char *)realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal as json.dumps(ensure_ascii=True) writes it. */
static void sb_json_string(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  const unsigned char *p = (const unsigned char *)s;
  char tmp[16];
  while (*p) {
    unsigned c = *p;
    if (c == '"') {
      sb_str(b, "\\\"");
      p++;
    } else if (c == '\\') {
      sb_str(b, "\\\\");
      p++;
    } else if (c == '\n') {
      sb_str(b, "\\n");
      p++;
    } else if (c == '\r') {
      sb_str(b, "\\r");
      p++;
    } else if (c == '\t') {
      sb_str(b, "\\t");
      p++;
    } else if (c == '\b') {
      sb_str(b, "\\b");
      p++;
    } else if (c == '\f') {
      sb_str(b, "\\f");
      p++;
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(tmp, sizeof tmp, "\\u%04x", c);
      sb_str(b, tmp);
      p++;
    } else if (c < 0x80) {
      sb_put(b, (const char *)p, 1);
      p++;
    } else {
      /* decode UTF-8 (jansson validated it) and escape as \uXXXX */
      unsigned cp = 0;
      int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
      cp = c & (0x3fu >> extra);
      p++;
      for (int i = 0; i < extra && *p; i++, p++) cp = (cp << 6) | (*p & 0x3fu);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                 0xdc00 + (cp & 0x3ff));
      } else {
        snprintf(tmp, sizeof tmp, "\\u%04x", cp);
      }
      sb_str(b, tmp);
    }
  }
  sb_put(b, "\"", 1);
}

/* ------------------------------------------------------------ float repr */

int qf_bnb_py_float_repr(double v, char *buf, size_t size) {
  if (isnan(v)) return snprintf(buf, size, "NaN");
  if (isinf(v)) return snprintf(buf, size, v > 0 ? "Infinity" : "-Infinity");
  if (v == 0.0) return snprintf(buf, size, signbit(v) ? "-0.0" : "0.0");
  char e[40];
  int p;
  for (p = 1; p <= 17; p++) {
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    if (strtod(e, NULL) == v) break;
  }
  /* e = [-]d[.ddd]e[+-]XX */
  const char *s = e;
  int neg = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  char digits[24];
  int nd = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9') digits[nd++] = *s;
  int exp10 = atoi(s + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = '\0';
  char out[64];
  size_t o = 0;
  if (neg) out[o++] = '-';
  if (exp10 < -4 || exp10 >= 16) {
    out[o++] = digits[0];
    if (nd > 1) {
      out[o++] = '.';
      for (int i = 1; i < nd; i++) out[o++] = digits[i];
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d",
                          exp10 < 0 ? '-' : '+', abs(exp10));
  } else if (exp10 >= 0) {
    for (int i = 0; i <= exp10; i++) out[o++] = i < nd ? digits[i] : '0';
    out[o++] = '.';
    if (nd > exp10 + 1)
      for (int i = exp10 + 1; i < nd; i++) out[o++] = digits[i];
    else
      out[o++] = '0';
  } else {
    out[o++] = '0';
    out[o++] = '.';
    for (int i = 0; i < -exp10 - 1; i++) out[o++] = '0';
    for (int i = 0; i < nd; i++) out[o++] = digits[i];
  }
  out[o] = '\0';
  return snprintf(buf, size, "%s", out);
}

/* ------------------------------------------------------------ dtypes */

static const struct {
  const char *name;
  uint8_t code, bits;
} k_dtypes[] = {
    {"float16", kDLFloat, 16}, {"bfloat16", kDLBfloat, 16},
    {"float32", kDLFloat, 32}, {"float64", kDLFloat, 64},
    {"uint8", kDLUInt, 8},     {"int8", kDLInt, 8},
};

int qf_bnb_dtype_from_name(const char *name, DLDataType *out) {
  if (!name) return -1;
  if (strncmp(name, "torch.", 6) == 0) name += 6;
  for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++) {
    if (strcmp(name, k_dtypes[i].name) == 0) {
      out->code = k_dtypes[i].code;
      out->bits = k_dtypes[i].bits;
      out->lanes = 1;
      return 0;
    }
  }
  return -1;
}

const char *qf_bnb_dtype_name(DLDataType t) {
  if (t.lanes != 1) return NULL;
  for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
    if (t.code == k_dtypes[i].code && t.bits == k_dtypes[i].bits)
      return k_dtypes[i].name;
  return NULL;
}

size_t qf_bnb_dtype_size(DLDataType t) {
  return (size_t)t.bits * (t.lanes ? t.lanes : 1) / 8;
}

/* ------------------------------------------------------------ QuantState JSON */

int qf_bnb_qmeta_to_json(const qf_bnb_qmeta *m, char *buf, size_t size) {
  sbuf b = {0};
  char tmp[64];
  sb_str(&b, "{\"quant_type\": ");
  sb_json_string(&b, qf_bnb_qtype_name(m->qtype));
  snprintf(tmp, sizeof tmp, ", \"blocksize\": %lld, \"dtype\": ",
           (long long)m->blocksize);
  sb_str(&b, tmp);
  sb_json_string(&b, m->dtype);
  sb_str(&b, ", \"shape\": [");
  for (int i = 0; i < m->ndim; i++) {
    snprintf(tmp, sizeof tmp, "%s%lld", i ? ", " : "", (long long)m->shape[i]);
    sb_str(&b, tmp);
  }
  sb_str(&b, "]");
  if (m->nested) {
    snprintf(tmp, sizeof tmp, ", \"nested_blocksize\": %lld",
             (long long)m->nested_blocksize);
    sb_str(&b, tmp);
    sb_str(&b, ", \"nested_dtype\": \"float32\", \"nested_offset\": ");
    qf_bnb_py_float_repr((double)m->nested_offset, tmp, sizeof tmp);
    sb_str(&b, tmp);
  }
  sb_str(&b, "}");
  int len = -1;
  if (!b.oom && b.len < size) {
    memcpy(buf, b.p, b.len + 1);
    len = (int)b.len;
  }
  free(b.p);
  return len;
}

static const char *const k_qs_keys[] = {
    "quant_type", "blocksize", "dtype", "shape",
    "nested_blocksize", "nested_dtype", "nested_offset"};

int qf_bnb_qmeta_parse(const char *json, size_t len, const char *what,
                       qf_bnb_qmeta *out, char *msg, size_t msg_size) {
  memset(out, 0, sizeof *out);
  json_error_t jerr;
  json_t *root = json_loadb(json, len, 0, &jerr);
  if (!root) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s': quant_state is not valid JSON (%s)",
            what, jerr.text);
    return -1;
  }
  int rc = -1;
  if (!json_is_object(root)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s': quant_state JSON is not an object",
            what);
    goto done;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    int ok = 0;
    for (size_t i = 0; i < sizeof k_qs_keys / sizeof k_qs_keys[0]; i++)
      if (strcmp(key, k_qs_keys[i]) == 0) ok = 1;
    if (!ok) {
      qf__bnb_set_msg(msg, msg_size, "tensor '%s': unknown quant_state field '%s'",
              what, key);
      goto done;
    }
  }
  json_t *qt = json_object_get(root, "quant_type");
  int t = json_is_string(qt) ? qf_bnb_qtype_parse(json_string_value(qt)) : -1;
  if (t < 0) {
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s': quant_type must be \"nf4\" or \"fp4\", found %s",
            what, json_is_string(qt) ? json_string_value(qt) : "none");
    goto done;
  }
  out->qtype = (qf_bnb_qtype)t;
  json_t *bs = json_object_get(root, "blocksize");
  if (!json_is_integer(bs) || !qf_bnb_blocksize_valid(json_integer_value(bs))) {
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s': blocksize must be a power of two in [32, 4096]",
            what);
    goto done;
  }
  out->blocksize = json_integer_value(bs);
  json_t *dt = json_object_get(root, "dtype");
  DLDataType d;
  if (!json_is_string(dt) || qf_bnb_dtype_from_name(json_string_value(dt), &d) ||
      d.code == kDLUInt || d.code == kDLInt) {
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s': dtype must be \"float16\", \"bfloat16\" or "
            "\"float32\"",
            what);
    goto done;
  }
  snprintf(out->dtype, sizeof out->dtype, "%s", qf_bnb_dtype_name(d));
  json_t *sh = json_object_get(root, "shape");
  if (!json_is_array(sh) || json_array_size(sh) < 1 || json_array_size(sh) > 8) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s': shape must be a list of 1 to 8 ints",
            what);
    goto done;
  }
  out->ndim = (int)json_array_size(sh);
  for (int i = 0; i < out->ndim; i++) {
    json_t *e = json_array_get(sh, (size_t)i);
    if (!json_is_integer(e) || json_integer_value(e) < 0) {
      qf__bnb_set_msg(msg, msg_size, "tensor '%s': shape[%d] is not a non-negative int",
              what, i);
      goto done;
    }
    out->shape[i] = json_integer_value(e);
  }
  json_t *nb = json_object_get(root, "nested_blocksize");
  json_t *nd = json_object_get(root, "nested_dtype");
  json_t *no = json_object_get(root, "nested_offset");
  if (nb || nd || no) {
    if (!json_is_integer(nb) || json_integer_value(nb) <= 0) {
      qf__bnb_set_msg(msg, msg_size,
              "tensor '%s': nested_blocksize must be a positive int", what);
      goto done;
    }
    if (!json_is_string(nd) || strcmp(json_string_value(nd), "float32") != 0) {
      qf__bnb_set_msg(msg, msg_size, "tensor '%s': nested_dtype must be \"float32\"",
              what);
      goto done;
    }
    if (!json_is_number(no)) {
      qf__bnb_set_msg(msg, msg_size, "tensor '%s': nested_offset must be a number",
              what);
      goto done;
    }
    out->nested = 1;
    out->nested_blocksize = json_integer_value(nb);
    out->nested_offset = (float)json_number_value(no);
  }
  rc = 0;
done:
  json_decref(root);
  return rc;
}

/* ------------------------------------------------------------ config */

static int get_bool(json_t *root, const char *key, int def, int *out,
                    char *msg, size_t msg_size) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) {
    *out = def;
    return 0;
  }
  if (!json_is_boolean(v)) {
    qf__bnb_set_msg(msg, msg_size, "config key '%s': expected true or false", key);
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

static int get_dtype_name(json_t *root, const char *key, const char *def,
                          int storage, char *dst, size_t dst_size, char *msg,
                          size_t msg_size) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) {
    snprintf(dst, dst_size, "%s", def);
    return 0;
  }
  DLDataType d;
  if (!json_is_string(v) || qf_bnb_dtype_from_name(json_string_value(v), &d) ||
      (!storage && (d.code == kDLUInt || d.code == kDLInt || d.bits == 64))) {
    qf__bnb_set_msg(msg, msg_size,
            storage ? "config key '%s': expected one of float16, float32, "
                      "int8, uint8, float64, bfloat16"
                    : "config key '%s': expected float16, bfloat16 or float32",
            key);
    return -1;
  }
  snprintf(dst, dst_size, "%s", qf_bnb_dtype_name(d));
  return 0;
}

int qf_bnb_config_parse(const char *json, qf_bnb_config *c, char *msg,
                        size_t msg_size) {
  memset(c, 0, sizeof *c);
  c->llm_int8_threshold = 6.0;
  c->skip_is_null = 1;
  c->quant_type = QF_BNB_FP4;
  c->blocksize = QF_BNB_BLOCKSIZE_DEFAULT;
  snprintf(c->compute_dtype, sizeof c->compute_dtype, "float32");
  snprintf(c->quant_storage, sizeof c->quant_storage, "uint8");
  json_error_t jerr;
  json_t *root = json_loads(json ? json : "{}", 0, &jerr);
  if (!root) {
    qf__bnb_set_msg(msg, msg_size, "quantization_config is not valid JSON: %s (line %d)",
            jerr.text, jerr.line);
    return -1;
  }
  int rc = -1;
  if (!json_is_object(root)) {
    qf__bnb_set_msg(msg, msg_size, "quantization_config must be a JSON object");
    goto done;
  }
  json_t *qm = json_object_get(root, "quant_method");
  if (qm && !json_is_null(qm) &&
      (!json_is_string(qm) ||
       strcmp(json_string_value(qm), "bitsandbytes") != 0)) {
    qf__bnb_set_msg(msg, msg_size, "config key 'quant_method': expected \"bitsandbytes\"");
    goto done;
  }
  /* the public keys win over the private copies to_dict also writes */
  int l4 = 0, l8 = 0;
  const char *k4 = json_object_get(root, "load_in_4bit") ? "load_in_4bit"
                                                          : "_load_in_4bit";
  const char *k8 = json_object_get(root, "load_in_8bit") ? "load_in_8bit"
                                                          : "_load_in_8bit";
  if (get_bool(root, k4, 0, &l4, msg, msg_size) ||
      get_bool(root, k8, 0, &l8, msg, msg_size))
    goto done;
  if (l4 && l8) {
    qf__bnb_set_msg(msg, msg_size,
            "config keys 'load_in_4bit' and 'load_in_8bit' are both true; "
            "choose one");
    goto done;
  }
  if (!l4 && !l8) {
    qf__bnb_set_msg(msg, msg_size,
            "config keys 'load_in_4bit' / 'load_in_8bit': one must be true");
    goto done;
  }
  c->load_in_4bit = l4;
  c->load_in_8bit = l8;
  json_t *th = json_object_get(root, "llm_int8_threshold");
  if (th && !json_is_null(th)) {
    if (!json_is_number(th)) {
      qf__bnb_set_msg(msg, msg_size, "config key 'llm_int8_threshold': expected a float");
      goto done;
    }
    c->llm_int8_threshold = json_number_value(th);
  }
  json_t *sk = json_object_get(root, "llm_int8_skip_modules");
  if (sk && !json_is_null(sk)) {
    if (!json_is_array(sk)) {
      qf__bnb_set_msg(msg, msg_size,
              "config key 'llm_int8_skip_modules': expected a list of strings "
              "or null");
      goto done;
    }
    size_t n = json_array_size(sk);
    c->skip_is_null = 0;
    c->skip_modules = (char **)calloc(n + 1, sizeof(char *));
    if (!c->skip_modules) {
      qf__bnb_set_msg(msg, msg_size, "out of memory");
      goto done;
    }
    for (size_t i = 0; i < n; i++) {
      json_t *e = json_array_get(sk, i);
      if (!json_is_string(e)) {
        qf__bnb_set_msg(msg, msg_size,
                "config key 'llm_int8_skip_modules': element %zu is not a "
                "string",
                i);
        goto done;
      }
      c->skip_modules[i] = strdup(json_string_value(e));
      if (!c->skip_modules[i]) {
        qf__bnb_set_msg(msg, msg_size, "out of memory");
        goto done;
      }
      c->n_skip = i + 1;
    }
  }
  int dq = 0;
  if (get_bool(root, "llm_int8_enable_fp32_cpu_offload", 0,
               &c->fp32_cpu_offload, msg, msg_size) ||
      get_bool(root, "llm_int8_has_fp16_weight", 0, &c->has_fp16_weight, msg,
               msg_size) ||
      get_bool(root, "bnb_4bit_use_double_quant", 0, &dq, msg, msg_size))
    goto done;
  c->use_double_quant = dq;
  if (get_dtype_name(root, "bnb_4bit_compute_dtype", "float32", 0,
                     c->compute_dtype, sizeof c->compute_dtype, msg, msg_size) ||
      get_dtype_name(root, "bnb_4bit_quant_storage", "uint8", 1,
                     c->quant_storage, sizeof c->quant_storage, msg, msg_size))
    goto done;
  json_t *qt = json_object_get(root, "bnb_4bit_quant_type");
  if (qt && !json_is_null(qt)) {
    int t = json_is_string(qt) ? qf_bnb_qtype_parse(json_string_value(qt)) : -1;
    if (t < 0) {
      qf__bnb_set_msg(msg, msg_size,
              "config key 'bnb_4bit_quant_type': expected \"nf4\" or \"fp4\"");
      goto done;
    }
    c->quant_type = (qf_bnb_qtype)t;
  }
  json_t *bs = json_object_get(root, "blocksize");
  if (bs && !json_is_null(bs)) {
    if (!json_is_integer(bs) || !qf_bnb_blocksize_valid(json_integer_value(bs))) {
      qf__bnb_set_msg(msg, msg_size,
              "config key 'blocksize': expected a power of two in [32, 4096]");
      goto done;
    }
    c->blocksize = json_integer_value(bs);
  }
  rc = 0;
done:
  json_decref(root);
  return rc;
}

void qf_bnb_config_free(qf_bnb_config *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n_skip; i++) free(c->skip_modules[i]);
  free(c->skip_modules);
  c->skip_modules = NULL;
  c->n_skip = 0;
}

char *qf_bnb_config_to_json(const qf_bnb_config *c) {
  sbuf b = {0};
  char num[64];
  const char *t4 = c->load_in_4bit ? "true" : "false";
  const char *t8 = c->load_in_8bit ? "true" : "false";
  sb_str(&b, "{\"_load_in_4bit\": ");
  sb_str(&b, t4);
  sb_str(&b, ", \"_load_in_8bit\": ");
  sb_str(&b, t8);
  sb_str(&b, ", \"bnb_4bit_compute_dtype\": ");
  sb_json_string(&b, c->compute_dtype);
  sb_str(&b, ", \"bnb_4bit_quant_storage\": ");
  sb_json_string(&b, c->quant_storage);
  sb_str(&b, ", \"bnb_4bit_quant_type\": ");
  sb_json_string(&b, qf_bnb_qtype_name(c->quant_type));
  sb_str(&b, ", \"bnb_4bit_use_double_quant\": ");
  sb_str(&b, c->use_double_quant ? "true" : "false");
  sb_str(&b, ", \"llm_int8_enable_fp32_cpu_offload\": ");
  sb_str(&b, c->fp32_cpu_offload ? "true" : "false");
  sb_str(&b, ", \"llm_int8_has_fp16_weight\": ");
  sb_str(&b, c->has_fp16_weight ? "true" : "false");
  sb_str(&b, ", \"llm_int8_skip_modules\": ");
  if (c->skip_is_null) {
    sb_str(&b, "null");
  } else {
    sb_str(&b, "[");
    for (size_t i = 0; i < c->n_skip; i++) {
      if (i) sb_str(&b, ", ");
      sb_json_string(&b, c->skip_modules[i]);
    }
    sb_str(&b, "]");
  }
  sb_str(&b, ", \"llm_int8_threshold\": ");
  qf_bnb_py_float_repr(c->llm_int8_threshold, num, sizeof num);
  sb_str(&b, num);
  sb_str(&b, ", \"load_in_4bit\": ");
  sb_str(&b, t4);
  sb_str(&b, ", \"load_in_8bit\": ");
  sb_str(&b, t8);
  sb_str(&b, ", \"quant_method\": \"bitsandbytes\"}");
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* ------------------------------------------------------------ key names */

static const char *const k_stat_suffixes[] = {
    QF_BNB_K_ABSMAX, QF_BNB_K_QMAP, QF_BNB_K_NABSMAX, QF_BNB_K_NQMAP,
    QF_BNB_K_QSTATE "nf4", QF_BNB_K_QSTATE "fp4", QF_BNB_K_SCB, QF_BNB_K_WFMT};

int qf_bnb_is_stat_key(const char *name, char *prefix, size_t prefix_size) {
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof k_stat_suffixes / sizeof k_stat_suffixes[0]; i++) {
    size_t s = strlen(k_stat_suffixes[i]);
    if (n < s || strcmp(name + n - s, k_stat_suffixes[i]) != 0) continue;
    if (n > s && name[n - s - 1] != '.') continue;
    if (prefix) {
      if (n - s + 1 > prefix_size) return 0;
      memcpy(prefix, name, n - s);
      prefix[n - s] = '\0';
    }
    return 1;
  }
  return 0;
}
