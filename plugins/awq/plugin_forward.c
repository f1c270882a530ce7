/*
 * The AWQ plugin's read side: dequantize a module to float32, and
 * linear_forward with kernel state prepared once per module (GEMM words,
 * unpacked zeros, float32 scales and bias; GEMV checkpoints are repacked to
 * GEMM words). Prepared entries are keyed by (model, module prefix, address
 * of the checkpoint's qweight), created under the quantizer's mutex and kept
 * until destroy, so concurrent calls for different modules are safe. CPU
 * tensors run in every build on the shared integer kernels (the module is
 * repacked into their layout on its first CPU call, under the mutex); GPU
 * builds run tensors of their device type on the GPU kernels (weights
 * uploaded on first use).
 */
#include <stdlib.h>
#include <string.h>

#include "plugin_internal.h"
#if QF_AWQ_GPU
#include "kernels/awq_gpu.h"
#endif

static const void *tensor_data(const DLTensor *t) {
  return (const char *)t->data + t->byte_offset;
}

/* An int32 array that may sit at any address in the checkpoint: borrowed
 * when aligned, copied into *own otherwise. NULL on allocation failure. */
static const int32_t *aligned_words(const DLTensor *t, int32_t **own) {
  const void *p = tensor_data(t);
  *own = NULL;
  if (((uintptr_t)p & 3u) == 0) return p;
  const size_t bytes = (size_t)qf_numel(t) * 4;
  *own = malloc(bytes);
  if (*own) memcpy(*own, p, bytes);
  return *own;
}

static qf_status check_f32_out(const DLTensor *t, int64_t rows, int64_t cols,
                               const char *what, const char *op, qf_error *err) {
  if (!t || !t->data || t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op, "%s: expected a float32 tensor", what);
  int64_t r = 0, c = 0;
  qf_matrix_shape(t, &r, &c);
  if (r != rows || c != cols || t->ndim < 1)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op,
                   "%s: expected shape [%lld, %lld], got [%lld, %lld]", what, (long long)rows,
                   (long long)cols, (long long)r, (long long)c);
  if (t->strides) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
      if (t->shape[i] != 1 && t->strides[i] != expect)
        return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op, "%s: expected a compact tensor", what);
      expect *= t->shape[i];
    }
  }
  return QF_OK;
}

qf_status qf__awq_dequantize(qf_quantizer *q, const qf_model *model,
                                const char *name, DLTensor *out, qf_error *err) {
  static const char *op = "dequantize";
  char prefix[QF_AWQ_NAME_MAX];
  if (!q || !model || !name || !out)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op, "bad arguments");
  if (!qf__awq_weight_prefix(name, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_NOT_FOUND, QF_AWQ_PLUGIN, op, "%s: not an AWQ weight name (\"<module>.weight\")", name);
  qf_tensor_info t[4];
  qf_awq_module_shape sh;
  qf_status st = qf__awq_load_module(q, model, prefix, op, t, &sh, err);
  if (st != QF_OK) return st;
  st = check_f32_out(out, sh.n, sh.k, name, op, err);
  if (st != QF_OK) return st;
  if (out->device.device_type != kDLCPU)
    return qf_fail(err, QF_ERR_UNSUPPORTED, QF_AWQ_PLUGIN, op, "%s: output must be CPU memory", name);
  int32_t *own_w = NULL, *own_z = NULL;
  const int32_t *qw = aligned_words(&t[0].tensor, &own_w);
  const int32_t *qz = aligned_words(&t[1].tensor, &own_z);
  float *sc = malloc((size_t)qf_numel(&t[2].tensor) * sizeof *sc);
  if (!qw || !qz || !sc) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, op, "%s: out of memory", name);
  } else {
    qf_awq_scales_to_f32(&t[2].tensor, sc);
    float *dst = (float *)((char *)out->data + out->byte_offset);
    st = q->cfg.layout == QF_AWQ_LAYOUT_GEMV
             ? qf_awq_gemv_dequantize(qw, qz, sc, sh.n, sh.k, sh.g, dst)
             : qf_awq_gemm_dequantize(qw, qz, sc, sh.n, sh.k, sh.g, dst);
    if (st != QF_OK) st = qf_fail(err, st, QF_AWQ_PLUGIN, op, "%s: cannot dequantize", name);
  }
  free(own_w);
  free(own_z);
  free(sc);
  return st;
}

/* ------------------------------------------------------------ forward */

static void free_prepared(qf__awq_prepared *p) {
  if (!p) return;
  qf_intq_qmat_free(p->qmat);
  free(p->qweight_own);
  free(p->zeros);
  free(p->scales);
  free(p->bias);
  free(p);
}

