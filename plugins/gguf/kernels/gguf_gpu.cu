// gguf_gpu.cu — GGUF dequantization and matvec / small-batch matmul on the
// GPU, one CUDA-dialect source for CUDA and HIP (through qforge/gpu_compat.h).
//
// Every kernel decodes weights element by element with ggml's block layouts
// (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K and the plain F32 / F16 / BF16 types), in
// fp32, with the scale products formed in ggml's order (d·sc first). The
// matmul kernel gives each output row one thread block; its threads stride
// over K and accumulate up to QF_MB activation rows at once, then reduce in
// shared memory. Weights are uploaded once per host buffer (a small cache
// owned by the quantizer); activations and outputs are copied as needed.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/gpu_compat.h"
#include "gguf_gpu.h"

enum {
  T_F32 = 0,
  T_F16 = 1,
  T_Q4_0 = 2,
  T_Q8_0 = 8,
  T_Q4_K = 12,
  T_Q5_K = 13,
  T_Q6_K = 14,
  T_BF16 = 30
};

// hipcc builds this object without -fvisibility=hidden: keep the plugin's
// only exports qf_plugin_init / qf_plugin_score.
#define QF_GPU_API extern "C" __attribute__((visibility("hidden")))

#define QF_MB 8
#define QF_THREADS 256

__device__ __forceinline__ float qf_h2f(const uint8_t *p) {
  unsigned short h = (unsigned short)(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ void qf_scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Element k of a row (row points at its first block).
__device__ __forceinline__ float qf_decode(int type, const uint8_t *row, int64_t k) {
  switch (type) {
    case T_F32: {
      float f;
      memcpy(&f, row + 4 * k, 4);
      return f;
    }
    case T_F16:
      return qf_h2f(row + 2 * k);
    case T_BF16: {
      unsigned int b = (unsigned int)(row[2 * k] | (row[2 * k + 1] << 8)) << 16;
      return __uint_as_float(b);
    }
    case T_Q4_0: {
      const uint8_t *b = row + (k / 32) * 18;
      const int j = (int)(k % 32);
      const int q = j < 16 ? (b[2 + j] & 0xF) : (b[2 + j - 16] >> 4);
      return qf_h2f(b) * (float)(q - 8);
    }
    case T_Q8_0: {
      const uint8_t *b = row + (k / 32) * 34;
      return qf_h2f(b) * (float)(int8_t)b[2 + k % 32];
    }
    case T_Q4_K:
    case T_Q5_K: {
      const int five = type == T_Q5_K;
      const uint8_t *b = row + (k / 256) * (five ? 176 : 144);
      const int e = (int)(k % 256), c = e / 64, hi = (e % 64) >= 32, l = e % 32;
      int sc, m;
      qf_scale_min_k4(e / 32, b + 4, &sc, &m);
      const uint8_t byte = b[(five ? 48 : 16) + 32 * c + l];
      int q = hi ? byte >> 4 : byte & 0xF;
      if (five && (b[16 + l] >> (2 * c + hi) & 1)) q += 16;
      const float d1 = qf_h2f(b) * (float)sc, m1 = qf_h2f(b + 2) * (float)m;
      return d1 * (float)q - m1;
    }
    case T_Q6_K: {
      const uint8_t *b = row + (k / 256) * 210;
      const int e = (int)(k % 256), h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
      const uint8_t qlb = b[64 * h + (quarter & 1) * 32 + l];
      const int lo = quarter < 2 ? (qlb & 0xF) : (qlb >> 4);
      const int hb = (b[128 + 32 * h + l] >> (2 * quarter)) & 3;
      const float d = qf_h2f(b + 208) * (float)(int8_t)b[192 + e / 16];
      return d * (float)((lo | (hb << 4)) - 32);
    }
    default:
      return 0.0f;
  }
}

static __global__ void qf_gguf_matmul_kernel(int type, const uint8_t *w, size_t row_bytes,
                                             int64_t n, int64_t k, const float *x, int64_t m,
                                             const float *bias, float *y) {
  __shared__ float part[QF_MB][QF_THREADS];
  const int64_t row = blockIdx.x;
  const int64_t m0 = (int64_t)blockIdx.y * QF_MB;
  const int64_t mb = m - m0 < QF_MB ? m - m0 : QF_MB;
  float acc[QF_MB];
  for (int i = 0; i < QF_MB; i++) acc[i] = 0.0f;
  const uint8_t *wr = w + row * row_bytes;
  for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
    const float wv = qf_decode(type, wr, c);
    for (int i = 0; i < QF_MB; i++)
      if (i < mb) acc[i] += wv * x[(m0 + i) * k + c];
  }
  for (int i = 0; i < QF_MB; i++) part[i][threadIdx.x] = acc[i];
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s)
      for (int i = 0; i < QF_MB; i++) part[i][threadIdx.x] += part[i][threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int i = 0; i < mb; i++) y[(m0 + i) * n + row] = part[i][0] + (bias ? bias[row] : 0.0f);
}

