/*
 * Registry schema: turns the text of one registry file into checked
 * qf_registry_entry records, or into one "file:line:col: message" error.
 *
 * Two passes over the text, each with its own libyaml parser (the two APIs
 * are never mixed on one parser):
 *   1. a guard pass with the event API that rejects what the document API
 *      would either hide or build at great cost: aliases (reported at the
 *      alias itself; the loader would hand back the anchored node's id, so
 *      an alias bomb would explode in any walker), nesting deeper than
 *      QF__REG_MAX_DEPTH (libyaml 0.2.5 has no limit of its own), a second
 *      document and an empty stream. Syntax errors surface here first.
 *   2. the document API (yaml_parser_load) and a schema walker over the
 *      node tree: key types, duplicate keys (libyaml keeps them silently),
 *      unknown keys, scalar types (libyaml resolves none: every untagged
 *      scalar is a string, so `abi` is parsed here with strtoll), the abi
 *      version, plugin names, duplicate names, quant_methods and builds.
 * Marks are 0-based in libyaml; every message prints them 1-based.
 * Relative build paths are joined to the caller's absolute base folder and
 * normalised lexically ("." and ".." folded); the .so need not exist.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "qforge/qforge.h"
#include "registry_internal.h"

#define QF__REG_MAX_DEPTH 32
#define QF__REG_NAME_MAX 63
#define QF__REG_SHOW_MAX 64 /* longest user text quoted back in a message */


/* ------------------------------------------------------------ helpers */

typedef struct {
  const char *file;     /* path shown in messages */
  const char *base_dir; /* absolute folder for relative build paths */
  yaml_document_t *doc;
  qf_error *err;
  qf_registry_entry *entries;
  yaml_mark_t *name_marks; /* where each entry's name was given */
  size_t n, cap;
} qf__pctx;

static qf_status qf__fail_at(qf__pctx *c, yaml_mark_t m, const char *fmt, ...)
    QF_PRINTF(3, 4);

static qf_status qf__fail_at(qf__pctx *c, yaml_mark_t m, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qf_errorf(c->err, QF_ERR_FORMAT, "registry", "%s:%zu:%zu: %s",
                   c->file, m.line + 1, m.column + 1, msg);
}

static qf_status qf__oom(const char *file, qf_error *err) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, "registry",
                   "%s: out of memory while reading the registry", file);
}

static yaml_node_t *qf__node(qf__pctx *c, int id) {
  return yaml_document_get_node(c->doc, id);
}

static bool qf__scalar_is(const yaml_node_t *n, const char *s) {
  size_t l = strlen(s);
  return n->type == YAML_SCALAR_NODE && n->data.scalar.length == l &&
         memcmp(n->data.scalar.value, s, l) == 0;
}

static bool qf__is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  return n->data.scalar.length == 0 || qf__scalar_is(n, "~") ||
         qf__scalar_is(n, "null") || qf__scalar_is(n, "Null") ||
         qf__scalar_is(n, "NULL");
}

/* What a node is, for "got …" in messages. */
static const char *qf__describe(const yaml_node_t *n, char *buf, size_t size) {
  if (n->type == YAML_MAPPING_NODE) return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE) return "a sequence";
  if (qf__is_null(n)) return "null";
  int len = (int)(n->data.scalar.length > QF__REG_SHOW_MAX
                      ? QF__REG_SHOW_MAX
                      : n->data.scalar.length);
  const char *v = (const char *)n->data.scalar.value;
  if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
    snprintf(buf, size, "'%.*s'", len, v);
  else
    snprintf(buf, size, "the quoted string '%.*s'", len, v);
  return buf;
}

/* The scalar's text, shortened for messages. */
static const char *qf__show(const yaml_node_t *n, char *buf, size_t size) {
  int len = (int)(n->data.scalar.length > QF__REG_SHOW_MAX
                      ? QF__REG_SHOW_MAX
                      : n->data.scalar.length);
  snprintf(buf, size, "%.*s", len, (const char *)n->data.scalar.value);
  return buf;
}

static char *qf__mark_str(const char *file, yaml_mark_t m) {
  char *s = NULL;
  if (asprintf(&s, "%s:%zu:%zu", file, m.line + 1, m.column + 1) < 0)
    return NULL;
  return s;
}

