/*
 * A model ready to run, quantized or not: an HF folder opened for inference
 * through the runtime, with every quantized linear routed to its plugin's
 * linear_forward (on the build the backend choice picked) — so a quantized
 * model runs through the plugins' kernels, not through a dequantized copy.
 * Used by `qforge eval` and `qforge demo`.
 */
#ifndef QFORGE_QMODEL_H
#define QFORGE_QMODEL_H

#include "qforge/lifecycle.h"
#include "qforge/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

typedef struct qf_qmodel qf_qmodel;

/* Open `dir`. Without quantization_config in config.json it is a float
 * model. With one, the scheme serving its quant_method is loaded from the
 * registry (`registry` may be NULL: the search order), the pre-quantized
 * lifecycle runs, and the runtime's linear hook calls the plugin. */
QF_API qf_status qf_qmodel_open(const char *dir, const char *registry,
                                qf_backend_choice backend,
                                const qf_rt_options *opt, qf_qmodel **out,
                                qf_error *err);
QF_API void qf_qmodel_free(qf_qmodel *m);
/* Borrowed; live as long as the qmodel. */
QF_API qf_rt_model *qf_qmodel_runtime(qf_qmodel *m);
/* The plugin serving it, NULL for a float model. */
QF_API const qf_plugin *qf_qmodel_plugin(const qf_qmodel *m);
/* Bytes of the checkpoint's tensors. */
QF_API uint64_t qf_qmodel_bytes(const qf_qmodel *m);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_QMODEL_H */
