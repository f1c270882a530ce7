/*
 * The GPTQ plugin's module side: loading pre-quantized AutoGPTQ /
 * GPTQModel / optimum checkpoints (missing-key and unexpected-key
 * negotiation, postprocess_model validating every module's tensors with
 * clear errors), dequantize, and linear_forward through a per-quantizer
 * cache of prepared kernel matrices (built on first use under a mutex,
 * read-only afterwards so several threads may run modules at once; GPU
 * builds also keep a device copy for tensors that live on the device).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_priv.h"
#include "qforge/plugin_util.h"

#define NAME QF_GPTQ_PLUGIN

static const char *const k_leaves[] = {"qweight", "qzeros", "scales", "g_idx"};

void qf_gptq__module_tensors(const qf_quantizer *q, const qf_model *m,
                             const char *prefix, qf_tensor_info ti[5],
                             qf_gptq_module_tensors *t) {
  static const char *const leaves[5] = {"qweight", "qzeros", "scales", "g_idx",
                                        "bias"};
  const DLTensor *p[5];
  for (int i = 0; i < 5; i++)
    p[i] = qf_gptq__find(q, m, prefix, leaves[i], &ti[i]) ? &ti[i].tensor : NULL;
  t->qweight = p[0];
  t->qzeros = p[1];
  t->scales = p[2];
  t->g_idx = p[3];
  t->bias = p[4];
}

/* ------------------------------------------------------------ keys */

qf_status qf_gptq__update_missing_keys(qf_quantizer *q, const qf_model *model,
                                       const char *const *keys, size_t n,
                                       uint8_t *keep, qf_error *err) {
  (void)err;
  char prefix[QF_GPTQ_PREFIX_MAX];
  qf_tensor_info ti;
  for (size_t i = 0; i < n; i++)
    if (qf_gptq__prefix_of(keys[i], "weight", prefix, sizeof prefix) &&
        qf_gptq__find(q, model, prefix, "qweight", &ti))
      keep[i] = 0; /* the module's weight arrives as GPTQ tensors */
  return QF_OK;
}

qf_status qf_gptq__update_unexpected_keys(qf_quantizer *q,
                                          const qf_model *model,
                                          const char *const *keys, size_t n,
                                          uint8_t *keep, qf_error *err) {
  (void)err;
  char prefix[QF_GPTQ_PREFIX_MAX];
  qf_tensor_info ti;
  for (size_t i = 0; i < n; i++)
    for (size_t l = 0; l < 4; l++)
      if (qf_gptq__prefix_of(keys[i], k_leaves[l], prefix, sizeof prefix) &&
          qf_gptq__find(q, model, prefix, "qweight", &ti)) {
        keep[i] = 0;
        break;
      }
  return QF_OK;
}

/* ------------------------------------------------------------ validation */

static qf_status check_prefix(qf_quantizer *q, const qf_model *m,
                              const char *prefix, int64_t *rows, int64_t *cols,
                              int64_t *ngroups, qf_gptq_module_tensors *t,
                              qf_tensor_info ti[5], qf_error *err) {
  qf_gptq__module_tensors(q, m, prefix, ti, t);
  return qf_gptq_check_module(prefix, t, q->cfg.bits, q->cfg.group_size, rows,
                              cols, ngroups, err);
}

qf_status qf_gptq__postprocess_model(qf_quantizer *q, qf_model *model,
                                     qf_error *err) {
  if (!q->pre_quantized) {
    q->host->log(q->host, QF_LOG_INFO, NAME, "quantized %lld linear weights",
                 (long long)q->n_quantized);
    return QF_OK;
  }
  const size_t n = q->host->model_tensor_count(model);
  int64_t modules = 0;
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    qf_status st = qf_host_tensor_at(q->host, model, i, &ti, err);
    if (st != QF_OK) return st;
    char prefix[QF_GPTQ_PREFIX_MAX];
    qf_tensor_info other;
    if (qf_gptq__prefix_of(ti.name, "qweight", prefix, sizeof prefix)) {
      qf_tensor_info mt[5];
      qf_gptq_module_tensors t;
      int64_t r, c, g;
      st = check_prefix(q, model, prefix, &r, &c, &g, &t, mt, err);
      if (st != QF_OK) return st;
      if (qf_gptq__find(q, model, prefix, "weight", &other))
        q->host->log(q->host, QF_LOG_WARN, NAME,
                     "module '%s' has both a float weight and GPTQ tensors; "
                     "the GPTQ tensors are used", prefix);
      modules++;
    } else if ((qf_gptq__prefix_of(ti.name, "qzeros", prefix, sizeof prefix) ||
                qf_gptq__prefix_of(ti.name, "g_idx", prefix, sizeof prefix)) &&
               !qf_gptq__find(q, model, prefix, "qweight", &other)) {
      return qf_fail(err, QF_ERR_FORMAT, NAME, "postprocess_model",
                     "tensor '%s' has no '%sqweight' beside it (a GPTQ module "
                     "needs qweight, qzeros and scales)", ti.name, prefix);
    }
  }
  if (!modules)
    return qf_fail(err, QF_ERR_FORMAT, NAME, "postprocess_model",
                   "the checkpoint has no GPTQ module (no tensor named "
                   "'<module>.qweight'): it is not a GPTQ checkpoint");
  q->host->log(q->host, QF_LOG_INFO, NAME,
               "loaded %lld GPTQ modules (%d-bit, group %d, %s zeros)",
               (long long)modules, q->cfg.bits, q->cfg.group_size,
               q->cfg.v2 ? "v2" : "v1");
  return QF_OK;
}

