/*
 * Token sets: calibration and evaluation token ids, read from raw .u32
 * files, NumPy .npy arrays (int32 / int64 / uint32, 1-D or 2-D, C order),
 * JSON lists (of lists) of ints, or UTF-8 text through a tokenizer; cut into
 * fixed windows; written back as .npy / .u32. Ids must fit in int32 and be
 * non-negative. Errors name the file and what was expected.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#define OP "tokens"

static qf_status nomem(qf_error *err) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
}

/* An empty set with room for n ids and s sequences. */
static qf_status set_alloc(int64_t n, int64_t s, qf_token_set **out,
                           qf_error *err) {
  qf_token_set *t = calloc(1, sizeof *t);
  if (!t) return nomem(err);
  t->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
  t->offsets = calloc((size_t)s + 1, sizeof(int64_t));
  if (!t->ids || !t->offsets) {
    qf_tokens_free(t);
    return nomem(err);
  }
  t->n_seq = s;
  *out = t;
  return QF_OK;
}

void qf_tokens_free(qf_token_set *t) {
  if (!t) return;
  free(t->ids);
  free(t->offsets);
  free(t);
}

int64_t qf_tokens_total(const qf_token_set *t) {
  return t && t->n_seq > 0 ? t->offsets[t->n_seq] - t->offsets[0] : 0;
}

int64_t qf_tokens_max_id(const qf_token_set *t) {
  int64_t mx = 0;
  if (!t) return 0;
  for (int64_t i = t->offsets[0]; t->n_seq > 0 && i < t->offsets[t->n_seq];
       i++)
    if ((int64_t)t->ids[i] + 1 > mx) mx = (int64_t)t->ids[i] + 1;
  return mx;
}

qf_status qf_tokens_from_array(const int32_t *ids, const int64_t *lens,
                               int64_t n_seq, qf_token_set **out,
                               qf_error *err) {
  if (!out || n_seq < 0 || (n_seq > 0 && (!ids || !lens)))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokens_from_array needs ids, lengths and an output");
  int64_t total = 0;
  for (int64_t s = 0; s < n_seq; s++) {
    if (lens[s] < 0)
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                       "sequence %lld has a negative length", (long long)s);
    total += lens[s];
  }
  qf_token_set *t;
  qf_status st = set_alloc(total, n_seq, &t, err);
  if (st) return st;
  for (int64_t s = 0; s < n_seq; s++) t->offsets[s + 1] = t->offsets[s] + lens[s];
  for (int64_t i = 0; i < total; i++) {
    if (ids[i] < 0) {
      qf_tokens_free(t);
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                       "token #%lld is negative (%d)", (long long)i, ids[i]);
    }
    t->ids[i] = ids[i];
  }
  *out = t;
  return QF_OK;
}

qf_status qf__tokens_copy(const qf_token_set *in, qf_token_set **out,
                          qf_error *err) {
  int64_t n = qf_tokens_total(in);
  qf_token_set *t;
  qf_status st = set_alloc(n, in->n_seq, &t, err);
  if (st) return st;
  for (int64_t s = 0; s <= in->n_seq; s++)
    t->offsets[s] = in->offsets[s] - in->offsets[0];
  if (n) memcpy(t->ids, in->ids + in->offsets[0], (size_t)n * sizeof(int32_t));
  *out = t;
  return QF_OK;
}

qf_status qf_tokens_windows(const qf_token_set *in, int64_t seq_len,
                            int64_t max_seqs, qf_token_set **out,
                            qf_error *err) {
  if (!in || !out || seq_len <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokens_windows needs a set, seq_len > 0 and an "
                     "output");
  int64_t total = qf_tokens_total(in), n = total / seq_len;
  if (max_seqs > 0 && n > max_seqs) n = max_seqs;
  if (n == 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "%lld tokens do not fill one window of %lld",
                     (long long)total, (long long)seq_len);
  qf_token_set *t;
  qf_status st = set_alloc(n * seq_len, n, &t, err);
  if (st) return st;
  memcpy(t->ids, in->ids + in->offsets[0],
         (size_t)(n * seq_len) * sizeof(int32_t));
  for (int64_t s = 0; s <= n; s++) t->offsets[s] = s * seq_len;
  *out = t;
  return QF_OK;
}

