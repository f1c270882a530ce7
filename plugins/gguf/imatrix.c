/*
 * imatrix.c — llama.cpp importance-matrix files (GGUF and legacy .dat).
 *
 * Purpose: load an imatrix and compute, per weight tensor, the importance
 * vector that llama-quantize passes to ggml's quantizers: in_sum2 / count for
 * every matrix of the GGUF form (1.0 where a matrix never saw data; counts are
 * rounded to integers first, as common_imatrix_load does), stored / ncall for
 * the legacy form. Every read is bounded; malformed input is an error naming
 * the file, the offset or entry, and the field. See gguf_imatrix.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_file.h"
#include "gguf_imatrix.h"
#include "gguf_internal.h"
#include "qforge/plugin_util.h"

struct qf_gguf_imatrix {
  int legacy;
  uint32_t chunk_count;
  uint32_t chunk_size;
  char **datasets;
  size_t n_datasets;
  qf_gguf_imatrix_entry *e;
  size_t n, cap;
};

static void free_entry(qf_gguf_imatrix_entry *e) {
  free((void *)e->name);
  free((void *)e->values);
  free((void *)e->activations);
  free((void *)e->counts);
}

void qf_gguf_imatrix_free(qf_gguf_imatrix *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n; i++) free_entry(&m->e[i]);
  for (size_t i = 0; i < m->n_datasets; i++) free(m->datasets[i]);
  free(m->datasets);
  free(m->e);
  free(m);
}

static qf_status oom(const char *name, qf_error *err) {
  return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "imatrix", "%s: out of memory", name);
}

/* Add (or, for a repeated legacy name, replace) an entry; takes ownership of
 * the arrays in `e` (freed on failure). */
static int add_entry(qf_gguf_imatrix *m, qf_gguf_imatrix_entry *e) {
  for (size_t i = 0; i < m->n; i++) {
    if (strcmp(m->e[i].name, e->name) == 0) {
      free_entry(&m->e[i]);
      m->e[i] = *e;
      return 0;
    }
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    qf_gguf_imatrix_entry *n = realloc(m->e, cap * sizeof *n);
    if (!n) {
      free_entry(e);
      return -1;
    }
    m->e = n;
    m->cap = cap;
  }
  m->e[m->n++] = *e;
  return 0;
}

static int add_dataset(qf_gguf_imatrix *m, const char *s, size_t len) {
  char **n = realloc(m->datasets, (m->n_datasets + 1) * sizeof *n);
  if (!n) return -1;
  m->datasets = n;
  char *d = malloc(len + 1);
  if (!d) return -1;
  memcpy(d, s, len);
  d[len] = '\0';
  m->datasets[m->n_datasets++] = d;
  return 0;
}