/* Kernel state of one module: GEMM words, unpacked zeros, float scales. */
static qf_status build_prepared(qf_quantizer *q, const qf_model *model,
                                const char *prefix, qf__awq_prepared **out,
                                qf_error *err) {
  static const char *op = "linear_forward";
  qf_tensor_info t[4];
  qf_awq_module_shape sh;
  qf_status st = qf__awq_load_module(q, model, prefix, op, t, &sh, err);
  if (st != QF_OK) return st;
  qf__awq_prepared *p = calloc(1, sizeof *p);
  if (!p) return qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, op, "out of memory");
  p->model = model;
  p->gpu_device = -1;
  snprintf(p->prefix, sizeof p->prefix, "%s", prefix);
  p->qweight_addr = tensor_data(&t[0].tensor);
  const int64_t n = sh.n, k = sh.k, g = sh.g, ng = sh.groups;
  int32_t *own_w = NULL, *own_z = NULL, *zq = NULL;
  float *sc_raw = malloc((size_t)qf_numel(&t[2].tensor) * sizeof *sc_raw);
  const int32_t *qw = aligned_words(&t[0].tensor, &own_w);
  const int32_t *qz = aligned_words(&t[1].tensor, &own_z);
  p->zeros = malloc((size_t)(ng * n) * sizeof *p->zeros);
  p->scales = malloc((size_t)(ng * n) * sizeof *p->scales);
  if (t[3].tensor.data) p->bias = malloc((size_t)n * sizeof *p->bias);
  int ok = sc_raw && qw && qz && p->zeros && p->scales && (!t[3].tensor.data || p->bias);
  if (ok && q->cfg.layout == QF_AWQ_LAYOUT_GEMV) {
    p->qweight_own = malloc((size_t)(k * n / 8) * sizeof *p->qweight_own);
    zq = malloc((size_t)(ng * n / 8) * sizeof *zq);
    ok = p->qweight_own && zq &&
         qf_awq_gemv_to_gemm(qw, qz, n, k, g, p->qweight_own, zq) == QF_OK;
    if (ok) {
      qf_awq_cpu_unpack_zeros(zq, n, k, g, p->zeros);
      qf_awq_scales_to_f32(&t[2].tensor, sc_raw);
      const int64_t sw = t[2].tensor.shape[1];
      for (int64_t gi = 0; gi < ng; gi++)
        for (int64_t r = 0; r < n; r++) p->scales[gi * n + r] = sc_raw[r * sw + gi];
    }
    free(own_w);
    own_w = NULL;
    qw = p->qweight_own;
  } else if (ok) {
    qf_awq_cpu_unpack_zeros(qz, n, k, g, p->zeros);
    qf_awq_scales_to_f32(&t[2].tensor, p->scales);
    p->qweight_own = own_w; /* copied only when misaligned */
    own_w = NULL;
  }
  if (ok && p->bias) qf_tensor_to_f32(&t[3].tensor, p->bias);
  free(own_w);
  free(own_z);
  free(zq);
  free(sc_raw);
  if (!ok) {
    free_prepared(p);
    return qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, op, "%s: out of memory preparing the module", prefix);
  }
  p->w.qweight = qw;
  p->w.zeros = p->zeros;
  p->w.scales = p->scales;
  p->w.bias = p->bias;
  p->w.n = n;
  p->w.k = k;
  p->w.g = g;
  *out = p;
  return QF_OK;
}

static qf__awq_prepared *cache_find(qf_quantizer *q, const qf_model *model,
                                const char *prefix, const void *addr) {
  for (qf__awq_prepared *p = q->cache; p; p = p->next)
    if (p->model == model && p->qweight_addr == addr && !strcmp(p->prefix, prefix)) return p;
  return NULL;
}

/* Entries live until destroy (a replaced tensor simply gets a new entry),
 * so a pointer returned here stays valid for the caller. */
static qf_status get_prepared(qf_quantizer *q, const qf_model *model,
                              const char *prefix, qf__awq_prepared **out,
                              qf_error *err) {
  qf_tensor_info ti;
  qf_status st = qf__awq_find(q, model, prefix, "qweight", &ti, err);
  if (st != QF_OK) return st;
  const void *addr = tensor_data(&ti.tensor);
  pthread_mutex_lock(&q->lock);
  qf__awq_prepared *p = cache_find(q, model, prefix, addr);
  pthread_mutex_unlock(&q->lock);
  if (p) {
    *out = p;
    return QF_OK;
  }
  qf__awq_prepared *fresh = NULL;
  st = build_prepared(q, model, prefix, &fresh, err);
  if (st != QF_OK) return st;
  pthread_mutex_lock(&q->lock);
  p = cache_find(q, model, prefix, addr);
  if (!p) {
    fresh->next = q->cache;
    q->cache = fresh;
    p = fresh;
    fresh = NULL;
  }
  pthread_mutex_unlock(&q->lock);
  free_prepared(fresh); /* another thread won the race */
  *out = p;
  return QF_OK;
}

/* The module in the shared CPU kernel layout, built once (under the lock). */
static qf_status cpu_qmat(qf_quantizer *q, qf__awq_prepared *p,
                          const qf_intq_qmat **out, qf_error *err) {
  qf_status st = QF_OK;
  pthread_mutex_lock(&q->lock);
  if (!p->qmat) st = qf_awq_cpu_prepare(&p->w, &p->qmat, err);
  *out = p->qmat;
  pthread_mutex_unlock(&q->lock);
  return st;
}

