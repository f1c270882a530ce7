/*
 * gguf_write.c — writing GGUF version 3 files in the layout llama.cpp loads.
 *
 * Purpose: collect key/value records (in insertion order; setting a key again
 * moves it to the end, exactly like gguf.cpp's gguf_set_val_*) and tensor
 * declarations, then emit header → KVs → tensor infos → zero padding to the
 * alignment → each tensor's data followed by zero padding, with every offset
 * the running padded sum (the strict layout of spec §1.4). The alignment is
 * the value of `general.alignment` (u32, power of two) or 32. Output is atomic:
 * a `<path>.tmp.XXXXXX` file in the same folder is written, fsynced and
 * renamed over the destination, so a failure never leaves a partial file.
 * Values are stored pre-encoded (little-endian, as in the file), which makes
 * copying records from a reader a byte copy.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_internal.h"
#include "qforge/plugin_util.h"

#define OUT_BUF (1u << 20)

typedef struct wkv {
  char *key;
  size_t key_len;
  int32_t type;     /* value type as written (ARRAY for arrays) */
  uint8_t *payload; /* for arrays: elem type, count, elements; else the value */
  size_t payload_len;
} wkv;

typedef struct wtensor {
  char name[QF_GGUF_MAX_NAME + 1];
  int32_t type;
  uint32_t n_dims;
  int64_t ne[QF_GGUF_MAX_DIMS];
  uint64_t nbytes;
  const void *data;
} wtensor;

struct qf_gguf_writer {
  wkv *kvs;
  size_t n_kv, cap_kv;
  wtensor *ts;
  size_t n_t, cap_t;
  /* streaming state */
  int active;
  int fd;
  char *tmp_path;
  char *final_path;
  uint32_t align;
  size_t next;
  uint64_t written;
  uint8_t *buf;
  size_t buf_len;
};

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

qf_status qf_gguf_writer_create(qf_gguf_writer **out, qf_error *err) {
  if (!out) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "NULL writer pointer");
  *out = calloc(1, sizeof **out);
  if (!*out) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
  (*out)->fd = -1;
  return QF_OK;
}

static void free_kv(wkv *kv) {
  free(kv->key);
  free(kv->payload);
}

void qf_gguf_writer_free(qf_gguf_writer *w) {
  if (!w) return;
  qf_gguf_writer_abort(w);
  for (size_t i = 0; i < w->n_kv; i++) free_kv(&w->kvs[i]);
  free(w->kvs);
  free(w->ts);
  free(w);
}

static qf_status frozen(qf_gguf_writer *w, qf_error *err) {
  return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                 "%s: keys and tensors cannot change while the file is being written",
                 w->final_path ? w->final_path : "?");
}

int qf_gguf_writer_remove_key(qf_gguf_writer *w, const char *key) {
  if (!w || !key || w->active) return 0;
  for (size_t i = 0; i < w->n_kv; i++) {
    if (strcmp(w->kvs[i].key, key) == 0) {
      free_kv(&w->kvs[i]);
      memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
      w->n_kv--;
      return 1;
    }
  }
  return 0;
}

size_t qf_gguf_writer_kv_count(const qf_gguf_writer *w) { return w->n_kv; }

const char *qf_gguf_writer_kv_key(const qf_gguf_writer *w, size_t i) {
  return i < w->n_kv ? w->kvs[i].key : NULL;
}

size_t qf_gguf_writer_tensor_count(const qf_gguf_writer *w) { return w->n_t; }

/* Store one record: validate the key, drop an existing one, append. Takes
 * ownership of `payload` (freed on failure). */
