/*
 * The mock host of mock_host.h: tensors are copied in and out, lookups
 * search the emitted tensors first (a second put replaces), logging keeps
 * the last line for assertions.
 */
#include "mock_host.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/plugin_util.h"
#include "toy_block.h"

char mock_last_log[1024];
qf_plugin_init_fn mock_awq_init;

static void m_log(const qf_host *h, qf_log_level lvl, const char *plugin, const char *fmt, ...) {
  (void)h, (void)lvl, (void)plugin;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(mock_last_log, sizeof mock_last_log, fmt, ap);
  va_end(ap);
}

static void m_progress(const qf_host *h, const char *w, uint64_t d, uint64_t t) {
  (void)h, (void)w, (void)d, (void)t;
}

static void *m_alloc(size_t n) {
  return aligned_alloc(64, (n + 63) / 64 * 64);
}

static const char *m_config(const qf_model *m) {
  (void)m;
  return "{}";
}

static size_t m_count(const qf_model *m) { return m->n_in; }

static void fill(const mock_tensor *t, qf_tensor_info *out) {
  out->struct_size = sizeof *out;
  out->name = t->name;
  out->tensor = t->t;
}

static qf_status m_at(const qf_model *m, size_t i, qf_tensor_info *out, qf_error *err) {
  if (i >= m->n_in) return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "tensor_at", "index %zu", i);
  fill(&m->in[i], out);
  return QF_OK;
}

static const mock_tensor *lookup(const qf_model *m, const char *name) {
  for (size_t i = 0; i < m->n_out; i++)
    if (!strcmp(m->out[i].name, name)) return &m->out[i];
  for (size_t i = 0; i < m->n_in; i++)
    if (!strcmp(m->in[i].name, name)) return &m->in[i];
  return NULL;
}

static qf_status m_find(const qf_model *m, const char *name, qf_tensor_info *out, qf_error *err) {
  const mock_tensor *t = lookup(m, name);
  if (!t) return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "find_tensor", "%s: no such tensor", name);
  fill(t, out);
  return QF_OK;
}

static void set(mock_tensor *t, const char *name, DLDataType dt, int ndim, const int64_t *shape,
                const void *data) {
  free(t->data);
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  size_t bytes = (size_t)(dt.bits / 8);
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    bytes *= (size_t)shape[i];
  }
  t->data = malloc(bytes ? bytes : 1);
  memcpy(t->data, data, bytes);
  t->t = qf_cpu_tensor(t->data, dt, ndim, t->shape);
}

static qf_status m_put(qf_model *m, const char *name, const DLTensor *t, qf_error *err) {
  size_t i = 0;
  while (i < m->n_out && strcmp(m->out[i].name, name)) i++;
  if (i == MOCK_MAX_TENSORS) return qf_fail(err, QF_ERR_NO_MEMORY, "mock", "put", "full");
  if (i == m->n_out) m->n_out++;
  set(&m->out[i], name, t->dtype, t->ndim, t->shape, (const char *)t->data + t->byte_offset);
  return QF_OK;
}

static qf_status m_hessian(qf_calib *c, const char *name, const float **h, int64_t *k,
                           qf_error *err) {
  if (!c || !c->h)
    return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "calib_hessian", "%s: none", name);
  c->calls++;
  *h = c->h;
  *k = c->k;
  return QF_OK;
}

static qf_status m_importance(qf_calib *c, const char *name, const float **v, int64_t *k,
                              qf_error *err) {
  (void)c, (void)v, (void)k;
  return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "calib_importance", "%s: none", name);
}

static const char *const toy_linears[7] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                           "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                           "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                           "mlp.down_proj.weight"};

/* index of a toy block linear from its checkpoint name, -1 if none */
static int toy_index(const qf_calib *c, const char *name) {
  const size_t n = strlen(c->prefix);
  if (!name || strncmp(name, c->prefix, n)) return -1;
  for (int i = 0; i < 7; i++)
    if (!strcmp(name + n, toy_linears[i])) return i;
  return -1;
}

void mock_calib_capture(qf_calib *c) {
  toy_block *b = c->toy;
  c->cap[0] = malloc((size_t)(b->t * b->h) * 4);
  c->cap[1] = malloc((size_t)(b->t * b->nkv) * 4);
  c->cap[2] = malloc((size_t)(b->t * b->h) * 4);
  c->cap[3] = malloc((size_t)(b->t * b->inter) * 4);
  float *out = malloc((size_t)(b->t * b->h) * 4);
  toy_forward(b, NULL, NULL, NULL, out, c->cap[0], c->cap[1], c->cap[2], c->cap[3]);
  free(out);
}

