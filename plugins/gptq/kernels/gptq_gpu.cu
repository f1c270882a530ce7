/*
 * GPU kernels of the GPTQ plugin, written once in the CUDA dialect and
 * compiled by nvcc (CUDA build) and hipcc (HIP build, through
 * qforge/gpu_compat.h). A GEMV / small-batch GEMM reads the checkpoint
 * layout directly: qweight [K·bits/32][N] int32 (4 or 8 bits), true zero
 * points [G][N] int32 (unpacked once at upload, so v1 and v2 are the
 * same), scales [G][N] float16 and g_idx [K] (act_order needs no
 * reordering: each input row looks its group up). One thread per output
 * column, activations for up to 8 rows staged in shared memory per tile of
 * K; coalesced qweight / scale reads across a warp. Host entry points are
 * extern "C" (gpu_api.h) and return -1 with a message instead of aborting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/gpu_compat.h"
#include "gpu_api.h"

#define QF_GPU_THREADS 128
#define QF_GPU_ROWS 8
#define QF_GPU_KTILE 256

struct qf_gptq_gpu_mat {
  int device;
  int bits;
  int64_t rows, cols, ngroups;
  uint32_t *qweight;
  int32_t *zeros;
  __half *scales;
  int32_t *g_idx;
  float *bias;
};

static int gpu_msg(char *msg, size_t n, const char *what, cudaError_t e) {
  if (msg && n) snprintf(msg, n, "%s: %s", what, cudaGetErrorString(e));
  return -1;
}

template <int BITS>
__global__ void qf_gptq_gemv_kernel(const float *__restrict__ x, int mrows,
                                    int k, int n,
                                    const uint32_t *__restrict__ qweight,
                                    const int32_t *__restrict__ zeros,
                                    const __half *__restrict__ scales,
                                    const int32_t *__restrict__ g_idx,
                                    const float *__restrict__ bias,
                                    float *__restrict__ y) {
  constexpr int VPW = 32 / BITS;
  constexpr uint32_t MASK = (1u << BITS) - 1u;
  __shared__ float xs[QF_GPU_ROWS * QF_GPU_KTILE];
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  const int m0 = blockIdx.y * QF_GPU_ROWS;
  const int mc = mrows - m0 < QF_GPU_ROWS ? mrows - m0 : QF_GPU_ROWS;
  float acc[QF_GPU_ROWS];
#pragma unroll
  for (int i = 0; i < QF_GPU_ROWS; i++) acc[i] = 0.0f;
  for (int k0 = 0; k0 < k; k0 += QF_GPU_KTILE) {
    const int kt = k - k0 < QF_GPU_KTILE ? k - k0 : QF_GPU_KTILE;
    __syncthreads();
    for (int i = threadIdx.x; i < mc * QF_GPU_KTILE; i += blockDim.x) {
      const int r = i / QF_GPU_KTILE, kk = i % QF_GPU_KTILE;
      xs[i] = kk < kt ? x[(size_t)(m0 + r) * k + k0 + kk] : 0.0f;
    }
    __syncthreads();
    if (col < n) {
      for (int kk = 0; kk < kt; kk += VPW) {
        const uint32_t w = qweight[(size_t)((k0 + kk) / VPW) * n + col];
#pragma unroll
        for (int j = 0; j < VPW; j++) {
          const int kx = k0 + kk + j;
          const int g = g_idx[kx];
          const float s = __half2float(scales[(size_t)g * n + col]);
          const float z = (float)zeros[(size_t)g * n + col];
          const float wv = s * ((float)((w >> (BITS * j)) & MASK) - z);
#pragma unroll
          for (int r = 0; r < QF_GPU_ROWS; r++)
            if (r < mc) acc[r] += xs[r * QF_GPU_KTILE + kk + j] * wv;
        }
      }
    }
  }
  if (col < n) {
    const float b = bias ? bias[col] : 0.0f;
    for (int r = 0; r < mc; r++) y[(size_t)(m0 + r) * n + col] = acc[r] + b;
  }
}

extern "C" QF_GPTQ_GPU_API int qf_gptq_gpu_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* clear the sticky error */
    return 0;
  }
  return n;
}