/* ------------------------------------------------------------ dequantize */

static qf_status load_ckpt(qf_quantizer *q, const qf_model *m,
                           const char *prefix, qf_gptq_ckpt *ck,
                           const DLTensor **bias, qf_tensor_info ti[5],
                           qf_error *err) {
  qf_gptq_module_tensors t;
  int64_t r, c, g;
  qf_status st = check_prefix(q, m, prefix, &r, &c, &g, &t, ti, err);
  if (st != QF_OK) return st;
  if (bias) *bias = t.bias;
  return qf_gptq_ckpt_from_tensors(&t, q->cfg.bits, q->cfg.group_size,
                                   q->cfg.v2, r, c, g, ck, err);
}

static int compact_f32(const DLTensor *t) {
  if (t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1)
    return 0;
  if (!t->strides) return 1;
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

qf_status qf_gptq__dequantize(qf_quantizer *q, const qf_model *model,
                              const char *name, DLTensor *out, qf_error *err) {
  char prefix[QF_GPTQ_PREFIX_MAX];
  if (!name || !qf_gptq__prefix_of(name, "weight", prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "dequantize",
                   "'%s' is not a weight name (expected '<module>.weight')",
                   name ? name : "(null)");
  qf_tensor_info probe;
  if (!qf_gptq__find(q, model, prefix, "qweight", &probe))
    return qf_fail(err, QF_ERR_NOT_FOUND, NAME, "dequantize",
                   "'%s' is not a GPTQ module: '%sqweight' is missing", name,
                   prefix);
  qf_gptq_ckpt ck;
  qf_tensor_info ti[5];
  qf_status st = load_ckpt(q, model, prefix, &ck, NULL, ti, err);
  if (st != QF_OK) return st;
  if (!out || !out->data || out->device.device_type != kDLCPU ||
      !compact_f32(out) || qf_numel(out) != ck.rows * ck.cols) {
    st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, "dequantize",
                 "output for '%s' must be a compact CPU float32 tensor of "
                 "[%lld, %lld]", name, (long long)ck.rows, (long long)ck.cols);
  } else {
    qf_gptq_dequant(&ck, (float *)((char *)out->data + out->byte_offset));
  }
  qf_gptq_ckpt_free(&ck);
  return st;
}

/* ------------------------------------------------------------ cache */

static void module_free(qf_gptq_module *e) {
  if (!e) return;
  qf_gptq_qmat_free(e->mat);
#if QF_GPTQ_GPU
  qf_gptq_gpu_free(e->gpu);
#endif
  free(e->prefix);
  free(e);
}

void qf_gptq__free_modules(qf_quantizer *q) {
  pthread_mutex_lock(&q->mu);
  qf_gptq_module *lists[2] = {q->modules, q->retired};
  q->modules = q->retired = NULL;
  pthread_mutex_unlock(&q->mu);
  for (int l = 0; l < 2; l++)
    for (qf_gptq_module *e = lists[l]; e;) {
      qf_gptq_module *nx = e->next;
      module_free(e);
      e = nx;
    }
}

void qf_gptq__invalidate(qf_quantizer *q, const char *prefix) {
  pthread_mutex_lock(&q->mu);
  for (qf_gptq_module **pp = &q->modules; *pp; pp = &(*pp)->next)
    if (!strcmp((*pp)->prefix, prefix)) {
      qf_gptq_module *e = *pp;
      *pp = e->next;
      e->next = q->retired; /* a forward may still hold it: free later */
      q->retired = e;
      break;
    }
  pthread_mutex_unlock(&q->mu);
}

static qf_status build_mat(qf_quantizer *q, const qf_model *m,
                           const char *prefix, qf_gptq_qmat **out,
                           qf_error *err) {
  qf_gptq_ckpt ck;
  const DLTensor *bias = NULL;
  qf_tensor_info ti[5];
  qf_status st = load_ckpt(q, m, prefix, &ck, &bias, ti, err);
  if (st != QF_OK) return st;
  const int64_t n = ck.rows, k = ck.cols, g = ck.ngroups;
  uint8_t *qi = malloc((size_t)n * (size_t)k);
  int32_t *zi = malloc((size_t)g * (size_t)n * sizeof(int32_t));
  float *zf = malloc((size_t)g * (size_t)n * sizeof(float));
  float *sf = malloc((size_t)g * (size_t)n * sizeof(float));
  float *bf = bias ? malloc((size_t)n * sizeof(float)) : NULL;
  if (!qi || !zi || !zf || !sf || (bias && !bf)) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "linear_forward",
                 "no memory to prepare '%s'", prefix);
  } else {
    qf_gptq_unpack_ints(&ck, qi);
    qf_gptq_unpack_zeros(&ck, zi);
    for (int64_t i = 0; i < g * n; i++) {
      zf[i] = (float)zi[i];
      sf[i] = qf_f16_to_f32(ck.scales[i]);
    }
    if (bias) qf_tensor_to_f32(bias, bf);
    qf_gptq_qmat_src src = {
        .bits = ck.bits, .rows = n, .cols = k, .ngroups = g, .q = qi,
        .q_stride_k = 1, .q_stride_n = k, .g_idx = ck.g_idx, .scales = sf,
        .zeros = zf, .bias = bf};
    st = qf_gptq_qmat_new(&src, out, err);
  }
  free(qi);
  free(zi);
  free(zf);
  free(sf);
  free(bf);
  qf_gptq_ckpt_free(&ck);
  return st;
}

