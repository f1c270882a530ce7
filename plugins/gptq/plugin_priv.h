/*
 * Private state of the GPTQ plugin shared by plugin.c (descriptor and
 * lifecycle slots) and plugin_modules.c (pre-quantized modules: key
 * negotiation, validation, dequantize, the per-module cache of prepared
 * kernels and linear_forward). Only sdk headers and the plugin's own core
 * are included.
 */
#ifndef QF_GPTQ_PLUGIN_PRIV_H
#define QF_GPTQ_PLUGIN_PRIV_H

#include <pthread.h>

#include "gptq.h"
#include "int_gemv.h"
#include "qforge/plugin.h"

#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
#define QF_GPTQ_GPU 1
#include "gpu_api.h"
#else
#define QF_GPTQ_GPU 0
#endif

#define QF_GPTQ_PREFIX_MAX 512

/* A module prepared for linear_forward. */
typedef struct qf_gptq_module {
  char *prefix;
  qf_gptq_qmat *mat;      /* CPU kernel layout */
#if QF_GPTQ_GPU
  qf_gptq_gpu_mat *gpu;   /* device copy, built on first GPU call */
#endif
  struct qf_gptq_module *next;
} qf_gptq_module;

struct qf_quantizer {
  const qf_host *host;
  qf_gptq_config cfg;
  int pre_quantized;
  int warned_v1_zero;
  int64_t n_quantized;
  pthread_mutex_t mu;     /* guards `modules` and `retired` */
  qf_gptq_module *modules;
  qf_gptq_module *retired; /* invalidated entries, freed at destroy */
};

/* "a.b.weight" → "a.b." (1) ; "weight" → "" (1); other → 0. */
int qf_gptq__prefix_of(const char *name, const char *suffix, char *prefix,
                       size_t n);
/* Look up prefix + leaf; returns 1 and fills *ti if present. */
int qf_gptq__find(const qf_quantizer *q, const qf_model *m,
                  const char *prefix, const char *leaf, qf_tensor_info *ti);
/* Gather the tensors of one module (pointers into `ti`, 5 entries). */
void qf_gptq__module_tensors(const qf_quantizer *q, const qf_model *m,
                             const char *prefix, qf_tensor_info ti[5],
                             qf_gptq_module_tensors *t);
/* Drop the prepared state of a module (after it was re-emitted). */
void qf_gptq__invalidate(qf_quantizer *q, const char *prefix);
void qf_gptq__free_modules(qf_quantizer *q);

/* Slots implemented in plugin_modules.c. */
qf_status qf_gptq__update_missing_keys(qf_quantizer *q, const qf_model *model,
                                       const char *const *keys, size_t n,
                                       uint8_t *keep, qf_error *err);
qf_status qf_gptq__update_unexpected_keys(qf_quantizer *q,
                                          const qf_model *model,
                                          const char *const *keys, size_t n,
                                          uint8_t *keep, qf_error *err);
qf_status qf_gptq__postprocess_model(qf_quantizer *q, qf_model *model,
                                     qf_error *err);
qf_status qf_gptq__dequantize(qf_quantizer *q, const qf_model *model,
                              const char *name, DLTensor *out, qf_error *err);
qf_status qf_gptq__linear_forward(qf_quantizer *q, const qf_model *model,
                                  const char *name, const DLTensor *x,
                                  DLTensor *y, qf_error *err);

#endif /* QF_GPTQ_PLUGIN_PRIV_H */