/* Absolute path, "." and ".." folded, repeated slashes collapsed. The
 * caller frees. `base_dir` must be absolute; `p` may be relative. */
static char *qf__resolve_path(const char *base_dir, const char *p) {
  char *in = NULL;
  if (p[0] == '/') {
    in = strdup(p);
  } else if (asprintf(&in, "%s/%s", base_dir, p) < 0) {
    in = NULL;
  }
  if (!in) return NULL;
  char *out = malloc(strlen(in) + 2);
  if (!out) {
    free(in);
    return NULL;
  }
  size_t o = 0;
  out[o++] = '/';
  const char *s = in;
  for (;;) {
    while (*s == '/') s++;
    if (!*s) break;
    const char *e = s;
    while (*e && *e != '/') e++;
    size_t n = (size_t)(e - s);
    if (n == 1 && s[0] == '.') {
      /* nothing */
    } else if (n == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 1 && out[o - 1] != '/') o--;
      if (o > 1) o--;
    } else {
      if (o > 1) out[o++] = '/';
      memcpy(out + o, s, n);
      o += n;
    }
    s = e;
  }
  out[o] = '\0';
  free(in);
  return out;
}

/* ------------------------------------------------------------ pass 1 */

static void qf__line_col(const char *text, size_t len, size_t off,
                         size_t *line, size_t *col) {
  size_t l = 1, start = 0;
  if (off > len) off = len;
  for (size_t i = 0; i < off; i++)
    if (text[i] == '\n') {
      l++;
      start = i + 1;
    }
  *line = l;
  *col = off - start + 1;
}

/* libyaml's own diagnosis, with its mark, as a qforge error. */
static qf_status qf__syntax_error(const char *file, const yaml_parser_t *p,
                                  const char *text, size_t len, qf_error *err) {
  const char *problem = p->problem ? p->problem : "unknown error";
  if (p->error == YAML_MEMORY_ERROR) return qf__oom(file, err);
  if (p->error == YAML_READER_ERROR) {
    size_t line, col;
    qf__line_col(text, len, p->problem_offset, &line, &col);
    if (p->problem_value != -1)
      return qf_errorf(err, QF_ERR_FORMAT, "registry",
                       "%s:%zu:%zu: invalid YAML input: %s (#%X)", file, line,
                       col, problem, (unsigned)p->problem_value);
    return qf_errorf(err, QF_ERR_FORMAT, "registry",
                     "%s:%zu:%zu: invalid YAML input: %s", file, line, col,
                     problem);
  }
  if (p->context)
    return qf_errorf(err, QF_ERR_FORMAT, "registry",
                     "%s:%zu:%zu: YAML syntax error: %s (%s at line %zu, "
                     "column %zu)",
                     file, p->problem_mark.line + 1,
                     p->problem_mark.column + 1, problem, p->context,
                     p->context_mark.line + 1, p->context_mark.column + 1);
  return qf_errorf(err, QF_ERR_FORMAT, "registry",
                   "%s:%zu:%zu: YAML syntax error: %s", file,
                   p->problem_mark.line + 1, p->problem_mark.column + 1,
                   problem);
}

/* Event pass: aliases, depth, document count, syntax. */
static qf_status qf__guard_pass(const char *file, const char *text,
                                size_t len, qf_error *err) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return qf__oom(file, err);
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  qf_status st = QF_OK;
  int depth = 0, docs = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      st = qf__syntax_error(file, &p, text, len, err);
      break;
    }
    yaml_event_type_t type = ev.type;
    yaml_mark_t m = ev.start_mark;
    switch (type) {
      case YAML_DOCUMENT_START_EVENT:
        if (++docs == 2)
          st = qf_errorf(err, QF_ERR_FORMAT, "registry",
                         "%s:%zu:%zu: a second YAML document starts here (a "
                         "registry file holds exactly one)",
                         file, m.line + 1, m.column + 1);
        break;
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT:
        if (++depth > QF__REG_MAX_DEPTH)
          st = qf_errorf(err, QF_ERR_FORMAT, "registry",
                         "%s:%zu:%zu: nesting is deeper than %d levels", file,
                         m.line + 1, m.column + 1, QF__REG_MAX_DEPTH);
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        depth--;
        break;
      case YAML_ALIAS_EVENT:
        st = qf_errorf(err, QF_ERR_FORMAT, "registry",
                       "%s:%zu:%zu: YAML aliases are not allowed in a "
                       "registry (found *%.*s)",
                       file, m.line + 1, m.column + 1, QF__REG_SHOW_MAX,
                       ev.data.alias.anchor ? (const char *)ev.data.alias.anchor
                                            : "");
        break;
      default:
        break;
    }
    yaml_event_delete(&ev);
    if (st != QF_OK || type == YAML_STREAM_END_EVENT) break;
  }
  if (st == QF_OK && docs == 0)
    st = qf_errorf(err, QF_ERR_FORMAT, "registry",
                   "%s:1:1: registry file is empty (expected a mapping with "
                   "'abi' and 'plugins')",
                   file);
  yaml_parser_delete(&p);
  return st;
}

