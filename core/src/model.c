/*
 * The host-side model handed to plugins (`qf_model`): the input tensors of a
 * checkpoint (aliased from the mmap, or from caller memory) and the tensors a
 * plugin emits. Emitted tensors are copied and either kept (so plugins can
 * find them again, e.g. for linear_forward) or streamed to a sink and dropped
 * so that quantizing a model larger than RAM stays bounded by one tensor.
 * Lookups by name go through a small open-addressing hash table.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "qforge/qforge.h"

/* ---- name → index hash (FNV-1a, linear probing) ---- */

static uint64_t qf__hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int qf__index_grow(qf__name_index *ix, qf__tensor_slot **slots) {
  size_t cap = ix->cap ? ix->cap * 2 : 64;
  size_t *tab = malloc(cap * sizeof *tab);
  if (!tab) return -1;
  for (size_t i = 0; i < cap; i++) tab[i] = SIZE_MAX;
  /* re-insert every live entry */
  if (ix->table) {
    for (size_t i = 0; i < ix->cap; i++) {
      size_t v = ix->table[i];
      if (v == SIZE_MAX) continue;
      size_t h = qf__hash(slots[v]->info.name) & (cap - 1);
      while (tab[h] != SIZE_MAX) h = (h + 1) & (cap - 1);
      tab[h] = v;
    }
  }
  free(ix->table);
  ix->table = tab;
  ix->cap = cap;
  return 0;
}

static int qf__index_put(qf__name_index *ix, qf__tensor_slot **slots,
                         size_t value) {
  if ((ix->n + 1) * 2 > ix->cap && qf__index_grow(ix, slots) != 0) return -1;
  size_t h = qf__hash(slots[value]->info.name) & (ix->cap - 1);
  while (ix->table[h] != SIZE_MAX) {
    if (!strcmp(slots[ix->table[h]]->info.name, slots[value]->info.name)) {
      ix->table[h] = value;
      return 0;
    }
    h = (h + 1) & (ix->cap - 1);
  }
  ix->table[h] = value;
  ix->n++;
  return 0;
}

static size_t qf__index_get(const qf__name_index *ix,
                            qf__tensor_slot *const *slots, const char *name) {
  if (!ix->cap) return SIZE_MAX;
  size_t h = qf__hash(name) & (ix->cap - 1);
  while (ix->table[h] != SIZE_MAX) {
    if (!strcmp(slots[ix->table[h]]->info.name, name)) return ix->table[h];
    h = (h + 1) & (ix->cap - 1);
  }
  return SIZE_MAX;
}

/* ---- slots ---- */

/* Slots are allocated one by one so that shape pointers handed out in
 * qf_tensor_info stay valid while more tensors are added. */
static qf_status qf__slots_push(qf__tensor_list *l, qf__tensor_slot **out) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 32;
    qf__tensor_slot **s = realloc(l->slots, cap * sizeof *s);
    if (!s) return QF_ERR_NO_MEMORY;
    l->slots = s;
    l->cap = cap;
  }
  *out = calloc(1, sizeof **out);
  if (!*out) return QF_ERR_NO_MEMORY;
  l->slots[l->n] = *out;
  return QF_OK;
}

static void qf__slots_free(qf__tensor_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->slots[i]->name);
    free(l->slots[i]->owned_data);
    free(l->slots[i]);
  }
  free(l->slots);
  free(l->index.table);
  memset(l, 0, sizeof *l);
}

static qf_status qf__list_add(qf__tensor_list *l, const char *name,
                              const DLTensor *t, void *owned, qf_error *err) {
  if (t->ndim < 0 || t->ndim > QF_MAX_DIMS)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model",
                     "tensor '%s' has %d dimensions (at most %d supported)",
                     name, t->ndim, QF_MAX_DIMS);
  qf__tensor_slot *s;
  if (qf__slots_push(l, &s) != QF_OK)
    return qf_errorf(err, QF_ERR_NO_MEMORY, "model", "out of memory adding '%s'", name);
  s->name = strdup(name);
  if (!s->name) return qf_errorf(err, QF_ERR_NO_MEMORY, "model", "out of memory");
  s->owned_data = owned;
  s->info.struct_size = sizeof s->info;
  s->info.name = s->name;
  s->info.tensor = *t;
  for (int i = 0; i < t->ndim; i++) s->shape[i] = t->shape[i];
  s->info.tensor.shape = s->shape;
  s->info.tensor.strides = NULL;
  l->n++;
  if (qf__index_put(&l->index, l->slots, l->n - 1) != 0)
    return qf_errorf(err, QF_ERR_NO_MEMORY, "model", "out of memory indexing '%s'", name);
  return QF_OK;
}