static qf_status put(qf_gguf_writer *w, const char *key, int32_t type, uint8_t *payload,
                     size_t payload_len, qf_error *err) {
  if (!w || !key) {
    free(payload);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "NULL writer or key");
  }
  if (w->active) {
    free(payload);
    return frozen(w, err);
  }
  size_t klen = strlen(key);
  if (klen == 0 || klen > QF_GGUF_MAX_KEY) {
    free(payload);
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "key must be 1 to %d bytes long (got %zu)", QF_GGUF_MAX_KEY, klen);
  }
  if (strcmp(key, QF_GGUF_KEY_ALIGNMENT) == 0) {
    uint32_t a = type == QF_GGUF_VT_UINT32 ? qf__rd_u32(payload) : 0;
    if (type != QF_GGUF_VT_UINT32 || a == 0 || (a & (a - 1)) != 0) {
      free(payload);
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                     "key '%s' must be a u32 non-zero power of two (got type %s, value %" PRIu32
                     ")",
                     key, qf_gguf_vtype_name(type), a);
    }
  }
  char *k = malloc(klen + 1);
  if (!k) {
    free(payload);
    return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
  }
  memcpy(k, key, klen + 1);
  qf_gguf_writer_remove_key(w, key);
  if (w->n_kv == w->cap_kv) {
    size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
    wkv *n = realloc(w->kvs, cap * sizeof *n);
    if (!n) {
      free(k);
      free(payload);
      return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
    }
    w->kvs = n;
    w->cap_kv = cap;
  }
  w->kvs[w->n_kv++] = (wkv){k, klen, type, payload, payload_len};
  return QF_OK;
}

static qf_status put_scalar(qf_gguf_writer *w, const char *key, int32_t type, const void *v,
                            qf_error *err) {
  size_t n = qf_gguf_vtype_size(type);
  uint8_t *p = malloc(n);
  if (!p) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
  switch (n) {
    case 1:
      memcpy(p, v, 1);
      break;
    case 2: {
      uint16_t x;
      memcpy(&x, v, 2);
      p[0] = (uint8_t)x;
      p[1] = (uint8_t)(x >> 8);
    } break;
    case 4: {
      uint32_t x;
      memcpy(&x, v, 4);
      put_u32(p, x);
    } break;
    default: {
      uint64_t x;
      memcpy(&x, v, 8);
      put_u64(p, x);
    } break;
  }
  return put(w, key, type, p, n, err);
}

#define QF_GGUF_SETTER(fn, ctype, vt)                                        \
  qf_status fn(qf_gguf_writer *w, const char *key, ctype v, qf_error *err) { \
    return put_scalar(w, key, vt, &v, err);                                  \
  }

QF_GGUF_SETTER(qf_gguf_writer_set_u8, uint8_t, QF_GGUF_VT_UINT8)
QF_GGUF_SETTER(qf_gguf_writer_set_i8, int8_t, QF_GGUF_VT_INT8)
QF_GGUF_SETTER(qf_gguf_writer_set_u16, uint16_t, QF_GGUF_VT_UINT16)
QF_GGUF_SETTER(qf_gguf_writer_set_i16, int16_t, QF_GGUF_VT_INT16)
QF_GGUF_SETTER(qf_gguf_writer_set_u32, uint32_t, QF_GGUF_VT_UINT32)
QF_GGUF_SETTER(qf_gguf_writer_set_i32, int32_t, QF_GGUF_VT_INT32)
QF_GGUF_SETTER(qf_gguf_writer_set_f32, float, QF_GGUF_VT_FLOAT32)
QF_GGUF_SETTER(qf_gguf_writer_set_u64, uint64_t, QF_GGUF_VT_UINT64)
QF_GGUF_SETTER(qf_gguf_writer_set_i64, int64_t, QF_GGUF_VT_INT64)
QF_GGUF_SETTER(qf_gguf_writer_set_f64, double, QF_GGUF_VT_FLOAT64)

qf_status qf_gguf_writer_set_bool(qf_gguf_writer *w, const char *key, bool v, qf_error *err) {
  uint8_t b = v ? 1 : 0;
  return put_scalar(w, key, QF_GGUF_VT_BOOL, &b, err);
}

/* Encoded size of n strings, or SIZE_MAX when one is over the limit. */
static size_t strings_size(const qf_gguf_string *s, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i].len > QF_GGUF_MAX_STRING || (s[i].len && !s[i].data)) return SIZE_MAX;
    total += 8 + (size_t)s[i].len;
  }
  return total;
}

