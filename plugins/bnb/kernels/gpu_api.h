/*
 * Host-callable entry points of the bitsandbytes GPU kernels (bnb_kernels.cu),
 * as plain C so plugin.c can use them without including a GPU runtime
 * header. Built only into the CUDA and HIP variants of the plugin. Every
 * function returns 0 on success or -1 with `msg` filled (the runtime's
 * error string); none aborts. Handles are owned by the caller and freed
 * with qf_bnb_gpu_release.
 */
#ifndef QF_BNB_GPU_API_H
#define QF_BNB_GPU_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable devices; 0 when the runtime or driver is missing. */
int qf_bnb_gpu_device_count(void);

/* Device copies of a 4-bit weight (packed bytes + float32 absmax) or of an
 * int8 weight (CB + SCB). Returns NULL with msg filled on failure. */
void *qf_bnb_gpu_upload4(const uint8_t *packed, int64_t nbytes,
                         const float *absmax, int64_t nblocks, char *msg,
                         size_t msg_size);
void *qf_bnb_gpu_upload8(const int8_t *cb, const float *scb, int64_t n,
                         int64_t k, char *msg, size_t msg_size);
void qf_bnb_gpu_release(void *handle);

/* y[M,N] = x[M,K] . W^T (+ bias) for a 4-bit weight. bias (may be NULL) is
 * a host pointer; x and y live on the host or, when x_dev / y_dev is set,
 * on the device. M == 1 runs the fused dequant+GEMV kernel, larger M
 * dequantizes into a device buffer and runs a tiled GEMM kernel. */
int qf_bnb_gpu_linear4(void *handle, int qtype, int64_t blocksize, int64_t n,
                       int64_t k, const float *x, int64_t m, const float *bias,
                       float *y, int x_dev, int y_dev, char *msg,
                       size_t msg_size);

/* LLM.int8() on the GPU: activations are quantized on the host
 * (qf_bnb_int8_quantize_act with `threshold`), the int8 matmul, the
 * dequantization epilogue and the float outlier columns run on the device.
 * Pointer placement as for qf_bnb_gpu_linear4. */
int qf_bnb_gpu_linear8(void *handle, int64_t n, int64_t k, const float *x,
                       int64_t m, float threshold, const float *bias, float *y,
                       int x_dev, int y_dev, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif
#endif /* QF_BNB_GPU_API_H */
