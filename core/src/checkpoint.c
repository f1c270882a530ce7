/*
 * Opening a Hugging Face model folder (or one .safetensors file) as a single
 * set of tensors: config.json when present (checked to be a JSON object),
 * then model.safetensors, or model.safetensors.index.json plus the shards it
 * names. The index is checked both ways — every weight_map entry names a
 * shard inside the folder that exists and holds that tensor, and every
 * tensor of every shard is listed under that shard — so tensor names are
 * unique across the checkpoint. Tensors are exposed shard by shard (shards in
 * name order), each in data order; lookups by name use a sorted index.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "io_internal.h"
#include "qforge/qforge.h"

#define QF__OP "checkpoint"
#define QF__INDEX_NAME "model.safetensors.index.json"
#define QF__SINGLE_NAME "model.safetensors"

struct qf_checkpoint {
  char *dir;
  char *config; /* config.json text or NULL */
  qf_st_file **files;
  size_t nfiles;
  const qf_st_tensor **tensors; /* shard by shard, data order */
  const qf_st_tensor **by_name;
  size_t n;
};

static qf_status oom(qf_error *err, const char *path) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", path);
}

const char *qf__json_kind(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
  }
  return "something else";
}

static int is_regular(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Read a JSON object file; *text_out keeps the text (may be NULL). */
static qf_status load_json_object(const char *path, json_t **root_out,
                                  char **text_out, qf_error *err) {
  char *text = NULL;
  size_t len = 0;
  *root_out = NULL;
  qf_status st = qf_read_file(path, &text, &len, err);
  if (st != QF_OK) return st;
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                   "%s: not valid JSON: %s (line %d, column %d)", path,
                   je.text, je.line, je.column);
  } else if (!json_is_object(root)) {
    st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                   "%s: expected a JSON object at the top, got %s", path,
                   qf__json_kind(root));
    json_decref(root);
    root = NULL;
  }
  if (st == QF_OK && text_out) {
    *text_out = text;
    text = NULL;
  }
  free(text);
  *root_out = root;
  return st;
}

