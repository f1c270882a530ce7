/*
 * Shared CPU kernels (static library qf_intq_kernels, linked by the GPTQ and
 * AWQ plugins) for group-quantized integer weights, i.e. any scheme of the
 * form W[n][k] = scale[g(k)][n] · (q[k][n] − zero[g(k)][n]):
 * y = x · Wᵀ (+ bias). The caller hands over plain unpacked integers
 * (any strides), per-group float scales and true zero points and a group
 * index per input column; qf_intq_qmat_new repacks them once into the
 * kernel's own tiled layout (inputs reordered by group, as act_order needs,
 * so activations are permuted once per call). Batch 1 runs a fused
 * dequantize + GEMV; larger batches dequantize tiles and call cblas_sgemm.
 * The scalar and AVX2 paths (chosen at run time) produce identical bytes;
 * work is split over pthreads by output columns. Thread-safe: a prepared
 * matrix is read-only and may be used from several threads at once.
 */
#ifndef QF_INTQ_H
#define QF_INTQ_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/plugin.h"

typedef enum qf_intq_isa {
  QF_INTQ_ISA_AUTO = 0,   /* best available at run time */
  QF_INTQ_ISA_SCALAR = 1, /* portable reference */
  QF_INTQ_ISA_AVX2 = 2    /* x86-64 AVX2 (falls back to scalar if absent) */
} qf_intq_isa;

/* The unpacked source of a quantized matrix (all borrowed for the call). */
typedef struct qf_intq_qmat_src {
  int bits;                  /* 1..8: width of the integers */
  int64_t rows;              /* N: outputs */
  int64_t cols;              /* K: inputs */
  int64_t ngroups;
  const uint8_t *q;          /* integer of (input k, output n) at */
  int64_t q_stride_k;        /*   q[k * q_stride_k + n * q_stride_n] */
  int64_t q_stride_n;
  const int32_t *g_idx;      /* [cols] group of each input (0..ngroups-1);
                                NULL: input k is in group k / ceil(cols /
                                ngroups) (contiguous groups) */
  const float *scales;       /* [ngroups][rows] */
  const float *zeros;        /* [ngroups][rows] true zero points */
  const float *bias;         /* [rows] or NULL */
  const char *plugin;        /* name reported in errors (a string that
                                outlives the matrix); NULL: "intq" */
} qf_intq_qmat_src;

typedef struct qf_intq_qmat qf_intq_qmat;

/* Prepare a matrix. On success *out is owned by the caller (free with
 * qf_intq_qmat_free). Errors: bad shapes, integers wider than `bits`,
 * g_idx out of range (INVALID_ARGUMENT), allocation (NO_MEMORY). */
qf_status qf_intq_qmat_new(const qf_intq_qmat_src *src, qf_intq_qmat **out,
                           qf_error *err);
void qf_intq_qmat_free(qf_intq_qmat *m);

/* Bytes held by a prepared matrix. */
size_t qf_intq_qmat_bytes(const qf_intq_qmat *m);
int64_t qf_intq_qmat_rows(const qf_intq_qmat *m);
int64_t qf_intq_qmat_cols(const qf_intq_qmat *m);

/* y[m_rows][N] = x[m_rows][K] · Wᵀ (+ bias). x and y are caller-owned,
 * compact row-major f32. n_threads >= 1. Batch 1 (and up to 3 rows) uses
 * the fused GEMV, larger batches the dequantize + sgemm path. */
qf_status qf_intq_qmat_forward(const qf_intq_qmat *m, const float *x,
                               int64_t m_rows, float *y, int n_threads,
                               qf_intq_isa isa, qf_error *err);

/* The dequantized weight w[N][K] (original input order, float32). */
void qf_intq_qmat_dequant(const qf_intq_qmat *m, float *w);

/* 1 if the CPU runs AVX2 (and the build has the path). */
int qf_intq_cpu_has_avx2(void);

#endif /* QF_INTQ_H */
