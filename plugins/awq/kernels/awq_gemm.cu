/*
 * AWQ 4-bit GEMV / small-batch GEMM for GPUs, written once in the CUDA
 * dialect and compiled by nvcc (CUDA build) or hipcc through
 * "qforge/gpu_compat.h" (HIP build). Reads the AutoAWQ GEMM layout
 * directly: qweight [K, N/8] words whose nibble 4·reverse_order[m] holds
 * column 8c+m, with zeros / scales unpacked per group ([K/G, N] int32 and
 * float32, prepared once by the plugin).
 *
 * Tiling: a block is 32 words wide (256 output columns; a warp reads one
 * 128-byte run of a qweight row) and 8 k-slices deep; each thread keeps
 * 4 input rows x 8 columns of float32 accumulators, reloads a group's
 * zeros and scales only when the group changes, and the 8 slices are summed
 * through shared memory. When the column tiles alone cannot fill the GPU,
 * K is also split across blocks (grid.z) and partial sums are added with
 * atomicAdd — results are then not bit-reproducible run to run (float
 * addition order), unlike the CPU kernels. Batches above 4 rows use more
 * blocks along grid.y. x and y are float32, as the ABI passes them.
 */
#include <stdint.h>
#include <stdio.h>

#include "qforge/gpu_compat.h"

#include "awq_gpu.h"

#define QF_AWQ_WT 32 /* words (of 8 columns) per block */
#define QF_AWQ_KS 8  /* k slices per block */
#define QF_AWQ_MB 4  /* input rows per block */

/* Only qf_plugin_init / qf_plugin_score leave the .so (nvcc does not apply
 * the C visibility preset to these). */
#define QF_AWQ_HIDDEN __attribute__((visibility("hidden")))

/* nibble j of this constant is reverse_order[j] = {0,4,1,5,2,6,3,7} */
#define QF_AWQ_REV_NIBBLES 0x73625140u

static __global__ void qf_awq_gemm_kernel(const int32_t *__restrict__ qweight,
                                          const int32_t *__restrict__ zeros,
                                          const float *__restrict__ scales,
                                          const float *__restrict__ bias, int n, int k,
                                          int g, const float *__restrict__ x, int m,
                                          float *__restrict__ y, int k_per_split) {
  const int nc = n / 8;
  const int c = blockIdx.x * QF_AWQ_WT + threadIdx.x;
  const int m0 = blockIdx.y * QF_AWQ_MB;
  const int kbeg = blockIdx.z * k_per_split;
  const int kend = min(k, kbeg + k_per_split);
  float acc[QF_AWQ_MB][8];
  for (int r = 0; r < QF_AWQ_MB; r++)
    for (int j = 0; j < 8; j++) acc[r][j] = 0.0f;

  if (c < nc) {
    int cur_g = -1;
    int zr[8];
    float sr[8];
    for (int kk = kbeg + (int)threadIdx.y; kk < kend; kk += QF_AWQ_KS) {
      const int gi = kk / g;
      if (gi != cur_g) {
        cur_g = gi;
        for (int j = 0; j < 8; j++) {
          zr[j] = zeros[(size_t)gi * n + (size_t)c * 8 + j];
          sr[j] = scales[(size_t)gi * n + (size_t)c * 8 + j];
        }
      }
      const uint32_t word = (uint32_t)qweight[(size_t)kk * nc + c];
      float w[8];
      for (int j = 0; j < 8; j++) {
        const int sh = 4 * (int)((QF_AWQ_REV_NIBBLES >> (4 * j)) & 15u);
        w[j] = (float)((int)((word >> sh) & 15u) - zr[j]) * sr[j];
      }
      for (int r = 0; r < QF_AWQ_MB; r++) {
        if (m0 + r < m) {
          const float xv = x[(size_t)(m0 + r) * k + kk];
          for (int j = 0; j < 8; j++) acc[r][j] += xv * w[j];
        }
      }
    }
  }

  __shared__ float red[QF_AWQ_KS][QF_AWQ_WT][8];
  for (int r = 0; r < QF_AWQ_MB; r++) {
    for (int j = 0; j < 8; j++) red[threadIdx.y][threadIdx.x][j] = acc[r][j];
    __syncthreads();
    if (threadIdx.y == 0 && c < nc && m0 + r < m) {
      for (int j = 0; j < 8; j++) {
        float s = 0.0f;
        for (int t = 0; t < QF_AWQ_KS; t++) s += red[t][threadIdx.x][j];
        if (bias && blockIdx.z == 0) s += bias[c * 8 + j];
        float *dst = y + (size_t)(m0 + r) * n + (size_t)c * 8 + j;
        if (gridDim.z == 1)
          *dst = s;
        else
          atomicAdd(dst, s);
      }
    }
    __syncthreads();
  }
}