/* The cached module for `prefix`, built on first use. */
static qf_status get_module(qf_quantizer *q, const qf_model *m,
                            const char *prefix, qf_gptq_module **out,
                            qf_error *err) {
  pthread_mutex_lock(&q->mu);
  for (qf_gptq_module *e = q->modules; e; e = e->next)
    if (!strcmp(e->prefix, prefix)) {
      *out = e;
      pthread_mutex_unlock(&q->mu);
      return QF_OK;
    }
  qf_gptq_module *e = calloc(1, sizeof *e);
  qf_status st = QF_OK;
  if (!e || !(e->prefix = strdup(prefix))) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "linear_forward", "no memory");
  } else {
    st = build_mat(q, m, prefix, &e->mat, err);
  }
  if (st != QF_OK) {
    module_free(e);
    pthread_mutex_unlock(&q->mu);
    return st;
  }
  e->next = q->modules;
  q->modules = e;
  *out = e;
  pthread_mutex_unlock(&q->mu);
  return QF_OK;
}

/* ------------------------------------------------------------ forward */

#if QF_GPTQ_GPU
/* Device copy of a module (under the mutex, on first GPU call). */
static qf_status ensure_gpu(qf_quantizer *q, const qf_model *m,
                            qf_gptq_module *e, int device, qf_error *err) {
  pthread_mutex_lock(&q->mu);
  qf_status st = QF_OK;
  if (!e->gpu) {
    qf_gptq_ckpt ck;
    const DLTensor *bias = NULL;
    qf_tensor_info ti[5];
    st = load_ckpt(q, m, e->prefix, &ck, &bias, ti, err);
    if (st == QF_OK) {
      int32_t *z = malloc((size_t)ck.ngroups * (size_t)ck.rows * sizeof(int32_t));
      float *bf = bias ? malloc((size_t)ck.rows * sizeof(float)) : NULL;
      char msg[512] = "";
      if (!z || (bias && !bf)) {
        st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "linear_forward", "no memory");
      } else {
        qf_gptq_unpack_zeros(&ck, z);
        if (bias) qf_tensor_to_f32(bias, bf);
        if (qf_gptq_gpu_upload(device, ck.bits, ck.rows, ck.cols, ck.ngroups,
                               ck.qweight, z, ck.scales, ck.g_idx, bf, &e->gpu,
                               msg, sizeof msg) != 0)
          st = qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward",
                       "uploading '%s' to the GPU failed: %s", e->prefix, msg);
      }
      free(z);
      free(bf);
      qf_gptq_ckpt_free(&ck);
    }
  }
  pthread_mutex_unlock(&q->mu);
  return st;
}