static qf_status m_inputs(qf_calib *c, const char *name, const float **x, int64_t *t,
                          int64_t *k, qf_error *err) {
  const int i = c && c->toy ? toy_index(c, name) : -1;
  if (i < 0) return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "calib_inputs", "%s: none", name);
  const int site = i <= 2 ? 0 : i == 3 ? 1 : i == 6 ? 3 : 2;
  const int64_t ks[4] = {c->toy->h, c->toy->nkv, c->toy->h, c->toy->inter};
  *x = c->cap[site];
  *t = c->toy->t;
  *k = ks[site];
  return QF_OK;
}

static qf_status m_block_forward(qf_calib *c, const char *name, const char *const *names,
                                 const DLTensor *w, size_t n, float *out, qf_error *err) {
  if (!c || !c->toy || toy_index(c, name) < 0)
    return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "calib_block_forward", "%s: none", name);
  float *ov[7] = {0};
  for (size_t i = 0; i < n; i++) {
    const int j = toy_index(c, names[i]);
    if (j < 0 || w[i].dtype.code != kDLFloat || w[i].dtype.bits != 32)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, "mock", "calib_block_forward", "%s", names[i]);
    ov[j] = (float *)w[i].data;
  }
  toy_forward(c->toy, ov, NULL, NULL, out, NULL, NULL, NULL, NULL);
  c->forwards++;
  return QF_OK;
}

static qf_status m_block_shape(qf_calib *c, const char *name, int64_t *t, int64_t *h,
                               qf_error *err) {
  if (!c || !c->toy || toy_index(c, name) < 0)
    return qf_fail(err, QF_ERR_NOT_FOUND, "mock", "calib_block_shape", "%s: none", name);
  *t = c->toy->t;
  *h = c->toy->h;
  return QF_OK;
}

static int m_threads(const qf_host *h) {
  (void)h;
  return 2;
}

qf_host mock_host = {
    .struct_size = sizeof(qf_host),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .log = m_log,
    .progress = m_progress,
    .alloc = m_alloc,
    .free = free,
    .model_config_json = m_config,
    .model_tensor_count = m_count,
    .model_tensor_at = m_at,
    .model_find_tensor = m_find,
    .model_put_tensor = m_put,
    .calib_hessian = m_hessian,
    .calib_importance = m_importance,
    .n_threads = m_threads,
    .model_set_config_json = NULL,
    .calib_inputs = m_inputs,
    .calib_block_forward = m_block_forward,
    .calib_block_shape = m_block_shape,
};

void mock_add(qf_model *m, const char *name, DLDataType dt, int ndim, const int64_t *shape,
              const void *data) {
  cr_assert(m->n_in < MOCK_MAX_TENSORS);
  m->in[m->n_in].data = NULL;
  set(&m->in[m->n_in++], name, dt, ndim, shape, data);
}

const DLTensor *mock_get(const qf_model *m, const char *name) {
  const mock_tensor *t = lookup(m, name);
  return t ? &t->t : NULL;
}

void mock_free(qf_model *m) {
  for (size_t i = 0; i < m->n_in; i++) free(m->in[i].data);
  for (size_t i = 0; i < m->n_out; i++) free(m->out[i].data);
  m->n_in = m->n_out = 0;
}

const qf_plugin_desc *mock_load_awq(void) {
  const char *dir = getenv("QF_PLUGIN_DIR");
  cr_assert(dir && *dir, "QF_PLUGIN_DIR is not set");
  char path[4096];
  snprintf(path, sizeof path, "%s/awq-cpu.so", dir);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert(h, "dlopen %s: %s", path, dlerror());
  qf_plugin_init_fn init = (qf_plugin_init_fn)dlsym(h, QF_PLUGIN_INIT_SYMBOL);
  cr_assert(init, "no %s in %s", QF_PLUGIN_INIT_SYMBOL, path);
  mock_awq_init = init;
  const qf_plugin_desc *d = NULL;
  qf_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(init(&mock_host, &d, &err), QF_OK, "%s", err.message);
  return d; /* the handle stays open for the process, as the host does */
}