static float rd_f32(const uint8_t *p) {
  uint32_t u = qf__rd_u32(p);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* ------------------------------------------------------------ legacy */

static qf_status legacy(const uint8_t *p, size_t size, const char *fname, qf_gguf_imatrix *m,
                        qf_error *err) {
#define LBAD(off, ...)                                                                 \
  do {                                                                                 \
    char msg_[600];                                                                    \
    snprintf(msg_, sizeof msg_, __VA_ARGS__);                                          \
    return qf_fail(err, QF_ERR_FORMAT, "gguf", "imatrix", "%s: offset %zu: %s", fname, \
                   (size_t)(off), msg_);                                               \
  } while (0)
  size_t pos = 0;
  if (size < 4)
    LBAD(0, "file is %zu bytes: neither GGUF nor a legacy imatrix (entry count missing)", size);
  int32_t n_entries = (int32_t)qf__rd_u32(p);
  if (n_entries < 1) LBAD(0, "legacy imatrix has no data (entry count %" PRId32 ")", n_entries);
  pos = 4;
  for (int32_t i = 0; i < n_entries; i++) {
    if (size - pos < 4)
      LBAD(pos, "truncated: name length of entry #%" PRId32 " needs 4 bytes, %zu left", i,
           size - pos);
    int32_t len = (int32_t)qf__rd_u32(p + pos);
    if (len < 0 || (size_t)len > size - pos - 4)
      LBAD(pos,
           "name length %" PRId32 " of entry #%" PRId32
           " is negative or past the end of the %zu-byte file",
           len, i, size);
    pos += 4;
    const char *nm = (const char *)p + pos;
    size_t nlen = strnlen(nm, (size_t)len); /* llama.cpp keeps the part before a NUL */
    pos += (size_t)len;
    if (size - pos < 8)
      LBAD(pos, "truncated: ncall and nval of entry '%.*s' need 8 bytes, %zu left", (int)nlen, nm,
           size - pos);
    int32_t ncall = (int32_t)qf__rd_u32(p + pos);
    int32_t nval = (int32_t)qf__rd_u32(p + pos + 4);
    if (nval < 1) LBAD(pos + 4, "entry '%.*s' has %" PRId32 " values", (int)nlen, nm, nval);
    pos += 8;
    if ((uint64_t)nval * 4 > size - pos)
      LBAD(pos,
           "truncated: the %" PRId32 " values of entry '%.*s' need %" PRIu64 " bytes, %zu left",
           nval, (int)nlen, nm, (uint64_t)nval * 4, size - pos);
    qf_gguf_imatrix_entry e;
    memset(&e, 0, sizeof e);
    char *name = malloc(nlen + 1);
    float *vals = malloc((size_t)nval * sizeof *vals);
    int64_t *counts = malloc(sizeof *counts);
    if (!name || !vals || !counts) {
      free(name);
      free(vals);
      free(counts);
      return oom(fname, err);
    }
    memcpy(name, nm, nlen);
    name[nlen] = '\0';
    for (int32_t j = 0; j < nval; j++) {
      float v = rd_f32(p + pos + 4 * (size_t)j);
      vals[j] = ncall > 0 ? v / (float)ncall : v;
    }
    pos += 4 * (size_t)nval;
    counts[0] = ncall;
    e.name = name;
    e.n = nval;
    e.ne0 = nval;
    e.n_mat = 1;
    e.values = vals;
    e.counts = counts;
    if (add_entry(m, &e) != 0) return oom(fname, err);
  }
  /* optional trailer: chunk count, then dataset name (tolerated if cut short,
   * as llama.cpp does) */
  if (size - pos >= 4) {
    int32_t chunks = (int32_t)qf__rd_u32(p + pos);
    m->chunk_count = chunks > 0 ? (uint32_t)chunks : 0;
    pos += 4;
    if (size - pos >= 4) {
      int32_t dlen = (int32_t)qf__rd_u32(p + pos);
      pos += 4;
      if (dlen > 0 && (size_t)dlen <= size - pos) {
        const char *d = (const char *)p + pos;
        if (add_dataset(m, d, strnlen(d, (size_t)dlen)) != 0) return oom(fname, err);
      }
    }
  }
  return QF_OK;
#undef LBAD
}

/* ------------------------------------------------------------ GGUF */

typedef struct part {
  const char *base; /* tensor name; the base is its first base_len bytes */
  size_t base_len;
  int kind; /* 0 in_sum2, 1 counts, 2 in_sum */
  const qf_gguf_tensor *t;
} part;

static int cmp_part(const void *a, const void *b) {
  const part *x = a, *y = b;
  size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
  int c = memcmp(x->base, y->base, n);
  if (c) return c;
  if (x->base_len != y->base_len) return x->base_len < y->base_len ? -1 : 1;
  return x->kind - y->kind;
}

static int ends_with(const char *s, const char *suf, size_t *base_len) {
  size_t n = strlen(s), k = strlen(suf);
  if (n < k || strcmp(s + n - k, suf) != 0) return 0;
  *base_len = n - k;
  return 1;
}

static float round_count(float c) {
  if (!(c >= 0.5f)) return 0.0f; /* negative, tiny or NaN: no data */
  if (c >= 9.0e18f) return c;
  return (float)llround((double)c);
}

static qf_status gguf_entries(const qf_gguf_file *f, const char *fname, qf_gguf_imatrix *m,
                              qf_error *err) {
  static const char *const kinds[3] = {".in_sum2", ".counts", ".in_sum"};
  size_t nt = qf_gguf_tensor_count(f);
  if (nt < 1)
    return qf_fail(err, QF_ERR_FORMAT, "gguf", "imatrix", "%s: imatrix has no tensors", fname);
  part *parts = malloc(nt * sizeof *parts);
  if (!parts) return oom(fname, err);
  size_t np = 0;
  for (size_t i = 0; i < nt; i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
    for (int k = 0; k < 3; k++) {
      size_t bl;
      if (ends_with(t->name, kinds[k], &bl)) {
        parts[np++] = (part){t->name, bl, k, t};
        break;
      }
    }
  }
  qsort(parts, np, sizeof *parts, cmp_part);
  qf_status st = QF_OK;
  for (size_t i = 0; i < np && st == QF_OK;) {
    const qf_gguf_tensor *by[3] = {NULL, NULL, NULL};
    size_t j = i;
    for (; j < np && parts[j].base_len == parts[i].base_len &&
           memcmp(parts[j].base, parts[i].base, parts[i].base_len) == 0;
         j++)
      by[parts[j].kind] = parts[j].t;
    int bl = (int)parts[i].base_len;
    const char *bn = parts[i].base;
    i = j;
    const qf_gguf_tensor *sums = by[0], *cnt = by[1], *act = by[2];
    if (!sums || !cnt) {
      st = qf_fail(err, QF_ERR_FORMAT, "gguf", "imatrix",
                   "%s: imatrix entry '%.*s' has no %s tensor (mismatched sums and counts)", fname,
                   bl, bn, sums ? "counts" : "in_sum2");
      break;
    }
    for (int k = 0; k < 3; k++) {
      if (by[k] && by[k]->type != 0) {
        st = qf_fail(err, QF_ERR_FORMAT, "gguf", "imatrix",
                     "%s: offset %" PRIu64 ": tensor '%s' must be F32 (type id %" PRId32 ")", fname,
                     by[k]->info_offset, by[k]->name, by[k]->type);
        break;
      }
    }
    if (st != QF_OK) break;
    int64_t nsums = qf_gguf_tensor_nelements(sums), ncounts = qf_gguf_tensor_nelements(cnt);
    if (nsums == 0 || ncounts == 0) continue; /* llama-quantize skips empty entries */
    if (nsums % ncounts != 0 || (act && qf_gguf_tensor_nelements(act) != nsums)) {
      st = qf_fail(err, QF_ERR_FORMAT, "gguf", "imatrix",
                   "%s: imatrix entry '%.*s': %" PRId64 " in_sum2 values, %" PRId64
                   " counts%s do not match",
                   fname, bl, bn, nsums, ncounts, act ? " and in_sum" : "");
      break;
    }
    int64_t ne0 = nsums / ncounts;
    qf_gguf_imatrix_entry e;
    memset(&e, 0, sizeof e);
    char *name = malloc((size_t)bl + 1);
    float *vals = malloc((size_t)nsums * sizeof *vals);
    float *acts = act ? malloc((size_t)nsums * sizeof *acts) : NULL;
    int64_t *counts = malloc((size_t)ncounts * sizeof *counts);
    if (!name || !vals || !counts || (act && !acts)) {
      free(name);
      free(vals);
      free(acts);
      free(counts);
      st = oom(fname, err);
      break;
    }
    memcpy(name, bn, (size_t)bl);
    name[bl] = '\0';
    const uint8_t *ps = sums->data, *pc = cnt->data, *pa = act ? act->data : NULL;
    for (int64_t r = 0; r < ncounts; r++) {
      float count = round_count(rd_f32(pc + 4 * r));
      counts[r] = count >= 9.2e18f ? INT64_MAX : (int64_t)count;
      for (int64_t c = 0; c < ne0; c++) {
        int64_t k = r * ne0 + c;
        vals[k] = count > 0.0f ? rd_f32(ps + 4 * k) / count : 1.0f;
        if (acts) acts[k] = count > 0.0f ? rd_f32(pa + 4 * k) / count : 0.0f;
      }
    }
    e.name = name;
    e.n = nsums;
    e.ne0 = ne0;
    e.n_mat = ncounts;
    e.values = vals;
    e.activations = acts;
    e.counts = counts;
    if (add_entry(m, &e) != 0) st = oom(fname, err);
  }
  free(parts);
  return st;
}

static qf_status gguf_form(const uint8_t *p, size_t size, const char *fname, qf_gguf_imatrix *m,
                           qf_error *err) {
  qf_gguf_file *f = NULL;
  qf_status st = qf_gguf_open_memory(p, size, fname, &f, err);
  if (st != QF_OK) return st;
  const qf_gguf_kv *ds = NULL;
  st = qf_gguf_get_arr(f, "imatrix.datasets", QF_GGUF_VT_STRING, &ds, err);
  if (st == QF_OK) st = qf_gguf_get_u32(f, "imatrix.chunk_count", &m->chunk_count, err);
  if (st == QF_OK) st = qf_gguf_get_u32(f, "imatrix.chunk_size", &m->chunk_size, err);
  if (st == QF_ERR_NOT_FOUND && err)
    snprintf(err->message + strlen(err->message), sizeof err->message - strlen(err->message),
             " (missing imatrix metadata: imatrix.datasets, imatrix.chunk_count and "
             "imatrix.chunk_size are required)");
  if (st == QF_ERR_NOT_FOUND) st = QF_ERR_FORMAT;
  for (uint64_t i = 0; st == QF_OK && i < ds->n; i++)
    if (add_dataset(m, ds->strs[i].data, (size_t)ds->strs[i].len) != 0) st = oom(fname, err);
  if (st == QF_OK) st = gguf_entries(f, fname, m, err);
  qf_gguf_close(f);
  return st;
}

/* ------------------------------------------------------------ entry points */

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const qf_gguf_imatrix_entry *)a)->name, ((const qf_gguf_imatrix_entry *)b)->name);
}

