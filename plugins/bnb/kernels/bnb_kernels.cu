/*
 * GPU kernels of the bitsandbytes plugin, written once in the CUDA dialect
 * and built by nvcc (CUDA variant) and by hipcc through qforge/gpu_compat.h
 * (HIP variant): NF4/FP4 dequantization, a fused dequant+GEMV for batch 1
 * (one block per output row, fl32(LUT[q] * absmax) per element as in
 * kgemm_4bit_inference_naive's fp32 case), a tiled GEMM over the dequantized
 * weight for larger batches, and LLM.int8()'s int8 x int8 -> int32 matmul
 * with bitsandbytes' dequantization epilogue and the float outlier columns.
 * Reductions use shared memory (no warp-size assumption: AMD wave64 and
 * NVIDIA warp32 both work). The extern "C" wrappers at the end are the
 * only entry points (kernels/gpu_api.h); they never abort and report
 * runtime errors as text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/gpu_compat.h"

#include "bnb.h"
#include "kernels/gpu_api.h"

#define QF_THREADS 128
#define QF_TILE 16

__constant__ float d_nf4[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
    0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};
__constant__ float d_fp4[16] = {
    0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f,
    0.25f, -0.0f, -0.005208333333f, -0.66666667f, -1.0f, -0.33333333f, -0.5f,
    -0.16666667f, -0.25f};

__device__ __forceinline__ float weight_at(const uint8_t *packed,
                                           const float *absmax, int sh,
                                           int qtype, long long i) {
  uint8_t b = packed[i >> 1];
  unsigned q = (i & 1) ? (b & 15u) : (unsigned)(b >> 4);
  float l = qtype == 1 ? d_fp4[q] : d_nf4[q];
  return __fmul_rn(l, absmax[i >> sh]);
}

__global__ void k_dequant4(const uint8_t *packed, const float *absmax, int sh,
                           int qtype, long long n, float *out) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long stride = (long long)gridDim.x * blockDim.x;
  for (; i < n; i += stride) out[i] = weight_at(packed, absmax, sh, qtype, i);
}

/* One block per output row; each thread strides over K, then a tree
 * reduction in shared memory. */
__global__ void k_gemv4(const uint8_t *packed, const float *absmax, int sh,
                        int qtype, long long n_rows, long long k,
                        const float *x, const float *bias, float *y) {
  __shared__ float red[QF_THREADS];
  long long n = blockIdx.x;
  if (n >= n_rows) return;
  long long base = n * k;
  float acc = 0.0f;
  for (long long j = threadIdx.x; j < k; j += blockDim.x)
    acc = __fadd_rn(acc, __fmul_rn(x[j], weight_at(packed, absmax, sh, qtype, base + j)));
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) y[n] = red[0] + (bias ? bias[n] : 0.0f);
}

/* C[m, n] = sum_k A[m, k] * B[n, k] (+ bias[n]); 16x16 shared tiles. */
__global__ void k_gemm_nt(const float *a, const float *b, const float *bias,
                          float *c, long long M, long long N, long long K) {
  __shared__ float ta[QF_TILE][QF_TILE + 1];
  __shared__ float tb[QF_TILE][QF_TILE + 1];
  long long m = (long long)blockIdx.y * QF_TILE + threadIdx.y;
  long long n = (long long)blockIdx.x * QF_TILE + threadIdx.x;
  long long nb = (long long)blockIdx.x * QF_TILE + threadIdx.y;
  float acc = 0.0f;
  for (long long k0 = 0; k0 < K; k0 += QF_TILE) {
    long long ka = k0 + threadIdx.x;
    ta[threadIdx.y][threadIdx.x] = (m < M && ka < K) ? a[m * K + ka] : 0.0f;
    tb[threadIdx.y][threadIdx.x] = (nb < N && ka < K) ? b[nb * K + ka] : 0.0f;
    __syncthreads();
    for (int t = 0; t < QF_TILE; t++)
      acc += ta[threadIdx.y][t] * tb[threadIdx.x][t];
    __syncthreads();
  }
  if (m < M && n < N) c[m * N + n] = acc + (bias ? bias[n] : 0.0f);
}

/* LLM.int8(): one thread per output; exact int32 dot, bitsandbytes'
 * epilogue fmaf((acc * sca[m]) * scb[n], 1/127^2, bias), then the float
 * outlier columns against CB * SCB / 127. */
__global__ void k_int8_linear(const int8_t *ca, const float *sca,
                              const int8_t *cb, const float *scb,
                              const long long *ocols, long long n_out,
                              const float *x, const float *bias, float *y,
                              long long M, long long N, long long K) {
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= M * N) return;
  long long m = idx / N, n = idx % N;
  const int8_t *ar = ca + m * K;
  const int8_t *br = cb + n * K;
  int acc = 0;
  for (long long k = 0; k < K; k++) acc += (int)ar[k] * (int)br[k];
  float v = __fmul_rn(__fmul_rn((float)acc, sca[m]), scb[n]);
  float out = fmaf(v, QF_BNB_INT8_DEQ_SCALE, bias ? bias[n] : 0.0f);
  float s = 0.0f;
  for (long long j = 0; j < n_out; j++) {
    long long k = ocols[j];
    float w = __fmul_rn(__fmul_rn((float)br[k], scb[n]), QF_BNB_INV127);
    s = __fadd_rn(s, __fmul_rn(x[m * K + k], w));
  }
  y[m * N + n] = out + s;
}