/* ---------------------------------------------------------------- readers */

static qf_status check_id(const char *path, int64_t i, int64_t v,
                          qf_error *err) {
  if (v < 0 || v > INT32_MAX)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: token #%lld is %lld (expected 0 .. 2^31-1)", path,
                     (long long)i, (long long)v);
  return QF_OK;
}

static qf_status load_u32(const char *path, const char *data, size_t n,
                          qf_token_set **out, qf_error *err) {
  if (n % 4)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: size %zu is not a multiple of 4 (expected raw "
                     "little-endian uint32 ids)", path, n);
  qf_token_set *t;
  qf_status st = set_alloc((int64_t)(n / 4), 1, &t, err);
  if (st) return st;
  for (size_t i = 0; i < n / 4; i++) {
    const unsigned char *p = (const unsigned char *)data + 4 * i;
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    if ((st = check_id(path, (int64_t)i, (int64_t)v, err))) {
      qf_tokens_free(t);
      return st;
    }
    t->ids[i] = (int32_t)v;
  }
  t->offsets[1] = (int64_t)(n / 4);
  *out = t;
  return QF_OK;
}

/* Value text after 'key': in a .npy header dict. */
static const char *npy_field(const char *hdr, const char *key) {
  const char *p = strstr(hdr, key);
  if (!p) return NULL;
  p += strlen(key);
  while (*p == ' ' || *p == ':') p++;
  return p;
}

static qf_status load_npy(const char *path, const char *data, size_t n,
                          qf_token_set **out, qf_error *err) {
  if (n < 10 || memcmp(data, "\x93NUMPY", 6))
    return qf_errorf(err, QF_ERR_FORMAT, OP, "%s: not a .npy file (bad magic)",
                     path);
  const unsigned char *u = (const unsigned char *)data;
  size_t hl, start;
  if (u[6] == 1) {
    hl = (size_t)u[8] | (size_t)u[9] << 8;
    start = 10;
  } else if ((u[6] == 2 || u[6] == 3) && n >= 12) {
    hl = (size_t)u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 |
         (size_t)u[11] << 24;
    start = 12;
  } else {
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: unsupported .npy version %d", path, u[6]);
  }
  if (start + hl > n)
    return qf_errorf(err, QF_ERR_FORMAT, OP, "%s: truncated .npy header",
                     path);
  char *hdr = malloc(hl + 1);
  if (!hdr) return nomem(err);
  memcpy(hdr, data + start, hl);
  hdr[hl] = 0;
  qf_status st = QF_OK;
  const char *d = npy_field(hdr, "'descr'");
  const char *fo = npy_field(hdr, "'fortran_order'");
  const char *sh = npy_field(hdr, "'shape'");
  int64_t dims[2] = {0, 0}, ndim = 0;
  size_t isz = 0;
  int is_signed = 1;
  if (!d || !fo || !sh || (*d != '\'' && *d != '"') || *sh != '(') {
    st = qf_errorf(err, QF_ERR_FORMAT, OP,
                   "%s: .npy header lacks descr, fortran_order or shape", path);
    goto done;
  }
  if (!strncmp(d + 1, "<i4", 3) || !strncmp(d + 1, "=i4", 3)) isz = 4;
  else if (!strncmp(d + 1, "<i8", 3) || !strncmp(d + 1, "=i8", 3)) isz = 8;
  else if (!strncmp(d + 1, "<u4", 3) || !strncmp(d + 1, "=u4", 3)) {
    isz = 4;
    is_signed = 0;
  } else {
    st = qf_errorf(err, QF_ERR_FORMAT, OP,
                   "%s: .npy dtype %.5s is not supported (expected '<i4', "
                   "'<i8' or '<u4')", path, d);
    goto done;
  }
  for (const char *p = sh + 1; *p && *p != ')';) {
    if (*p == ' ' || *p == ',') {
      p++;
      continue;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0 || ndim == 2) {
      st = qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: .npy shape must be (n,) or (rows, cols)", path);
      goto done;
    }
    dims[ndim++] = v;
    p = end;
  }
  if (ndim == 0 || (ndim == 2 && strncmp(fo, "False", 5))) {
    st = qf_errorf(err, QF_ERR_FORMAT, OP,
                   "%s: .npy must be 1-D or a C-ordered 2-D array", path);
    goto done;
  }
  int64_t rows = ndim == 2 ? dims[0] : 1, cols = ndim == 2 ? dims[1] : dims[0];
  size_t count = (size_t)(rows * cols), body = start + hl;
  if (body + count * isz > n) {
    st = qf_errorf(err, QF_ERR_FORMAT, OP,
                   "%s: .npy data is truncated (%zu values expected)", path,
                   count);
    goto done;
  }
  qf_token_set *t;
  if ((st = set_alloc((int64_t)count, rows, &t, err))) goto done;
  for (size_t i = 0; i < count; i++) {
    const unsigned char *p = (const unsigned char *)data + body + i * isz;
    uint64_t raw = 0;
    for (size_t b = 0; b < isz; b++) raw |= (uint64_t)p[b] << (8 * b);
    int64_t v = isz == 8         ? (int64_t)raw
                : is_signed ? (int64_t)(int32_t)(uint32_t)raw
                            : (int64_t)(uint32_t)raw;
    if ((st = check_id(path, (int64_t)i, v, err))) {
      qf_tokens_free(t);
      goto done;
    }
    t->ids[i] = (int32_t)v;
  }
  for (int64_t r = 0; r <= rows; r++) t->offsets[r] = r * cols;
  *out = t;
done:
  free(hdr);
  return st;
}

