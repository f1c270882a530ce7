/*
 * gguf_read.c — opening and validating a GGUF file.
 *
 * Purpose: turn untrusted bytes into a qf_gguf_file, or into an error that
 * names the file, the byte offset and the field. The bytes are read through a
 * bounded cursor: every length and count is compared with what is left of the
 * file before it is used, and nothing is allocated from a count that the file
 * cannot back. The header, the key/value section and the tensor-info section
 * are each parsed twice: a first pass validates and counts, a second fills
 * exactly sized arrays (so no pointer ever moves). Then come the checks that
 * span records: duplicate keys and tensor names, `general.alignment` (u32,
 * power of two) and the data layout (offsets aligned, inside the file, not
 * overlapping; any aligned order is accepted, not only the running sum that
 * llama.cpp demands, which is reported by qf_gguf_is_strict_layout).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_internal.h"
#include "qforge/plugin_util.h"

#define MIN_KV_BYTES 14u /* key length + 1-byte key + type + 1-byte value */
#define MIN_TI_BYTES 24u /* name length + n_dims + type + offset */

typedef struct rd {
  const uint8_t *p;
  uint64_t size;
  uint64_t pos;
  const char *fname;
  qf_error *err;
} rd;

#if defined(__GNUC__)
#define QF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QF_PRINTF(a, b)
#endif