/* ---- public API ---- */

static qf_model *qf__model_alloc(void) {
  qf_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  pthread_mutex_init(&m->lock, NULL);
  return m;
}

qf_status qf_model_new_empty(const char *config_json, qf_model **out,
                             qf_error *err) {
  qf_model *m = qf__model_alloc();
  if (!m) return qf_errorf(err, QF_ERR_NO_MEMORY, "model", "out of memory");
  m->config = strdup(config_json ? config_json : "{}");
  if (!m->config) {
    qf_model_free(m);
    return qf_errorf(err, QF_ERR_NO_MEMORY, "model", "out of memory");
  }
  *out = m;
  return QF_OK;
}

qf_status qf_model_new(const qf_checkpoint *ckpt, qf_model **out,
                       qf_error *err) {
  const char *cfg = qf_checkpoint_config_json(ckpt);
  qf_status st = qf_model_new_empty(cfg ? cfg : "{}", out, err);
  if (st != QF_OK) return st;
  qf_model *m = *out;
  m->ckpt = ckpt;
  size_t n = qf_checkpoint_count(ckpt);
  for (size_t i = 0; i < n; i++) {
    const qf_st_tensor *t = qf_checkpoint_at(ckpt, i);
    DLTensor dl;
    memset(&dl, 0, sizeof dl);
    dl.data = (void *)t->data;
    dl.device.device_type = kDLCPU;
    dl.ndim = t->ndim;
    dl.shape = (int64_t *)t->shape;
    if (qf_dtype_to_dl(t->dtype, &dl.dtype) != 0) {
      dl.dtype.code = kDLUInt;
      dl.dtype.bits = 8;
      dl.dtype.lanes = 1;
    }
    st = qf__list_add(&m->inputs, t->name, &dl, NULL, err);
    if (st != QF_OK) {
      qf_model_free(m);
      *out = NULL;
      return st;
    }
    m->inputs.slots[m->inputs.n - 1]->st_dtype = t->dtype;
  }
  return QF_OK;
}

