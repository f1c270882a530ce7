/*
 * AWQ over a whole (toy) decoder block through qf_awq_block_run: the folds
 * leave the float block unchanged, the quantized block beats plain RTN,
 * the v -> o group is skipped for GQA shapes, and callback errors come
 * back unchanged.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "toy_block.h"

typedef struct toy_io {
  toy_block *b;
  float *cap[4];
  int forwards;
  qf_status fail;
} toy_io;

static qf_status io_inputs(void *ctx, int linear, const float **x, int64_t *t, int64_t *k) {
  toy_io *io = ctx;
  if (io->fail != QF_OK) return io->fail;
  const toy_block *b = io->b;
  const int site = linear <= QF_AWQ_V ? 0 : linear == QF_AWQ_O ? 1 : linear == QF_AWQ_DOWN ? 3 : 2;
  const int64_t ks[4] = {b->h, b->nkv, b->h, b->inter};
  *x = io->cap[site];
  *t = b->t;
  *k = ks[site];
  return QF_OK;
}

static qf_status io_forward(void *ctx, const int *linears, const float *const *w, int n,
                            float *out) {
  toy_io *io = ctx;
  float *ov[7] = {0};
  for (int i = 0; i < n; i++) ov[linears[i]] = (float *)w[i];
  toy_forward(io->b, ov, NULL, NULL, out, NULL, NULL, NULL, NULL);
  io->forwards++;
  return QF_OK;
}

static void setup(toy_block *tb, toy_io *io, qf_awq_block *b, int64_t nkv) {
  toy_make(tb, 64, 64, 64, nkv, 128, 77);
  memset(io, 0, sizeof *io);
  io->b = tb;
  const int64_t t = tb->t, h = tb->h;
  io->cap[0] = malloc((size_t)(t * h) * 4);
  io->cap[1] = malloc((size_t)(t * nkv) * 4);
  io->cap[2] = malloc((size_t)(t * h) * 4);
  io->cap[3] = malloc((size_t)(t * tb->inter) * 4);
  float *out = malloc((size_t)(t * h) * 4);
  toy_forward(tb, NULL, NULL, NULL, out, io->cap[0], io->cap[1], io->cap[2], io->cap[3]);
  free(out);
  memset(b, 0, sizeof *b);
  const int64_t rows[7] = {tb->nq, tb->nq, nkv, h, tb->inter, tb->inter, h};
  const int64_t cols[7] = {h, h, h, nkv, h, h, tb->inter};
  for (int i = 0; i < 7; i++) {
    b->rows[i] = rows[i];
    b->cols[i] = cols[i];
    b->w[i] = malloc((size_t)(rows[i] * cols[i]) * 4);
    memcpy(b->w[i], tb->w[i], (size_t)(rows[i] * cols[i]) * 4);
  }
  b->hidden = h;
  b->ln1 = malloc((size_t)h * 4);
  b->ln2 = malloc((size_t)h * 4);
  memcpy(b->ln1, tb->ln1, (size_t)h * 4);
  memcpy(b->ln2, tb->ln2, (size_t)h * 4);
}

static void teardown(toy_block *tb, toy_io *io, qf_awq_block *b) {
  for (int i = 0; i < 4; i++) free(io->cap[i]);
  for (int i = 0; i < 7; i++) free(b->w[i]);
  free(b->ln1);
  free(b->ln2);
  toy_free(tb);
}

static qf_awq_block_opts opts(int clip) {
  qf_awq_block_opts o = qf_awq_block_opts_default();
  o.group_size = 32;
  o.apply_clip = clip;
  return o;
}

Test(awq_block, folding_preserves_the_float_block) {
  toy_block tb;
  toy_io io;
  qf_awq_block b;
  setup(&tb, &io, &b, 64);
  qf_awq_block_io bio = {&io, io_inputs, io_forward, tb.t * tb.h, NULL};
  qf_awq_block_opts o = opts(0);
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_OK);
  cr_assert(b.scaled_vo);
  for (int gi = 0; gi < 4; gi++) cr_assert(b.ratio[gi] >= 0 && b.ratio[gi] < 20);
  cr_assert_eq(io.forwards, 41, "ref + 20 + 20 block forwards, got %d", io.forwards);
  const int64_t n = tb.t * tb.h;
  float *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
  toy_forward(&tb, NULL, NULL, NULL, ref, NULL, NULL, NULL, NULL);
  toy_forward(&tb, b.w, b.ln1, b.ln2, got, NULL, NULL, NULL, NULL);
  double power = 0;
  for (int64_t i = 0; i < n; i++) power += (double)ref[i] * ref[i];
  const double rel = toy_mse(ref, got, n) / (power / (double)n);
  cr_assert(rel < 1e-10, "folded block differs: relative mse %g", rel);
  int changed = 0;
  for (int64_t c = 0; c < tb.h; c++) changed += b.ln1[c] != tb.ln1[c];
  cr_assert(changed > 0, "the norm should have been rescaled");
  free(ref), free(got);
  teardown(&tb, &io, &b);
}

static double quantized_mse(toy_block *tb, float *const *w, const float *ln1, const float *ln2,
                            int64_t g) {
  const int64_t rows[7] = {tb->nq, tb->nq, tb->nkv, tb->h, tb->inter, tb->inter, tb->h};
  const int64_t cols[7] = {tb->h, tb->h, tb->h, tb->nkv, tb->h, tb->h, tb->inter};
  float *qw[7];
  for (int i = 0; i < 7; i++) {
    qw[i] = malloc((size_t)(rows[i] * cols[i]) * 4);
    cr_assert_eq(qf_awq_pseudo_quantize(w[i], rows[i], cols[i], g, 4, 1, qw[i], NULL, NULL), QF_OK);
  }
  const int64_t n = tb->t * tb->h;
  float *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
  toy_forward(tb, NULL, NULL, NULL, ref, NULL, NULL, NULL, NULL);
  toy_forward(tb, qw, ln1, ln2, got, NULL, NULL, NULL, NULL);
  const double e = toy_mse(ref, got, n);
  for (int i = 0; i < 7; i++) free(qw[i]);
  free(ref), free(got);
  return e;
}

Test(awq_block, quantized_block_beats_rtn) {
  toy_block tb;
  toy_io io;
  qf_awq_block b;
  setup(&tb, &io, &b, 64);
  qf_awq_block_io bio = {&io, io_inputs, io_forward, tb.t * tb.h, NULL};
  qf_awq_block_opts o = opts(1);
  const double rtn = quantized_mse(&tb, tb.w, NULL, NULL, 32);
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_OK);
  const double awq = quantized_mse(&tb, b.w, b.ln1, b.ln2, 32);
  cr_log_info("toy block: AWQ mse %.4g vs RTN %.4g (ratios %d %d %d %d)", awq, rtn, b.ratio[0],
              b.ratio[1], b.ratio[2], b.ratio[3]);
  cr_assert(awq < rtn, "AWQ %g should beat RTN %g", awq, rtn);
  teardown(&tb, &io, &b);
}

Test(awq_block, gqa_skips_v_to_o_and_errors_propagate) {
  toy_block tb;
  toy_io io;
  qf_awq_block b;
  setup(&tb, &io, &b, 32); /* v: [32, 64], o: [64, 32] */
  qf_awq_block_io bio = {&io, io_inputs, io_forward, tb.t * tb.h, NULL};
  qf_awq_block_opts o = opts(1);
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_OK);
  cr_assert(!b.scaled_vo);
  cr_assert_eq(b.ratio[1], -1);
  /* a linear left in float (keep): its groups are skipped, it is untouched */
  teardown(&tb, &io, &b);
  setup(&tb, &io, &b, 64);
  bio.ctx = &io;
  b.keep[QF_AWQ_DOWN] = 1;
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_OK);
  cr_assert(b.ratio[0] >= 0 && b.ratio[1] >= 0 && b.ratio[2] >= 0 && b.ratio[3] == -1);
  cr_assert(memcmp(b.w[QF_AWQ_DOWN], tb.w[QF_AWQ_DOWN], (size_t)(64 * 128) * 4) == 0);
  b.keep[QF_AWQ_Q] = 1;
  memcpy(b.ln1, tb.ln1, 64 * 4);
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_OK);
  cr_assert(b.ratio[0] == -1 && memcmp(b.ln1, tb.ln1, 64 * 4) == 0);
  io.fail = QF_ERR_IO;
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_ERR_IO);
  /* not a block: the hidden size disagrees */
  io.fail = QF_OK;
  b.hidden = 48;
  cr_assert_eq(qf_awq_block_run(&b, &bio, &o), QF_ERR_INVALID_ARGUMENT);
  int64_t step, count;
  qf_awq_clip_sampling(65536, 512, &step, &count);
  cr_assert(step == 128 && count == 512);
  qf_awq_clip_sampling(1100, 512, &step, &count);
  cr_assert(step == 2 && count == 550);
  qf_awq_clip_sampling(300, 512, &step, &count);
  cr_assert(step == 1 && count == 300);
  teardown(&tb, &io, &b);
}
