/*
 * AWQ over one Llama-family decoder block (AutoAWQ `quantize()` steps 2–3
 * for `LlamaAWQForCausalLM.get_layers_for_scaling`), with every access to
 * the model behind callbacks so the driver stays a pure function:
 *
 *   group  prev op                  scaled linears   loss measured on
 *   1      input_layernorm          q, k, v          self_attn's output
 *   2      v_proj (rows)            o                o_proj itself   (MHA only:
 *                                                    v.shape == o.shape)
 *   3      post_attention_layernorm gate, up         the MLP's output
 *   4      up_proj (rows)           down             down_proj itself
 *
 * All four scale vectors are searched against the original block, then
 * applied in that order exactly as AutoAWQ's scale_ln_fcs / scale_fc_fc do
 * (norm weight and bias ÷ s, consumer columns × s; producer rows and bias
 * ÷ s), and the captured inputs of the scaled linears are divided by s.
 * Then every linear except q/k gets the clip search on its (scaled) inputs,
 * sampled as AutoAWQ does, and is clamped. The caller quantizes the seven
 * resulting weights and writes the modified norms / biases.
 *
 * Linears marked keep[] (left in float) take no part: a group runs only
 * when its previous op and its scaled linears are all quantized.
 *
 * Groups 1 and 3 are scored exactly as AutoAWQ does, on the part's output
 * against the float part (io->part_forward, the host's calib_part_forward).
 * Fallback for a host without part forwards (io->part_forward NULL): both
 * use the whole block's output. For group 3 that is the same error (the
 * residual stream before the MLP does not depend on gate/up); for group 1
 * the error also passes through the float MLP. Captured inputs are borrowed
 * only between two callback calls, so each is reduced (mean |x|, sampled
 * rows) before the next call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"

const char *const qf_awq_block_linear_names[QF_AWQ_N_LINEAR] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

qf_awq_block_opts qf_awq_block_opts_default(void) {
  qf_awq_block_opts o;
  o.group_size = 128;
  o.duo_scaling = 1;
  o.apply_clip = 1;
  o.n_grid = 20;
  o.clip = qf_awq_clip_opts_default();
  return o;
}

void qf_awq_clip_sampling(int64_t t, int64_t n_sample_token, int64_t *step,
                          int64_t *count) {
  int64_t s = 1;
  if (n_sample_token > 0 && t / n_sample_token > 1) s = t / n_sample_token;
  *step = s;
  *count = t > 0 ? (t + s - 1) / s : 0;
}

/* What one input site leaves behind after its borrowed window. */
typedef struct site {
  float *x_mean; /* k */
  float *sample; /* count x k rows sampled for the clip search */
  int64_t count, k, t;
} site;

static void site_free(site *s) {
  free(s->x_mean);
  free(s->sample);
  memset(s, 0, sizeof *s);
}

static qf_status site_read(const qf_awq_block_io *io, int linear,
                           const qf_awq_block_opts *o, site *s, const float **x_out) {
  const float *x = NULL;
  int64_t t = 0, k = 0;
  qf_status st = io->inputs(io->ctx, linear, &x, &t, &k);
  if (st != QF_OK) return st;
  if (!x || t <= 0 || k <= 0) return QF_ERR_INVALID_ARGUMENT;
  int64_t step, count;
  qf_awq_clip_sampling(t, o->clip.n_sample_token, &step, &count);
  s->x_mean = malloc((size_t)k * sizeof *s->x_mean);
  s->sample = malloc((size_t)(count * k) * sizeof *s->sample);
  if (!s->x_mean || !s->sample) return QF_ERR_NO_MEMORY;
  qf_awq_x_mean(x, t, k, s->x_mean);
  for (int64_t i = 0; i < count; i++)
    memcpy(s->sample + i * k, x + i * step * k, (size_t)k * sizeof *s->sample);
  s->count = count;
  s->k = k;
  s->t = t;
  if (x_out) *x_out = x;
  return QF_OK;
}

/* forward through the host's block part (or whole block, part < 0) with
 * trial weights for `linears`. */
typedef struct block_fwd {
  const qf_awq_block_io *io;
  const int *linears;
  int part;
} block_fwd;

static qf_status fwd_run(const block_fwd *b, const int *linears, const float *const *w, int n,
                         float *out) {
  if (b->part < 0) return b->io->block_forward(b->io->ctx, linears, w, n, out);
  return b->io->part_forward(b->io->ctx, b->part, linears, w, n, out);
}

static qf_status block_forward(void *ctx, int n_layers, const float *const *trial_w,
                               const float *scales, int r, float *out) {
  (void)scales;
  block_fwd *b = ctx;
  if (r < 0) return fwd_run(b, NULL, NULL, 0, out);
  return fwd_run(b, b->linears, trial_w, n_layers, out);
}

