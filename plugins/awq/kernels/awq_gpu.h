/*
 * C interface of the AWQ GPU kernels (kernels/awq_gemm.cu), compiled by
 * nvcc for the CUDA build and by hipcc for the HIP build. plugin.c calls
 * these only in GPU builds (QF_BUILD_CUDA / QF_BUILD_HIP). All functions
 * return 0 on success and a non-zero value with `msg` filled on failure;
 * none aborts. Device pointers are owned by the caller of
 * qf_awq_gpu_upload, who releases them with qf_awq_gpu_free.
 */
#ifndef QF_AWQ_GPU_H
#define QF_AWQ_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(QF_BUILD_HIP)
#define QF_AWQ_GPU_DEVICE kDLROCM
#else
#define QF_AWQ_GPU_DEVICE kDLCUDA
#endif

/* Devices visible to this build's runtime; 0 when none or no runtime. */
int qf_awq_gpu_device_count(void);

/* Copy `bytes` of host memory to a new allocation on `device`. */
int qf_awq_gpu_upload(int device, const void *host, size_t bytes, void **dev,
                      char *msg, size_t msg_size);

/* Free memory from qf_awq_gpu_upload (NULL is a no-op). */
void qf_awq_gpu_free(void *dev);

/* y [m, n] = x [m, k] · Wᵀ (+ bias) on `device`; every pointer is device
 * memory: qweight [k, n/8] AWQ GEMM words, zeros [k/g, n] int32 (natural
 * order), scales [k/g, n] float32, bias [n] or NULL. Synchronous. */
int qf_awq_gpu_linear(int device, const int32_t *qweight, const int32_t *zeros,
                      const float *scales, const float *bias, int64_t n,
                      int64_t k, int64_t g, const float *x, int64_t m,
                      float *y, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif /* QF_AWQ_GPU_H */
