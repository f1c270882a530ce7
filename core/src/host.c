/*
 * The host table (qf_host) every plugin receives: logging, progress, memory
 * that crosses the boundary, model access and calibration. One static
 * instance serves all plugins; the callbacks forward to the core's log,
 * progress, model and calibration modules.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib_internal.h"
#include "model_internal.h"
#include "qforge/qforge.h"

static void qf__host_log(const qf_host *host, qf_log_level level,
                         const char *plugin, const char *fmt, ...) {
  (void)host;
  va_list ap;
  va_start(ap, fmt);
  qf_logv(level, plugin, fmt, ap);
  va_end(ap);
}

/* One bar per `what` label at a time; enough for sequential plugin work. */
static qf_progress *qf__host_bar;
static char qf__host_bar_label[64];

static void qf__host_progress(const qf_host *host, const char *what,
                              uint64_t done, uint64_t total) {
  (void)host;
  if (!what) what = "";
  if (qf__host_bar && strncmp(qf__host_bar_label, what, sizeof qf__host_bar_label - 1) != 0) {
    qf_progress_done(qf__host_bar);
    qf__host_bar = NULL;
  }
  if (!qf__host_bar) {
    qf__host_bar = qf_progress_new(what, total);
    snprintf(qf__host_bar_label, sizeof qf__host_bar_label, "%s", what);
  }
  qf_progress_update(qf__host_bar, done);
  if (done >= total) {
    qf_progress_done(qf__host_bar);
    qf__host_bar = NULL;
  }
}

static void *qf__host_alloc(size_t size) {
  void *p = NULL;
  if (posix_memalign(&p, 64, size ? size : 1) != 0) return NULL;
  return p;
}

static void qf__host_free(void *p) { free(p); }

static const char *qf__host_model_config(const qf_model *m) {
  return m ? qf_model_config(m) : "{}";
}

static size_t qf__host_model_count(const qf_model *m) {
  return m ? qf_model_input_count(m) : 0;
}

static qf_status qf__host_model_at(const qf_model *m, size_t i,
                                   qf_tensor_info *out, qf_error *err) {
  if (!m || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_tensor_at", "NULL model or output");
  return qf_model_input_at(m, i, out, err);
}

static qf_status qf__host_model_find(const qf_model *m, const char *name,
                                     qf_tensor_info *out, qf_error *err) {
  if (!m || !name || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_find_tensor",
                     "NULL model, name or output");
  return qf__model_find(m, name, out, err);
}

static qf_status qf__host_model_put(qf_model *m, const char *name,
                                    const DLTensor *t, qf_error *err) {
  if (!m)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_put_tensor", "NULL model");
  return qf__model_put(m, name, t, err);
}

static qf_status qf__host_calib_hessian(qf_calib *c, const char *name,
                                        const float **h, int64_t *k,
                                        qf_error *err) {
  if (!c || !c->ops || !c->ops->hessian)
    return qf_errorf(err, QF_ERR_NOT_FOUND, "calib_hessian",
                     "no calibration data: this scheme needs a Hessian for '%s' "
                     "(give --calib or --hessian)", name ? name : "?");
  return c->ops->hessian(c->impl, name, h, k, err);
}

static qf_status qf__host_calib_importance(qf_calib *c, const char *name,
                                           const float **v, int64_t *k,
                                           qf_error *err) {
  if (!c || !c->ops || !c->ops->importance)
    return qf_errorf(err, QF_ERR_NOT_FOUND, "calib_importance",
                     "no importance data for '%s'", name ? name : "?");
  return c->ops->importance(c->impl, name, v, k, err);
}

static qf_status qf__host_set_config(qf_model *m, const char *json, qf_error *err) {
  if (!m || !json)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "model_set_config_json", "NULL model or text");
  return qf__model_set_config(m, json, err);
}

#define QF__CALIB_NEEDS(c, op, what)                                          \
  if (!(c) || !(c)->ops || !(c)->ops->op)                                     \
  return qf_errorf(err, QF_ERR_NOT_FOUND, what,                               \
                   "no model calibration is running (quantize a model with "  \
                   "--calib to get activations for '%s')", name ? name : "?")

