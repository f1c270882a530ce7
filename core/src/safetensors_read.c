/*
 * Reading one .safetensors file: the file is mmap'ed read-only, the JSON
 * header (8-byte little-endian length, then UTF-8 JSON) is parsed with
 * jansson and validated completely before anything is handed out — known
 * dtypes, shapes of non-negative integers, data_offsets that match the
 * element count and tile the data section in order with no gap, overlap or
 * trailing bytes, a `__metadata__` of strings only, no duplicate keys.
 * Every rejection names the file, the tensor or field and what was expected;
 * no input can crash the reader. Tensor data is never copied: qf_st_tensor
 * points into the map, which lives until qf_st_close.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "io_internal.h"
#include "qforge/qforge.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; big-endian hosts are not supported"
#endif

#define QF__OP "safetensors"
/* The reference implementation's limit on the header length. */
#define QF__MAX_HEADER 100000000ull

struct qf_st_file {
  char *path;
  unsigned char *map;
  size_t map_size;
  size_t n;
  qf_st_tensor *tensors;        /* data-offset order */
  const qf_st_tensor **by_name; /* sorted by name, for qf_st_find */
  size_t nmeta;
  char **meta_keys;
  char **meta_vals;
};

/* A header entry while it is being validated. */
typedef struct entry {
  const char *name; /* borrowed from the JSON root */
  size_t order;     /* position in the header */
  qf_dtype dtype;
  int ndim;
  int64_t shape[QF_MAX_DIMS];
  uint64_t begin, end, nbytes;
} entry;

static qf_status fmt_err(qf_error *err, const char *path, const char *fmt,
                         ...) QF_PRINTF(3, 4);
static qf_status fmt_err(qf_error *err, const char *path, const char *fmt,
                         ...) {
  char msg[QF_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qf_errorf(err, QF_ERR_FORMAT, QF__OP, "%s: %s", path, msg);
}

/* A JSON value as a non-negative integer, or -1. */
static long long nonneg_int(const json_t *v) {
  if (!json_is_integer(v)) return -1;
  json_int_t x = json_integer_value(v);
  return x < 0 ? -1 : (long long)x;
}

static qf_status parse_metadata(qf_st_file *f, const json_t *meta,
                                qf_error *err) {
  if (json_is_null(meta)) return QF_OK;
  if (!json_is_object(meta))
    return fmt_err(err, f->path,
                   "__metadata__: expected an object of string values, got %s",
                   qf__json_kind(meta));
  size_t m = json_object_size(meta);
  f->meta_keys = calloc(m ? m : 1, sizeof *f->meta_keys);
  f->meta_vals = calloc(m ? m : 1, sizeof *f->meta_vals);
  if (!f->meta_keys || !f->meta_vals)
    return qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory",
                     f->path);
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)meta, key, val) {
    if (!json_is_string(val))
      return fmt_err(err, f->path,
                     "__metadata__: key '%s': expected a string value, got %s",
                     key, qf__json_kind(val));
    f->meta_keys[f->nmeta] = strdup(key);
    f->meta_vals[f->nmeta] = strdup(json_string_value(val));
    if (!f->meta_keys[f->nmeta] || !f->meta_vals[f->nmeta]) {
      free(f->meta_keys[f->nmeta]);
      free(f->meta_vals[f->nmeta]);
      return qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory",
                       f->path);
    }
    f->nmeta++;
  }
  return QF_OK;
}

