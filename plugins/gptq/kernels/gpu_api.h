/*
 * C interface of the GPU kernels (gptq_gpu.cu, compiled by nvcc for CUDA
 * and by hipcc for HIP): device discovery, uploading one GPTQ module, the
 * 4-bit / 8-bit GEMV and small-batch GEMM on device pointers, and device
 * copies for the plugin's fallback paths. Functions return 0 on success or
 * -1 with a message in `msg`; nothing aborts.
 */
#ifndef QF_GPTQ_GPU_API_H
#define QF_GPTQ_GPU_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Internal to the plugin .so: never exported (hipcc objects do not get
 * the hidden visibility preset that CMake gives the C and CUDA ones). */
#if defined(__GNUC__) || defined(__clang__)
#define QF_GPTQ_GPU_API __attribute__((visibility("hidden")))
#else
#define QF_GPTQ_GPU_API
#endif

typedef struct qf_gptq_gpu_mat qf_gptq_gpu_mat;

/* Number of visible devices; 0 when the runtime or the device is missing. */
QF_GPTQ_GPU_API int qf_gptq_gpu_device_count(void);

/* Upload a module: qweight [cols*bits/32][rows] as stored, true zero points
 * [ngroups][rows] (int32), scales [ngroups][rows] (f16 bits), g_idx [cols],
 * bias [rows] f32 or NULL. Only bits 4 and 8 are supported on the GPU.
 * *out is owned by the caller (qf_gptq_gpu_free). */
QF_GPTQ_GPU_API int qf_gptq_gpu_upload(int device, int bits, int64_t rows,
                                       int64_t cols, int64_t ngroups,
                                       const int32_t *qweight,
                                       const int32_t *zeros,
                                       const uint16_t *scales,
                                       const int32_t *g_idx, const float *bias,
                                       qf_gptq_gpu_mat **out, char *msg,
                                       size_t msg_size);
QF_GPTQ_GPU_API void qf_gptq_gpu_free(qf_gptq_gpu_mat *m);

/* y[m][rows] = x[m][cols] · Wᵀ (+ bias) with x, y device pointers. */
QF_GPTQ_GPU_API int qf_gptq_gpu_forward(const qf_gptq_gpu_mat *m,
                                        const float *x, int64_t mrows,
                                        float *y, char *msg, size_t msg_size);

/* Device ↔ host copies for the CPU fallback (to_device: 0 = to host). */
QF_GPTQ_GPU_API int qf_gptq_gpu_copy(void *dst, const void *src, size_t bytes,
                                     int to_device, char *msg,
                                     size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif /* QF_GPTQ_GPU_API_H */