#if QF_AWQ_GPU
static qf_status gpu_forward(qf_quantizer *q, qf__awq_prepared *p, int device,
                             const float *x, int64_t m, float *y,
                             qf_error *err) {
  static const char *op = "linear_forward";
  char msg[256] = "";
  pthread_mutex_lock(&q->lock);
  if (p->gpu_device < 0) {
    const qf_awq_cpu_weights *w = &p->w;
    const size_t ng = (size_t)(w->k / w->g), n = (size_t)w->n;
    int bad = qf_awq_gpu_upload(device, w->qweight, (size_t)(w->k * w->n / 8) * 4, &p->gpu_buf[0], msg, sizeof msg);
    if (!bad) bad = qf_awq_gpu_upload(device, w->zeros, ng * n * 4, &p->gpu_buf[1], msg, sizeof msg);
    if (!bad) bad = qf_awq_gpu_upload(device, w->scales, ng * n * 4, &p->gpu_buf[2], msg, sizeof msg);
    if (!bad && w->bias) bad = qf_awq_gpu_upload(device, w->bias, n * 4, &p->gpu_buf[3], msg, sizeof msg);
    if (bad) {
      for (int i = 0; i < 4; i++) {
        qf_awq_gpu_free(p->gpu_buf[i]);
        p->gpu_buf[i] = NULL;
      }
      pthread_mutex_unlock(&q->lock);
      return qf_fail(err, QF_ERR_ENVIRONMENT, QF_AWQ_PLUGIN, op, "%s: %s", p->prefix, msg);
    }
    p->gpu_device = device;
  }
  pthread_mutex_unlock(&q->lock);
  if (p->gpu_device != device)
    return qf_fail(err, QF_ERR_UNSUPPORTED, QF_AWQ_PLUGIN, op, "%s: prepared on device %d, called on %d",
                   p->prefix, p->gpu_device, device);
  if (qf_awq_gpu_linear(device, p->gpu_buf[0], p->gpu_buf[1], p->gpu_buf[2], p->gpu_buf[3],
                        p->w.n, p->w.k, p->w.g, x, m, y, msg, sizeof msg))
    return qf_fail(err, QF_ERR_ENVIRONMENT, QF_AWQ_PLUGIN, op, "%s: %s", p->prefix, msg);
  return QF_OK;
}
#endif

qf_status qf__awq_linear_forward(qf_quantizer *q, const qf_model *model,
                                    const char *name, const DLTensor *x,
                                    DLTensor *y, qf_error *err) {
  static const char *op = "linear_forward";
  char prefix[QF_AWQ_NAME_MAX];
  if (!q || !model || !name || !x || !y)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op, "bad arguments");
  if (!qf__awq_weight_prefix(name, prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_NOT_FOUND, QF_AWQ_PLUGIN, op, "%s: not an AWQ weight name (\"<module>.weight\")", name);
  qf__awq_prepared *p = NULL;
  qf_status st = get_prepared(q, model, prefix, &p, err);
  if (st != QF_OK) return st;
  int64_t m = 0, kx = 0;
  if (x->ndim >= 1 && x->shape) qf_matrix_shape(x, &m, &kx);
  st = check_f32_out(x, m, p->w.k, "x", op, err);
  if (st == QF_OK) st = check_f32_out(y, m, p->w.n, "y", op, err);
  if (st != QF_OK) return st;
  if (x->device.device_type != y->device.device_type || x->device.device_id != y->device.device_id)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_AWQ_PLUGIN, op, "%s: x and y must be on the same device", name);
  const float *xd = (const float *)tensor_data(x);
  float *yd = (float *)((char *)y->data + y->byte_offset);
  if (x->device.device_type == kDLCPU) {
    int threads = 1;
    if (QF_HAS_FIELD(q->host, qf_host, n_threads) && q->host->n_threads)
      threads = q->host->n_threads(q->host);
    const qf_intq_qmat *qm = NULL;
    st = cpu_qmat(q, p, &qm, err);
    if (st != QF_OK) return st;
    return qf_intq_qmat_forward(qm, xd, m, yd, threads, QF_INTQ_ISA_AUTO, err);
  }
#if QF_AWQ_GPU
  if (x->device.device_type == QF_AWQ_GPU_DEVICE)
    return gpu_forward(q, p, x->device.device_id, xd, m, yd, err);
#endif
  return qf_fail(err, QF_ERR_UNSUPPORTED, QF_AWQ_PLUGIN, op, "%s: tensors on device type %d are not served by this build",
                 name, (int)x->device.device_type);
}

void qf__awq_cache_free(qf_quantizer *q) {
  for (qf__awq_prepared *p = q->cache, *next; p; p = next) {
    next = p->next;
#if QF_AWQ_GPU
    for (int i = 0; i < 4; i++) qf_awq_gpu_free(p->gpu_buf[i]);
#endif
    free_prepared(p);
  }
  q->cache = NULL;
}
