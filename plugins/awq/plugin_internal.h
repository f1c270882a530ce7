/*
 * Shared state of the AWQ plugin's ABI glue, split over three files:
 * plugin.c (lifecycle table, descriptor, entry points), plugin_calib.c
 * (quantizing a linear or a whole decoder block with the host's
 * calibration) and plugin_forward.c (dequantize, prepared kernel state,
 * linear_forward on CPU / GPU). Internal to the plugin .so: names are
 * qf__awq_*, nothing here is exported.
 */
#ifndef QF_AWQ_PLUGIN_INTERNAL_H
#define QF_AWQ_PLUGIN_INTERNAL_H

#include <pthread.h>

#include "awq.h"
#include "kernels/cpu_kernels.h"
#include "qforge/plugin.h"
#include "qforge/plugin_util.h"

#if defined(QF_BUILD_CUDA) || defined(QF_BUILD_HIP)
#define QF_AWQ_GPU 1
#else
#define QF_AWQ_GPU 0
#endif

#define QF_AWQ_PLUGIN "awq"
#define QF_AWQ_NAME_MAX 1024

#define QF_AWQ_LOG(q, lvl, ...)                                                 \
  do {                                                                          \
    if ((q)->host && (q)->host->log)                                            \
      (q)->host->log((q)->host, lvl, QF_AWQ_PLUGIN, __VA_ARGS__);               \
  } while (0)

/* Kernel state of one quantized module (see plugin_forward.c). */
typedef struct qf__awq_prepared {
  struct qf__awq_prepared *next;
  const qf_model *model;
  char prefix[QF_AWQ_NAME_MAX];
  const void *qweight_addr; /* identity of the checkpoint tensor */
  int32_t *qweight_own;     /* GEMV or misaligned checkpoints: own GEMM words */
  int32_t *zeros;
  float *scales;
  float *bias;
  qf_awq_cpu_weights w;
  qf_intq_qmat *qmat;       /* shared CPU kernel layout, built on first CPU use */
  void *gpu_buf[4];         /* device copies: qweight, zeros, scales, bias */
  int gpu_device;           /* -1 = not uploaded */
} qf__awq_prepared;

struct qf_quantizer {
  const qf_host *host;
  qf_awq_config cfg;
  int pre_quantized;
  pthread_mutex_t lock; /* everything below */
  char **skipped;       /* modules kept float because their shape does not fit */
  size_t n_skipped;
  char **blocks_done;   /* block prefixes whose tensors were all emitted */
  size_t n_blocks_done;
  qf__awq_prepared *cache;
  int logged_rtn;
};

/* ---- plugin.c */

/* "<prefix>weight" with prefix "" or ending in '.': 1 and the prefix. */
int qf__awq_weight_prefix(const char *name, char *prefix, size_t size);
/* Is the float tensor `name` a linear weight this quantizer turns into an
 * AWQ module? (Not for pre-quantized loads.) */
int qf__awq_wants(qf_quantizer *q, const qf_model *model, const char *name);
/* model_find_tensor of prefix + leaf. */
qf_status qf__awq_find(const qf_quantizer *q, const qf_model *model,
                       const char *prefix, const char *leaf,
                       qf_tensor_info *out, qf_error *err);
/* Find and validate the tensors of the module at `prefix` (t[0..3] =
 * qweight, qzeros, scales, bias; bias data NULL when absent). */
qf_status qf__awq_load_module(qf_quantizer *q, const qf_model *model,
                              const char *prefix, const char *op,
                              qf_tensor_info t[4], qf_awq_module_shape *shape,
                              qf_error *err);

/* ---- plugin_calib.c */

/* If `name` is a tensor of a Llama-family decoder block, write the block
 * prefix ("….layers.N.") and return 1. */
int qf__awq_block_prefix(const char *name, char *prefix, size_t size);
/* Norm / bias tensors AWQ rescales inside a block (claimed so that the
 * scaled versions replace them). */
int qf__awq_block_aux(const char *name);
/* Quantize the float weight w [n, k] (modified) and emit
 * <prefix>qweight / qzeros / scales in the configured layout. */
qf_status qf__awq_emit_linear(qf_quantizer *q, qf_model *model,
                              const char *prefix, float *w, int64_t n,
                              int64_t k, const char *op, qf_error *err);
/* Clip search for one linear from whatever the calibration offers
 * (captured inputs, else a Hessian); *done = 0 when it offers nothing. */
qf_status qf__awq_clip_linear(qf_quantizer *q, const char *name, float *w,
                              int64_t n, int64_t k, qf_calib *calib, int *done,
                              qf_error *err);
/* Run AWQ over the block at `bprefix` with the host's block calibration
 * (ABI 1.1) and emit all its tensors. *ran = 0 (and QF_OK) when the block
 * or the calibration does not allow it; the caller then falls back to
 * per-tensor quantization. */
qf_status qf__awq_run_block(qf_quantizer *q, qf_model *model,
                            const char *bprefix, qf_calib *calib, int *ran,
                            qf_error *err);
/* Block bookkeeping (under q->lock). */
int qf__awq_block_is_done(qf_quantizer *q, const char *bprefix);
void qf__awq_block_mark_done(qf_quantizer *q, const char *bprefix);

/* ---- plugin_forward.c */

/* convert_gptq.c: the convert_format slot (AWQ GEMM → GPTQ). */
qf_status qf__awq_convert_format(qf_quantizer *q, const qf_model *in, qf_model *out,
                                 const char *target, char **out_config_json, qf_error *err);

qf_status qf__awq_dequantize(qf_quantizer *q, const qf_model *model,
                             const char *name, DLTensor *out, qf_error *err);
qf_status qf__awq_linear_forward(qf_quantizer *q, const qf_model *model,
                                 const char *name, const DLTensor *x,
                                 DLTensor *y, qf_error *err);
void qf__awq_cache_free(qf_quantizer *q);

#endif /* QF_AWQ_PLUGIN_INTERNAL_H */