static QF_PRINTF(3, 4) qf_status bad(rd *r, uint64_t off, const char *fmt, ...) {
  char msg[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qf_fail(r->err, QF_ERR_FORMAT, "gguf", "open", "%s: offset %" PRIu64 ": %s", r->fname, off,
                 msg);
}

/* Is there room for `n` more bytes? If not, report the field (fmt, ...). */
static QF_PRINTF(3, 4) int need(rd *r, uint64_t n, const char *fmt, ...) {
  uint64_t left = r->size - r->pos;
  if (left >= n) return 1;
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  bad(r, r->pos,
      "truncated: %s needs %" PRIu64 " bytes, only %" PRIu64 " left in the %" PRIu64 "-byte file",
      what, n, left, r->size);
  return 0;
}

/* Printable, bounded rendering of a name from the file for messages. */
static const char *quote(const char *s, uint64_t len, char *buf, size_t bufsz) {
  size_t o = 0;
  for (uint64_t i = 0; i < len && o + 8 < bufsz; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      buf[o++] = (char)c;
    } else {
      o += (size_t)snprintf(buf + o, bufsz - o, "\\x%02x", c);
    }
    if (i + 1 < len && o + 8 >= bufsz) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
  }
  buf[o] = '\0';
  return buf;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

typedef struct tally {
  uint64_t n_strs;      /* string elements in KVs */
  uint64_t names_bytes; /* key or tensor-name bytes including NULs */
} tally;

/* A GGUF string at the cursor. `ctx` names the owner; elem >= 0 is an array
 * element index. */
static int read_str(rd *r, const char *ctx, long long elem, qf_gguf_string *out) {
  char el[48] = "";
  if (elem >= 0) snprintf(el, sizeof el, "string #%lld of ", elem);
  if (!need(r, 8, "length of %s%s", el, ctx)) return 0;
  uint64_t at = r->pos, len = qf__rd_u64(r->p + r->pos);
  r->pos += 8;
  if (len > QF_GGUF_MAX_STRING) {
    bad(r, at, "%s%s has length %" PRIu64 ", more than the 1 GiB limit of GGUF strings", el, ctx,
        len);
    return 0;
  }
  if (len > r->size - r->pos) {
    bad(r, at,
        "%s%s has length %" PRIu64 " but only %" PRIu64 " bytes are left in the %" PRIu64
        "-byte file",
        el, ctx, len, r->size - r->pos, r->size);
    return 0;
  }
  out->data = (const char *)r->p + r->pos;
  out->len = len;
  r->pos += len;
  return 1;
}

static qf_status parse_kvs(rd *r, qf_gguf_file *f, int fill, uint64_t n_kv, tally *t) {
  char q[120], ctx[160];
  for (uint64_t i = 0; i < n_kv; i++) {
    uint64_t rec = r->pos;
    qf_gguf_string key;
    snprintf(ctx, sizeof ctx, "the key of kv #%" PRIu64, i);
    if (!need(r, 8, "length of %s", ctx)) return QF_ERR_FORMAT;
    uint64_t klen = qf__rd_u64(r->p + r->pos);
    if (klen == 0) return bad(r, rec, "key of kv #%" PRIu64 " is empty", i);
    if (klen > QF_GGUF_MAX_KEY)
      return bad(r, rec,
                 "key of kv #%" PRIu64 " is %" PRIu64 " bytes long, more than the %d allowed", i,
                 klen, QF_GGUF_MAX_KEY);
    if (!read_str(r, ctx, -1, &key)) return QF_ERR_FORMAT;
    if (memchr(key.data, 0, key.len))
      return bad(r, rec, "key of kv #%" PRIu64 " ('%s') contains a NUL byte", i,
                 quote(key.data, key.len, q, sizeof q));
    snprintf(ctx, sizeof ctx, "key '%s'", quote(key.data, key.len, q, sizeof q));

    if (!need(r, 4, "value type of %s", ctx)) return QF_ERR_FORMAT;
    int32_t type = (int32_t)qf__rd_u32(r->p + r->pos);
    if (type < 0 || type >= QF_GGUF_VT_COUNT)
      return bad(r, r->pos, "%s has unknown value type %" PRId32 " (known: 0 to 12)", ctx, type);
    r->pos += 4;
    int32_t elem = type;
    uint64_t n = 1;
    if (type == QF_GGUF_VT_ARRAY) {
      if (!need(r, 4, "array element type of %s", ctx)) return QF_ERR_FORMAT;
      elem = (int32_t)qf__rd_u32(r->p + r->pos);
      if (elem == QF_GGUF_VT_ARRAY)
        return bad(r, r->pos, "%s is an array of arrays; nested arrays are not supported", ctx);
      if (elem < 0 || elem >= QF_GGUF_VT_COUNT)
        return bad(r, r->pos, "%s has unknown array element type %" PRId32 " (known: 0 to 12)", ctx,
                   elem);
      r->pos += 4;
      if (!need(r, 8, "array length of %s", ctx)) return QF_ERR_FORMAT;
      n = qf__rd_u64(r->p + r->pos);
      if (n > QF_GGUF_MAX_ARRAY)
        return bad(r, r->pos, "%s is an array of %" PRIu64 " elements, more than the 2^30 limit",
                   ctx, n);
      uint64_t min = elem == QF_GGUF_VT_STRING ? 8 : qf_gguf_vtype_size(elem);
      uint64_t left = r->size - r->pos - 8;
      if (n * min > left)
        return bad(r, r->pos,
                   "%s is an array of %" PRIu64 " %s elements needing at least %" PRIu64
                   " bytes, but only %" PRIu64 " are left in the %" PRIu64 "-byte file",
                   ctx, n, qf_gguf_vtype_name(elem), n * min, left, r->size);
      r->pos += 8;
    }
    uint64_t voff = r->pos;
    uint64_t first_str = t->n_strs;
    if (elem == QF_GGUF_VT_STRING) {
      for (uint64_t j = 0; j < n; j++) {
        qf_gguf_string s;
        if (!read_str(r, ctx, type == QF_GGUF_VT_ARRAY ? (long long)j : -1, &s))
          return QF_ERR_FORMAT;
        if (fill) f->strs[t->n_strs] = s;
        t->n_strs++;
      }
    } else {
      uint64_t nb = n * qf_gguf_vtype_size(elem);
      if (type == QF_GGUF_VT_ARRAY) {
        if (!need(r, nb, "the %" PRIu64 " elements of %s", n, ctx)) return QF_ERR_FORMAT;
      } else if (!need(r, nb, "value of %s", ctx)) {
        return QF_ERR_FORMAT;
      }
      r->pos += nb;
    }
    if (fill) {
      qf_gguf_kv *kv = &f->kvs[i];
      char *name = f->names + t->names_bytes;
      memcpy(name, key.data, key.len);
      name[key.len] = '\0';
      kv->key = name;
      kv->type = (qf_gguf_vtype)type;
      kv->elem_type = (qf_gguf_vtype)elem;
      kv->n = n;
      kv->offset = rec;
      kv->value_offset = voff;
      kv->value_nbytes = r->pos - voff;
      kv->value = r->p + voff;
      kv->strs = elem == QF_GGUF_VT_STRING ? f->strs + first_str : NULL;
    }
    t->names_bytes += key.len + 1;
  }
  return QF_OK;
}

static qf_status parse_tensors(rd *r, qf_gguf_file *f, int fill, uint64_t n_ti, tally *t,
                               char *names) {
  char q[120], ctx[160];
  for (uint64_t i = 0; i < n_ti; i++) {
    uint64_t rec = r->pos;
    qf_gguf_string name;
    snprintf(ctx, sizeof ctx, "the name of tensor #%" PRIu64, i);
    if (!need(r, 8, "length of %s", ctx)) return QF_ERR_FORMAT;
    uint64_t nlen = qf__rd_u64(r->p + r->pos);
    if (nlen > QF_GGUF_MAX_NAME)
      return bad(r, rec,
                 "name of tensor #%" PRIu64 " is %" PRIu64 " bytes long; at most %d are allowed", i,
                 nlen, QF_GGUF_MAX_NAME);
    if (!read_str(r, ctx, -1, &name)) return QF_ERR_FORMAT;
    if (memchr(name.data, 0, name.len))
      return bad(r, rec, "name of tensor #%" PRIu64 " ('%s') contains a NUL byte", i,
                 quote(name.data, name.len, q, sizeof q));
    snprintf(ctx, sizeof ctx, "tensor '%s'", quote(name.data, name.len, q, sizeof q));

    if (!need(r, 4, "n_dims of %s", ctx)) return QF_ERR_FORMAT;
    uint32_t nd = qf__rd_u32(r->p + r->pos);
    if (nd > QF_GGUF_MAX_DIMS)
      return bad(r, r->pos, "%s has n_dims %" PRIu32 "; at most %d dimensions are supported", ctx,
                 nd, QF_GGUF_MAX_DIMS);
    r->pos += 4;
    uint64_t ne_at = r->pos;
    int64_t ne[QF_GGUF_MAX_DIMS] = {1, 1, 1, 1};
    for (uint32_t j = 0; j < nd; j++) {
      if (!need(r, 8, "ne[%" PRIu32 "] of %s", j, ctx)) return QF_ERR_FORMAT;
      ne[j] = (int64_t)qf__rd_u64(r->p + r->pos);
      if (ne[j] < 0)
        return bad(r, r->pos, "%s has ne[%" PRIu32 "] = %" PRId64 ", a negative dimension", ctx, j,
                   ne[j]);
      r->pos += 8;
    }
    if (ne[0] && ne[1] && ne[2] && ne[3]) {
      int64_t prod = ne[0];
      for (int j = 1; j < QF_GGUF_MAX_DIMS; j++) {
        if (prod > INT64_MAX / ne[j])
          return bad(r, ne_at,
                     "%s has shape %" PRId64 " x %" PRId64 " x %" PRId64 " x %" PRId64
                     " whose element count overflows int64",
                     ctx, ne[0], ne[1], ne[2], ne[3]);
        prod *= ne[j];
      }
    }
    if (!need(r, 4, "type of %s", ctx)) return QF_ERR_FORMAT;
    int32_t type = (int32_t)qf__rd_u32(r->p + r->pos);
    const char *tname;
    int64_t block;
    int known = qf_gguf_ggml_type_info(type, &tname, &block, NULL);
    if (known < 0)
      return bad(r, r->pos,
                 "%s has unknown ggml type id %" PRId32 " (this build knows ids 0 to %" PRId32
                 "; written by a newer ggml?)",
                 ctx, type, qf_gguf_ggml_type_count() - 1);
    if (known == 0)
      return bad(r, r->pos, "%s has ggml type id %" PRId32 " (%s), which ggml removed", ctx, type,
                 tname);
    if (ne[0] % block != 0)
      return bad(r, r->pos,
                 "%s of type %s has ne[0] = %" PRId64 ", not a multiple of its block size %" PRId64,
                 ctx, tname, ne[0], block);
    uint64_t nbytes = 0;
    if (qf_gguf_tensor_nbytes(type, ne, &nbytes) != 0)
      return bad(r, r->pos, "%s of type %s has a size in bytes that overflows", ctx, tname);
    r->pos += 4;
    if (!need(r, 8, "offset of %s", ctx)) return QF_ERR_FORMAT;
    uint64_t off = qf__rd_u64(r->p + r->pos);
    r->pos += 8;
    if (fill) {
      qf_gguf_tensor *tt = &f->tensors[i];
      char *nm = names + t->names_bytes;
      memcpy(nm, name.data, name.len);
      nm[name.len] = '\0';
      tt->name = nm;
      tt->type = type;
      tt->n_dims = nd;
      memcpy(tt->ne, ne, sizeof ne);
      tt->offset = off;
      tt->nbytes = nbytes;
      tt->info_offset = rec;
      tt->data = NULL;
    }
    t->names_bytes += name.len + 1;
  }
  return QF_OK;
}

/* File offset of a tensor-info record's offset field (for messages). */
static uint64_t offset_field(const qf_gguf_tensor *t) {
  return t->info_offset + 8 + strlen(t->name) + 4 + 8ull * t->n_dims + 4;
}

typedef struct span {
  uint64_t off, end;
  size_t idx;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->off != y->off) return x->off < y->off ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Check the data layout for alignment `a`; sets f->data_offset and
 * f->strict_layout on success. */
static qf_status check_layout(rd *r, qf_gguf_file *f, uint64_t end_infos, uint32_t a) {
  uint64_t data_off = end_infos;
  if (f->n_tensors > 0) {
    data_off = pad_to(end_infos, a);
    if (data_off > r->size)
      return bad(r, end_infos,
                 "the data section would start at %" PRIu64 " (padded to %" PRIu32
                 "), past the end of the %" PRIu64 "-byte file",
                 data_off, a, r->size);
  }
  uint64_t avail = r->size - data_off;
  for (size_t i = 0; i < f->n_tensors; i++) {
    const qf_gguf_tensor *t = &f->tensors[i];
    if (t->offset % a != 0)
      return bad(r, offset_field(t),
                 "tensor '%s' has offset %" PRIu64 ", not a multiple of the alignment %" PRIu32,
                 t->name, t->offset, a);
    if (t->offset > avail || t->nbytes > avail - t->offset)
      return bad(r, offset_field(t),
                 "tensor '%s' (%" PRIu64 " bytes at data offset %" PRIu64
                 ") runs past the end of the %" PRIu64 "-byte file (data section starts at %" PRIu64
                 ")",
                 t->name, t->nbytes, t->offset, r->size, data_off);
  }
  if (f->n_tensors > 1) {
    span *s = malloc(f->n_tensors * sizeof *s);
    if (!s) return qf_fail(r->err, QF_ERR_NO_MEMORY, "gguf", "open", "%s: out of memory", r->fname);
    for (size_t i = 0; i < f->n_tensors; i++) {
      s[i].off = f->tensors[i].offset;
      s[i].end = f->tensors[i].offset + f->tensors[i].nbytes;
      s[i].idx = i;
    }
    qsort(s, f->n_tensors, sizeof *s, cmp_span);
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < f->n_tensors; i++) {
      if (s[i].end == s[i].off) continue; /* empty tensors overlap nothing */
      if (prev != SIZE_MAX && s[prev].end > s[i].off) {
        const qf_gguf_tensor *x = &f->tensors[s[prev].idx], *y = &f->tensors[s[i].idx];
        qf_status st = bad(r, offset_field(y),
                           "tensor '%s' data [%" PRIu64 ", %" PRIu64
                           ") overlaps tensor '%s' [%" PRIu64 ", %" PRIu64 ")",
                           y->name, s[i].off, s[i].end, x->name, s[prev].off, s[prev].end);
        free(s);
        return st;
      }
      if (prev == SIZE_MAX || s[i].end > s[prev].end) prev = i;
    }
    free(s);
  }
  uint64_t run = 0;
  f->strict_layout = 1;
  for (size_t i = 0; i < f->n_tensors; i++) {
    if (f->tensors[i].offset != run) f->strict_layout = 0;
    run += pad_to(f->tensors[i].nbytes, a);
  }
  f->data_offset = data_off;
  return QF_OK;
}