static qf_status parse_entry(const char *path, const char *name,
                             const json_t *v, uint64_t data_len, entry *e,
                             qf_error *err) {
  e->name = name;
  if (!json_is_object(v))
    return fmt_err(err, path,
                   "tensor '%s': expected an object with dtype, shape and "
                   "data_offsets, got %s",
                   name, qf__json_kind(v));
  /* dtype */
  const json_t *dt = json_object_get(v, "dtype");
  if (!dt) return fmt_err(err, path, "tensor '%s': dtype: missing", name);
  if (!json_is_string(dt))
    return fmt_err(err, path, "tensor '%s': dtype: expected a string, got %s",
                   name, qf__json_kind(dt));
  e->dtype = qf_dtype_from_name(json_string_value(dt));
  if (e->dtype == QF_DTYPE_INVALID)
    return fmt_err(err, path,
                   "tensor '%s': dtype '%s' is unknown (expected one of F64, "
                   "F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, "
                   "BOOL, F8_E4M3, F8_E5M2)",
                   name, json_string_value(dt));
  /* shape */
  const json_t *sh = json_object_get(v, "shape");
  if (!sh) return fmt_err(err, path, "tensor '%s': shape: missing", name);
  if (!json_is_array(sh))
    return fmt_err(err, path,
                   "tensor '%s': shape: expected a list of non-negative "
                   "integers, got %s",
                   name, qf__json_kind(sh));
  size_t nd = json_array_size(sh);
  if (nd > QF_MAX_DIMS)
    return fmt_err(err, path,
                   "tensor '%s': shape has %zu dimensions, expected at most %d",
                   name, nd, QF_MAX_DIMS);
  e->ndim = (int)nd;
  uint64_t numel = 1;
  int overflow = 0, has_zero = 0;
  for (size_t d = 0; d < nd; d++) {
    const json_t *x = json_array_get(sh, d);
    long long dim = nonneg_int(x);
    if (dim < 0) {
      if (json_is_integer(x))
        return fmt_err(err, path,
                       "tensor '%s': shape[%zu] is %" JSON_INTEGER_FORMAT
                       ", expected a non-negative integer",
                       name, d, json_integer_value(x));
      return fmt_err(err, path,
                     "tensor '%s': shape[%zu]: expected a non-negative "
                     "integer, got %s",
                     name, d, qf__json_kind(x));
    }
    e->shape[d] = dim;
    if (dim == 0) has_zero = 1;
    else if (numel > UINT64_MAX / (uint64_t)dim) overflow = 1;
    numel *= (uint64_t)dim;
  }
  if (has_zero) numel = 0, overflow = 0; /* a zero dimension wins */
  size_t esz = qf_dtype_size(e->dtype);
  if (overflow || numel > UINT64_MAX / esz)
    return fmt_err(err, path,
                   "tensor '%s': shape: the byte size overflows 64 bits", name);
  e->nbytes = numel * esz;
  /* data_offsets */
  const json_t *off = json_object_get(v, "data_offsets");
  if (!off)
    return fmt_err(err, path, "tensor '%s': data_offsets: missing", name);
  long long b = -1, en = -1;
  if (json_is_array(off) && json_array_size(off) == 2) {
    b = nonneg_int(json_array_get(off, 0));
    en = nonneg_int(json_array_get(off, 1));
  }
  if (b < 0 || en < 0)
    return fmt_err(err, path,
                   "tensor '%s': data_offsets: expected [begin, end] with two "
                   "non-negative integers",
                   name);
  e->begin = (uint64_t)b;
  e->end = (uint64_t)en;
  if (e->begin > e->end)
    return fmt_err(err, path,
                   "tensor '%s': data_offsets [%lld, %lld]: begin is after end",
                   name, b, en);
  if (e->end - e->begin != e->nbytes)
    return fmt_err(err, path,
                   "tensor '%s': data_offsets [%lld, %lld] span %llu bytes, "
                   "expected %" PRIu64 " (%" PRIu64 " elements of %s)",
                   name, b, en, (unsigned long long)(e->end - e->begin),
                   e->nbytes, numel, qf_dtype_name(e->dtype));
  if (e->end > data_len)
    return fmt_err(err, path,
                   "tensor '%s': data_offsets [%lld, %lld] out of range: "
                   "expected end <= %" PRIu64 " (the data section's size)",
                   name, b, en, data_len);
  return QF_OK;
}

static int cmp_entry(const void *pa, const void *pb) {
  const entry *a = pa, *b = pb;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return a->order < b->order ? -1 : (a->order > b->order);
}

static int cmp_by_name(const void *pa, const void *pb) {
  const qf_st_tensor *a = *(const qf_st_tensor *const *)pa;
  const qf_st_tensor *b = *(const qf_st_tensor *const *)pb;
  return strcmp(a->name, b->name);
}

/* Tensors must follow each other with no gap or overlap and end exactly at
 * the end of the file. `ents` is sorted by offsets. */
static qf_status check_tiling(const char *path, const entry *ents, size_t n,
                              uint64_t data_len, qf_error *err) {
  uint64_t expect = 0;
  const char *prev = NULL;
  for (size_t i = 0; i < n; i++) {
    const entry *e = &ents[i];
    if (e->begin < expect)
      return fmt_err(err, path,
                     "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] overlap tensor '%s' (expected begin %" PRIu64 ")",
                     e->name, e->begin, e->end, prev, expect);
    if (e->begin > expect) {
      if (prev)
        return fmt_err(err, path,
                       "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] leave a gap after tensor '%s' (expected begin %"
                       PRIu64 ")",
                       e->name, e->begin, e->end, prev, expect);
      return fmt_err(err, path,
                     "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] leave a gap at the start of the data section "
                     "(expected begin 0)",
                     e->name, e->begin, e->end);
    }
    expect = e->end;
    prev = e->name;
  }
  if (expect != data_len)
    return fmt_err(err, path,
                   "data section is %" PRIu64 " bytes but the tensors end at "
                   "%" PRIu64 " (expected no trailing bytes)",
                   data_len, expect);
  return QF_OK;
}