static __global__ void qf_gguf_dequant_kernel(int type, const uint8_t *w, size_t row_bytes,
                                              int64_t n, int64_t k, float *out) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * k) return;
  const int64_t r = i / k, c = i % k;
  out[i] = qf_decode(type, w + r * row_bytes, c);
}

// ---------------------------------------------------------------- host side

struct qf_gguf_gpu_entry {
  const void *host;
  size_t bytes;
  void *dev;
  struct qf_gguf_gpu_entry *next;
};

struct qf_gguf_gpu_cache {
  pthread_mutex_t lock;
  struct qf_gguf_gpu_entry *head;
};

QF_GPU_API int qf_gguf_gpu_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

QF_GPU_API int qf_gguf_gpu_supports(int type) {
  switch (type) {
    case T_F32:
    case T_F16:
    case T_BF16:
    case T_Q4_0:
    case T_Q8_0:
    case T_Q4_K:
    case T_Q5_K:
    case T_Q6_K:
      return 1;
    default:
      return 0;
  }
}

static int64_t qf_block(int type) {
  return type == T_Q4_0 || type == T_Q8_0 ? 32 : type >= T_Q4_K && type <= T_Q6_K ? 256 : 1;
}

static size_t qf_block_bytes(int type) {
  switch (type) {
    case T_F32:
      return 4;
    case T_F16:
    case T_BF16:
      return 2;
    case T_Q4_0:
      return 18;
    case T_Q8_0:
      return 34;
    case T_Q4_K:
      return 144;
    case T_Q5_K:
      return 176;
    case T_Q6_K:
      return 210;
    default:
      return 0;
  }
}

QF_GPU_API qf_gguf_gpu_cache *qf_gguf_gpu_cache_new(void) {
  qf_gguf_gpu_cache *c = (qf_gguf_gpu_cache *)calloc(1, sizeof *c);
  if (c) pthread_mutex_init(&c->lock, NULL);
  return c;
}

QF_GPU_API void qf_gguf_gpu_cache_free(qf_gguf_gpu_cache *c) {
  if (!c) return;
  for (struct qf_gguf_gpu_entry *e = c->head; e;) {
    struct qf_gguf_gpu_entry *next = e->next;
    (void)cudaFree(e->dev);
    free(e);
    e = next;
  }
  pthread_mutex_destroy(&c->lock);
  free(c);
}

