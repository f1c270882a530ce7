/*
 * Private layout of a prepared qf_intq_qmat, shared by the scalar driver
 * (intq_gemv.c) and the AVX2 tile kernel (intq_gemv_avx2.c). Inputs are
 * reordered so that each group is one contiguous run padded to a multiple
 * of 8 positions (padding has x = 0 and q = 0). Outputs are padded to a
 * multiple of 8 and cut into tiles of QF_INTQ_TILE columns; a tile stores
 * its words contiguously, word row by word row: word (r, n) holds the
 * integers of positions [r·vpw, r·vpw + vpw) of column n, position j at
 * bits [j·fw, j·fw + fw) with fw = 4 (bits <= 4, vpw = 8) or 8 (vpw = 4).
 */
#ifndef QF_INTQ_IMPL_H
#define QF_INTQ_IMPL_H

#include <stdint.h>

#define QF_INTQ_TILE 64

typedef struct qf_intq_run {
  int64_t pos;    /* first position (multiple of 8) */
  int64_t len;    /* positions, multiple of 8 */
  int32_t group;
} qf_intq_run;

struct qf_intq_qmat {
  const char *plugin;  /* name for error reports */
  int bits;
  int fw;              /* field width in the kernel layout: 4 or 8 */
  int vpw;             /* values per word: 8 or 4 */
  int64_t n, k;        /* logical outputs / inputs */
  int64_t np;          /* outputs padded to a multiple of 8 */
  int64_t kp;          /* positions (sum of padded runs) */
  int64_t ngroups;
  int64_t ntiles;
  int64_t nruns;
  qf_intq_run *runs;
  int64_t *src;        /* [kp]: input column of each position, -1 = pad */
  uint32_t *w;         /* tiles; tile t starts at t * (kp / vpw) * TILE */
  float *s, *z;        /* [ngroups][np] */
  float *bias;         /* [np] or NULL */
};

/* Width of tile t (a multiple of 8). */
static inline int64_t qf_intq__tile_width(const struct qf_intq_qmat *m,
                                          int64_t t) {
  int64_t w = m->np - t * QF_INTQ_TILE;
  return w < QF_INTQ_TILE ? w : QF_INTQ_TILE;
}

static inline const uint32_t *qf_intq__tile_words(const struct qf_intq_qmat *m,
                                                  int64_t t) {
  return m->w + t * (m->kp / m->vpw) * QF_INTQ_TILE;
}

/* GEMV over one tile, the reference definition both paths follow:
 *   field f(p) of position p = r·vpw + j in word w:
 *     j < vpw − 1: (float)(w & (mask << fw·j))   (the field in place)
 *     j = vpw − 1: (float)(w >> fw·j)            (the top field)
 *   xq[p] = x[p] · 2^(−fw·j) for j < vpw − 1, x[p] for the top field, so
 *   xq·f = x·q exactly (both factors are exact powers-of-two rescalings);
 *   per run: acc = 0; acc = fmaf(xq[p], f(p), acc) over its positions in
 *   order; then y = y + s·(acc − z·xsum[run]) (separate roundings).
 * yt[0..width) receives the tile's slice before bias; xsum holds Σ x over
 * each run, summed in position order from the unscaled x. */
void qf_intq__gemv_tile_scalar(const struct qf_intq_qmat *m, int64_t t,
                               const float *xq, const float *xsum, float *yt);
void qf_intq__gemv_tile_avx2(const struct qf_intq_qmat *m, int64_t t,
                             const float *xq, const float *xsum, float *yt);
int qf_intq__avx2_available(void);

#endif /* QF_INTQ_IMPL_H */