static int gpu_fail(cudaError_t e, const char *what, char *msg, size_t msz) {
  if (msg && msz)
    snprintf(msg, msz, "%s: %s (%s)", what, cudaGetErrorString(e), QF_GPU_VENDOR);
  return 1;
}

extern "C" QF_AWQ_HIDDEN int qf_awq_gpu_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* clear the sticky "no device" error */
    return 0;
  }
  return n;
}

extern "C" QF_AWQ_HIDDEN int qf_awq_gpu_upload(int device, const void *host, size_t bytes,
                                 void **dev, char *msg, size_t msz) {
  *dev = NULL;
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return gpu_fail(e, "select device", msg, msz);
  void *p = NULL;
  e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) return gpu_fail(e, "device allocation", msg, msz);
  if (bytes) {
    e = cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
      (void)cudaFree(p);
      return gpu_fail(e, "copy to device", msg, msz);
    }
  }
  *dev = p;
  return 0;
}

extern "C" QF_AWQ_HIDDEN void qf_awq_gpu_free(void *dev) {
  if (dev) (void)cudaFree(dev);
}

extern "C" QF_AWQ_HIDDEN int qf_awq_gpu_linear(int device, const int32_t *qweight,
                                 const int32_t *zeros, const float *scales,
                                 const float *bias, int64_t n, int64_t k,
                                 int64_t g, const float *x, int64_t m,
                                 float *y, char *msg, size_t msz) {
  if (n <= 0 || k <= 0 || g <= 0 || n % 8 || k % g || m < 0 ||
      n > INT32_MAX || k > INT32_MAX || m > INT32_MAX) {
    if (msg && msz) snprintf(msg, msz, "bad shapes for the AWQ GPU kernel");
    return 1;
  }
  if (m == 0) return 0;
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return gpu_fail(e, "select device", msg, msz);
  const int nc = (int)(n / 8);
  const int gx = (nc + QF_AWQ_WT - 1) / QF_AWQ_WT;
  const int64_t gy64 = (m + QF_AWQ_MB - 1) / QF_AWQ_MB;
  if (gy64 > 65535) {
    if (msg && msz) snprintf(msg, msz, "batch of %lld rows exceeds the GPU grid", (long long)m);
    return 1;
  }
  const int gy = (int)gy64;
  /* split K until there are a few hundred blocks, keeping >= 256 k each */
  int split = 1;
  while (split < 32 && (int64_t)gx * gy * split < 256 && k / (split * 2) >= 256) split *= 2;
  const int k_per_split = (int)((k + split - 1) / split);
  if (split > 1) {
    e = cudaMemset(y, 0, (size_t)(m * n) * sizeof(float));
    if (e != cudaSuccess) return gpu_fail(e, "clear output", msg, msz);
  }
  dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)split);
  dim3 block(QF_AWQ_WT, QF_AWQ_KS, 1);
  qf_awq_gemm_kernel<<<grid, block>>>(qweight, zeros, scales, bias, (int)n,
                                      (int)k, (int)g, x, (int)m, y,
                                      k_per_split);
  e = cudaGetLastError();
  if (e != cudaSuccess) return gpu_fail(e, "kernel launch", msg, msz);
  e = cudaDeviceSynchronize();
  if (e != cudaSuccess) return gpu_fail(e, "kernel", msg, msz);
  return 0;
}
