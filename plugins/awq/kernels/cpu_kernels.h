/*
 * 4-bit AWQ linear forward on the CPU: y = x · Wᵀ (+ bias) straight from the
 * GEMM layout (qweight [K, N/8] interleaved words), with per-group zeros and
 * scales unpacked once per module (qf_awq_cpu_weights).
 *
 *  - batch 1: fused dequantize + GEMV. Per output column the arithmetic is
 *    fixed: for each group, part = Σ_k x[k]·(float)(q - z) in k order, then
 *    acc += part · scale. The scalar reference and the AVX2 kernel perform
 *    exactly these IEEE operations per column (no FMA, no reassociation), so
 *    they produce the same bytes.
 *  - batch > 1: dequantize a tile of columns to float32 ((q - z)·scale, exact
 *    in float32) and multiply with cblas_sgemm.
 * The AVX2 paths are chosen at run time (qf_awq_cpu_has_avx2).
 */
#ifndef QF_AWQ_CPU_KERNELS_H
#define QF_AWQ_CPU_KERNELS_H

#include <stdint.h>

#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A prepared module, all arrays borrowed. */
typedef struct qf_awq_cpu_weights {
  const int32_t *qweight; /* [k, n/8] AWQ GEMM words */
  const int32_t *zeros;   /* [k/g, n] zero points, natural column order */
  const float *scales;    /* [k/g, n] float32 */
  const float *bias;      /* [n] or NULL */
  int64_t n, k, g;        /* n % 8 == 0, k % g == 0 */
} qf_awq_cpu_weights;

typedef enum qf_awq_isa {
  QF_AWQ_ISA_AUTO = 0,
  QF_AWQ_ISA_SCALAR = 1,
  QF_AWQ_ISA_AVX2 = 2
} qf_awq_isa;

/* 1 when the running CPU (and this build) can use the AVX2 kernels. */
int qf_awq_cpu_has_avx2(void);

/* Unpack GEMM qzeros [k/g, n/8] into zeros [k/g, n] (caller-owned). */
void qf_awq_cpu_unpack_zeros(const int32_t *qzeros, int64_t n, int64_t k,
                             int64_t g, int32_t *zeros);

/* y[n0 … n1) for one input row x [k] (n0, n1 multiples of 8). Bias added. */
void qf_awq_gemv_scalar(const qf_awq_cpu_weights *w, const float *x, float *y,
                        int64_t n0, int64_t n1);
void qf_awq_gemv_avx2(const qf_awq_cpu_weights *w, const float *x, float *y,
                      int64_t n0, int64_t n1);

/* tile [k, nt] (row stride nt) = dequantized Wᵀ columns n0 … n0+nt-1. */
void qf_awq_dequant_tile_scalar(const qf_awq_cpu_weights *w, int64_t n0,
                                int64_t nt, float *tile);
void qf_awq_dequant_tile_avx2(const qf_awq_cpu_weights *w, int64_t n0,
                              int64_t nt, float *tile);

/* y [m, n] = x [m, k] · Wᵀ (+ bias). x and y caller-owned, compact.
 * n_threads (>= 1) bounds the threads used for the batch-1 kernel; the
 * batch > 1 path leaves threading to OpenBLAS. QF_ERR_NO_MEMORY if a tile
 * cannot be allocated, QF_ERR_INVALID_ARGUMENT on bad shapes. */
qf_status qf_awq_cpu_linear(const qf_awq_cpu_weights *w, const float *x,
                            int64_t m, float *y, int n_threads, qf_awq_isa isa);

#ifdef __cplusplus
}
#endif

#endif /* QF_AWQ_CPU_KERNELS_H */