/* ------------------------------------------------------------ pass 2 */

typedef struct {
  const yaml_node_t *key;
  size_t index; /* position in the mapping */
} qf__keyref;

static int qf__key_cmp(const yaml_node_t *x, const yaml_node_t *y) {
  size_t lx = x->data.scalar.length, ly = y->data.scalar.length;
  int r = memcmp(x->data.scalar.value, y->data.scalar.value, lx < ly ? lx : ly);
  if (r) return r;
  return lx < ly ? -1 : lx > ly;
}

static int qf__keyref_cmp(const void *a, const void *b) {
  const qf__keyref *x = a, *y = b;
  int r = qf__key_cmp(x->key, y->key);
  if (r) return r;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Keys of `map` are non-null strings, unique and (when `allowed` is given)
 * among `allowed`. `where` places the mapping ("at the top level", "in a
 * plugin entry"); `noun` is "key" or "backend". Duplicates are found by
 * sorting (a file of many keys must not cost n^2); the one reported is the
 * earliest repeat in the file, with the position of its first occurrence. */
static qf_status qf__check_mapping(qf__pctx *c, yaml_node_t *map,
                                   const char *where, const char *noun,
                                   const char *const *allowed) {
  char b1[160], b2[160];
  size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *k = qf__node(c, map->data.mapping.pairs.start[i].key);
    if (k->type != YAML_SCALAR_NODE || qf__is_null(k))
      return qf__fail_at(c, k->start_mark, "keys must be strings %s, got %s",
                         where, qf__describe(k, b1, sizeof b1));
  }
  if (n > 1) {
    qf__keyref *refs = malloc(n * sizeof *refs);
    if (!refs) return qf__oom(c->file, c->err);
    for (size_t i = 0; i < n; i++) {
      refs[i].key = qf__node(c, map->data.mapping.pairs.start[i].key);
      refs[i].index = i;
    }
    qsort(refs, n, sizeof *refs, qf__keyref_cmp);
    const yaml_node_t *dup = NULL, *first = NULL;
    size_t dup_index = n, group = 0;
    for (size_t i = 1; i < n; i++) {
      if (qf__key_cmp(refs[i].key, refs[group].key) != 0) {
        group = i;
      } else if (refs[i].index < dup_index) {
        dup_index = refs[i].index;
        dup = refs[i].key;
        first = refs[group].key;
      }
    }
    free(refs);
    if (dup)
      return qf__fail_at(c, dup->start_mark,
                         "duplicate key '%s' %s (first at line %zu, column %zu)",
                         qf__show(dup, b1, sizeof b1), where,
                         first->start_mark.line + 1,
                         first->start_mark.column + 1);
  }
  if (!allowed) return QF_OK;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = qf__node(c, p->key);
    bool known = false;
    for (size_t i = 0; allowed[i]; i++)
      if (qf__scalar_is(k, allowed[i])) known = true;
    if (known) continue;
    size_t o = 0;
    b2[0] = '\0';
    for (size_t i = 0; allowed[i] && o < sizeof b2; i++)
      o += (size_t)snprintf(b2 + o, sizeof b2 - o, "%s%s", i ? ", " : "",
                            allowed[i]);
    return qf__fail_at(c, k->start_mark, "unknown %s '%s' %s (allowed: %s)",
                       noun, qf__show(k, b1, sizeof b1), where, b2);
  }
  return QF_OK;
}