static qf_status search(qf_awq_block *b, const qf_awq_block_opts *o, const int *lin, int n,
                        const float *x_mean, qf_awq_forward_fn fwd, void *ctx,
                        int64_t out_len, const float *ref, float *s, int gi) {
  const float *w[3];
  int64_t rows[3];
  for (int i = 0; i < n; i++) {
    w[i] = b->w[lin[i]];
    rows[i] = b->rows[lin[i]];
  }
  qf_awq_scale_problem p;
  memset(&p, 0, sizeof p);
  p.n_layers = n;
  p.w = w;
  p.rows = rows;
  p.k = b->cols[lin[0]];
  p.group_size = o->group_size;
  p.bits = o->clip.bits;
  p.zero_point = 1;
  p.x_mean = x_mean;
  p.n_grid = o->n_grid;
  p.duo_scaling = o->duo_scaling;
  p.forward = fwd;
  p.ctx = ctx;
  p.out_len = out_len;
  p.ref_out = ref;
  return qf_awq_search_scale(&p, s, &b->ratio[gi], &b->loss[gi], NULL);
}

static void scale_cols(float *w, int64_t rows, int64_t cols, const float *s) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) w[r * cols + c] = w[r * cols + c] * s[c];
}

/* scale_fc_fc: the last len(s) rows of prev (all of them here) ÷ s. */
static void scale_rows(float *w, int64_t rows, int64_t cols, const float *s) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) w[r * cols + c] = w[r * cols + c] / s[r];
}

static void div_vec(float *v, int64_t n, const float *s) {
  if (!v) return;
  for (int64_t i = 0; i < n; i++) v[i] = v[i] / s[i];
}

static void div_sample(site *st, const float *s) {
  for (int64_t i = 0; i < st->count; i++)
    for (int64_t c = 0; c < st->k; c++) st->sample[i * st->k + c] = st->sample[i * st->k + c] / s[c];
}

static int shapes_ok(const qf_awq_block *b) {
  const int64_t h = b->hidden;
  for (int i = 0; i < QF_AWQ_N_LINEAR; i++)
    if (!b->w[i] || b->rows[i] <= 0 || b->cols[i] <= 0) return 0;
  if (!b->ln1 || !b->ln2 || h <= 0) return 0;
  if (b->cols[QF_AWQ_Q] != h || b->cols[QF_AWQ_K] != h || b->cols[QF_AWQ_V] != h ||
      b->cols[QF_AWQ_GATE] != h || b->cols[QF_AWQ_UP] != h || b->rows[QF_AWQ_O] != h ||
      b->rows[QF_AWQ_DOWN] != h)
    return 0;
  return b->rows[QF_AWQ_GATE] == b->rows[QF_AWQ_UP] && b->cols[QF_AWQ_DOWN] == b->rows[QF_AWQ_UP];
}