/* After check_layout succeeded at 32 for a file that declares another
 * alignment: accept that reading only if the file is exactly what gguf.cpp's
 * writer produces (running padded offsets, size = data offset + padded sizes,
 * zero padding everywhere), so a damaged file is never reinterpreted. */
static int looks_like_ggml_quirk(const rd *r, const qf_gguf_file *f, uint64_t end_infos) {
  const uint64_t a = QF_GGUF_DEFAULT_ALIGNMENT;
  if (!f->strict_layout) return 0;
  uint64_t total = 0;
  for (size_t i = 0; i < f->n_tensors; i++) total += pad_to(f->tensors[i].nbytes, a);
  if (f->data_offset + total != r->size) return 0;
  for (uint64_t k = end_infos; k < f->data_offset; k++)
    if (r->p[k]) return 0;
  for (size_t i = 0; i < f->n_tensors; i++) {
    const qf_gguf_tensor *t = &f->tensors[i];
    uint64_t from = f->data_offset + t->offset + t->nbytes;
    uint64_t to = f->data_offset + t->offset + pad_to(t->nbytes, a);
    for (uint64_t k = from; k < to; k++)
      if (r->p[k]) return 0;
  }
  return 1;
}

static qf_status alignment_of(rd *r, qf_gguf_file *f) {
  f->alignment = QF_GGUF_DEFAULT_ALIGNMENT;
  long long k = qf__gguf_index_find(&f->kv_index, f->kvs, sizeof *f->kvs, QF_GGUF_KEY_ALIGNMENT);
  if (k < 0) return QF_OK;
  const qf_gguf_kv *kv = &f->kvs[k];
  if (kv->type != QF_GGUF_VT_UINT32)
    return bad(r, kv->offset, "key '%s' must be of type u32 but is %s%s%s%s", kv->key,
               qf_gguf_vtype_name(kv->type), kv->type == QF_GGUF_VT_ARRAY ? "[" : "",
               kv->type == QF_GGUF_VT_ARRAY ? qf_gguf_vtype_name(kv->elem_type) : "",
               kv->type == QF_GGUF_VT_ARRAY ? "]" : "");
  uint32_t a = qf__rd_u32(kv->value);
  if (a == 0 || (a & (a - 1)) != 0)
    return bad(r, kv->value_offset, "key '%s' is %" PRIu32 ", not a non-zero power of two", kv->key,
               a);
  f->alignment = a;
  return QF_OK;
}