static uint8_t *encode_strings(uint8_t *p, const qf_gguf_string *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    put_u64(p, s[i].len);
    if (s[i].len) memcpy(p + 8, s[i].data, (size_t)s[i].len);
    p += 8 + s[i].len;
  }
  return p;
}

qf_status qf_gguf_writer_set_strn(qf_gguf_writer *w, const char *key, const char *s, size_t len,
                                  qf_error *err) {
  qf_gguf_string str = {s, len};
  size_t n = strings_size(&str, 1);
  if (n == SIZE_MAX)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "value of key '%s': NULL string or longer than 1 GiB", key ? key : "?");
  uint8_t *p = malloc(n);
  if (!p) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
  encode_strings(p, &str, 1);
  return put(w, key, QF_GGUF_VT_STRING, p, n, err);
}

qf_status qf_gguf_writer_set_str(qf_gguf_writer *w, const char *key, const char *s, qf_error *err) {
  if (!s)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "value of key '%s' is NULL",
                   key ? key : "?");
  return qf_gguf_writer_set_strn(w, key, s, strlen(s), err);
}

static uint8_t *array_header(int32_t elem, uint64_t n, size_t body, qf_error *err) {
  uint8_t *p = malloc(12 + body);
  if (!p) {
    qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
    return NULL;
  }
  put_u32(p, (uint32_t)elem);
  put_u64(p + 4, n);
  return p;
}

qf_status qf_gguf_writer_set_arr(qf_gguf_writer *w, const char *key, qf_gguf_vtype elem_type,
                                 const void *data, size_t n, qf_error *err) {
  size_t es = qf_gguf_vtype_size(elem_type);
  if (es == 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "key '%s': arrays of %s are not written by set_arr (nested arrays are not "
                   "allowed; use set_arr_str for strings)",
                   key ? key : "?", qf_gguf_vtype_name(elem_type));
  if (n > QF_GGUF_MAX_ARRAY || (n && !data))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "key '%s': NULL data or more than 2^30 elements", key ? key : "?");
  uint8_t *p = array_header(elem_type, n, n * es, err);
  if (!p) return QF_ERR_NO_MEMORY;
  const uint8_t *s = data;
  uint8_t *d = p + 12;
  for (size_t i = 0; i < n; i++) {
    if (elem_type == QF_GGUF_VT_BOOL) {
      d[i] = s[i] ? 1 : 0;
    } else if (es == 1) {
      d[i] = s[i];
    } else if (es == 2) {
      uint16_t x;
      memcpy(&x, s + 2 * i, 2);
      d[2 * i] = (uint8_t)x;
      d[2 * i + 1] = (uint8_t)(x >> 8);
    } else if (es == 4) {
      uint32_t x;
      memcpy(&x, s + 4 * i, 4);
      put_u32(d + 4 * i, x);
    } else {
      uint64_t x;
      memcpy(&x, s + 8 * i, 8);
      put_u64(d + 8 * i, x);
    }
  }
  return put(w, key, QF_GGUF_VT_ARRAY, p, 12 + n * es, err);
}

qf_status qf_gguf_writer_set_arr_strn(qf_gguf_writer *w, const char *key,
                                      const qf_gguf_string *strs, size_t n, qf_error *err) {
  size_t body = (n && !strs) || n > QF_GGUF_MAX_ARRAY ? SIZE_MAX : strings_size(strs, n);
  if (body == SIZE_MAX)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "key '%s': NULL string, string over 1 GiB or more than 2^30 elements",
                   key ? key : "?");
  uint8_t *p = array_header(QF_GGUF_VT_STRING, n, body, err);
  if (!p) return QF_ERR_NO_MEMORY;
  encode_strings(p + 12, strs, n);
  return put(w, key, QF_GGUF_VT_ARRAY, p, 12 + body, err);
}

