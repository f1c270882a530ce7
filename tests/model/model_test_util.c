/*
 * Helpers shared by the model-runtime suites (see model_test_util.h).
 */
#define _XOPEN_SOURCE 700
#include "model_test_util.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *mt_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  size_t n = strlen(base) + strlen(tag) + 32;
  char *p = malloc(n);
  cr_assert(p);
  snprintf(p, n, "%s/qf_model_%s_XXXXXX", base, tag);
  cr_assert(mkdtemp(p), "mkdtemp failed for %s", p);
  return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void mt_rmtree(const char *path) {
  if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *mt_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  cr_assert(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

void mt_tiny_config(qf_demo_config *c) {
  qf_demo_config_default(c);
  c->hidden = 64;
  c->n_layers = 2;
  c->intermediate = 160;
  c->n_heads = 4;
  c->n_kv_heads = 2;
  c->head_dim = 16;
  c->vocab = 300;
  c->dtype = QF_DTYPE_F32;
  c->tokenizer = 0;
  c->n_outlier_channels = 3;
  c->outlier_scale = 6.0;
}

qf_rt_model *mt_make_model(const qf_demo_config *c, char **dir) {
  qf_error err = {.struct_size = sizeof err};
  char *d = mt_tmpdir("m");
  qf_status st = qf_demo_write(d, c, &err);
  cr_assert_eq(st, QF_OK, "qf_demo_write: %s", err.message);
  qf_rt_options o = {sizeof o, 2, 0};
  qf_rt_model *m = NULL;
  st = qf_rt_open(d, &o, &m, &err);
  cr_assert_eq(st, QF_OK, "qf_rt_open: %s", err.message);
  *dir = d;
  return m;
}

void mt_tokens(int32_t *ids, int64_t n, int64_t vocab, uint64_t seed) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    ids[i] = (int32_t)(s % (uint64_t)vocab);
  }
}

void mt_perturb_add(mt_perturb *p, const char *name) {
  cr_assert(p->n < 256);
  p->names[p->n++] = strdup(name);
}

void mt_perturb_clear(mt_perturb *p) {
  for (size_t i = 0; i < p->n; i++) free(p->names[i]);
  p->n = 0;
}

qf_status mt_perturb_hook(void *user, qf_rt_model *m, const char *name,
                          const float *x, int64_t M, int64_t K, float *y,
                          int64_t N, qf_error *err) {
  mt_perturb *p = user;
  p->calls++;
  int hit = 0;
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->names[i], name)) hit = 1;
  if (!hit) return qf_rt_linear_float(NULL, m, name, x, M, K, y, N, err);
  const float *w;
  int64_t numel;
  qf_status st = qf_rt_tensor_f32(m, name, &w, &numel, err);
  if (st) return st;
  float *wp = malloc((size_t)numel * sizeof(float));
  for (int64_t i = 0; i < numel; i++)
    wp[i] = w[i] + ((i * 7 + 3) % 5 < 2 ? p->delta : -p->delta);
  for (int64_t r = 0; r < M; r++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double)x[r * K + k] * wp[n * K + k];
      y[r * N + n] = (float)s;
    }
  free(wp);
  return QF_OK;
}

void mt_hessian64(const float *x, const int64_t *lens, int64_t n_seq,
                  int64_t K, double *h) {
  int64_t T = 0;
  for (int64_t s = 0; s < n_seq; s++) T += lens[s];
  memset(h, 0, (size_t)(K * K) * sizeof(double));
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < K; i++) {
      double xi = x[t * K + i];
      for (int64_t j = 0; j < K; j++) h[i * K + j] += xi * x[t * K + j];
    }
  for (int64_t i = 0; i < K * K; i++) h[i] *= 2.0 / (double)n_seq;
}

double mt_rel_maxdiff(const float *a, const double *b, size_t n) {
  double md = 0, mb = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > md) md = d;
    if (fabs(b[i]) > mb) mb = fabs(b[i]);
  }
  return mb > 0 ? md / mb : md;
}