qf_status qf_gguf_imatrix_load_memory(const void *data, size_t size, const char *name,
                                      qf_gguf_imatrix **out, qf_error *err) {
  if (out) *out = NULL;
  if (!out || (!data && size))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "imatrix", "NULL argument");
  if (!name) name = "<memory>";
  qf_gguf_imatrix *m = calloc(1, sizeof *m);
  if (!m) return oom(name, err);
  const uint8_t *p = data;
  qf_status st;
  if (size >= 4 && memcmp(p, QF_GGUF_MAGIC, 4) == 0) {
    st = gguf_form(p, size, name, m, err);
  } else {
    m->legacy = 1;
    st = legacy(p, size, name, m, err);
  }
  if (st == QF_OK && m->n == 0)
    st = qf_fail(err, QF_ERR_FORMAT, "gguf", "imatrix", "%s: no importance data in the file", name);
  if (st != QF_OK) {
    qf_gguf_imatrix_free(m);
    return st;
  }
  qsort(m->e, m->n, sizeof *m->e, cmp_entry);
  *out = m;
  return QF_OK;
}

qf_status qf_gguf_imatrix_load(const char *path, qf_gguf_imatrix **out, qf_error *err) {
  if (out) *out = NULL;
  if (!path || !out)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "imatrix", "NULL argument");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return qf_fail(err, QF_ERR_IO, "gguf", "imatrix", "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return qf_fail(err, QF_ERR_IO, "gguf", "imatrix", "%s: not a readable regular file", path);
  }
  size_t size = (size_t)sb.st_size;
  void *map = NULL;
  if (size > 0) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      return qf_fail(err, QF_ERR_IO, "gguf", "imatrix", "%s: cannot map: %s", path, strerror(e));
    }
  }
  close(fd);
  qf_status st = qf_gguf_imatrix_load_memory(map, size, path, out, err);
  if (map) munmap(map, size);
  return st;
}

