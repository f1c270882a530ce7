/*
 * Helpers shared by the model-runtime suites: scratch folders, small
 * generated models (tiny shapes so every case runs in milliseconds), a
 * perturbing linear hook standing in for a quantizer, and float64 reference
 * arithmetic (RMSNorm, XᵀX) for checking the runtime's captures.
 */
#ifndef QF_MODEL_TEST_UTIL_H
#define QF_MODEL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/qforge.h"

/* A fresh folder under $TMPDIR (or /tmp); malloc'ed path. */
char *mt_tmpdir(const char *tag);
/* Remove a folder tree (best effort). */
void mt_rmtree(const char *path);
/* path/name (malloc'ed). */
char *mt_join(const char *dir, const char *name);

/* A tiny model config: hidden 64, 2 layers, intermediate 160, 4 heads /
 * 2 kv heads, head_dim 16, vocab 300, f32, no tokenizer. */
void mt_tiny_config(qf_demo_config *c);
/* Write `c` into a new temp folder and open it; *dir receives the folder
 * (caller frees and removes). Aborts the test on failure. */
qf_rt_model *mt_make_model(const qf_demo_config *c, char **dir);

/* Deterministic token ids in [0, vocab). */
void mt_tokens(int32_t *ids, int64_t n, int64_t vocab, uint64_t seed);

/* A hook that adds delta·(±1 pattern) to the weights of the modules whose
 * names are in `names` (a fake quantizer); the rest go to the float path. */
typedef struct mt_perturb {
  char *names[256];
  size_t n;
  float delta;
  int calls;
} mt_perturb;
qf_status mt_perturb_hook(void *user, qf_rt_model *m, const char *name,
                          const float *x, int64_t M, int64_t K, float *y,
                          int64_t N, qf_error *err);
void mt_perturb_add(mt_perturb *p, const char *name);
void mt_perturb_clear(mt_perturb *p);

/* H = 2/nseq · Σ_sequences XᵀX in float64 from x[T, K] of sequences of the
 * given lengths; h is K×K caller-owned. */
void mt_hessian64(const float *x, const int64_t *lens, int64_t n_seq,
                  int64_t K, double *h);
/* max |a - b| / max |b| over n values. */
double mt_rel_maxdiff(const float *a, const double *b, size_t n);

#endif /* QF_MODEL_TEST_UTIL_H */