void qf_model_free(qf_model *m) {
  if (!m) return;
  qf__slots_free(&m->inputs);
  qf__slots_free(&m->outputs);
  free(m->config);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

qf_status qf_model_add_input(qf_model *m, const char *name, const DLTensor *t,
                             qf_error *err) {
  qf_status st = qf__list_add(&m->inputs, name, t, NULL, err);
  if (st == QF_OK)
    m->inputs.slots[m->inputs.n - 1]->st_dtype = qf_dtype_from_dl(t->dtype);
  return st;
}

void qf_model_set_sink(qf_model *m, qf_model_sink_fn fn, void *user) {
  m->sink = fn;
  m->sink_user = user;
}

size_t qf_model_output_count(const qf_model *m) { return m->outputs.n; }

const qf_tensor_info *qf_model_output_at(const qf_model *m, size_t i) {
  return i < m->outputs.n ? &m->outputs.slots[i]->info : NULL;
}

void qf_model_clear_outputs(qf_model *m) {
  pthread_mutex_lock(&m->lock);
  qf__slots_free(&m->outputs);
  pthread_mutex_unlock(&m->lock);
}

size_t qf_model_input_count(const qf_model *m) { return m->inputs.n; }

qf_status qf_model_input_at(const qf_model *m, size_t i, qf_tensor_info *out,
                            qf_error *err) {
  if (i >= m->inputs.n)
    return qf_errorf(err, QF_ERR_NOT_FOUND, "model_tensor_at",
                     "tensor index %zu out of range (model has %zu tensors)", i,
                     m->inputs.n);
  *out = m->inputs.slots[i]->info;
  return QF_OK;
}

const char *qf_model_config(const qf_model *m) { return m->config; }

qf_status qf__model_find(const qf_model *m, const char *name,
                         qf_tensor_info *out, qf_error *err) {
  qf_model *mm = (qf_model *)m;
  pthread_mutex_lock(&mm->lock);
  size_t i = qf__index_get(&m->outputs.index, m->outputs.slots, name);
  if (i != SIZE_MAX) {
    *out = m->outputs.slots[i]->info;
    pthread_mutex_unlock(&mm->lock);
    return QF_OK;
  }
  pthread_mutex_unlock(&mm->lock);
  i = qf__index_get(&m->inputs.index, m->inputs.slots, name);
  if (i != SIZE_MAX) {
    *out = m->inputs.slots[i]->info;
    return QF_OK;
  }
  return qf_errorf(err, QF_ERR_NOT_FOUND, "model_find_tensor",
                   "the model has no tensor named '%s'", name);
}

size_t qf__dl_nbytes(const DLTensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n * (((size_t)t->dtype.bits * t->dtype.lanes + 7) / 8);
}

qf_status qf__model_put(qf_model *m, const char *name, const DLTensor *t,
                        qf_error *err) {
  if (!name || !*name || !t)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_put_tensor",
                     "a tensor needs a name and data");
  if (t->device.device_type != kDLCPU)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_put_tensor",
                     "tensor '%s' must be in CPU memory", name);
  if (t->strides)
    for (int i = t->ndim - 1, expect = 1; i >= 0; i--) {
      if (t->shape[i] > 1 && t->strides[i] != expect)
        return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_put_tensor",
                         "tensor '%s' must be compact row-major", name);
      expect *= (int)t->shape[i];
    }
  if (qf_dtype_from_dl(t->dtype) == QF_DTYPE_INVALID)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_put_tensor",
                     "tensor '%s' has a dtype (code %u, %u bits) that checkpoints "
                     "cannot store", name, t->dtype.code, t->dtype.bits);
  if (m->sink) return m->sink(m->sink_user, name, t, err);
  size_t nb = qf__dl_nbytes(t);
  void *copy = malloc(nb ? nb : 1);
  if (!copy)
    return qf_errorf(err, QF_ERR_NO_MEMORY, "model_put_tensor",
                     "out of memory copying '%s' (%zu bytes)", name, nb);
  memcpy(copy, (const char *)t->data + t->byte_offset, nb);
  DLTensor c = *t;
  c.data = copy;
  c.byte_offset = 0;
  pthread_mutex_lock(&m->lock);
  size_t existing = qf__index_get(&m->outputs.index, m->outputs.slots, name);
  qf_status st;
  if (existing != SIZE_MAX) {
    qf__tensor_slot *s = m->outputs.slots[existing];
    free(s->owned_data);
    s->owned_data = copy;
    s->info.tensor = c;
    for (int i = 0; i < c.ndim; i++) s->shape[i] = c.shape[i];
    s->info.tensor.shape = s->shape;
    st = QF_OK;
  } else {
    st = qf__list_add(&m->outputs, name, &c, copy, err);
    if (st != QF_OK) free(copy);
  }
  pthread_mutex_unlock(&m->lock);
  return st;
}

qf_status qf__model_set_config(qf_model *m, const char *json, qf_error *err) {
  char *c = strdup(json);
  if (!c) return qf_errorf(err, QF_ERR_NO_MEMORY, "model_set_config_json", "out of memory");
  pthread_mutex_lock(&m->lock);
  free(m->config);
  m->config = c;
  pthread_mutex_unlock(&m->lock);
  return QF_OK;
}

int qf__model_has_output(const qf_model *m, const char *name) {
  qf_model *mm = (qf_model *)m;
  pthread_mutex_lock(&mm->lock);
  int has = qf__index_get(&m->outputs.index, m->outputs.slots, name) != SIZE_MAX;
  pthread_mutex_unlock(&mm->lock);
  return has;
}
