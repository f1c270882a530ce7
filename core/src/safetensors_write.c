/*
 * Streaming, atomic safetensors writer. Each added tensor's bytes go straight
 * to an anonymous temporary data file (one per shard) in the output folder,
 * so memory stays bounded by the caller's one tensor. finish() then, for
 * every shard, writes `<final>.tmp.XXXXXX` = 8-byte little-endian header
 * length + compact JSON header (`__metadata__` first, tensors in insertion
 * order, padded with spaces to a multiple of 8 bytes as the reference writer
 * does) + the data, fsyncs it, and only when every shard (and the sharded
 * index, written like transformers: 2-space indent, sorted keys) is complete
 * renames them all into place and fsyncs the folder. Any failure removes the
 * temporaries and anything already renamed, so no partial file is left under
 * a final name. Shards split as huggingface_hub's
 * split_torch_state_dict_into_shards does (what transformers' save_pretrained
 * uses): a tensor larger than the limit gets a shard of its own while the
 * current shard stays open; otherwise a new shard starts when the tensor
 * would push the current one past the limit; shards are numbered in the
 * order they are closed.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "io_internal.h"
#include "qforge/qforge.h"

#define QF__OP "safetensors"
#define QF__INDEX_NAME "model.safetensors.index.json"
#define QF__SINGLE_NAME "model.safetensors"

typedef struct wtensor {
  char *name;
  qf_dtype dtype;
  int ndim;
  int64_t shape[QF_MAX_DIMS];
  uint64_t nbytes;
  uint64_t offset; /* within its shard's data */
  size_t shard;
} wtensor;

typedef struct wshard {
  int fd; /* anonymous temp data file, -1 if not created */
  uint64_t size;
  size_t seq; /* position in the output (order of closing), SIZE_MAX open */
} wshard;

struct qf_st_writer {
  char *dir;         /* output folder */
  char *final_path;  /* single-file mode: the exact path; else NULL */
  uint64_t limit;    /* 0 = never shard */
  wtensor *t;
  size_t n, cap;
  wshard *s;
  size_t ns;
  size_t cur;        /* the shard being filled, SIZE_MAX if none */
  size_t next_seq;   /* shards closed so far */
  json_t *meta;      /* insertion-ordered string values */
  json_t *names;     /* set of added names */
  qf_error failure;  /* sticky I/O failure */
  int failed;
};

static qf_status oom(qf_error *err, const char *what) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", what);
}

static const char *wname(const qf_st_writer *w) {
  return w->final_path ? w->final_path : w->dir;
}

static qf_status writer_init(qf_st_writer **out, const char *dir,
                             const char *final_path, uint64_t limit,
                             qf_error *err) {
  qf_st_writer *w = calloc(1, sizeof *w);
  if (!w) return oom(err, final_path ? final_path : dir);
  w->dir = strdup(dir);
  w->final_path = final_path ? strdup(final_path) : NULL;
  w->limit = limit;
  w->cur = SIZE_MAX;
  w->meta = json_object();
  w->names = json_object();
  if (!w->dir || (final_path && !w->final_path) || !w->meta || !w->names ||
      json_object_set_new(w->meta, "format", json_string("pt")) != 0) {
    qf_st_writer_abort(w);
    return oom(err, final_path ? final_path : dir);
  }
  *out = w;
  return QF_OK;
}