qf_status qf_gguf_writer_set_arr_str(qf_gguf_writer *w, const char *key, const char *const *strs,
                                     size_t n, qf_error *err) {
  if (n && !strs)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "key '%s': NULL strings",
                   key ? key : "?");
  qf_gguf_string *v = malloc((n ? n : 1) * sizeof *v);
  if (!v) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
  for (size_t i = 0; i < n; i++) {
    v[i].data = strs[i];
    v[i].len = strs[i] ? strlen(strs[i]) : 0;
    if (!strs[i]) {
      free(v);
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "key '%s': string #%zu is NULL",
                     key ? key : "?", i);
    }
  }
  qf_status st = qf_gguf_writer_set_arr_strn(w, key, v, n, err);
  free(v);
  return st;
}

qf_status qf_gguf_writer_set_kv(qf_gguf_writer *w, const qf_gguf_kv *kv, qf_error *err) {
  if (!kv) return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "NULL record");
  int arr = kv->type == QF_GGUF_VT_ARRAY;
  size_t len = (arr ? 12 : 0) + (size_t)kv->value_nbytes;
  uint8_t *p = malloc(len ? len : 1);
  if (!p) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
  uint8_t *d = p;
  if (arr) {
    put_u32(p, (uint32_t)kv->elem_type);
    put_u64(p + 4, kv->n);
    d += 12;
  }
  if (kv->value_nbytes) memcpy(d, kv->value, (size_t)kv->value_nbytes);
  if (kv->elem_type == QF_GGUF_VT_BOOL)
    for (uint64_t i = 0; i < kv->n; i++) d[i] = d[i] ? 1 : 0;
  return put(w, kv->key, kv->type, p, len, err);
}

qf_status qf_gguf_writer_copy_kvs(qf_gguf_writer *w, const qf_gguf_file *src, qf_error *err) {
  for (size_t i = 0; i < qf_gguf_kv_count(src); i++) {
    qf_status st = qf_gguf_writer_set_kv(w, qf_gguf_kv_at(src, i), err);
    if (st != QF_OK) return st;
  }
  return QF_OK;
}

qf_status qf_gguf_writer_add_tensor(qf_gguf_writer *w, const char *name, int32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    qf_error *err) {
  if (!w || !name || !ne)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "NULL writer, name or shape");
  if (w->active) return frozen(w, err);
  size_t len = strlen(name);
  if (len == 0 || len > QF_GGUF_MAX_NAME)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "tensor name '%.80s' must be 1 to %d bytes long (got %zu)", name,
                   QF_GGUF_MAX_NAME, len);
  if (n_dims < 1 || n_dims > QF_GGUF_MAX_DIMS)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "tensor '%s': n_dims %" PRIu32 " is not 1 to %d", name, n_dims,
                   QF_GGUF_MAX_DIMS);
  const char *tname;
  int64_t block;
  int known = qf_gguf_ggml_type_info(type, &tname, &block, NULL);
  if (known != 1)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "tensor '%s': ggml type id %" PRId32 " is %s", name, type,
                   known < 0 ? "unknown" : "removed from ggml");
  wtensor t;
  memset(&t, 0, sizeof t);
  memcpy(t.name, name, len + 1);
  t.type = type;
  t.n_dims = n_dims;
  for (int i = 0; i < QF_GGUF_MAX_DIMS; i++) t.ne[i] = (uint32_t)i < n_dims ? ne[i] : 1;
  if (t.ne[0] >= 0 && t.ne[0] % block != 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "tensor '%s' of type %s: ne[0] = %" PRId64
                   " is not a multiple of the block size %" PRId64,
                   name, tname, t.ne[0], block);
  if (qf_gguf_tensor_nbytes(type, t.ne, &t.nbytes) != 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "tensor '%s': negative dimension or size overflow", name);
  for (size_t i = 0; i < w->n_t; i++)
    if (strcmp(w->ts[i].name, name) == 0)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "duplicate tensor name '%s'",
                     name);
  t.data = data;
  if (w->n_t == w->cap_t) {
    size_t cap = w->cap_t ? 2 * w->cap_t : 16;
    wtensor *n = realloc(w->ts, cap * sizeof *n);
    if (!n) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "out of memory");
    w->ts = n;
    w->cap_t = cap;
  }
  w->ts[w->n_t++] = t;
  return QF_OK;
}

/* ------------------------------------------------------------ output */

