/*
 * cpu_kernels.h — the GGUF plugin's CPU linear layer: y = x · Wᵀ for a
 * weight stored as rows of ggml blocks, computed as ggml's CPU backend does
 * (spec gguf_ggml.md §4): every activation row is quantized to the weight
 * type's dot partner (Q8_0, Q8_1, Q8_K, or cast to F16 / BF16 / kept F32),
 * then each output is one vec_dot of a weight row with an activation row.
 * Output rows are split over POSIX threads. The AVX2 dot kernels (picked at
 * run time; QF_FORCE_SCALAR=1 forces the scalar reference) compute the
 * integer block sums with SIMD and repeat the reference's float operations
 * in the same order, so both paths give the same bits.
 */
#ifndef QF_GGUF_CPU_KERNELS_H
#define QF_GGUF_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ISA of the dot kernels: the values of qf_gguf_quants' enum qf_gguf_isa. */
#define QF_GGUF_CPU_SCALAR 1
#define QF_GGUF_CPU_AVX2 2

/* AUTO resolution: AVX2 (+F16C) when the CPU has it and QF_FORCE_SCALAR is
 * not set to a non-zero value; else scalar. Cached after the first call. */
int qf_gguf_cpu_isa(void);
/* 1 when this build and CPU can run the AVX2 kernels. */
int qf_gguf_cpu_avx2_supported(void);

/* Bytes of one activation row of K values for weight type `type` (its
 * vec_dot_type), 0 if the type has no dot product or K does not fit. */
size_t qf_gguf_act_row_size(int type, int64_t K);
/* Quantize one activation row for weight type `type` into `out`. 0 / -1. */
int qf_gguf_act_quantize(int type, const float *x, void *out, int64_t K);

/* One dot product of a weight row and a quantized activation row with the
 * given ISA. 0 on success, -1 for an unsupported type. */
int qf_gguf_cpu_dot(int type, int isa, int64_t K, const void *w_row, const void *act_row,
                    float *out);
/* The AVX2 kernels: 0 and *out set when `type` has one, -1 otherwise
 * (callers then use the scalar reference). */
int qf_gguf_dot_avx2(int type, int n, const void *x, const void *y, float *out);
/* Eight weight rows (x, x + row_stride, ...) against one activation row:
 * out[r] gets exactly qf_gguf_dot_avx2's (and the reference's) bits for row
 * r. 0, or -1 when `type` has no eight-row kernel (use qf_gguf_cpu_dot). */
int qf_gguf_dot_avx2_x8(int type, int n, const void *x, size_t row_stride, const void *y,
                        float out[8]);

/* y[M, N] = x[M, K] · Wᵀ, W = N rows of ggml `type` (row_size bytes each),
 * on n_threads threads with the given ISA (0 = auto). Every buffer is
 * caller-owned. Returns 0, or -1 for an unsupported type / shape or when out
 * of memory. */
int qf_gguf_cpu_linear(int type, const void *w, int64_t N, int64_t K, const float *x, int64_t M,
                       float *y, int n_threads, int isa);

#endif /* QF_GGUF_CPU_KERNELS_H */