static qf_status json_seq(const char *path, json_t *a, int64_t *dst,
                          int64_t base, qf_error *err) {
  for (size_t i = 0; i < json_array_size(a); i++) {
    json_t *v = json_array_get(a, i);
    if (!json_is_integer(v))
      return qf_errorf(err, QF_ERR_FORMAT, OP,
                       "%s: element %zu is not an integer (expected a list of "
                       "token ids or a list of such lists)", path, i);
    qf_status st = check_id(path, base + (int64_t)i, json_integer_value(v), err);
    if (st) return st;
    dst[i] = json_integer_value(v);
  }
  return QF_OK;
}

static qf_status load_json(const char *path, const char *data, size_t n,
                           qf_token_set **out, qf_error *err) {
  json_error_t je;
  json_t *root = json_loadb(data, n, 0, &je);
  if (!root)
    return qf_errorf(err, QF_ERR_FORMAT, OP, "%s:%d:%d: %s", path, je.line,
                     je.column, je.text);
  qf_status st = QF_OK;
  int nested = json_is_array(root) && json_array_size(root) > 0 &&
               json_is_array(json_array_get(root, 0));
  size_t ns = nested ? json_array_size(root) : 1, total = 0;
  if (!json_is_array(root)) {
    st = qf_errorf(err, QF_ERR_FORMAT, OP,
                   "%s: expected a JSON list of token ids or of lists", path);
    goto done;
  }
  for (size_t s = 0; s < ns; s++) {
    json_t *a = nested ? json_array_get(root, s) : root;
    if (!json_is_array(a)) {
      st = qf_errorf(err, QF_ERR_FORMAT, OP,
                     "%s: element %zu is not a list of token ids", path, s);
      goto done;
    }
    total += json_array_size(a);
  }
  int64_t *tmp = malloc((total ? total : 1) * sizeof *tmp);
  qf_token_set *t = NULL;
  if (!tmp || (st = set_alloc((int64_t)total, (int64_t)ns, &t, err))) {
    free(tmp);
    st = st ? st : nomem(err);
    goto done;
  }
  for (size_t s = 0; !st && s < ns; s++) {
    json_t *a = nested ? json_array_get(root, s) : root;
    st = json_seq(path, a, tmp + t->offsets[s], t->offsets[s], err);
    t->offsets[s + 1] = t->offsets[s] + (int64_t)json_array_size(a);
  }
  for (size_t i = 0; !st && i < total; i++) t->ids[i] = (int32_t)tmp[i];
  free(tmp);
  if (st) qf_tokens_free(t);
  else *out = t;
done:
  json_decref(root);
  return st;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

qf_status qf_tokens_load(const char *path, const qf_tokenizer *tok,
                         qf_token_set **out, qf_error *err) {
  if (!path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokens_load needs a path and an output");
  *out = NULL;
  int is_text = !qf_tokens_path_is_ids(path);
  if (is_text && !tok)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "%s: a text file needs a tokenizer (or give a .u32, .npy "
                     "or .json token file)", path);
  char *data = NULL;
  size_t n = 0;
  qf_status st = qf_read_file(path, &data, &n, err);
  if (st) return st;
  if (ends_with(path, ".u32")) st = load_u32(path, data, n, out, err);
  else if (ends_with(path, ".npy")) st = load_npy(path, data, n, out, err);
  else if (ends_with(path, ".json")) st = load_json(path, data, n, out, err);
  else {
    int32_t *ids = NULL;
    size_t k = 0;
    st = qf_tokenizer_encode(tok, data, n, 1, &ids, &k, err);
    if (st) qf_error_prefix(err, "%s", path);
    if (!st) {
      int64_t len = (int64_t)k;
      st = qf_tokens_from_array(ids, &len, 1, out, err);
    }
    free(ids);
  }
  free(data);
  return st;
}

/* ---------------------------------------------------------------- writers */

qf_status qf_tokens_write_npy(const char *path, const qf_token_set *t,
                              qf_error *err) {
  if (!path || !t || t->n_seq <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokens_write_npy needs a path and a non-empty set");
  int64_t L = t->offsets[1] - t->offsets[0];
  for (int64_t s = 1; s < t->n_seq; s++)
    if (t->offsets[s + 1] - t->offsets[s] != L)
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                       "%s: sequences of different lengths cannot form a 2-D "
                       ".npy", path);
  char dict[128];
  int dl = t->n_seq == 1
               ? snprintf(dict, sizeof dict,
                          "{'descr': '<i4', 'fortran_order': False, "
                          "'shape': (%lld,), }", (long long)L)
               : snprintf(dict, sizeof dict,
                          "{'descr': '<i4', 'fortran_order': False, "
                          "'shape': (%lld, %lld), }",
                          (long long)t->n_seq, (long long)L);
  size_t hl = (size_t)dl + 1;
  while ((10 + hl) % 64) hl++;
  size_t count = (size_t)qf_tokens_total(t), n = 10 + hl + 4 * count;
  unsigned char *buf = malloc(n);
  if (!buf) return nomem(err);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hl & 0xff);
  buf[9] = (unsigned char)(hl >> 8);
  memset(buf + 10, ' ', hl);
  memcpy(buf + 10, dict, (size_t)dl);
  buf[10 + hl - 1] = '\n';
  const int32_t *ids = t->ids + t->offsets[0];
  for (size_t i = 0; i < count; i++) {
    uint32_t v = (uint32_t)ids[i];
    unsigned char *p = buf + 10 + hl + 4 * i;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
  }
  qf_status st = qf_write_file_atomic(path, buf, n, err);
  free(buf);
  return st;
}

qf_status qf_tokens_write_u32(const char *path, const qf_token_set *t,
                              qf_error *err) {
  if (!path || !t)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokens_write_u32 needs a path and a set");
  size_t count = (size_t)qf_tokens_total(t);
  unsigned char *buf = malloc(count * 4 + 1);
  if (!buf) return nomem(err);
  const int32_t *ids = t->ids + (t->n_seq > 0 ? t->offsets[0] : 0);
  for (size_t i = 0; i < count; i++) {
    uint32_t v = (uint32_t)ids[i];
    buf[4 * i] = (unsigned char)v;
    buf[4 * i + 1] = (unsigned char)(v >> 8);
    buf[4 * i + 2] = (unsigned char)(v >> 16);
    buf[4 * i + 3] = (unsigned char)(v >> 24);
  }
  qf_status st = qf_write_file_atomic(path, buf, count * 4, err);
  free(buf);
  return st;
}