static qf_status qf__host_calib_inputs(qf_calib *c, const char *name, const float **x,
                                       int64_t *tokens, int64_t *k, qf_error *err) {
  QF__CALIB_NEEDS(c, inputs, "calib_inputs");
  return c->ops->inputs(c->impl, name, x, tokens, k, err);
}

static qf_status qf__host_calib_block_forward(qf_calib *c, const char *name,
                                              const char *const *names,
                                              const DLTensor *weights, size_t n, float *out,
                                              qf_error *err) {
  QF__CALIB_NEEDS(c, block_forward, "calib_block_forward");
  return c->ops->block_forward(c->impl, name, names, weights, n, out, err);
}

static qf_status qf__host_calib_block_shape(qf_calib *c, const char *name, int64_t *tokens,
                                            int64_t *hidden, qf_error *err) {
  QF__CALIB_NEEDS(c, block_shape, "calib_block_shape");
  return c->ops->block_shape(c->impl, name, tokens, hidden, err);
}

static qf_status qf__host_calib_part_forward(qf_calib *c, const char *name, int part,
                                             const char *const *names,
                                             const DLTensor *weights, size_t n, float *out,
                                             qf_error *err) {
  QF__CALIB_NEEDS(c, part_forward, "calib_part_forward");
  return c->ops->part_forward(c->impl, name, part, names, weights, n, out, err);
}

static pthread_mutex_t qf__metric_lock = PTHREAD_MUTEX_INITIALIZER;
static qf_metric_sink_fn qf__metric_sink;
static void *qf__metric_user;

void qf_set_metric_sink(qf_metric_sink_fn fn, void *user) {
  pthread_mutex_lock(&qf__metric_lock);
  qf__metric_sink = fn;
  qf__metric_user = user;
  pthread_mutex_unlock(&qf__metric_lock);
}

static void qf__host_report_metric(const qf_host *host, const char *tensor, const char *metric,
                                   double value) {
  (void)host;
  pthread_mutex_lock(&qf__metric_lock);
  if (qf__metric_sink && tensor && metric) qf__metric_sink(qf__metric_user, tensor, metric, value);
  pthread_mutex_unlock(&qf__metric_lock);
  qf_log(QF_LOG_DEBUG, "%s: %s = %.6g", tensor ? tensor : "?", metric ? metric : "?", value);
}

static int qf__threads = 0;

static int qf__host_n_threads(const qf_host *host) {
  (void)host;
  if (qf__threads > 0) return qf__threads;
  const char *s = getenv("QFORGE_THREADS");
  int n = s ? atoi(s) : 0;
  if (n <= 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
  }
  qf__threads = n;
  return n;
}

void qf_set_threads(int n) { qf__threads = n > 0 ? n : 0; }

static const qf_host qf__host = {
    .struct_size = sizeof(qf_host),
    .abi_major = QF_ABI_MAJOR,
    .abi_minor = QF_ABI_MINOR,
    .log = qf__host_log,
    .progress = qf__host_progress,
    .alloc = qf__host_alloc,
    .free = qf__host_free,
    .model_config_json = qf__host_model_config,
    .model_tensor_count = qf__host_model_count,
    .model_tensor_at = qf__host_model_at,
    .model_find_tensor = qf__host_model_find,
    .model_put_tensor = qf__host_model_put,
    .calib_hessian = qf__host_calib_hessian,
    .calib_importance = qf__host_calib_importance,
    .n_threads = qf__host_n_threads,
    .model_set_config_json = qf__host_set_config,
    .calib_inputs = qf__host_calib_inputs,
    .calib_block_forward = qf__host_calib_block_forward,
    .calib_block_shape = qf__host_calib_block_shape,
    .report_metric = qf__host_report_metric,
    .calib_part_forward = qf__host_calib_part_forward,
};

const qf_host *qf_host_table(void) { return &qf__host; }