static yaml_node_t *qf__map_get(qf__pctx *c, yaml_node_t *map,
                                const char *key) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++)
    if (qf__scalar_is(qf__node(c, p->key), key)) return qf__node(c, p->value);
  return NULL;
}

/* A string value (any scalar style, not null, no NUL byte); *out is a copy. */
static qf_status qf__get_string(qf__pctx *c, yaml_node_t *v, const char *what,
                                char **out) {
  char b[160];
  if (v->type != YAML_SCALAR_NODE || qf__is_null(v))
    return qf__fail_at(c, v->start_mark, "%s must be a string, got %s", what,
                       qf__describe(v, b, sizeof b));
  if (memchr(v->data.scalar.value, 0, v->data.scalar.length))
    return qf__fail_at(c, v->start_mark, "%s contains a NUL character", what);
  *out = strndup((const char *)v->data.scalar.value, v->data.scalar.length);
  return *out ? QF_OK : qf__oom(c->file, c->err);
}

static qf_status qf__check_abi(qf__pctx *c, yaml_node_t *root) {
  char b[160];
  yaml_node_t *v = qf__map_get(c, root, "abi");
  if (!v)
    return qf__fail_at(c, root->start_mark,
                       "missing required key 'abi' (this qforge reads abi %d)",
                       QF_REGISTRY_ABI);
  bool ok = v->type == YAML_SCALAR_NODE &&
            v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            v->data.scalar.length > 0 && v->data.scalar.length < 32;
  long long abi = 0;
  if (ok) {
    char num[32], *end = NULL;
    memcpy(num, v->data.scalar.value, v->data.scalar.length);
    num[v->data.scalar.length] = '\0';
    errno = 0;
    abi = strtoll(num, &end, 10);
    ok = errno == 0 && *end == '\0' && end != num &&
         (num[0] == '-' || num[0] == '+' || (num[0] >= '0' && num[0] <= '9'));
  }
  if (!ok)
    return qf__fail_at(c, v->start_mark, "'abi' must be an integer, got %s",
                       qf__describe(v, b, sizeof b));
  if (abi != QF_REGISTRY_ABI)
    return qf__fail_at(c, v->start_mark,
                       "unsupported registry abi %lld (this qforge reads abi "
                       "%d)",
                       abi, QF_REGISTRY_ABI);
  return QF_OK;
}

static bool qf__valid_name(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '-'))
      return false;
  return true;
}

static qf_status qf__parse_methods(qf__pctx *c, yaml_node_t *v,
                                   qf_registry_entry *e) {
  char b[160], what[160];
  if (v->type != YAML_SEQUENCE_NODE)
    return qf__fail_at(c, v->start_mark,
                       "'quant_methods' of plugin '%s' must be a sequence of "
                       "strings, got %s",
                       e->name, qf__describe(v, b, sizeof b));
  size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  if (n == 0)
    return qf__fail_at(c, v->start_mark,
                       "'quant_methods' of plugin '%s' is empty (leave it out "
                       "to default to [%s])",
                       e->name, e->name);
  e->quant_methods = calloc(n, sizeof *e->quant_methods);
  if (!e->quant_methods) return qf__oom(c->file, c->err);
  snprintf(what, sizeof what, "each entry of 'quant_methods' of plugin '%s'",
           e->name);
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *item = qf__node(c, v->data.sequence.items.start[i]);
    char *m = NULL;
    qf_status st = qf__get_string(c, item, what, &m);
    if (st != QF_OK) return st;
    e->quant_methods[e->n_quant_methods++] = m;
    if (!*m)
      return qf__fail_at(c, item->start_mark,
                         "empty quant_method in plugin '%s'", e->name);
    for (size_t j = 0; j + 1 < e->n_quant_methods; j++)
      if (!strcmp(e->quant_methods[j], m))
        return qf__fail_at(c, item->start_mark,
                           "duplicate quant_method '%s' in plugin '%s'", m,
                           e->name);
  }
  return QF_OK;
}