qf_status qf_awq_block_run(qf_awq_block *b, const qf_awq_block_io *io,
                           const qf_awq_block_opts *opts) {
  qf_awq_block_opts def = qf_awq_block_opts_default();
  const qf_awq_block_opts *o = opts ? opts : &def;
  if (!b || !io || !io->inputs || !io->block_forward || io->out_len <= 0 || !shapes_ok(b))
    return QF_ERR_INVALID_ARGUMENT;
  const int64_t h = b->hidden, inter = b->rows[QF_AWQ_UP];
  const int64_t kv = b->rows[QF_AWQ_V], ko = b->cols[QF_AWQ_O];
  b->scaled_vo = b->rows[QF_AWQ_V] == b->rows[QF_AWQ_O] && b->cols[QF_AWQ_V] == b->cols[QF_AWQ_O] &&
                 !b->keep[QF_AWQ_V] && !b->keep[QF_AWQ_O];
  const int run1 = !b->keep[QF_AWQ_Q] && !b->keep[QF_AWQ_K] && !b->keep[QF_AWQ_V];
  const int run3 = !b->keep[QF_AWQ_GATE] && !b->keep[QF_AWQ_UP];
  const int run4 = !b->keep[QF_AWQ_UP] && !b->keep[QF_AWQ_DOWN];
  for (int i = 0; i < 4; i++) {
    b->ratio[i] = -1;
    b->loss[i] = NAN;
  }
  site sq = {0}, so = {0}, sg = {0}, sd = {0};
  float *s1 = malloc((size_t)h * sizeof *s1), *s3 = malloc((size_t)h * sizeof *s3);
  float *s2 = malloc((size_t)ko * sizeof *s2), *s4 = malloc((size_t)inter * sizeof *s4);
  float *ref = malloc((size_t)io->out_len * sizeof *ref);
  qf_status st = s1 && s2 && s3 && s4 && ref ? QF_OK : QF_ERR_NO_MEMORY;
  const int qkv[3] = {QF_AWQ_Q, QF_AWQ_K, QF_AWQ_V}, gu[2] = {QF_AWQ_GATE, QF_AWQ_UP};
  const int lo[1] = {QF_AWQ_O}, ld[1] = {QF_AWQ_DOWN};
  const int parts = io->part_forward != NULL;
  block_fwd f1 = {io, qkv, parts ? QF_CALIB_PART_ATTN : -1};
  block_fwd f3 = {io, gu, parts ? QF_CALIB_PART_MLP : -1};
  const float *x = NULL;
  int64_t rows1[1];

  /* group 1: input_layernorm -> q, k, v (self_attn output as the loss; the
   * float reference is the same forward without trial weights) */
  if (st == QF_OK) st = site_read(io, QF_AWQ_Q, o, &sq, NULL);
  if (st == QF_OK && (run1 || (run3 && !parts))) st = fwd_run(&f1, NULL, NULL, 0, ref);
  if (st == QF_OK && run1)
    st = search(b, o, qkv, 3, sq.x_mean, block_forward, &f1, io->out_len, ref, s1, 0);
  /* group 2: v_proj -> o_proj, o_proj itself as the module */
  if (st == QF_OK) st = site_read(io, QF_AWQ_O, o, &so, &x);
  if (st == QF_OK && b->scaled_vo) {
    rows1[0] = b->rows[QF_AWQ_O];
    qf_awq_linear_ctx lc = {x, so.t, ko, rows1};
    st = search(b, o, lo, 1, so.x_mean, qf_awq_forward_linears, &lc, so.t * h, NULL, s2, 1);
  }
  /* group 3: post_attention_layernorm -> gate, up (MLP output) */
  if (st == QF_OK) st = site_read(io, QF_AWQ_GATE, o, &sg, NULL);
  if (st == QF_OK && run3 && parts) st = fwd_run(&f3, NULL, NULL, 0, ref);
  if (st == QF_OK && run3)
    st = search(b, o, gu, 2, sg.x_mean, block_forward, &f3, io->out_len, ref, s3, 2);
  /* group 4: up_proj -> down_proj, down_proj itself */
  if (st == QF_OK) st = site_read(io, QF_AWQ_DOWN, o, &sd, &x);
  if (st == QF_OK && run4) {
    rows1[0] = h;
    qf_awq_linear_ctx lc = {x, sd.t, inter, rows1};
    st = search(b, o, ld, 1, sd.x_mean, qf_awq_forward_linears, &lc, sd.t * h, NULL, s4, 3);
  }
  if (st != QF_OK) goto done;
  if (sq.k != h || so.k != ko || sg.k != h || sd.k != inter) {
    st = QF_ERR_INVALID_ARGUMENT;
    goto done;
  }

  /* apply in list order (fp rounding makes the order observable) */
  if (run1) {
    div_vec(b->ln1, h, s1);
    div_vec(b->ln1_bias, h, s1);
    for (int i = 0; i < 3; i++) scale_cols(b->w[qkv[i]], b->rows[qkv[i]], h, s1);
    div_sample(&sq, s1);
  }
  if (b->scaled_vo) {
    scale_rows(b->w[QF_AWQ_V], kv, h, s2);
    div_vec(b->v_bias, kv, s2);
    scale_cols(b->w[QF_AWQ_O], h, ko, s2);
    div_sample(&so, s2);
  }
  if (run3) {
    div_vec(b->ln2, h, s3);
    div_vec(b->ln2_bias, h, s3);
    for (int i = 0; i < 2; i++) scale_cols(b->w[gu[i]], inter, h, s3);
    div_sample(&sg, s3);
  }
  if (run4) {
    scale_rows(b->w[QF_AWQ_UP], inter, h, s4);
    div_vec(b->up_bias, inter, s4);
    scale_cols(b->w[QF_AWQ_DOWN], h, inter, s4);
    div_sample(&sd, s4);
  }

  /* clip every linear but q/k on its scaled inputs */
  if (o->apply_clip) {
    const int todo[5] = {QF_AWQ_V, QF_AWQ_O, QF_AWQ_GATE, QF_AWQ_UP, QF_AWQ_DOWN};
    const site *from[5] = {&sq, &so, &sg, &sg, &sd};
    for (int i = 0; i < 5 && st == QF_OK; i++) {
      const int l = todo[i];
      if (b->keep[l]) continue;
      const int64_t g = o->group_size > 0 ? o->group_size : b->cols[l];
      float *best = malloc((size_t)(b->rows[l] * (b->cols[l] / g)) * sizeof *best);
      if (!best) {
        st = QF_ERR_NO_MEMORY;
        break;
      }
      st = qf_awq_clip_search_x(b->w[l], b->rows[l], b->cols[l], g, from[i]->sample,
                                from[i]->count, &o->clip, best);
      if (st == QF_OK) qf_awq_apply_clip(b->w[l], b->rows[l], b->cols[l], g, best);
      free(best);
    }
  }
done:
  site_free(&sq);
  site_free(&so);
  site_free(&sg);
  site_free(&sd);
  free(s1);
  free(s2);
  free(s3);
  free(s4);
  free(ref);
  return st;
}