static qf_status oom(rd *r) {
  return qf_fail(r->err, QF_ERR_NO_MEMORY, "gguf", "open", "%s: out of memory", r->fname);
}

static qf_status parse_all(rd *r, qf_gguf_file *f) {
  char q[64];
  if (r->size < 4)
    return bad(r, 0, "file is %" PRIu64 " bytes, too short for the GGUF magic", r->size);
  if (memcmp(r->p, QF_GGUF_MAGIC, 4) != 0)
    return bad(r, 0, "bad magic '%s' (expected 'GGUF'): not a GGUF file",
               quote((const char *)r->p, 4, q, sizeof q));
  r->pos = 4;
  if (!need(r, 4, "version")) return QF_ERR_FORMAT;
  uint32_t v = qf__rd_u32(r->p + 4);
  if (v == 0) return bad(r, 4, "version 0 is invalid");
  if ((v & 0xFFFFu) == 0)
    return bad(
        r, 4, "version 0x%08" PRIx32 " looks byte-swapped: big-endian GGUF files are not supported",
        v);
  if (v == 1) return bad(r, 4, "GGUF version 1 is no longer supported (versions 2 and 3 are)");
  if (v > QF_GGUF_VERSION)
    return bad(r, 4,
               "version %" PRIu32 " is newer than this reader (versions 2 and 3 are supported)", v);
  f->version = v;
  r->pos = 8;
  if (!need(r, 8, "tensor count")) return QF_ERR_FORMAT;
  uint64_t n_ti = qf__rd_u64(r->p + 8);
  r->pos = 16;
  if (!need(r, 8, "kv count")) return QF_ERR_FORMAT;
  uint64_t n_kv = qf__rd_u64(r->p + 16);
  r->pos = 24;
  uint64_t rest = r->size - 24;
  if (n_ti > (uint64_t)INT64_MAX)
    return bad(r, 8, "tensor count %" PRIu64 " is negative as int64", n_ti);
  if (n_ti > rest / MIN_TI_BYTES)
    return bad(r, 8,
               "tensor count %" PRIu64 " exceeds what a %" PRIu64
               "-byte file can hold (a tensor info takes at least %u bytes)",
               n_ti, r->size, MIN_TI_BYTES);
  rest -= n_ti * MIN_TI_BYTES;
  if (n_kv > (uint64_t)INT64_MAX)
    return bad(r, 16, "kv count %" PRIu64 " is negative as int64", n_kv);
  if (n_kv > rest / MIN_KV_BYTES)
    return bad(r, 16,
               "kv count %" PRIu64 " exceeds what a %" PRIu64
               "-byte file can hold (a key/value record takes at least %u bytes)",
               n_kv, r->size, MIN_KV_BYTES);

  /* key/value section: validate and count, then fill */
  tally t = {0, 0};
  qf_status st = parse_kvs(r, f, 0, n_kv, &t);
  if (st != QF_OK) return st;
  f->kvs = calloc(n_kv ? n_kv : 1, sizeof *f->kvs);
  f->strs = calloc(t.n_strs ? t.n_strs : 1, sizeof *f->strs);
  f->names = malloc(t.names_bytes ? t.names_bytes : 1);
  if (!f->kvs || !f->strs || !f->names) return oom(r);
  f->n_kv = n_kv;
  f->n_strs = t.n_strs;
  r->pos = 24;
  t = (tally){0, 0};
  parse_kvs(r, f, 1, n_kv, &t);
  size_t dup_at = 0, dup_of = 0;
  int rc = qf__gguf_index_build(&f->kv_index, f->kvs, sizeof *f->kvs, f->n_kv, &dup_at, &dup_of);
  if (rc < 0) return oom(r);
  if (rc > 0)
    return bad(r, f->kvs[dup_at].offset,
               "duplicate key '%s' (kv #%zu repeats kv #%zu at offset %" PRIu64 ")",
               f->kvs[dup_at].key, dup_at, dup_of, f->kvs[dup_of].offset);
  st = alignment_of(r, f);
  if (st != QF_OK) return st;

  /* tensor-info section */
  uint64_t ti_start = r->pos;
  t = (tally){0, 0};
  st = parse_tensors(r, f, 0, n_ti, &t, NULL);
  if (st != QF_OK) return st;
  f->tensors = calloc(n_ti ? n_ti : 1, sizeof *f->tensors);
  f->tnames = malloc(t.names_bytes ? t.names_bytes : 1);
  if (!f->tensors || !f->tnames) return oom(r);
  f->n_tensors = n_ti;
  r->pos = ti_start;
  t = (tally){0, 0};
  parse_tensors(r, f, 1, n_ti, &t, f->tnames);
  rc = qf__gguf_index_build(&f->tensor_index, f->tensors, sizeof *f->tensors, f->n_tensors, &dup_at,
                            &dup_of);
  if (rc < 0) return oom(r);
  if (rc > 0)
    return bad(r, f->tensors[dup_at].info_offset,
               "duplicate tensor name '%s' (tensor #%zu repeats tensor #%zu at offset %" PRIu64 ")",
               f->tensors[dup_at].name, dup_at, dup_of, f->tensors[dup_of].info_offset);

  /* data layout: at the declared alignment, else (ggml writer quirk) at 32 */
  uint64_t end_infos = r->pos;
  qf_error e1;
  memset(&e1, 0, sizeof e1);
  qf_error *caller = r->err;
  r->err = &e1;
  st = check_layout(r, f, end_infos, f->alignment);
  f->data_alignment = f->alignment;
  if (st == QF_ERR_FORMAT && f->alignment != QF_GGUF_DEFAULT_ALIGNMENT && f->n_tensors > 0) {
    qf_error e2;
    r->err = &e2;
    if (check_layout(r, f, end_infos, QF_GGUF_DEFAULT_ALIGNMENT) == QF_OK &&
        looks_like_ggml_quirk(r, f, end_infos)) {
      st = QF_OK;
      f->data_alignment = QF_GGUF_DEFAULT_ALIGNMENT;
      char note[320];
      snprintf(note, sizeof note,
               "general.alignment is %" PRIu32
               " but the data is laid out at %u-byte alignment "
               "(as ggml's C writer does when general.alignment is set on a new context); "
               "llama.cpp's loader would refuse this file",
               f->alignment, QF_GGUF_DEFAULT_ALIGNMENT);
      f->note = strdup(note);
      if (!f->note) {
        r->err = caller;
        return oom(r);
      }
    }
  }
  r->err = caller;
  if (st != QF_OK) {
    if (caller) *caller = e1;
    return st;
  }
  for (size_t i = 0; i < f->n_tensors; i++)
    f->tensors[i].data = r->p + f->data_offset + f->tensors[i].offset;
  return QF_OK;
}