static qf_status qf__parse_builds(qf__pctx *c, yaml_node_t *v,
                                  qf_registry_entry *e) {
  static const char *const backends[] = {"cpu", "cuda", "hip", NULL};
  char b[160], where[160];
  if (v->type != YAML_MAPPING_NODE)
    return qf__fail_at(c, v->start_mark,
                       "'builds' of plugin '%s' must be a mapping of backend "
                       "to path, got %s",
                       e->name, qf__describe(v, b, sizeof b));
  snprintf(where, sizeof where, "in builds of plugin '%s'", e->name);
  qf_status st = qf__check_mapping(c, v, where, "backend", backends);
  if (st != QF_OK) return st;
  if (v->data.mapping.pairs.top == v->data.mapping.pairs.start)
    return qf__fail_at(c, v->start_mark,
                       "'builds' of plugin '%s' is empty (give at least one "
                       "of cpu, cuda, hip)",
                       e->name);
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
       p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = qf__node(c, p->key), *pv = qf__node(c, p->value);
    char bn[16], what[200], *raw = NULL;
    qf__show(k, bn, sizeof bn);
    snprintf(what, sizeof what, "build path '%s' of plugin '%s'", bn, e->name);
    st = qf__get_string(c, pv, what, &raw);
    if (st != QF_OK) return st;
    if (!*raw) {
      free(raw);
      return qf__fail_at(c, pv->start_mark, "%s is empty", what);
    }
    qf_registry_build *bd = &e->builds[e->n_builds];
    bd->backend = qf_backend_parse(bn);
    bd->path = qf__resolve_path(c->base_dir, raw);
    free(raw);
    bd->source = qf__mark_str(c->file, pv->start_mark);
    e->n_builds++;
    if (!bd->path || !bd->source) return qf__oom(c->file, c->err);
  }
  return QF_OK;
}

static qf_status qf__parse_entry(qf__pctx *c, yaml_node_t *m,
                                 qf_registry_entry *e, yaml_mark_t *name_mark) {
  static const char *const keys[] = {"name", "description", "quant_methods",
                                     "builds", NULL};
  char b[160], shown[QF__REG_SHOW_MAX + 1];
  if (m->type != YAML_MAPPING_NODE)
    return qf__fail_at(c, m->start_mark,
                       "each entry of 'plugins' must be a mapping, got %s",
                       qf__describe(m, b, sizeof b));
  qf_status st = qf__check_mapping(c, m, "in a plugin entry", "key", keys);
  if (st != QF_OK) return st;
  e->source = qf__mark_str(c->file, m->start_mark);
  if (!e->source) return qf__oom(c->file, c->err);

  yaml_node_t *v = qf__map_get(c, m, "name");
  if (!v)
    return qf__fail_at(c, m->start_mark,
                       "missing required key 'name' in a plugin entry");
  st = qf__get_string(c, v, "'name'", &e->name);
  if (st != QF_OK) return st;
  *name_mark = v->start_mark;
  if (strlen(e->name) > QF__REG_NAME_MAX)
    return qf__fail_at(c, v->start_mark,
                       "plugin name '%s' is too long (%zu characters; the "
                       "limit is %d)",
                       qf__show(v, shown, sizeof shown), strlen(e->name),
                       QF__REG_NAME_MAX);
  if (!qf__valid_name(e->name))
    return qf__fail_at(c, v->start_mark,
                       "invalid plugin name '%s' (use only a-z, 0-9, '_' and "
                       "'-')",
                       qf__show(v, shown, sizeof shown));
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->entries[i].name, e->name))
      return qf__fail_at(c, v->start_mark,
                         "duplicate plugin name '%s' (first at line %zu, "
                         "column %zu)",
                         e->name, c->name_marks[i].line + 1,
                         c->name_marks[i].column + 1);

  if ((v = qf__map_get(c, m, "description"))) {
    char what[120];
    snprintf(what, sizeof what, "'description' of plugin '%s'", e->name);
    st = qf__get_string(c, v, what, &e->description);
    if (st != QF_OK) return st;
  }
  if ((v = qf__map_get(c, m, "quant_methods"))) {
    st = qf__parse_methods(c, v, e);
    if (st != QF_OK) return st;
  } else {
    e->quant_methods = calloc(1, sizeof *e->quant_methods);
    if (!e->quant_methods || !(e->quant_methods[0] = strdup(e->name)))
      return qf__oom(c->file, c->err);
    e->n_quant_methods = 1;
  }
  if (!(v = qf__map_get(c, m, "builds")))
    return qf__fail_at(c, m->start_mark,
                       "missing required key 'builds' in plugin '%s'", e->name);
  return qf__parse_builds(c, v, e);
}