static qf_status parse_header(qf_st_file *f, uint64_t hlen, qf_error *err) {
  const char *path = f->path;
  uint64_t data_len = (uint64_t)f->map_size - 8 - hlen;
  json_error_t je;
  json_t *root = json_loadb((const char *)f->map + 8, (size_t)hlen,
                            JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return fmt_err(err, path,
                   "header is not valid JSON: %s (line %d, column %d)",
                   je.text, je.line, je.column);
  qf_status st = QF_OK;
  entry *ents = NULL;
  if (!json_is_object(root)) {
    st = fmt_err(err, path, "header: expected a JSON object, got %s",
                 qf__json_kind(root));
    goto done;
  }
  size_t total = json_object_size(root);
  ents = calloc(total ? total : 1, sizeof *ents);
  if (!ents) {
    st = qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", path);
    goto done;
  }
  size_t n = 0, order = 0;
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "__metadata__") == 0) {
      st = parse_metadata(f, val, err);
    } else {
      ents[n].order = order;
      st = parse_entry(path, key, val, data_len, &ents[n], err);
      n++;
    }
    order++;
    if (st != QF_OK) goto done;
  }
  qsort(ents, n, sizeof *ents, cmp_entry);
  st = check_tiling(path, ents, n, data_len, err);
  if (st != QF_OK) goto done;

  f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
  f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
  if (!f->tensors || !f->by_name) {
    st = qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", path);
    goto done;
  }
  const unsigned char *data = f->map + 8 + hlen;
  for (size_t i = 0; i < n; i++) {
    qf_st_tensor *t = &f->tensors[i];
    char *name = strdup(ents[i].name);
    if (!name) {
      st = qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", path);
      goto done;
    }
    t->name = name;
    f->n = i + 1; /* so close() frees the names made so far */
    t->dtype = ents[i].dtype;
    t->ndim = ents[i].ndim;
    memcpy(t->shape, ents[i].shape, sizeof t->shape);
    t->nbytes = ents[i].nbytes;
    t->data = data + ents[i].begin;
    t->file = f->path;
    f->by_name[i] = t;
  }
  qsort(f->by_name, n, sizeof *f->by_name, cmp_by_name);
done:
  free(ents);
  json_decref(root);
  return st;
}

qf_status qf_st_open(const char *path, qf_st_file **out, qf_error *err) {
  if (out) *out = NULL;
  if (!path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_st_open: path and out are required");
  qf_st_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", path);
  }
  qf_status st = QF_OK;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    st = qf_errorf(err, e == ENOENT ? QF_ERR_NOT_FOUND : QF_ERR_IO, QF__OP,
                   "%s: cannot open: %s", path, strerror(e));
    goto fail;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = qf_errorf(err, QF_ERR_IO, QF__OP, "%s: cannot stat: %s", path,
                   strerror(errno));
    close(fd);
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = qf_errorf(err, QF_ERR_IO, QF__OP, "%s: not a regular file", path);
    close(fd);
    goto fail;
  }
  uint64_t fsize = (uint64_t)sb.st_size;
  if (fsize < 8) {
    close(fd);
    st = fmt_err(err, path,
                 "file is %" PRIu64 " bytes, expected at least 8 (the header "
                 "length)",
                 fsize);
    goto fail;
  }
  if (fsize > SIZE_MAX) {
    close(fd);
    st = fmt_err(err, path, "file is too large to map");
    goto fail;
  }
  void *m = mmap(NULL, (size_t)fsize, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  close(fd);
  if (m == MAP_FAILED) {
    st = qf_errorf(err, QF_ERR_IO, QF__OP, "%s: cannot mmap: %s", path,
                   strerror(map_errno));
    goto fail;
  }
  f->map = m;
  f->map_size = (size_t)fsize;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i];
  if (hlen > QF__MAX_HEADER) {
    st = fmt_err(err, path,
                 "header length %" PRIu64 " is too large (expected at most %llu "
                 "bytes)",
                 hlen, QF__MAX_HEADER);
    goto fail;
  }
  if (hlen > fsize - 8) {
    st = fmt_err(err, path,
                 "header length %" PRIu64 " runs past the end of the file "
                 "(expected at most %" PRIu64 ")",
                 hlen, fsize - 8);
    goto fail;
  }
  st = parse_header(f, hlen, err);
  if (st != QF_OK) goto fail;
  *out = f;
  return QF_OK;
fail:
  qf_st_close(f);
  return st;
}

void qf_st_close(qf_st_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
  for (size_t i = 0; i < f->nmeta; i++) {
    free(f->meta_keys[i]);
    free(f->meta_vals[i]);
  }
  free(f->meta_keys);
  free(f->meta_vals);
  free(f->tensors);
  free(f->by_name);
  if (f->map) munmap(f->map, f->map_size);
  free(f->path);
  free(f);
}

size_t qf_st_count(const qf_st_file *f) { return f ? f->n : 0; }

const qf_st_tensor *qf_st_at(const qf_st_file *f, size_t i) {
  return f && i < f->n ? &f->tensors[i] : NULL;
}

const qf_st_tensor *qf_st_find(const qf_st_file *f, const char *name) {
  if (!f || !name) return NULL;
  size_t lo = 0, hi = f->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, f->by_name[mid]->name);
    if (c == 0) return f->by_name[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *qf_st_metadata(const qf_st_file *f, const char *key) {
  if (!f || !key) return NULL;
  for (size_t i = 0; i < f->nmeta; i++)
    if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
  return NULL;
}

size_t qf_st_metadata_count(const qf_st_file *f) { return f ? f->nmeta : 0; }

const char *qf_st_metadata_key(const qf_st_file *f, size_t i) {
  return f && i < f->nmeta ? f->meta_keys[i] : NULL;
}
