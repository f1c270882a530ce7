/*
 * cpu_matmul.c — the CPU linear layer of the GGUF plugin (see
 * cpu_kernels.h): activation quantization to the weight type's dot partner,
 * then one dot product per (output row, activation row), with output rows
 * split over POSIX threads. Each thread walks its weight rows once (eight at
 * a time where an eight-row AVX2 kernel exists) and dots them with every
 * activation row while they are in cache.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "gguf_quants.h"
#include "qforge/half.h"

int qf_gguf_cpu_isa(void) {
  static volatile int isa = 0; /* benign race: every thread computes the same value */
  if (!isa) {
    const char *e = getenv("QF_FORCE_SCALAR");
    int force = e && *e && strcmp(e, "0") != 0;
    isa = !force && qf_gguf_cpu_avx2_supported() ? QF_GGUF_CPU_AVX2 : QF_GGUF_CPU_SCALAR;
  }
  return isa;
}

static int qf__act_type(int type) {
  const qf_gguf_type_info *ti = qf_gguf_type_get(type);
  return ti ? ti->vec_dot_type : -1;
}

size_t qf_gguf_act_row_size(int type, int64_t K) {
  int a = qf__act_type(type);
  if (a < 0 || qf_gguf_row_size(type, K) == 0) return 0;
  return qf_gguf_row_size(a, K);
}

int qf_gguf_act_quantize(int type, const float *x, void *out, int64_t K) {
  switch (qf__act_type(type)) {
    case QF_GGUF_TYPE_F32:
      memcpy(out, x, (size_t)K * sizeof(float));
      return 0;
    case QF_GGUF_TYPE_F16: {
      uint16_t *h = out;
      for (int64_t i = 0; i < K; i++) h[i] = qf_f32_to_f16(x[i]);
      return 0;
    }
    case QF_GGUF_TYPE_BF16: {
      uint16_t *h = out;
      for (int64_t i = 0; i < K; i++) h[i] = qf_f32_to_bf16(x[i]);
      return 0;
    }
    case QF_GGUF_TYPE_Q8_0:
      qf_gguf_quantize_row_q8_0(x, out, K);
      return 0;
    case QF_GGUF_TYPE_Q8_1:
      qf_gguf_quantize_row_q8_1(x, out, K);
      return 0;
    case QF_GGUF_TYPE_Q8_K:
      qf_gguf_quantize_row_q8_K(x, out, K);
      return 0;
    default:
      return -1;
  }
}

int qf_gguf_cpu_dot(int type, int isa, int64_t K, const void *w_row, const void *act_row,
                    float *out) {
  if (isa == QF_GGUF_CPU_AVX2 && K <= INT32_MAX &&
      qf_gguf_dot_avx2(type, (int)K, w_row, act_row, out) == 0)
    return 0;
  return qf_gguf_vec_dot(type, K, w_row, act_row, out);
}

typedef struct {
  int type, isa;
  const uint8_t *w, *act;
  size_t w_rs, a_rs;
  int64_t n0, n1, N, K, M;
  float *y;
  int ok;
} qf__lin_job;

static void *qf__lin_run(void *arg) {
  qf__lin_job *j = arg;
  j->ok = 1;
  /* eight rows at a time where an eight-row AVX2 kernel exists (same bits) */
  int x8 = j->isa == QF_GGUF_CPU_AVX2 && j->K <= INT32_MAX;
  int64_t n = j->n0;
  while (x8 && n + 8 <= j->n1) {
    const uint8_t *wr = j->w + (size_t)n * j->w_rs;
    for (int64_t m = 0; m < j->M && x8; m++) {
      float v[8];
      if (qf_gguf_dot_avx2_x8(j->type, (int)j->K, wr, j->w_rs, j->act + (size_t)m * j->a_rs, v)) {
        x8 = 0;
        break;
      }
      for (int r = 0; r < 8; r++) j->y[m * j->N + n + r] = v[r];
    }
    if (x8) n += 8;
  }
  for (; n < j->n1; n++) {
    const uint8_t *wr = j->w + (size_t)n * j->w_rs;
    for (int64_t m = 0; m < j->M; m++) {
      float v;
      if (qf_gguf_cpu_dot(j->type, j->isa, j->K, wr, j->act + (size_t)m * j->a_rs, &v) != 0) {
        j->ok = 0;
        return NULL;
      }
      j->y[m * j->N + n] = v;
    }
  }
  return NULL;
}

int qf_gguf_cpu_linear(int type, const void *w, int64_t N, int64_t K, const float *x, int64_t M,
                       float *y, int n_threads, int isa) {
  const size_t w_rs = qf_gguf_row_size(type, K), a_rs = qf_gguf_act_row_size(type, K);
  if (!w_rs || !a_rs || N < 0 || M < 0) return -1;
  if (N == 0 || M == 0) return 0;
  if (isa == 0) isa = qf_gguf_cpu_isa();
  uint8_t *act = malloc(a_rs * (size_t)M);
  if (!act) return -1;
  for (int64_t m = 0; m < M; m++)
    if (qf_gguf_act_quantize(type, x + m * K, act + (size_t)m * a_rs, K) != 0) {
      free(act);
      return -1;
    }
  int t = n_threads < 1 ? 1 : n_threads > 64 ? 64 : n_threads;
  /* a thread per at least 64 K-row dots; fewer threads for small layers */
  int64_t work = N * M * (K / 256 + 1);
  if (work / 64 < t) t = (int)(work / 64) < 1 ? 1 : (int)(work / 64);
  if (t > N) t = (int)N;
  qf__lin_job jobs[64];
  pthread_t tid[64];
  int started[64] = {0};
  int64_t per = (N + t - 1) / t;
  if (t > 1) per = (per + 7) / 8 * 8; /* whole eight-row groups per thread */
  for (int i = 0; i < t; i++) {
    qf__lin_job *j = &jobs[i];
    j->type = type;
    j->isa = isa;
    j->w = w;
    j->act = act;
    j->w_rs = w_rs;
    j->a_rs = a_rs;
    j->N = N;
    j->K = K;
    j->M = M;
    j->y = y;
    j->n0 = (int64_t)i * per < N ? (int64_t)i * per : N;
    j->n1 = j->n0 + per < N ? j->n0 + per : N;
    j->ok = 0;
    if (i > 0) started[i] = pthread_create(&tid[i], NULL, qf__lin_run, j) == 0;
  }
  qf__lin_run(&jobs[0]);
  int ok = jobs[0].ok;
  for (int i = 1; i < t; i++) {
    if (started[i])
      pthread_join(tid[i], NULL);
    else
      qf__lin_run(&jobs[i]);
    ok = ok && jobs[i].ok;
  }
  free(act);
  return ok ? 0 : -1;
}