static qf_status forward_gpu(qf_quantizer *q, const qf_model *m,
                             qf_gptq_module *e, const float *x, int64_t mrows,
                             float *y, int device, qf_error *err) {
  const int64_t n = qf_gptq_qmat_rows(e->mat), k = qf_gptq_qmat_cols(e->mat);
  char msg[512] = "";
  if (q->cfg.bits == 4 || q->cfg.bits == 8) {
    qf_status st = ensure_gpu(q, m, e, device, err);
    if (st != QF_OK) return st;
    if (qf_gptq_gpu_forward(e->gpu, x, mrows, y, msg, sizeof msg) != 0)
      return qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward",
                     "GPU forward of '%s' failed: %s", e->prefix, msg);
    return QF_OK;
  }
  /* 2/3-bit: through the CPU kernel */
  float *hx = malloc((size_t)(mrows * k) * sizeof(float));
  float *hy = malloc((size_t)(mrows * n) * sizeof(float));
  qf_status st = QF_OK;
  if (!hx || !hy) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, NAME, "linear_forward", "no memory");
  } else if (qf_gptq_gpu_copy(hx, x, (size_t)(mrows * k) * 4, 0, msg, sizeof msg)) {
    st = qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward", "%s", msg);
  } else {
    st = qf_gptq_qmat_forward(e->mat, hx, mrows, hy,
                              q->host->n_threads(q->host), QF_GPTQ_ISA_AUTO,
                              err);
    if (st == QF_OK &&
        qf_gptq_gpu_copy(y, hy, (size_t)(mrows * n) * 4, 1, msg, sizeof msg))
      st = qf_fail(err, QF_ERR_ENVIRONMENT, NAME, "linear_forward", "%s", msg);
  }
  free(hx);
  free(hy);
  return st;
}
#endif

qf_status qf_gptq__linear_forward(qf_quantizer *q, const qf_model *model,
                                  const char *name, const DLTensor *x,
                                  DLTensor *y, qf_error *err) {
  const char *op = "linear_forward";
  char prefix[QF_GPTQ_PREFIX_MAX];
  if (!name || !qf_gptq__prefix_of(name, "weight", prefix, sizeof prefix))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "'%s' is not a weight name (expected '<module>.weight')",
                   name ? name : "(null)");
  if (!x || !y || !x->data || !y->data)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "x and y must be given for '%s'", name);
  qf_tensor_info probe;
  if (!qf_gptq__find(q, model, prefix, "qweight", &probe))
    return qf_fail(err, QF_ERR_NOT_FOUND, NAME, op,
                   "'%s' is not a GPTQ module: '%sqweight' is missing", name,
                   prefix);
  qf_gptq_module *e = NULL;
  qf_status st = get_module(q, model, prefix, &e, err);
  if (st != QF_OK) return st;
  const int64_t n = qf_gptq_qmat_rows(e->mat), k = qf_gptq_qmat_cols(e->mat);
  if (!compact_f32(x) || !compact_f32(y) || x->ndim < 1 || y->ndim < 1 ||
      x->shape[x->ndim - 1] != k || y->shape[y->ndim - 1] != n)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "'%s': x must be compact float32 [M, %lld] and y [M, %lld]",
                   name, (long long)k, (long long)n);
  const int64_t mrows = qf_numel(x) / k;
  if (qf_numel(y) != mrows * n)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "'%s': x has %lld rows but y has room for %lld", name,
                   (long long)mrows, (long long)(qf_numel(y) / n));
  if (x->device.device_type != y->device.device_type)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, NAME, op,
                   "'%s': x and y must be on the same device", name);
  const float *xp = (const float *)((const char *)x->data + x->byte_offset);
  float *yp = (float *)((char *)y->data + y->byte_offset);
  if (x->device.device_type == kDLCPU)
    return qf_gptq_qmat_forward(e->mat, xp, mrows, yp,
                                q->host->n_threads(q->host), QF_GPTQ_ISA_AUTO,
                                err);
#if QF_GPTQ_GPU
#if defined(QF_BUILD_HIP)
  if (x->device.device_type == kDLROCM)
#else
  if (x->device.device_type == kDLCUDA)
#endif
    return forward_gpu(q, model, e, xp, mrows, yp, x->device.device_id, err);
#endif
  return qf_fail(err, QF_ERR_UNSUPPORTED, NAME, op,
                 "'%s': tensors on device type %d are not served by this "
                 "build", name, (int)x->device.device_type);
}