static qf_status io_fail(qf_gguf_writer *w, const char *what, int e, qf_error *err) {
  qf_fail(err, QF_ERR_IO, "gguf", "write", "%s: %s: %s", w->final_path ? w->final_path : "?", what,
          strerror(e));
  qf_gguf_writer_abort(w);
  return QF_ERR_IO;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static int flush(qf_gguf_writer *w) {
  if (w->buf_len && write_all(w->fd, w->buf, w->buf_len) != 0) return -1;
  w->buf_len = 0;
  return 0;
}

/* Append bytes (NULL = zeros). */
static int emit(qf_gguf_writer *w, const void *data, size_t n) {
  const uint8_t *p = data;
  w->written += n;
  if (p && n >= OUT_BUF) {
    if (flush(w) != 0) return -1;
    return write_all(w->fd, p, n);
  }
  while (n > 0) {
    size_t room = OUT_BUF - w->buf_len, k = n < room ? n : room;
    if (p) {
      memcpy(w->buf + w->buf_len, p, k);
      p += k;
    } else {
      memset(w->buf + w->buf_len, 0, k);
    }
    w->buf_len += k;
    n -= k;
    if (w->buf_len == OUT_BUF && flush(w) != 0) return -1;
  }
  return 0;
}

static int emit_u32(qf_gguf_writer *w, uint32_t v) {
  uint8_t b[4];
  put_u32(b, v);
  return emit(w, b, 4);
}
static int emit_u64(qf_gguf_writer *w, uint64_t v) {
  uint8_t b[8];
  put_u64(b, v);
  return emit(w, b, 8);
}
static int emit_pad(qf_gguf_writer *w) {
  uint64_t r = w->written % w->align;
  return r ? emit(w, NULL, (size_t)(w->align - r)) : 0;
}
static uint64_t padded(uint64_t n, uint32_t a) { return (n + a - 1) / a * a; }

void qf_gguf_writer_abort(qf_gguf_writer *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  if (w->tmp_path) unlink(w->tmp_path);
  free(w->tmp_path);
  free(w->final_path);
  free(w->buf);
  w->fd = -1;
  w->tmp_path = w->final_path = NULL;
  w->buf = NULL;
  w->buf_len = 0;
  w->active = 0;
}

qf_status qf_gguf_writer_begin(qf_gguf_writer *w, const char *path, qf_error *err) {
  if (!w || !path)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "NULL writer or path");
  if (w->active) return frozen(w, err);
  w->align = QF_GGUF_DEFAULT_ALIGNMENT;
  for (size_t i = 0; i < w->n_kv; i++)
    if (strcmp(w->kvs[i].key, QF_GGUF_KEY_ALIGNMENT) == 0) w->align = qf__rd_u32(w->kvs[i].payload);
  size_t plen = strlen(path);
  w->final_path = malloc(plen + 1);
  w->tmp_path = malloc(plen + 12);
  w->buf = malloc(OUT_BUF);
  if (!w->final_path || !w->tmp_path || !w->buf) {
    qf_gguf_writer_abort(w);
    return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "write", "%s: out of memory", path);
  }
  memcpy(w->final_path, path, plen + 1);
  snprintf(w->tmp_path, plen + 12, "%s.tmp.XXXXXX", path);
  w->fd = mkstemp(w->tmp_path);
  if (w->fd < 0) {
    int e = errno;
    free(w->tmp_path);
    w->tmp_path = NULL; /* nothing to unlink */
    return io_fail(w, "cannot create the temporary file", e, err);
  }
  (void)fchmod(w->fd, 0644);
  w->active = 1;
  w->written = 0;
  w->buf_len = 0;
  w->next = 0;

  int bad = emit(w, QF_GGUF_MAGIC, 4) || emit_u32(w, QF_GGUF_VERSION) ||
            emit_u64(w, (uint64_t)w->n_t) || emit_u64(w, (uint64_t)w->n_kv);
  for (size_t i = 0; !bad && i < w->n_kv; i++) {
    const wkv *kv = &w->kvs[i];
    bad = emit_u64(w, kv->key_len) || emit(w, kv->key, kv->key_len) ||
          emit_u32(w, (uint32_t)kv->type) || emit(w, kv->payload, kv->payload_len);
  }
  uint64_t off = 0;
  for (size_t i = 0; !bad && i < w->n_t; i++) {
    const wtensor *t = &w->ts[i];
    size_t nl = strlen(t->name);
    bad = emit_u64(w, nl) || emit(w, t->name, nl) || emit_u32(w, t->n_dims);
    for (uint32_t j = 0; !bad && j < t->n_dims; j++) bad = emit_u64(w, (uint64_t)t->ne[j]);
    bad = bad || emit_u32(w, (uint32_t)t->type) || emit_u64(w, off);
    off += padded(t->nbytes, w->align);
  }
  if (bad || emit_pad(w)) return io_fail(w, "write failed", errno, err);
  return QF_OK;
}