/* ------------------------------------------------------------ host side */

#define GPU_TRY(call)                                                    \
  do {                                                                   \
    cudaError_t e_ = (call);                                             \
    if (e_ != cudaSuccess) {                                             \
      snprintf(msg, msg_size, "%s: %s (%s)", QF_GPU_VENDOR, #call,       \
               cudaGetErrorString(e_));                                  \
      goto fail;                                                         \
    }                                                                    \
  } while (0)

/* cudaFree's status is of no use on cleanup paths. */
static void gfree(void *p) {
  if (p) (void)cudaFree(p);
}

typedef struct gpu_w {
  int kind; /* 4 or 8 */
  void *w;  /* packed bytes or CB */
  float *s; /* absmax or SCB */
  long long n, k;
} gpu_w;

extern "C" int qf_bnb_gpu_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" void qf_bnb_gpu_release(void *handle) {
  gpu_w *g = (gpu_w *)handle;
  if (!g) return;
  gfree(g->w);
  gfree(g->s);
  free(g);
}

static void *upload(int kind, const void *w, size_t wbytes, const float *s,
                    size_t sn, long long n, long long k, char *msg,
                    size_t msg_size) {
  gpu_w *g = (gpu_w *)calloc(1, sizeof *g);
  if (!g) {
    snprintf(msg, msg_size, "out of memory");
    return NULL;
  }
  g->kind = kind;
  g->n = n;
  g->k = k;
  GPU_TRY(cudaMalloc(&g->w, wbytes ? wbytes : 1));
  GPU_TRY(cudaMalloc((void **)&g->s, (sn ? sn : 1) * sizeof(float)));
  GPU_TRY(cudaMemcpy(g->w, w, wbytes, cudaMemcpyHostToDevice));
  GPU_TRY(cudaMemcpy(g->s, s, sn * sizeof(float), cudaMemcpyHostToDevice));
  return g;
fail:
  qf_bnb_gpu_release(g);
  return NULL;
}

extern "C" void *qf_bnb_gpu_upload4(const uint8_t *packed, int64_t nbytes,
                                    const float *absmax, int64_t nblocks,
                                    char *msg, size_t msg_size) {
  return upload(4, packed, (size_t)nbytes, absmax, (size_t)nblocks, 0, 0, msg,
                msg_size);
}

extern "C" void *qf_bnb_gpu_upload8(const int8_t *cb, const float *scb,
                                    int64_t n, int64_t k, char *msg,
                                    size_t msg_size) {
  return upload(8, cb, (size_t)(n * k), scb, (size_t)n, n, k, msg, msg_size);
}

/* Device buffers for x / y / bias of one call; x and y are used in place
 * when they already live on the device. */
typedef struct io {
  const float *x;
  float *y;
  float *bias;
  float *x_own, *y_own;
} io;

static int io_begin(io *b, const float *x, size_t xn, int x_dev, float *y,
                    size_t yn, int y_dev, const float *bias, size_t bn,
                    char *msg, size_t msg_size) {
  memset(b, 0, sizeof *b);
  if (x_dev) {
    b->x = x;
  } else {
    GPU_TRY(cudaMalloc((void **)&b->x_own, (xn ? xn : 1) * sizeof(float)));
    GPU_TRY(cudaMemcpy(b->x_own, x, xn * sizeof(float), cudaMemcpyHostToDevice));
    b->x = b->x_own;
  }
  if (y_dev) {
    b->y = y;
  } else {
    GPU_TRY(cudaMalloc((void **)&b->y_own, (yn ? yn : 1) * sizeof(float)));
    b->y = b->y_own;
  }
  if (bias) {
    GPU_TRY(cudaMalloc((void **)&b->bias, bn * sizeof(float)));
    GPU_TRY(cudaMemcpy(b->bias, bias, bn * sizeof(float), cudaMemcpyHostToDevice));
  }
  return 0;
fail:
  return -1;
}

static int io_end(io *b, float *y, size_t yn, int ok, char *msg,
                  size_t msg_size) {
  int rc = ok ? 0 : -1;
  if (ok) {
    GPU_TRY(cudaGetLastError());
    GPU_TRY(cudaDeviceSynchronize());
    if (b->y_own)
      GPU_TRY(cudaMemcpy(y, b->y_own, yn * sizeof(float), cudaMemcpyDeviceToHost));
  }
  goto done;
fail:
  rc = -1;
done:
  gfree(b->x_own);
  gfree(b->y_own);
  gfree(b->bias);
  return rc;
}