int qf_gguf_imatrix_is_legacy(const qf_gguf_imatrix *m) { return m->legacy; }
uint32_t qf_gguf_imatrix_chunk_count(const qf_gguf_imatrix *m) { return m->chunk_count; }
uint32_t qf_gguf_imatrix_chunk_size(const qf_gguf_imatrix *m) { return m->chunk_size; }
size_t qf_gguf_imatrix_dataset_count(const qf_gguf_imatrix *m) { return m->n_datasets; }

const char *qf_gguf_imatrix_dataset(const qf_gguf_imatrix *m, size_t i) {
  return i < m->n_datasets ? m->datasets[i] : NULL;
}

size_t qf_gguf_imatrix_count(const qf_gguf_imatrix *m) { return m->n; }

const qf_gguf_imatrix_entry *qf_gguf_imatrix_at(const qf_gguf_imatrix *m, size_t i) {
  return i < m->n ? &m->e[i] : NULL;
}

const qf_gguf_imatrix_entry *qf_gguf_imatrix_find(const qf_gguf_imatrix *m, const char *name) {
  if (!name) return NULL;
  qf_gguf_imatrix_entry key;
  memset(&key, 0, sizeof key);
  key.name = name;
  return bsearch(&key, m->e, m->n, sizeof *m->e, cmp_entry);
}