qf_status qf_gguf_writer_write_tensor_data(qf_gguf_writer *w, const void *data, size_t nbytes,
                                           qf_error *err) {
  if (!w || !w->active)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
                   "write_tensor_data called before begin");
  if (w->next >= w->n_t) {
    qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
            "%s: all %zu tensors are already written", w->final_path, w->n_t);
    qf_gguf_writer_abort(w);
    return QF_ERR_INVALID_ARGUMENT;
  }
  const wtensor *t = &w->ts[w->next];
  if (nbytes != t->nbytes || (nbytes && !data)) {
    qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
            "%s: tensor '%s' needs %" PRIu64 " bytes of data, got %zu%s", w->final_path, t->name,
            t->nbytes, nbytes, data ? "" : " (NULL)");
    qf_gguf_writer_abort(w);
    return QF_ERR_INVALID_ARGUMENT;
  }
  if (emit(w, data, nbytes) || emit_pad(w)) return io_fail(w, "write failed", errno, err);
  w->next++;
  return QF_OK;
}

static void sync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = NULL;
  if (!slash) {
    dir = strdup(".");
  } else {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    dir = malloc(n + 1);
    if (dir) {
      memcpy(dir, path, n);
      dir[n] = '\0';
    }
  }
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd); /* best effort: not every file system syncs folders */
    close(fd);
  }
  free(dir);
}

qf_status qf_gguf_writer_finish(qf_gguf_writer *w, qf_error *err) {
  if (!w || !w->active)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "finish called before begin");
  if (w->next != w->n_t) {
    qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write",
            "%s: only %zu of %zu tensors were written; tensor '%s' is missing", w->final_path,
            w->next, w->n_t, w->ts[w->next].name);
    qf_gguf_writer_abort(w);
    return QF_ERR_INVALID_ARGUMENT;
  }
  if (flush(w) != 0) return io_fail(w, "write failed", errno, err);
  if (fsync(w->fd) != 0) return io_fail(w, "fsync failed", errno, err);
  int fd = w->fd;
  w->fd = -1;
  if (close(fd) != 0) return io_fail(w, "close failed", errno, err);
  if (rename(w->tmp_path, w->final_path) != 0) return io_fail(w, "rename failed", errno, err);
  free(w->tmp_path);
  w->tmp_path = NULL; /* renamed: nothing to remove */
  sync_parent(w->final_path);
  qf_gguf_writer_abort(w); /* releases the buffers; the file stays */
  return QF_OK;
}

qf_status qf_gguf_writer_write_file(qf_gguf_writer *w, const char *path, qf_error *err) {
  if (!w || !path)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "NULL writer or path");
  for (size_t i = 0; i < w->n_t; i++)
    if (w->ts[i].nbytes && !w->ts[i].data)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "write", "%s: tensor '%s' has no data",
                     path, w->ts[i].name);
  qf_status st = qf_gguf_writer_begin(w, path, err);
  for (size_t i = 0; st == QF_OK && i < w->n_t; i++)
    st = qf_gguf_writer_write_tensor_data(w, w->ts[i].data, (size_t)w->ts[i].nbytes, err);
  if (st == QF_OK) st = qf_gguf_writer_finish(w, err);
  return st;
}