static qf_status qf__parse_root(qf__pctx *c, yaml_node_t *root) {
  static const char *const keys[] = {"abi", "plugins", NULL};
  char b[160];
  if (qf__is_null(root)) /* "---" alone: point at the document start */
    return qf__fail_at(c, c->doc->start_mark,
                       "registry document is empty (expected a mapping with "
                       "'abi' and 'plugins')");
  if (root->type != YAML_MAPPING_NODE)
    return qf__fail_at(c, root->start_mark,
                       "the top level must be a mapping with 'abi' and "
                       "'plugins', got %s",
                       qf__describe(root, b, sizeof b));
  /* Key types and duplicates first, then abi (a newer file may bring keys
   * this version does not know: say so rather than "unknown key"). */
  qf_status st = qf__check_mapping(c, root, "at the top level", "key", NULL);
  if (st == QF_OK) st = qf__check_abi(c, root);
  if (st == QF_OK)
    st = qf__check_mapping(c, root, "at the top level", "key", keys);
  if (st != QF_OK) return st;
  yaml_node_t *pl = qf__map_get(c, root, "plugins");
  if (!pl)
    return qf__fail_at(c, root->start_mark,
                       "missing required key 'plugins' at the top level");
  if (pl->type != YAML_SEQUENCE_NODE)
    return qf__fail_at(c, pl->start_mark, "'plugins' must be a sequence, got %s",
                       qf__describe(pl, b, sizeof b));
  size_t n = (size_t)(pl->data.sequence.items.top - pl->data.sequence.items.start);
  if (n == 0) return QF_OK;
  c->entries = calloc(n, sizeof *c->entries);
  c->name_marks = calloc(n, sizeof *c->name_marks);
  if (!c->entries || !c->name_marks) return qf__oom(c->file, c->err);
  c->cap = n;
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *m = qf__node(c, pl->data.sequence.items.start[i]);
    st = qf__parse_entry(c, m, &c->entries[c->n], &c->name_marks[c->n]);
    if (st != QF_OK) {
      qf__registry_entry_clear(&c->entries[c->n]);
      return st;
    }
    c->n++;
  }
  return QF_OK;
}

/* ------------------------------------------------------------ entry points */

void qf__registry_entry_clear(qf_registry_entry *e) {
  if (!e) return;
  free(e->name);
  free(e->description);
  for (size_t i = 0; i < e->n_quant_methods; i++) free(e->quant_methods[i]);
  free(e->quant_methods);
  for (size_t i = 0; i < e->n_builds; i++) {
    free(e->builds[i].path);
    free(e->builds[i].source);
  }
  free(e->source);
  memset(e, 0, sizeof *e);
}

/* Parse `text` (len bytes) shown as `file` in messages; relative build paths
 * join `base_dir` (absolute). On success *out (caller frees each entry with
 * qf__registry_entry_clear, then the array) holds *n_out entries; on error
 * nothing is returned and err holds "file:line:col: message". */
qf_status qf__registry_parse(const char *text, size_t len, const char *file,
                             const char *base_dir, qf_registry_entry **out,
                             size_t *n_out, qf_error *err) {
  *out = NULL;
  *n_out = 0;
  qf_status st = qf__guard_pass(file, text, len, err);
  if (st != QF_OK) return st;

  yaml_parser_t p;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&p)) return qf__oom(file, err);
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  if (!yaml_parser_load(&p, &doc)) {
    /* libyaml already deleted the document on this path. */
    st = qf__syntax_error(file, &p, text, len, err);
    yaml_parser_delete(&p);
    return st;
  }
  qf__pctx c = {.file = file, .base_dir = base_dir, .doc = &doc, .err = err};
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root)
    st = qf_errorf(err, QF_ERR_FORMAT, "registry",
                   "%s:1:1: registry file is empty (expected a mapping with "
                   "'abi' and 'plugins')",
                   file);
  else
    st = qf__parse_root(&c, root);
  yaml_document_delete(&doc);
  yaml_parser_delete(&p);
  free(c.name_marks);
  if (st != QF_OK) {
    for (size_t i = 0; i < c.n; i++) qf__registry_entry_clear(&c.entries[i]);
    free(c.entries);
    return st;
  }
  *out = c.entries;
  *n_out = c.n;
  return QF_OK;
}
