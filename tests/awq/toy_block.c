/*
 * The toy block of toy_block.h, computed naively in float with double
 * accumulators (speed does not matter at these sizes).
 */
#include "toy_block.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq_test_util.h"

static float *rnd(int64_t n, float sd, awq_rng *r) {
  float *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = awq_rng_gauss(r) * sd;
  return v;
}

void toy_make(toy_block *b, int64_t t, int64_t h, int64_t nq, int64_t nkv, int64_t inter,
              uint64_t seed) {
  awq_rng r = {seed};
  memset(b, 0, sizeof *b);
  b->t = t, b->h = h, b->nq = nq, b->nkv = nkv, b->inter = inter;
  b->x = rnd(t * h, 1.0f, &r);
  for (int64_t i = 0; i < t; i++)
    for (int64_t c = 0; c < h; c += 13) b->x[i * h + c] *= 8.0f;
  const int64_t rows[7] = {nq, nq, nkv, h, inter, inter, h};
  const int64_t cols[7] = {h, h, h, nkv, h, h, inter};
  for (int i = 0; i < 7; i++) b->w[i] = rnd(rows[i] * cols[i], 1.0f / sqrtf((float)cols[i]), &r);
  b->ln1 = malloc((size_t)h * sizeof(float));
  b->ln2 = malloc((size_t)h * sizeof(float));
  for (int64_t c = 0; c < h; c++) {
    b->ln1[c] = 0.5f + awq_rng_uniform(&r);
    b->ln2[c] = 0.5f + awq_rng_uniform(&r);
  }
}

void toy_free(toy_block *b) {
  free(b->x);
  for (int i = 0; i < 7; i++) free(b->w[i]);
  free(b->ln1);
  free(b->ln2);
  memset(b, 0, sizeof *b);
}

static void matvec(const float *w, const float *x, int64_t rows, int64_t cols, float *y) {
  for (int64_t r = 0; r < rows; r++) {
    double acc = 0;
    for (int64_t c = 0; c < cols; c++) acc += (double)w[r * cols + c] * x[c];
    y[r] = (float)acc;
  }
}

static void rmsnorm(const float *x, const float *g, int64_t h, float *y) {
  double ss = 0;
  for (int64_t c = 0; c < h; c++) ss += (double)x[c] * x[c];
  const float inv = (float)(1.0 / sqrt(ss / (double)h + 1e-6));
  for (int64_t c = 0; c < h; c++) y[c] = x[c] * inv * g[c];
}

void toy_forward(const toy_block *b, float *const *wo, const float *ln1, const float *ln2,
                 float *out, float *cap_qkv, float *cap_o, float *cap_mlp, float *cap_down) {
  const int64_t h = b->h, nq = b->nq, nkv = b->nkv, inter = b->inter;
  const float *w[7];
  for (int i = 0; i < 7; i++) w[i] = wo && wo[i] ? wo[i] : b->w[i];
  if (!ln1) ln1 = b->ln1;
  if (!ln2) ln2 = b->ln2;
  float *h1 = malloc((size_t)h * 4), *q = malloc((size_t)nq * 4), *k = malloc((size_t)nq * 4);
  float *v = malloc((size_t)nkv * 4), *o = malloc((size_t)h * 4), *mid = malloc((size_t)h * 4);
  float *h2 = malloc((size_t)h * 4), *g = malloc((size_t)inter * 4), *u = malloc((size_t)inter * 4);
  float *d = malloc((size_t)h * 4);
  for (int64_t i = 0; i < b->t; i++) {
    const float *xi = b->x + i * h;
    rmsnorm(xi, ln1, h, h1);
    if (cap_qkv) memcpy(cap_qkv + i * h, h1, (size_t)h * 4);
    matvec(w[0], h1, nq, h, q);
    matvec(w[1], h1, nq, h, k);
    matvec(w[2], h1, nkv, h, v);
    double qk = 0;
    for (int64_t c = 0; c < nq; c++) qk += (double)q[c] * k[c];
    const float gate = 1.0f + (float)tanh(qk / (double)nq);
    for (int64_t c = 0; c < nkv; c++) v[c] = gate * v[c];
    if (cap_o) memcpy(cap_o + i * nkv, v, (size_t)nkv * 4);
    matvec(w[3], v, h, nkv, o);
    for (int64_t c = 0; c < h; c++) mid[c] = xi[c] + o[c];
    rmsnorm(mid, ln2, h, h2);
    if (cap_mlp) memcpy(cap_mlp + i * h, h2, (size_t)h * 4);
    matvec(w[4], h2, inter, h, g);
    matvec(w[5], h2, inter, h, u);
    for (int64_t c = 0; c < inter; c++) g[c] = g[c] / (1.0f + expf(-g[c])) * u[c];
    if (cap_down) memcpy(cap_down + i * inter, g, (size_t)inter * 4);
    matvec(w[6], g, h, inter, d);
    for (int64_t c = 0; c < h; c++) out[i * h + c] = mid[c] + d[c];
  }
  free(h1), free(q), free(k), free(v), free(o), free(mid), free(h2), free(g), free(u), free(d);
}

double toy_mse(const float *a, const float *b, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return e / (double)n;
}