qf_status qf_st_writer_new(const char *out_dir, uint64_t shard_limit_bytes,
                           qf_st_writer **out, qf_error *err) {
  if (out) *out = NULL;
  if (!out_dir || !*out_dir || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_st_writer_new: out_dir and out are required");
  qf_status st = qf__mkdir_p(out_dir, err);
  if (st != QF_OK) return st;
  return writer_init(out, out_dir, NULL, shard_limit_bytes, err);
}

qf_status qf_st_writer_new_file(const char *path, qf_st_writer **out,
                                qf_error *err) {
  if (out) *out = NULL;
  if (!path || !*path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_st_writer_new_file: path and out are required");
  size_t len = strlen(path);
  if (path[len - 1] == '/')
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: expected a file path, not a folder", path);
  char *dir = qf__path_dirname(path);
  if (!dir) return oom(err, path);
  qf_status st = qf__mkdir_p(dir, err);
  if (st == QF_OK) st = writer_init(out, dir, path, 0, err);
  free(dir);
  return st;
}

qf_status qf_st_writer_set_metadata(qf_st_writer *w, const char *key,
                                    const char *value, qf_error *err) {
  if (!w || !key || !value)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_st_writer_set_metadata: writer, key and value are "
                     "required");
  json_t *v = json_string(value);
  if (!v)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: __metadata__ key '%s': value is not valid UTF-8",
                     wname(w), key);
  if (json_object_set_new(w->meta, key, v) != 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: __metadata__ key is not valid UTF-8", wname(w));
  return QF_OK;
}

static qf_status fail(qf_st_writer *w, qf_error *err) {
  /* remember the first I/O failure: the data files are inconsistent now */
  if (!w->failed && err) w->failure = *err;
  w->failed = 1;
  return err ? err->code : QF_ERR_IO;
}

qf_status qf_st_writer_add(qf_st_writer *w, const char *name, qf_dtype dtype,
                           int ndim, const int64_t *shape, const void *data,
                           qf_error *err) {
  if (!w || !name)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_st_writer_add: writer and name are required");
  const char *wn = wname(w);
  if (w->failed) {
    if (err) *err = w->failure;
    return w->failure.code ? w->failure.code : QF_ERR_IO;
  }
  if (!*name || strcmp(name, "__metadata__") == 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor name '%s' is reserved or empty", wn, name);
  if (json_object_get(w->names, name))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor '%s' was already added (expected unique "
                     "names)",
                     wn, name);
  size_t esz = qf_dtype_size(dtype);
  if (esz == 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor '%s': dtype %d is not a safetensors dtype", wn,
                     name, (int)dtype);
  if (ndim < 0 || ndim > QF_MAX_DIMS || (ndim > 0 && !shape))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor '%s': %d dimensions, expected 0..%d with a "
                     "shape",
                     wn, name, ndim, QF_MAX_DIMS);
  uint64_t numel = 1;
  int overflow = 0, has_zero = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                       "%s: tensor '%s': shape[%d] is %" PRId64
                       ", expected a non-negative size",
                       wn, name, d, shape[d]);
    uint64_t dim = (uint64_t)shape[d];
    if (dim == 0) has_zero = 1;
    else if (numel > UINT64_MAX / dim) overflow = 1;
    numel *= dim;
  }
  if (has_zero) numel = 0, overflow = 0; /* a zero dimension wins */
  if (overflow || numel > UINT64_MAX / esz || numel * esz > SIZE_MAX)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor '%s': byte size overflows", wn, name);
  uint64_t nbytes = numel * esz;
  if (nbytes > 0 && !data)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor '%s': data is NULL for %" PRIu64 " bytes", wn,
                     name, nbytes);
  if (json_object_set_new(w->names, name, json_true()) != 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "%s: tensor name is not valid UTF-8", wn);
  /* room for the record (and maybe a new shard) before any byte is written */
  if (w->n == w->cap) {
    size_t ncap = w->cap ? w->cap * 2 : 64;
    wtensor *nt = realloc(w->t, ncap * sizeof *nt);
    if (!nt) {
      json_object_del(w->names, name);
      return oom(err, wn);
    }
    w->t = nt;
    w->cap = ncap;
  }
  int oversize = w->limit > 0 && nbytes > w->limit;
  int close_cur = !oversize && w->cur != SIZE_MAX && w->limit > 0 &&
                  w->s[w->cur].size + nbytes > w->limit;
  if (oversize || close_cur || w->cur == SIZE_MAX) {
    wshard *ns = realloc(w->s, (w->ns + 1) * sizeof *ns);
    if (!ns) {
      json_object_del(w->names, name);
      return oom(err, wn);
    }
    w->s = ns;
    w->s[w->ns].fd = -1;
    w->s[w->ns].size = 0;
    w->s[w->ns].seq = SIZE_MAX;
    if (oversize) {
      w->s[w->ns].seq = w->next_seq++; /* complete with this one tensor */
    } else {
      if (close_cur) w->s[w->cur].seq = w->next_seq++;
      w->cur = w->ns;
    }
    w->ns++;
  }
  size_t target = oversize ? w->ns - 1 : w->cur;
  wshard *sh = &w->s[target];
  wtensor *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  if (!t->name) {
    json_object_del(w->names, name);
    return oom(err, wn);
  }
  t->dtype = dtype;
  t->ndim = ndim;
  for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
  t->nbytes = nbytes;
  t->offset = sh->size;
  t->shard = target;
  w->n++;
  if (nbytes > 0) {
    if (sh->fd < 0) {
      sh->fd = qf__open_anon_temp(w->dir, err);
      if (sh->fd < 0) return fail(w, err);
    }
    qf_status st = qf__write_all(sh->fd, data, (size_t)nbytes, wn, err);
    if (st != QF_OK) return fail(w, err);
  }
  sh->size += nbytes;
  return QF_OK;
}