extern "C" int qf_bnb_gpu_linear4(void *handle, int qtype, int64_t blocksize,
                                  int64_t n, int64_t k, const float *x,
                                  int64_t m, const float *bias, float *y,
                                  int x_dev, int y_dev, char *msg,
                                  size_t msg_size) {
  gpu_w *g = (gpu_w *)handle;
  int sh = 0;
  while (((int64_t)1 << sh) < blocksize) sh++;
  io b;
  float *wdeq = NULL;
  int ok = 0;
  if (io_begin(&b, x, (size_t)(m * k), x_dev, y, (size_t)(m * n), y_dev, bias,
               (size_t)n, msg, msg_size))
    goto fail;
  if (m == 1) {
    k_gemv4<<<(unsigned)n, QF_THREADS>>>((const uint8_t *)g->w, g->s, sh, qtype,
                                         n, k, b.x, b.bias, b.y);
  } else {
    GPU_TRY(cudaMalloc((void **)&wdeq, (size_t)(n * k) * sizeof(float)));
    long long total = (long long)n * k;
    unsigned blocks = (unsigned)((total + 255) / 256 < 65535 ? (total + 255) / 256 : 65535);
    k_dequant4<<<blocks, 256>>>((const uint8_t *)g->w, g->s, sh, qtype, total, wdeq);
    dim3 grid((unsigned)((n + QF_TILE - 1) / QF_TILE), (unsigned)((m + QF_TILE - 1) / QF_TILE));
    dim3 block(QF_TILE, QF_TILE);
    k_gemm_nt<<<grid, block>>>(b.x, wdeq, b.bias, b.y, m, n, k);
  }
  ok = 1;
fail:
  {
    int rc = io_end(&b, y, (size_t)(m * n), ok, msg, msg_size);
    gfree(wdeq);
    return rc;
  }
}

extern "C" int qf_bnb_gpu_linear8(void *handle, int64_t n, int64_t k,
                                  const float *x, int64_t m, float threshold,
                                  const float *bias, float *y, int x_dev,
                                  int y_dev, char *msg, size_t msg_size) {
  gpu_w *g = (gpu_w *)handle;
  io b;
  int ok = 0;
  float *hx = NULL;
  int8_t *ca = NULL, *d_ca = NULL;
  float *sca = NULL, *d_sca = NULL;
  uint8_t *flags = NULL;
  long long *oc = NULL, *d_oc = NULL;
  long long n_out = 0;
  memset(&b, 0, sizeof b);
  hx = (float *)malloc((size_t)(m * k + 1) * sizeof(float));
  ca = (int8_t *)malloc((size_t)(m * k + 1));
  sca = (float *)malloc((size_t)(m + 1) * sizeof(float));
  flags = (uint8_t *)malloc((size_t)k + 1);
  oc = (long long *)malloc((size_t)(k + 1) * sizeof(long long));
  if (!hx || !ca || !sca || !flags || !oc) {
    snprintf(msg, msg_size, "out of memory");
    goto fail;
  }
  if (x_dev)
    GPU_TRY(cudaMemcpy(hx, x, (size_t)(m * k) * sizeof(float), cudaMemcpyDeviceToHost));
  else
    memcpy(hx, x, (size_t)(m * k) * sizeof(float));
  if (qf_bnb_int8_quantize_act(hx, m, k, threshold, ca, sca,
                               threshold > 0.0f ? flags : NULL) > 0)
    for (long long c = 0; c < k; c++)
      if (flags[c]) oc[n_out++] = c;
  if (io_begin(&b, hx, (size_t)(m * k), 0, y, (size_t)(m * n), y_dev, bias,
               (size_t)n, msg, msg_size))
    goto fail;
  GPU_TRY(cudaMalloc((void **)&d_ca, (size_t)(m * k + 1)));
  GPU_TRY(cudaMalloc((void **)&d_sca, (size_t)(m + 1) * sizeof(float)));
  GPU_TRY(cudaMalloc((void **)&d_oc, (size_t)(n_out + 1) * sizeof(long long)));
  GPU_TRY(cudaMemcpy(d_ca, ca, (size_t)(m * k), cudaMemcpyHostToDevice));
  GPU_TRY(cudaMemcpy(d_sca, sca, (size_t)m * sizeof(float), cudaMemcpyHostToDevice));
  GPU_TRY(cudaMemcpy(d_oc, oc, (size_t)n_out * sizeof(long long), cudaMemcpyHostToDevice));
  {
    long long total = (long long)m * n;
    k_int8_linear<<<(unsigned)((total + 255) / 256), 256>>>(
        d_ca, d_sca, (const int8_t *)g->w, g->s, d_oc, n_out, b.x, b.bias, b.y,
        m, n, k);
  }
  ok = 1;
fail:
  {
    int rc = io_end(&b, y, (size_t)(m * n), ok, msg, msg_size);
    gfree(d_ca);
    gfree(d_sca);
    gfree(d_oc);
    free(hx);
    free(ca);
    free(sca);
    free(flags);
    free(oc);
    return rc;
  }
}