#define QF_TRY(call)                                                    \
  do {                                                                  \
    cudaError_t e_ = (call);                                            \
    if (e_ != cudaSuccess) {                                            \
      snprintf(msg, msg_size, "%s: %s", #call, cudaGetErrorString(e_)); \
      goto out;                                                         \
    }                                                                   \
  } while (0)

// Device copy of a weight buffer (uploaded on first use).
static int qf_weights(qf_gguf_gpu_cache *c, const void *w, size_t bytes, void **dev, char *msg,
                      size_t msg_size) {
  int rc = -1;
  struct qf_gguf_gpu_entry *e = NULL;
  void *d = NULL;
  pthread_mutex_lock(&c->lock);
  for (e = c->head; e; e = e->next)
    if (e->host == w && e->bytes == bytes) {
      *dev = e->dev;
      rc = 0;
      goto out;
    }
  QF_TRY(cudaMalloc(&d, bytes));
  QF_TRY(cudaMemcpy(d, w, bytes, cudaMemcpyHostToDevice));
  e = (struct qf_gguf_gpu_entry *)calloc(1, sizeof *e);
  if (!e) {
    snprintf(msg, msg_size, "out of host memory");
    goto out;
  }
  e->host = w;
  e->bytes = bytes;
  e->dev = d;
  e->next = c->head;
  c->head = e;
  *dev = d;
  d = NULL;
  rc = 0;
out:
  if (d) (void)cudaFree(d);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

QF_GPU_API int qf_gguf_gpu_memcpy(void *dst, const void *src, size_t n, int to_device, char *msg,
                                  size_t msg_size) {
  int rc = -1;
  QF_TRY(cudaMemcpy(dst, src, n, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost));
  rc = 0;
out:
  return rc;
}

QF_GPU_API int qf_gguf_gpu_linear(qf_gguf_gpu_cache *c, int type, const void *w, size_t w_bytes,
                                  int64_t n, int64_t k, const float *x, int x_on_device, int64_t m,
                                  float *y, int y_on_device, const float *bias, char *msg,
                                  size_t msg_size) {
  int rc = -1;
  void *dw = NULL;
  float *dx = NULL, *dy = NULL, *db = NULL;
  const float *xin = x;
  float *yout = y;
  const size_t bb = qf_block_bytes(type);
  const int64_t blk = qf_block(type);
  if (!c || !bb || k % blk != 0 || w_bytes != (size_t)(n * (k / blk)) * bb) {
    snprintf(msg, msg_size, "type %d with %lld x %lld weights is not supported on the GPU", type,
             (long long)n, (long long)k);
    return -1;
  }
  const size_t row_bytes = (size_t)(k / blk) * bb;
  dim3 grid((unsigned)n, (unsigned)((m + QF_MB - 1) / QF_MB));
  if (qf_weights(c, w, w_bytes, &dw, msg, msg_size) != 0) return -1;
  if (!x_on_device) {
    QF_TRY(cudaMalloc((void **)&dx, (size_t)(m * k) * sizeof(float)));
    QF_TRY(cudaMemcpy(dx, x, (size_t)(m * k) * sizeof(float), cudaMemcpyHostToDevice));
    xin = dx;
  }
  if (!y_on_device) {
    QF_TRY(cudaMalloc((void **)&dy, (size_t)(m * n) * sizeof(float)));
    yout = dy;
  }
  if (bias) {
    QF_TRY(cudaMalloc((void **)&db, (size_t)n * sizeof(float)));
    QF_TRY(cudaMemcpy(db, bias, (size_t)n * sizeof(float), cudaMemcpyHostToDevice));
  }
  qf_gguf_matmul_kernel<<<grid, QF_THREADS>>>(type, (const uint8_t *)dw, row_bytes, n, k, xin, m,
                                              db, yout);
  QF_TRY(cudaGetLastError());
  if (!y_on_device)
    QF_TRY(cudaMemcpy(y, dy, (size_t)(m * n) * sizeof(float), cudaMemcpyDeviceToHost));
  else
    QF_TRY(cudaDeviceSynchronize());
  rc = 0;
out:
  (void)cudaFree(dx);
  (void)cudaFree(dy);
  (void)cudaFree(db);
  return rc;
}

QF_GPU_API int qf_gguf_gpu_dequantize(qf_gguf_gpu_cache *c, int type, const void *w, size_t w_bytes,
                                      int64_t n, int64_t k, float *out, char *msg,
                                      size_t msg_size) {
  int rc = -1;
  void *dw = NULL;
  float *dout = NULL;
  const size_t bb = qf_block_bytes(type);
  const int64_t blk = qf_block(type);
  if (!c || !bb || k % blk != 0 || w_bytes != (size_t)(n * (k / blk)) * bb) {
    snprintf(msg, msg_size, "type %d with %lld x %lld weights is not supported on the GPU", type,
             (long long)n, (long long)k);
    return -1;
  }
  const size_t row_bytes = (size_t)(k / blk) * bb;
  const int64_t total = n * k;
  if (qf_weights(c, w, w_bytes, &dw, msg, msg_size) != 0) return -1;
  QF_TRY(cudaMalloc((void **)&dout, (size_t)total * sizeof(float)));
  qf_gguf_dequant_kernel<<<(unsigned)((total + 255) / 256), 256>>>(type, (const uint8_t *)dw,
                                                                   row_bytes, n, k, dout);
  QF_TRY(cudaGetLastError());
  QF_TRY(cudaMemcpy(out, dout, (size_t)total * sizeof(float), cudaMemcpyDeviceToHost));
  rc = 0;
out:
  (void)cudaFree(dout);
  return rc;
}
