/*
 * The host's calibration handle. `qf_calib` is opaque to plugins; inside
 * libqforge it is a small object with an operations table, so several
 * providers can stand behind it: static arrays (raw mode, tests — see
 * calib_static.c) and the model runtime's sequential capture
 * (core/model/calib_capture.c).
 */
#ifndef QF_CALIB_INTERNAL_H
#define QF_CALIB_INTERNAL_H

#include "qforge/plugin.h"

typedef struct qf__calib_ops {
  /* See qf_host.calib_hessian / calib_importance in plugin.h. */
  qf_status (*hessian)(void *impl, const char *name, const float **h,
                       int64_t *k, qf_error *err);
  qf_status (*importance)(void *impl, const char *name, const float **v,
                          int64_t *k, qf_error *err);
  void (*destroy)(void *impl);
  /* Since ABI 1.1 (may be NULL for providers without a model). */
  qf_status (*inputs)(void *impl, const char *name, const float **x,
                      int64_t *tokens, int64_t *k, qf_error *err);
  qf_status (*block_forward)(void *impl, const char *name,
                             const char *const *names, const DLTensor *weights,
                             size_t n, float *out, qf_error *err);
  qf_status (*block_shape)(void *impl, const char *name, int64_t *tokens,
                           int64_t *hidden, qf_error *err);
  /* See qf_host.calib_part_forward (part is a QF_CALIB_PART_*). */
  qf_status (*part_forward)(void *impl, const char *name, int part,
                            const char *const *names, const DLTensor *weights,
                            size_t n, float *out, qf_error *err);
} qf__calib_ops;

struct qf_calib {
  const qf__calib_ops *ops;
  void *impl;
};

/* Wrap a provider (takes ownership of impl; ops->destroy frees it). */
qf_calib *qf__calib_wrap(const qf__calib_ops *ops, void *impl);

#endif /* QF_CALIB_INTERNAL_H */