static void writer_free(qf_st_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
  for (size_t i = 0; i < w->ns; i++)
    if (w->s[i].fd >= 0) close(w->s[i].fd);
  free(w->t);
  free(w->s);
  json_decref(w->meta);
  json_decref(w->names);
  free(w->dir);
  free(w->final_path);
  free(w);
}

void qf_st_writer_abort(qf_st_writer *w) {
  /* the data files are anonymous: closing them removes them */
  writer_free(w);
}

/* The JSON header of shard `si`, padded with spaces to a multiple of 8. */
static char *shard_header(const qf_st_writer *w, size_t si, size_t *len) {
  json_t *h = json_object();
  if (!h) return NULL;
  int bad = json_object_set(h, "__metadata__", w->meta) != 0;
  for (size_t i = 0; i < w->n && !bad; i++) {
    const wtensor *t = &w->t[i];
    if (t->shard != si) continue;
    json_t *e = json_object();
    json_t *shape = json_array();
    json_t *offs = json_array();
    bad = !e || !shape || !offs;
    for (int d = 0; d < t->ndim && !bad; d++)
      bad = json_array_append_new(shape, json_integer(t->shape[d])) != 0;
    if (!bad)
      bad = json_array_append_new(offs, json_integer((json_int_t)t->offset)) ||
            json_array_append_new(
                offs, json_integer((json_int_t)(t->offset + t->nbytes))) ||
            json_object_set_new(e, "dtype",
                                json_string(qf_dtype_name(t->dtype))) ||
            json_object_set(e, "shape", shape) ||
            json_object_set(e, "data_offsets", offs) ||
            json_object_set(h, t->name, e);
    json_decref(e);
    json_decref(shape);
    json_decref(offs);
  }
  char *s = bad ? NULL : json_dumps(h, JSON_COMPACT);
  json_decref(h);
  if (!s) return NULL;
  size_t n = strlen(s);
  size_t padded = (n + 7) & ~(size_t)7;
  char *p = realloc(s, padded + 1);
  if (!p) {
    free(s);
    return NULL;
  }
  memset(p + n, ' ', padded - n);
  p[padded] = '\0';
  *len = padded;
  return p;
}

static char *shard_name(size_t i, size_t n) {
  char buf[64];
  if (n == 1) return strdup(QF__SINGLE_NAME);
  snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return strdup(buf);
}

/* Write shard `si` into a temp file beside `final`; *tmp gets its path. */
static qf_status write_shard(const qf_st_writer *w, size_t si,
                             const char *final, char **tmp, qf_error *err) {
  size_t hlen = 0;
  char *header = shard_header(w, si, &hlen);
  if (!header) return oom(err, final);
  int fd = qf__open_temp_beside(final, tmp, err);
  if (fd < 0) {
    free(header);
    return err ? err->code : QF_ERR_IO;
  }
  unsigned char lenbuf[8];
  for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  qf_status st = qf__write_all(fd, lenbuf, 8, *tmp, err);
  if (st == QF_OK) st = qf__write_all(fd, header, hlen, *tmp, err);
  free(header);
  const wshard *sh = &w->s[si];
  if (st == QF_OK && sh->size > 0)
    st = qf__copy_fd(sh->fd, sh->size, fd, *tmp, err);
  if (st == QF_OK)
    st = qf__fsync_close(fd, *tmp, err);
  else
    close(fd);
  return st;
}

static char *index_json(const qf_st_writer *w, char **names) {
  json_t *root = json_object(), *meta = json_object(), *map = json_object();
  uint64_t total = 0;
  int bad = !root || !meta || !map;
  for (size_t i = 0; i < w->n && !bad; i++) {
    total += w->t[i].nbytes;
    bad = json_object_set_new(map, w->t[i].name,
                              json_string(names[w->t[i].shard])) != 0;
  }
  if (!bad)
    bad = json_object_set_new(meta, "total_size",
                              json_integer((json_int_t)total)) ||
          json_object_set(root, "metadata", meta) ||
          json_object_set(root, "weight_map", map);
  char *s = bad ? NULL
                : json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS |
                                       JSON_ENSURE_ASCII);
  json_decref(root);
  json_decref(meta);
  json_decref(map);
  if (!s) return NULL;
  size_t n = strlen(s);
  char *p = realloc(s, n + 2); /* transformers ends the file with "\n" */
  if (!p) {
    free(s);
    return NULL;
  }
  p[n] = '\n';
  p[n + 1] = '\0';
  return p;
}

/* Remove outputs of an earlier save that would confuse a reader: the other
 * layout's entry file and shards of another count. `keep` are ours. */
