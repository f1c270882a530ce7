/*
 * Calibration from caller-provided arrays: a Hessian and/or an importance
 * vector per tensor name ("*" matches any). Used by `qforge raw quantize
 * --hessian/--imatrix` and by tests. Arrays are aliased, not copied.
 */
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"
#include "qforge/qforge.h"

typedef struct qf__calib_entry {
  char *name;
  const float *hessian;
  int64_t hessian_k;
  const float *importance;
  int64_t importance_k;
} qf__calib_entry;

typedef struct qf__calib_static {
  qf__calib_entry *entries;
  size_t n, cap;
} qf__calib_static;

qf_calib *qf__calib_wrap(const qf__calib_ops *ops, void *impl) {
  qf_calib *c = calloc(1, sizeof *c);
  if (!c) {
    if (ops && ops->destroy) ops->destroy(impl);
    return NULL;
  }
  c->ops = ops;
  c->impl = impl;
  return c;
}

static qf__calib_entry *qf__static_lookup(qf__calib_static *s,
                                          const char *name, int create) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->entries[i].name, name)) return &s->entries[i];
  if (!create) {
    for (size_t i = 0; i < s->n; i++)
      if (!strcmp(s->entries[i].name, "*")) return &s->entries[i];
    return NULL;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    qf__calib_entry *e = realloc(s->entries, cap * sizeof *e);
    if (!e) return NULL;
    s->entries = e;
    s->cap = cap;
  }
  qf__calib_entry *e = &s->entries[s->n];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  if (!e->name) return NULL;
  s->n++;
  return e;
}

static qf_status qf__static_hessian(void *impl, const char *name,
                                    const float **h, int64_t *k,
                                    qf_error *err) {
  qf__calib_entry *e = qf__static_lookup(impl, name, 0);
  if (!e || !e->hessian)
    return qf_errorf(err, QF_ERR_NOT_FOUND, "calib_hessian",
                     "no Hessian was given for tensor '%s'", name);
  *h = e->hessian;
  *k = e->hessian_k;
  return QF_OK;
}

static qf_status qf__static_importance(void *impl, const char *name,
                                       const float **v, int64_t *k,
                                       qf_error *err) {
  qf__calib_entry *e = qf__static_lookup(impl, name, 0);
  if (!e || !e->importance)
    return qf_errorf(err, QF_ERR_NOT_FOUND, "calib_importance",
                     "no importance vector was given for tensor '%s'", name);
  *v = e->importance;
  *k = e->importance_k;
  return QF_OK;
}

static void qf__static_destroy(void *impl) {
  qf__calib_static *s = impl;
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) free(s->entries[i].name);
  free(s->entries);
  free(s);
}

static const qf__calib_ops qf__static_ops = {
    .hessian = qf__static_hessian,
    .importance = qf__static_importance,
    .destroy = qf__static_destroy,
};

qf_calib *qf_calib_new_static(void) {
  qf__calib_static *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  return qf__calib_wrap(&qf__static_ops, s);
}

qf_status qf_calib_static_set_hessian(qf_calib *c, const char *name,
                                      const float *h, int64_t k) {
  if (!c || c->ops != &qf__static_ops || !name) return QF_ERR_INVALID_ARGUMENT;
  qf__calib_entry *e = qf__static_lookup(c->impl, name, 1);
  if (!e) return QF_ERR_NO_MEMORY;
  e->hessian = h;
  e->hessian_k = k;
  return QF_OK;
}

qf_status qf_calib_static_set_importance(qf_calib *c, const char *name,
                                         const float *v, int64_t k) {
  if (!c || c->ops != &qf__static_ops || !name) return QF_ERR_INVALID_ARGUMENT;
  qf__calib_entry *e = qf__static_lookup(c->impl, name, 1);
  if (!e) return QF_ERR_NO_MEMORY;
  e->importance = v;
  e->importance_k = k;
  return QF_OK;
}

void qf_calib_free(qf_calib *c) {
  if (!c) return;
  if (c->ops && c->ops->destroy) c->ops->destroy(c->impl);
  free(c);
}
