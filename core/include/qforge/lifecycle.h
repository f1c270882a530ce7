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
  char *side_files_json;      /* get_side_files_json() result, or NULL */
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
  /* Order of the per-tensor loop: n_order input indices (NULL = checkpoint
   * order). Calibrated quantization passes the forward order. */
  const size_t *order;
  size_t n_order;
  /* Called after each tensor of the loop with the live session; a non-OK
   * return stops the run. `quantized` says whether create_quantized_param
   * ran for it. May be NULL. */
  qf_status (*after_tensor)(void *user, qf_session *s, qf_model *model,
                            const char *name, int quantized, qf_error *err);
} qf_run_options;

/* Quantize path: every input tensor is either passed through (emitted
 * unchanged) or quantized by the plugin. Load path: missing/unexpected keys
 * negotiated, tensors kept as they are. On success *out holds the live
 * session (postprocess_model done), ready for dequantize/linear_forward. */
QF_API qf_status qf_run_lifecycle(qf_plugin *plugin, qf_model *model,
                                  const qf_run_options *opt, qf_session **out,
                                  qf_error *err);
QF_API void qf_session_free(qf_session *s);

/* Container formats (ABI 1.1; GGUF). The lifecycle around a container
 * operation: create → validate_environment → (export with a model:
 * preprocess_model) → the container slot → destroy. */
typedef enum qf_container_op {
  QF_CONTAINER_EXPORT = 1,   /* model (or config's source file) → out_path */
  QF_CONTAINER_IMPORT = 2,   /* in_path → model (HF tensors + config) */
  QF_CONTAINER_DESCRIBE = 3  /* in_path → JSON text in *describe_json */
} qf_container_op;

/* `model` may be NULL for EXPORT when the config names its own source.
 * *describe_json (DESCRIBE) is malloc'ed; the caller frees it. */
QF_API qf_status qf_run_container(qf_plugin *plugin, qf_container_op op,
                                  const char *config_json, qf_model *model,
                                  const char *in_path, const char *out_path,
                                  char **describe_json, qf_error *err);
/* Convert a pre-quantized checkpoint to another scheme's layout (ABI 1.1
 * convert_format; AWQ → GPTQ): the load lifecycle runs on `in`, then the
 * plugin emits the new checkpoint into `out` (give it a sink to stream).
 * *config_out (malloc'ed) is the new quantization_config. */
QF_API qf_status qf_run_convert_format(qf_plugin *plugin, const char *config_json,
                                       qf_model *in, const char *target, qf_model *out,
                                       char **config_out, qf_error *err);

/* Does `plugin` own files named like `path` (by extension)? */
QF_API int qf_plugin_owns_file(const qf_plugin *plugin, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_LIFECYCLE_H */