static void remove_stale(const char *dir, char **keep, size_t nkeep,
                         int sharded) {
  char *p = qf__path_join(dir, sharded ? QF__SINGLE_NAME : QF__INDEX_NAME);
  if (p) unlink(p);
  free(p);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    unsigned a, b;
    char tail[64];
    int used = 0;
    if (sscanf(de->d_name, "model-%5u-of-%5u.safetensors%n", &a, &b,
               &used) != 2 || de->d_name[used] != '\0')
      continue;
    snprintf(tail, sizeof tail, "model-%05u-of-%05u.safetensors", a, b);
    if (strcmp(tail, de->d_name) != 0) continue;
    int ours = 0;
    for (size_t i = 0; i < nkeep && !ours; i++) ours = strcmp(keep[i], tail) == 0;
    if (ours) continue;
    p = qf__path_join(dir, de->d_name);
    if (p) unlink(p);
    free(p);
  }
  closedir(d);
}

qf_status qf_st_writer_finish(qf_st_writer *w, qf_error *err) {
  if (!w)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_st_writer_finish: writer is required");
  if (w->failed) {
    if (err) *err = w->failure;
    qf_status code = w->failure.code ? w->failure.code : QF_ERR_IO;
    writer_free(w);
    return code;
  }
  qf_status st = QF_OK;
  if (w->ns == 0) { /* no tensors: one file with only the metadata */
    w->s = calloc(1, sizeof *w->s);
    if (!w->s) {
      st = oom(err, wname(w));
      writer_free(w);
      return st;
    }
    w->s[0].fd = -1;
    w->s[0].seq = SIZE_MAX;
    w->cur = 0;
    w->ns = 1;
  }
  if (w->cur != SIZE_MAX) w->s[w->cur].seq = w->next_seq++;
  size_t ns = w->ns;
  int sharded = ns > 1;
  size_t nfiles = ns + (size_t)sharded;
  char **names = calloc(nfiles, sizeof *names);  /* base names */
  char **finals = calloc(nfiles, sizeof *finals); /* full final paths */
  char **tmps = calloc(nfiles, sizeof *tmps);
  char *index = NULL;
  size_t renamed = 0;
  if (!names || !finals || !tmps) {
    st = oom(err, wname(w));
    goto cleanup;
  }
  for (size_t i = 0; i < ns; i++) {
    if (w->final_path) {
      finals[i] = strdup(w->final_path);
      names[i] = strdup(w->final_path);
    } else {
      names[i] = shard_name(w->s[i].seq, ns);
      finals[i] = names[i] ? qf__path_join(w->dir, names[i]) : NULL;
    }
    if (!names[i] || !finals[i]) {
      st = oom(err, wname(w));
      goto cleanup;
    }
  }
  for (size_t i = 0; i < ns && st == QF_OK; i++)
    st = write_shard(w, i, finals[i], &tmps[i], err);
  if (st == QF_OK && sharded) {
    names[ns] = strdup(QF__INDEX_NAME);
    finals[ns] = qf__path_join(w->dir, QF__INDEX_NAME);
    index = index_json(w, names);
    if (!names[ns] || !finals[ns] || !index) {
      st = oom(err, wname(w));
      goto cleanup;
    }
    int fd = qf__open_temp_beside(finals[ns], &tmps[ns], err);
    if (fd < 0) {
      st = err ? err->code : QF_ERR_IO;
      goto cleanup;
    }
    st = qf__write_all(fd, index, strlen(index), tmps[ns], err);
    if (st == QF_OK)
      st = qf__fsync_close(fd, tmps[ns], err);
    else
      close(fd);
  }
  /* every file is complete and durable: move them into place */
  while (st == QF_OK && renamed < nfiles) {
    if (rename(tmps[renamed], finals[renamed]) != 0)
      st = qf_errorf(err, QF_ERR_IO, QF__OP,
                     "%s: cannot rename temporary file into place: %s",
                     finals[renamed], strerror(errno));
    else
      renamed++;
  }
  if (st == QF_OK) {
    if (!w->final_path) remove_stale(w->dir, names, ns, sharded);
    st = qf__fsync_parent(finals[0], err);
  }
cleanup:
  if (st != QF_OK && tmps && finals) {
    /* nothing partial stays under a final name: undo the renames too */
    for (size_t i = 0; i < nfiles; i++) {
      if (i < renamed) unlink(finals[i]);
      else if (tmps[i]) unlink(tmps[i]);
    }
  }
  for (size_t i = 0; i < nfiles; i++) {
    if (names) free(names[i]);
    if (finals) free(finals[i]);
    if (tmps) free(tmps[i]);
  }
  free(names);
  free(finals);
  free(tmps);
  free(index);
  writer_free(w);
  return st;
}
