/*
 * The lifecycle driver: runs a plugin over a model in the order transformers'
 * from_pretrained uses, for both paths — quantizing a float checkpoint and
 * loading a pre-quantized one. See lifecycle.c for the order, written out
 * step by step.
 */
#ifndef QFORGE_LIFECYCLE_H
#define QFORGE_LIFECYCLE_H

#include "qforge/loader.h"
#include "qforge/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

/* A live quantizer: the plugin build plus the object its create() made. */
typedef struct qf_session {
  qf_plugin *plugin;          /* borrowed */
  qf_quantizer *q;            /* owned; destroyed by qf_session_free */
  int pre_quantized;
  char *config_json;          /* get_config_json() result after the run */
} qf_session;

typedef struct qf_run_options {
  size_t struct_size;
  int pre_quantized;          /* 1 = load path, 0 = quantize path */
  const char *config_json;    /* quantization_config text */
  qf_calib *calib;            /* NULL for zero-shot schemes */
  DLDataType dtype;           /* requested load dtype (bits 0 = none) */
  const char *device_map_json;/* NULL = {"": "cpu"} */
  /* Called after each tensor (progress); may be NULL. */
  void (*on_tensor)(void *user, size_t done, size_t total, const char *name);
  void *user;
} qf_run_options;

/* Quantize path: every input tensor is either passed through (emitted
 * unchanged) or quantized by the plugin. Load path: missing/unexpected keys
 * negotiated, tensors kept as they are. On success *out holds the live
 * session (postprocess_model done), ready for dequantize/linear_forward. */
QF_API qf_status qf_run_lifecycle(qf_plugin *plugin, qf_model *model,
                                  const qf_run_options *opt, qf_session **out,
                                  qf_error *err);
QF_API void qf_session_free(qf_session *s);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_LIFECYCLE_H */
