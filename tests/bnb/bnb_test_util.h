/*
 * Helpers shared by the bitsandbytes test suites: reading golden files
 * (a missing golden file fails the test, never skips it), the bnb golden
 * manifest, a tiny in-memory tensor table standing in for a checkpoint,
 * and float bit comparisons.
 */
#ifndef QF_BNB_TEST_UTIL_H
#define QF_BNB_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"

static inline uint32_t tu_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float tu_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Whole file, malloc'ed; fails the test when it cannot be read. */
static inline void *tu_read(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open golden file %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *p = malloc((size_t)n + 1);
  cr_assert(p);
  cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
  fclose(f);
  ((char *)p)[n] = '\0';
  if (size) *size = (size_t)n;
  return p;
}

static inline const char *tu_golden_dir(void) {
  const char *d = getenv("QF_GOLDEN_DIR");
  cr_assert(d && *d, "QF_GOLDEN_DIR is not set");
  return d;
}

/* <golden>/bnb/<name> */
static inline void *tu_golden(const char *name, size_t *size) {
  char path[2048];
  snprintf(path, sizeof path, "%s/bnb/%s", tu_golden_dir(), name);
  return tu_read(path, size);
}

static inline float *tu_input(const char *cas, size_t expect_floats) {
  char path[2048];
  size_t n;
  snprintf(path, sizeof path, "%s/gguf/%s.input.f32", tu_golden_dir(), cas);
  float *p = (float *)tu_read(path, &n);
  cr_assert_eq(n, expect_floats * 4, "%s: %zu bytes, expected %zu", path, n,
               expect_floats * 4);
  return p;
}

typedef struct tu_row {
  char cas[32], scheme[8], qtype[8], prefix[64];
  int64_t rows, cols, bs;
  int dq;
} tu_row;

/* Parse bnb/manifest.tsv; returns the row count (fails on a bad file). */
static inline int tu_manifest(tu_row *rows, int max) {
  char *text = (char *)tu_golden("manifest.tsv", NULL);
  int n = 0;
  char *save = NULL;
  char *line = strtok_r(text, "\n", &save);
  cr_assert(line && strncmp(line, "case\t", 5) == 0, "manifest header");
  while ((line = strtok_r(NULL, "\n", &save)) && n < max) {
    tu_row *r = &rows[n];
    char bs[16], dq[8];
    long long R, C;
    int got = sscanf(line, "%31s %lld %lld %7s %7s %15s %7s %63s", r->cas, &R,
                     &C, r->scheme, r->qtype, bs, dq, r->prefix);
    cr_assert_eq(got, 8, "bad manifest line: %s", line);
    r->rows = R;
    r->cols = C;
    r->bs = strcmp(bs, "-") ? atoll(bs) : 0;
    r->dq = strcmp(dq, "yes") == 0;
    n++;
  }
  free(text);
  cr_assert(n > 0, "empty manifest");
  return n;
}

/* A checkpoint in memory for qf_bnb_load4/8. */
typedef struct tu_tensor {
  char name[256];
  DLTensor t;
  int64_t shape[4];
} tu_tensor;
typedef struct tu_ckpt {
  tu_tensor ts[16];
  int n;
} tu_ckpt;

static inline void tu_add(tu_ckpt *c, const char *name, void *data,
                          uint8_t code, uint8_t bits, int ndim, int64_t d0,
                          int64_t d1) {
  tu_tensor *t = &c->ts[c->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->shape[0] = d0;
  t->shape[1] = d1;
  t->t.data = data;
  t->t.device.device_type = kDLCPU;
  t->t.ndim = ndim;
  t->t.dtype.code = code;
  t->t.dtype.bits = bits;
  t->t.dtype.lanes = 1;
  t->t.shape = t->shape;
}

static inline tu_tensor *tu_get(tu_ckpt *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->ts[i].name, name) == 0) return &c->ts[i];
  return NULL;
}

static inline void tu_remove(tu_ckpt *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->ts[i].name, name) == 0) {
      c->ts[i] = c->ts[--c->n];
      c->ts[i].t.shape = c->ts[i].shape;
      return;
    }
}

static inline int tu_find(void *user, const char *name, DLTensor *out) {
  tu_tensor *t = tu_get((tu_ckpt *)user, name);
  if (!t) return 0;
  *out = t->t;
  out->shape = t->shape;
  return 1;
}

/* xorshift PRNG with a Box-Muller normal. */
static inline uint64_t tu_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}
static inline float tu_uniform(uint64_t *s) {
  return (float)((tu_rand(s) >> 11) * (1.0 / 9007199254740992.0));
}
static inline float tu_normal(uint64_t *s) {
  double u1 = (tu_rand(s) >> 11) * (1.0 / 9007199254740992.0) + 1e-300;
  double u2 = (tu_rand(s) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(__builtin_sqrt(-2.0 * __builtin_log(u1)) *
                 __builtin_cos(6.283185307179586 * u2));
}

#endif /* QF_BNB_TEST_UTIL_H */