static int add_file(qf_checkpoint *c, qf_st_file *f) {
  qf_st_file **nf = realloc(c->files, (c->nfiles + 1) * sizeof *nf);
  if (!nf) return -1;
  c->files = nf;
  c->files[c->nfiles++] = f;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_tensor_name(const void *pa, const void *pb) {
  const qf_st_tensor *a = *(const qf_st_tensor *const *)pa;
  const qf_st_tensor *b = *(const qf_st_tensor *const *)pb;
  return strcmp(a->name, b->name);
}

/* A shard name must stay inside the folder. */
static int shard_name_ok(const char *s) {
  if (s[0] == '\0' || s[0] == '/') return 0;
  for (const char *p = s; *p;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
    if (len == 0 && !slash) return 0;
    p += len + (slash ? 1 : 0);
    if (slash && *p == '\0') return 0; /* trailing slash: a folder */
  }
  return 1;
}

static qf_status open_index(qf_checkpoint *c, const char *index_path,
                            qf_error *err) {
  json_t *root = NULL;
  qf_status st = load_json_object(index_path, &root, NULL, err);
  if (st != QF_OK) return st;
  const char **shards = NULL;
  char *shard_path = NULL;
  json_t *wm = json_object_get(root, "weight_map");
  json_t *meta = json_object_get(root, "metadata");
  if (meta && !json_is_object(meta)) {
    st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                   "%s: metadata: expected an object, got %s", index_path,
                   qf__json_kind(meta));
    goto done;
  }
  if (!wm || !json_is_object(wm)) {
    st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                   "%s: weight_map: expected an object mapping tensor names "
                   "to shard files, got %s",
                   index_path, wm ? qf__json_kind(wm) : "nothing");
    goto done;
  }
  size_t nmap = json_object_size(wm);
  shards = calloc(nmap ? nmap : 1, sizeof *shards);
  if (!shards) {
    st = oom(err, index_path);
    goto done;
  }
  size_t nshards = 0;
  const char *name;
  json_t *val;
  json_object_foreach(wm, name, val) {
    if (!json_is_string(val)) {
      st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                     "%s: weight_map: tensor '%s': expected a shard file "
                     "name (a string), got %s",
                     index_path, name, qf__json_kind(val));
      goto done;
    }
    const char *s = json_string_value(val);
    if (!shard_name_ok(s)) {
      st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                     "%s: weight_map: tensor '%s': shard '%s' is not a file "
                     "name inside the folder",
                     index_path, name, s);
      goto done;
    }
    shards[nshards++] = s;
  }
  qsort(shards, nshards, sizeof *shards, cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < nshards; i++)
    if (u == 0 || strcmp(shards[u - 1], shards[i]) != 0) shards[u++] = shards[i];
  nshards = u;
  /* open every shard (in name order) */
  for (size_t i = 0; i < nshards; i++) {
    free(shard_path);
    shard_path = qf__path_join(c->dir, shards[i]);
    if (!shard_path) {
      st = oom(err, index_path);
      goto done;
    }
    qf_st_file *f = NULL;
    st = qf_st_open(shard_path, &f, err);
    if (st == QF_ERR_NOT_FOUND) {
      const char *first = "?";
      json_object_foreach(wm, name, val) {
        if (strcmp(json_string_value(val), shards[i]) == 0) {
          first = name;
          break;
        }
      }
      st = qf_errorf(err, QF_ERR_NOT_FOUND, QF__OP,
                     "%s: weight_map: tensor '%s': shard '%s' does not exist "
                     "(expected %s)",
                     index_path, first, shards[i], shard_path);
    }
    if (st != QF_OK) goto done;
    if (add_file(c, f) != 0) {
      qf_st_close(f);
      st = oom(err, index_path);
      goto done;
    }
  }
  /* every weight_map entry is in its shard */
  json_object_foreach(wm, name, val) {
    const char *s = json_string_value(val);
    const char **hit = bsearch(&s, shards, nshards, sizeof *shards, cmp_str);
    qf_st_file *f = c->files[hit - shards];
    if (!qf_st_find(f, name)) {
      st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                     "%s: weight_map: tensor '%s' is not in shard '%s' "
                     "(expected the shard to hold it)",
                     index_path, name, s);
      goto done;
    }
  }
  /* every tensor of every shard is in weight_map, under that shard */
  for (size_t i = 0; i < nshards; i++) {
    for (size_t k = 0; k < qf_st_count(c->files[i]); k++) {
      const qf_st_tensor *t = qf_st_at(c->files[i], k);
      json_t *m = json_object_get(wm, t->name);
      if (!m) {
        st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                       "%s: weight_map: tensor '%s' of shard '%s' is missing "
                       "(expected every tensor of every shard to be listed)",
                       index_path, t->name, shards[i]);
        goto done;
      }
      if (strcmp(json_string_value(m), shards[i]) != 0) {
        st = qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                       "%s: weight_map: tensor '%s' is also in shard '%s' but "
                       "mapped to '%s' (expected each tensor in one shard)",
                       index_path, t->name, shards[i], json_string_value(m));
        goto done;
      }
    }
  }
done:
  free(shard_path);
  free(shards);
  json_decref(root);
  return st;
}

static qf_status open_folder(qf_checkpoint *c, qf_error *err) {
  qf_status st = QF_OK;
  char *cfg = qf__path_join(c->dir, "config.json");
  char *single = qf__path_join(c->dir, QF__SINGLE_NAME);
  char *index = qf__path_join(c->dir, QF__INDEX_NAME);
  if (!cfg || !single || !index) {
    st = oom(err, c->dir);
    goto done;
  }
  struct stat sb;
  if (stat(cfg, &sb) == 0) {
    json_t *root = NULL;
    st = load_json_object(cfg, &root, &c->config, err);
    json_decref(root);
    if (st != QF_OK) goto done;
  }
  /* transformers prefers the single file when both are present */
  if (is_regular(single)) {
    qf_st_file *f = NULL;
    st = qf_st_open(single, &f, err);
    if (st == QF_OK && add_file(c, f) != 0) {
      qf_st_close(f);
      st = oom(err, single);
    }
  } else if (is_regular(index)) {
    st = open_index(c, index, err);
  } else {
    st = qf_errorf(err, QF_ERR_NOT_FOUND, QF__OP,
                   "%s: no checkpoint in the folder (expected "
                   QF__SINGLE_NAME " or " QF__INDEX_NAME ")",
                   c->dir);
  }
done:
  free(cfg);
  free(single);
  free(index);
  return st;
}