extern "C" QF_GPTQ_GPU_API void qf_gptq_gpu_free(qf_gptq_gpu_mat *m) {
  if (!m) return;
  (void)cudaSetDevice(m->device);
  (void)cudaFree(m->qweight);
  (void)cudaFree(m->zeros);
  (void)cudaFree(m->scales);
  (void)cudaFree(m->g_idx);
  (void)cudaFree(m->bias);
  free(m);
}

template <typename T>
static int upload(T **dst, const void *src, size_t bytes, char *msg,
                  size_t msg_size) {
  cudaError_t e = cudaMalloc((void **)dst, bytes);
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "cudaMalloc", e);
  e = cudaMemcpy(*dst, src, bytes, cudaMemcpyHostToDevice);
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "cudaMemcpy", e);
  return 0;
}

extern "C" QF_GPTQ_GPU_API int qf_gptq_gpu_upload(int device, int bits, int64_t rows,
                                  int64_t cols, int64_t ngroups,
                                  const int32_t *qweight, const int32_t *zeros,
                                  const uint16_t *scales, const int32_t *g_idx,
                                  const float *bias, qf_gptq_gpu_mat **out,
                                  char *msg, size_t msg_size) {
  *out = NULL;
  if (bits != 4 && bits != 8) {
    if (msg && msg_size) snprintf(msg, msg_size, "%d-bit is not supported on the GPU", bits);
    return -1;
  }
  if (cols % (32 / bits) != 0 || rows > 0x7fffffff || cols > 0x7fffffff) {
    if (msg && msg_size) snprintf(msg, msg_size, "unsupported shape %lldx%lld",
                                  (long long)rows, (long long)cols);
    return -1;
  }
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "cudaSetDevice", e);
  qf_gptq_gpu_mat *m = (qf_gptq_gpu_mat *)calloc(1, sizeof *m);
  if (!m) {
    if (msg && msg_size) snprintf(msg, msg_size, "no host memory");
    return -1;
  }
  m->device = device;
  m->bits = bits;
  m->rows = rows;
  m->cols = cols;
  m->ngroups = ngroups;
  const size_t nqw = (size_t)(cols * bits / 32) * (size_t)rows;
  const size_t ngn = (size_t)ngroups * (size_t)rows;
  if (upload(&m->qweight, qweight, nqw * 4, msg, msg_size) ||
      upload(&m->zeros, zeros, ngn * 4, msg, msg_size) ||
      upload(&m->scales, scales, ngn * 2, msg, msg_size) ||
      upload(&m->g_idx, g_idx, (size_t)cols * 4, msg, msg_size) ||
      (bias && upload(&m->bias, bias, (size_t)rows * 4, msg, msg_size))) {
    qf_gptq_gpu_free(m);
    return -1;
  }
  *out = m;
  return 0;
}

extern "C" QF_GPTQ_GPU_API int qf_gptq_gpu_forward(const qf_gptq_gpu_mat *m, const float *x,
                                   int64_t mrows, float *y, char *msg,
                                   size_t msg_size) {
  if (mrows <= 0) return 0;
  cudaError_t e = cudaSetDevice(m->device);
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "cudaSetDevice", e);
  dim3 block(QF_GPU_THREADS);
  dim3 grid((unsigned)((m->rows + QF_GPU_THREADS - 1) / QF_GPU_THREADS),
            (unsigned)((mrows + QF_GPU_ROWS - 1) / QF_GPU_ROWS));
  if (m->bits == 4)
    qf_gptq_gemv_kernel<4><<<grid, block>>>(x, (int)mrows, (int)m->cols,
                                            (int)m->rows, m->qweight, m->zeros,
                                            m->scales, m->g_idx, m->bias, y);
  else
    qf_gptq_gemv_kernel<8><<<grid, block>>>(x, (int)mrows, (int)m->cols,
                                            (int)m->rows, m->qweight, m->zeros,
                                            m->scales, m->g_idx, m->bias, y);
  e = cudaGetLastError();
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "kernel launch", e);
  e = cudaDeviceSynchronize();
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "kernel", e);
  return 0;
}

extern "C" QF_GPTQ_GPU_API int qf_gptq_gpu_copy(void *dst, const void *src, size_t bytes,
                                int to_device, char *msg, size_t msg_size) {
  cudaError_t e = cudaMemcpy(dst, src, bytes,
                             to_device ? cudaMemcpyHostToDevice
                                       : cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return gpu_msg(msg, msg_size, "cudaMemcpy", e);
  return 0;
}