static qf_status open_bytes(const uint8_t *p, size_t size, const char *name, int mapped,
                            qf_gguf_file **out, qf_error *err) {
  qf_gguf_file *f = calloc(1, sizeof *f);
  if (!f) return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "open", "%s: out of memory", name);
  f->path = strdup(name);
  if (!f->path) {
    free(f);
    return qf_fail(err, QF_ERR_NO_MEMORY, "gguf", "open", "%s: out of memory", name);
  }
  f->base = p;
  f->size = size;
  rd r = {p, size, 0, f->path, err};
  qf_status st = parse_all(&r, f);
  if (st != QF_OK) {
    qf_gguf_close(f); /* mapped is still 0: the caller unmaps */
    return st;
  }
  f->mapped = mapped;
  *out = f;
  return QF_OK;
}

qf_status qf_gguf_open_memory(const void *data, size_t size, const char *name, qf_gguf_file **out,
                              qf_error *err) {
  if (out) *out = NULL;
  if (!out || (!data && size))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "open",
                   "qf_gguf_open_memory: NULL argument");
  static const uint8_t empty[1] = {0};
  return open_bytes(data ? data : empty, size, name ? name : "<memory>", 0, out, err);
}

qf_status qf_gguf_open(const char *path, qf_gguf_file **out, qf_error *err) {
  if (out) *out = NULL;
  if (!path || !out)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "gguf", "open", "qf_gguf_open: NULL argument");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return qf_fail(err, QF_ERR_IO, "gguf", "open", "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return qf_fail(err, QF_ERR_IO, "gguf", "open", "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return qf_fail(err, QF_ERR_IO, "gguf", "open", "%s: not a regular file", path);
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    close(fd);
    return qf_fail(err, QF_ERR_IO, "gguf", "open", "%s: file too large to map", path);
  }
  size_t size = (size_t)sb.st_size;
  if (size == 0) {
    close(fd);
    return qf_gguf_open_memory(NULL, 0, path, out, err);
  }
  void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED)
    return qf_fail(err, QF_ERR_IO, "gguf", "open", "%s: cannot map %zu bytes: %s", path, size,
                   strerror(e));
  qf_status st = open_bytes(m, size, path, 1, out, err);
  if (st != QF_OK) munmap(m, size);
  return st;
}

void qf_gguf_close(qf_gguf_file *f) {
  if (!f) return;
  if (f->mapped) munmap((void *)(uintptr_t)f->base, f->size);
  qf__gguf_index_free(&f->kv_index);
  qf__gguf_index_free(&f->tensor_index);
  free(f->kvs);
  free(f->strs);
  free(f->names);
  free(f->tensors);
  free(f->tnames);
  free(f->note);
  free(f->path);
  free(f);
}