static qf_status build_lists(qf_checkpoint *c, qf_error *err) {
  size_t n = 0;
  for (size_t i = 0; i < c->nfiles; i++) n += qf_st_count(c->files[i]);
  c->tensors = calloc(n ? n : 1, sizeof *c->tensors);
  c->by_name = calloc(n ? n : 1, sizeof *c->by_name);
  if (!c->tensors || !c->by_name) return oom(err, c->dir);
  for (size_t i = 0; i < c->nfiles; i++)
    for (size_t k = 0; k < qf_st_count(c->files[i]); k++)
      c->tensors[c->n++] = qf_st_at(c->files[i], k);
  memcpy(c->by_name, c->tensors, n * sizeof *c->by_name);
  qsort(c->by_name, n, sizeof *c->by_name, cmp_tensor_name);
  for (size_t i = 1; i < n; i++)
    if (strcmp(c->by_name[i - 1]->name, c->by_name[i]->name) == 0)
      return qf_errorf(err, QF_ERR_FORMAT, QF__OP,
                       "%s: tensor '%s' appears in both %s and %s (expected "
                       "unique names)",
                       c->dir, c->by_name[i]->name, c->by_name[i - 1]->file,
                       c->by_name[i]->file);
  return QF_OK;
}

qf_status qf_checkpoint_open(const char *path, qf_checkpoint **out,
                             qf_error *err) {
  if (out) *out = NULL;
  if (!path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_checkpoint_open: path and out are required");
  struct stat sb;
  if (stat(path, &sb) != 0) {
    int e = errno;
    return qf_errorf(err, e == ENOENT ? QF_ERR_NOT_FOUND : QF_ERR_IO, QF__OP,
                     "%s: cannot open checkpoint: %s", path, strerror(e));
  }
  qf_checkpoint *c = calloc(1, sizeof *c);
  if (!c) return oom(err, path);
  qf_status st;
  if (S_ISDIR(sb.st_mode)) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    c->dir = strndup(path, len);
    st = c->dir ? open_folder(c, err) : oom(err, path);
  } else {
    c->dir = qf__path_dirname(path);
    qf_st_file *f = NULL;
    st = c->dir ? qf_st_open(path, &f, err) : oom(err, path);
    if (st == QF_OK && add_file(c, f) != 0) {
      qf_st_close(f);
      st = oom(err, path);
    }
  }
  if (st == QF_OK) st = build_lists(c, err);
  if (st != QF_OK) {
    qf_checkpoint_close(c);
    return st;
  }
  *out = c;
  return QF_OK;
}

void qf_checkpoint_close(qf_checkpoint *c) {
  if (!c) return;
  for (size_t i = 0; i < c->nfiles; i++) qf_st_close(c->files[i]);
  free(c->files);
  free(c->tensors);
  free(c->by_name);
  free(c->config);
  free(c->dir);
  free(c);
}

size_t qf_checkpoint_count(const qf_checkpoint *c) { return c ? c->n : 0; }

const qf_st_tensor *qf_checkpoint_at(const qf_checkpoint *c, size_t i) {
  return c && i < c->n ? c->tensors[i] : NULL;
}

const qf_st_tensor *qf_checkpoint_find(const qf_checkpoint *c,
                                       const char *name) {
  if (!c || !name) return NULL;
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(name, c->by_name[mid]->name);
    if (r == 0) return c->by_name[mid];
    if (r < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *qf_checkpoint_config_json(const qf_checkpoint *c) {
  return c ? c->config : NULL;
}

const char *qf_checkpoint_dir(const qf_checkpoint *c) {
  return c ? c->dir : NULL;
}
