/*
 * Host-callable entry of the RTN GPU kernel (rtn.cu), compiled by nvcc for
 * the CUDA build and by hipcc for the HIP build. Only the GPU builds of the
 * plugin link it.
 */
#ifndef QF_RTN_GPU_H
#define QF_RTN_GPU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable GPUs (0 if the runtime or a device is missing). */
int qf_rtn_gpu_device_count(void);

/* y[M, N] = x[M, K] · dequant(W)ᵀ on the GPU; all pointers are host memory
 * (copied in and out). Returns 0, or -1 with msg filled. */
int qf_rtn_gpu_linear(int bits, int group_size, int sym, const uint8_t *codes,
                      const float *scales, const uint8_t *zeros, int64_t n,
                      int64_t k, const float *x, int64_t m, float *y,
                      char *msg, int msg_size);

#ifdef __cplusplus
}
#endif
#endif /* QF_RTN_GPU_H */
