/*
 * The host-side model object handed to plugins as `qf_model *`: an input
 * checkpoint (read-only, mmap'ed tensors and config.json) plus the tensors a
 * plugin emits with model_put_tensor. Emitted tensors are either kept in
 * memory (for later find_tensor / linear_forward) or streamed to a writer
 * callback and dropped (quantize-to-disk keeps memory bounded).
 */
#ifndef QFORGE_MODEL_H
#define QFORGE_MODEL_H

#include "qforge/plugin.h"
#include "qforge/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

/* Called for every emitted tensor when streaming (see qf_model_set_sink).
 * The tensor is borrowed for the call. */
typedef qf_status (*qf_model_sink_fn)(void *user, const char *name,
                                      const DLTensor *t, qf_error *err);

/* A model over an opened checkpoint (borrowed; must outlive the model). */
QF_API qf_status qf_model_new(const qf_checkpoint *ckpt, qf_model **out,
                              qf_error *err);
/* A model with no checkpoint: config text and tensors added by the caller
 * (raw mode, tests). `config_json` is copied; may be NULL ("{}"). */
QF_API qf_status qf_model_new_empty(const char *config_json, qf_model **out,
                                    qf_error *err);
QF_API void qf_model_free(qf_model *m);
/* Add an input tensor that aliases caller memory (must outlive the model). */
QF_API qf_status qf_model_add_input(qf_model *m, const char *name,
                                    const DLTensor *t, qf_error *err);
/* Stream emitted tensors to `fn` instead of keeping them (NULL: keep). */
QF_API void qf_model_set_sink(qf_model *m, qf_model_sink_fn fn, void *user);

/* Emitted (output) tensors kept in memory, in emission order. */
QF_API size_t qf_model_output_count(const qf_model *m);
QF_API const qf_tensor_info *qf_model_output_at(const qf_model *m, size_t i);
/* Drop every kept output (e.g. after writing them). */
QF_API void qf_model_clear_outputs(qf_model *m);

/* Input tensor lookup (host side). */
QF_API size_t qf_model_input_count(const qf_model *m);
QF_API qf_status qf_model_input_at(const qf_model *m, size_t i,
                                   qf_tensor_info *out, qf_error *err);
QF_API const char *qf_model_config(const qf_model *m);

/* Calibration data for raw mode and tests: a Hessian or importance vector
 * per tensor name (arrays aliased, must outlive the calib). Name "*"
 * matches any tensor. */
QF_API qf_calib *qf_calib_new_static(void);
QF_API qf_status qf_calib_static_set_hessian(qf_calib *c, const char *name,
                                             const float *h, int64_t k);
QF_API qf_status qf_calib_static_set_importance(qf_calib *c, const char *name,
                                                const float *v, int64_t k);
QF_API void qf_calib_free(qf_calib *c);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_MODEL_H */
