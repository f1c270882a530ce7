// RTN dequantize + matmul on the GPU, one source for CUDA and HIP (through
// qforge/gpu_compat.h). One thread block per output row n; threads stride
// over K, dequantizing codes on the fly, and reduce in shared memory.
#include <stdio.h>

#include "qforge/gpu_compat.h"
#include "rtn_gpu.h"

__global__ void qf_rtn_gemv_kernel(int bits, int group_size, int sym,
                                   const uint8_t *codes, const float *scales,
                                   const uint8_t *zeros, int64_t n, int64_t k,
                                   int64_t groups, int64_t row_bytes,
                                   const float *x, int64_t m, float *y) {
  __shared__ float partial[256];
  const int64_t row = blockIdx.x;
  const int64_t mi = blockIdx.y;
  if (row >= n || mi >= m) return;
  const int64_t gs = group_size > 0 ? group_size : k;
  const int sym_zero = 1 << (bits - 1);
  const uint8_t *crow = codes + row * row_bytes;
  float acc = 0.0f;
  for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
    int q = bits == 8 ? crow[c] : ((c & 1) ? crow[c >> 1] >> 4 : crow[c >> 1] & 15);
    int64_t g = c / gs;
    int zero = sym ? sym_zero : zeros[row * groups + g];
    acc += x[mi * k + c] * scales[row * groups + g] * (float)(q - zero);
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) y[mi * n + row] = partial[0];
}

extern "C" int qf_rtn_gpu_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

#define QF_TRY(call)                                                        \
  do {                                                                      \
    cudaError_t e_ = (call);                                                \
    if (e_ != cudaSuccess) {                                                \
      snprintf(msg, msg_size, "%s: %s", #call, cudaGetErrorString(e_));     \
      goto out;                                                             \
    }                                                                       \
  } while (0)

extern "C" int qf_rtn_gpu_linear(int bits, int group_size, int sym,
                                 const uint8_t *codes, const float *scales,
                                 const uint8_t *zeros, int64_t n, int64_t k,
                                 const float *x, int64_t m, float *y, char *msg,
                                 int msg_size) {
  int rc = -1;
  const int64_t groups = group_size > 0 ? (k + group_size - 1) / group_size : 1;
  const int64_t row_bytes = bits == 4 ? (k + 1) / 2 : k;
  uint8_t *d_codes = NULL, *d_zeros = NULL;
  float *d_scales = NULL, *d_x = NULL, *d_y = NULL;
  dim3 grid((unsigned)n, (unsigned)m);
  QF_TRY(cudaMalloc((void **)&d_codes, (size_t)(n * row_bytes)));
  QF_TRY(cudaMalloc((void **)&d_scales, (size_t)(n * groups) * sizeof(float)));
  QF_TRY(cudaMalloc((void **)&d_x, (size_t)(m * k) * sizeof(float)));
  QF_TRY(cudaMalloc((void **)&d_y, (size_t)(m * n) * sizeof(float)));
  QF_TRY(cudaMemcpy(d_codes, codes, (size_t)(n * row_bytes), cudaMemcpyHostToDevice));
  QF_TRY(cudaMemcpy(d_scales, scales, (size_t)(n * groups) * sizeof(float), cudaMemcpyHostToDevice));
  QF_TRY(cudaMemcpy(d_x, x, (size_t)(m * k) * sizeof(float), cudaMemcpyHostToDevice));
  if (!sym) {
    QF_TRY(cudaMalloc((void **)&d_zeros, (size_t)(n * groups)));
    QF_TRY(cudaMemcpy(d_zeros, zeros, (size_t)(n * groups), cudaMemcpyHostToDevice));
  }
  qf_rtn_gemv_kernel<<<grid, 256>>>(bits, group_size, sym, d_codes, d_scales, d_zeros, n, k,
                                    groups, row_bytes, d_x, m, d_y);
  QF_TRY(cudaGetLastError());
  QF_TRY(cudaMemcpy(y, d_y, (size_t)(m * n) * sizeof(float), cudaMemcpyDeviceToHost));
  rc = 0;
out:
  (void)cudaFree(d_codes);
  (void)cudaFree(d_zeros);
  (void)cudaFree(d_scales);
  (void)cudaFree(d_x);
  (void)cudaFree(d_y);
  return rc;
}
