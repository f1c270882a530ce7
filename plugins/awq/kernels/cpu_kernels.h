/*
 * 4-bit AWQ linear forward on the CPU through the shared integer kernels
 * (plugins/common/intq/intq.h, also used by GPTQ): a module in the AWQ GEMM
 * layout (qweight [K, N/8] interleaved words, per-group zeros and scales
 * unpacked once, qf_awq_cpu_weights) is repacked once into the shared
 * kernel's layout with true zero points (W = scale · (q − zero), exactly
 * AWQ's dequantization), and y = x · Wᵀ (+ bias) then runs on
 * qf_intq_qmat_forward: fused dequantize + GEMV for batch 1 (scalar and
 * AVX2 give the same bytes; any thread count gives the same bytes), tiled
 * dequantize + cblas_sgemm for larger batches.
 */
#ifndef QF_AWQ_CPU_KERNELS_H
#define QF_AWQ_CPU_KERNELS_H

#include <stdint.h>

#include "intq.h"
#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A module in the AWQ GEMM layout, all arrays borrowed. */
typedef struct qf_awq_cpu_weights {
  const int32_t *qweight; /* [k, n/8] AWQ GEMM words */
  const int32_t *zeros;   /* [k/g, n] zero points, natural column order */
  const float *scales;    /* [k/g, n] float32 */
  const float *bias;      /* [n] or NULL */
  int64_t n, k, g;        /* n % 8 == 0, k % g == 0 */
} qf_awq_cpu_weights;

/* Unpack GEMM qzeros [k/g, n/8] into zeros [k/g, n] (caller-owned). */
void qf_awq_cpu_unpack_zeros(const int32_t *qzeros, int64_t n, int64_t k,
                             int64_t g, int32_t *zeros);

/* Repack w (only read during the call) into the shared kernel layout. On
 * success *out is owned by the caller (free with qf_intq_qmat_free) and is
 * used with qf_intq_qmat_forward. QF_ERR_INVALID_ARGUMENT on bad shapes or
 * zero points outside 0..15, QF_ERR_NO_MEMORY; errors name plugin "awq". */
qf_status qf_awq_cpu_prepare(const qf_awq_cpu_weights *w, qf_intq_qmat **out,
                             qf_error *err);

#ifdef __cplusplus
}
#endif

#endif /* QF_AWQ_CPU_KERNELS_H */
