/*
 * bitsandbytes' signed "dynamic" 8-bit code map and the 8-bit blockwise
 * quantizer that uses it (spec sections 3.2 and 4). The map is built the
 * way create_dynamic_map runs under a current x86-64 torch: float32
 * linspace(0.1, 1, 2^i + 1) with both halves contracted to fmaf, means of
 * neighbours, scaled by float32(10^(i-6)), negated copies, 0 and 1, sorted.
 * The result equals the spec's Appendix A bit for bit (checked by the
 * tests). The code search is the CUDA dQuantize<0> binary search, whose
 * tie rule at exact midpoints differs from a plain bucketize. Built with
 * -ffp-contract=off; fmaf is called explicitly where torch fuses.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "bnb.h"

/* torch.linspace(start, end, steps) for float32 (spec 3.2). */
static void linspace_f32(float start, float end, int steps, float *out) {
  float step = (end - start) / (float)(steps - 1);
  int halfway = steps / 2;
  for (int j = 0; j < steps; j++) {
    if (j < halfway)
      out[j] = fmaf(step, (float)j, start);
    else
      out[j] = fmaf(-step, (float)(steps - 1 - j), end);
  }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void qf_bnb_dynamic_map_build(float out[256]) {
  float bounds[65];
  int n = 0;
  for (int i = 0; i < 7; i++) {
    int items = (1 << i) + 1;
    linspace_f32((float)0.1, 1.0f, items, bounds);
    float scale = (float)pow(10.0, (double)(i - 6));
    for (int j = 0; j + 1 < items; j++) {
      float mean = (bounds[j] + bounds[j + 1]) / 2.0f;
      float v = scale * mean;
      out[n++] = v;
      out[n++] = -v;
    }
  }
  out[n++] = 0.0f;
  out[n++] = 1.0f;
  qsort(out, (size_t)n, sizeof(float), cmp_float);
}

static float g_map[256];
static pthread_once_t g_map_once = PTHREAD_ONCE_INIT;
static void map_init(void) { qf_bnb_dynamic_map_build(g_map); }

const float *qf_bnb_dynamic_map(void) {
  pthread_once(&g_map_once, map_init);
  return g_map;
}

uint8_t qf_bnb_code8(const float code[256], float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[pivot];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[upper_pivot];
  if (lower_pivot == 0) lower = code[lower_pivot];
  if (x > val) {
    float midpoint = (upper + val) * 0.5f;
    return (uint8_t)(x > midpoint ? upper_pivot : pivot);
  }
  float midpoint = (lower + val) * 0.5f;
  return (uint8_t)(x < midpoint ? lower_pivot : pivot);
}

void qf_bnb_quantize_blockwise8(const float code[256], const float *x,
                                int64_t n, int64_t bs, uint8_t *out,
                                float *absmax) {
  int64_t nb = qf_bnb_nblocks(n, bs);
  for (int64_t b = 0; b < nb; b++) {
    int64_t b0 = b * bs, b1 = b0 + bs < n ? b0 + bs : n;
    float amax = 0.0f;
    for (int64_t i = b0; i < b1; i++) {
      float a = fabsf(x[i]);
      amax = a > amax ? a : amax;
    }
    absmax[b] = amax;
    const float inv = 1.0f / amax;
    for (int64_t i = b0; i < b1; i++) out[i] = qf_bnb_code8(code, x[i] * inv);
  }
}

void qf_bnb_dequantize_blockwise8(const float code[256], const uint8_t *q,
                                  const float *absmax, int64_t n, int64_t bs,
                                  float *out) {
  for (int64_t i = 0; i < n; i++) out[i] = code[q[i]] * absmax[i / bs];
}
