/*
 * gguf_gpu.h — the GPU side of the GGUF plugin (kernels/gguf_gpu.cu, one
 * CUDA-dialect source built by nvcc for gguf-cuda.so and by hipcc for
 * gguf-hip.so): dequantization and matrix-vector / small-batch matmul of
 * ggml weight rows for F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q5_K and Q6_K.
 * Weights are uploaded once per host buffer and kept in a per-quantizer
 * cache. Every function returns 0 on success or -1 with `msg` filled; none
 * aborts. Type ids are ggml's.
 */
#ifndef QF_GGUF_GPU_H
#define QF_GGUF_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_gguf_gpu_cache qf_gguf_gpu_cache;

/* Devices visible to the runtime (0 when the runtime or device is missing). */
int qf_gguf_gpu_device_count(void);
/* 1 when `type` has GPU kernels. */
int qf_gguf_gpu_supports(int type);

/* A cache of device copies of weight buffers, owned by the caller. */
qf_gguf_gpu_cache *qf_gguf_gpu_cache_new(void);
void qf_gguf_gpu_cache_free(qf_gguf_gpu_cache *c); /* NULL is ignored */

/* Copy n bytes between host and device (to_device = 1: host -> device). */
int qf_gguf_gpu_memcpy(void *dst, const void *src, size_t n, int to_device, char *msg,
                       size_t msg_size);

/* y[M, N] = x[M, K] · Wᵀ (+ bias[N], a host array or NULL) for W = N rows of
 * `type` (w_bytes bytes at host address w). x / y live on the device when the
 * *_on_device flags say so, else in host memory. */
int qf_gguf_gpu_linear(qf_gguf_gpu_cache *c, int type, const void *w, size_t w_bytes, int64_t N,
                       int64_t K, const float *x, int x_on_device, int64_t M, float *y,
                       int y_on_device, const float *bias, char *msg, size_t msg_size);

/* out (host, N × K floats) = dequantized W. */
int qf_gguf_gpu_dequantize(qf_gguf_gpu_cache *c, int type, const void *w, size_t w_bytes, int64_t N,
                           int64_t K, float *out, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif /* QF_GGUF_GPU_H */
