/*
 * Calibration capture: the GPTQ Hessian (running add_batch, one batch per
 * sequence) against an explicit float64 XᵀX of independently computed
 * inputs; shared Hessians for q/k/v; importance vectors; the sequential
 * walk feeding block i+1 with the outputs of the "quantized" block i (a fake
 * quantizer that perturbs weights through the linear hook) in GPTQ mode and
 * with float outputs in AWQ mode; true-sequential o_proj inputs; AWQ input
 * features and block-part forwards with trial weights; the qf_calib wrapper
 * and its ABI part forward (qf_host.calib_part_forward) against parts
 * computed independently.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_test_util.h"
#include "qforge/plugin_util.h"

#define NSEQ 3
static const int64_t k_lens[NSEQ] = {10, 10, 7};

typedef struct fixture {
  char *dir;
  qf_rt_model *m;
  qf_token_set *tok;
  int64_t T;
} fixture;

static void make_fixture(fixture *f, uint64_t seed) {
  qf_demo_config cfg;
  mt_tiny_config(&cfg);
  cfg.seed = seed;
  f->m = mt_make_model(&cfg, &f->dir);
  int32_t ids[64];
  f->T = k_lens[0] + k_lens[1] + k_lens[2];
  mt_tokens(ids, f->T, cfg.vocab, seed + 1);
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_tokens_from_array(ids, k_lens, NSEQ, &f->tok, &err), QF_OK);
}

static void free_fixture(fixture *f) {
  qf_tokens_free(f->tok);
  qf_rt_free(f->m);
  mt_rmtree(f->dir);
  free(f->dir);
}

/* Inputs of `site` in block `layer` computed by running blocks 0..layer-1
 * and observing block `layer`, one sequence at a time (independent of the
 * capture's batching). */
typedef struct grab {
  qf_rt_site site;
  float *dst;
  int64_t row;
} grab;

static qf_status grab_obs(void *user, int layer, qf_rt_site site,
                          const float *x, int64_t M, int64_t K, qf_error *err) {
  (void)layer;
  (void)err;
  grab *g = user;
  if (site == g->site) {
    memcpy(g->dst + g->row * K, x, (size_t)(M * K) * sizeof(float));
    g->row += M;
  }
  return QF_OK;
}

static float *explicit_inputs(qf_rt_model *m, const qf_token_set *t, int layer,
                              qf_rt_site site, int64_t K) {
  const qf_rt_config *c = qf_rt_get_config(m);
  int64_t T = qf_tokens_total(t);
  float *out = malloc((size_t)(T * K) * sizeof(float));
  grab g = {site, out, 0};
  qf_error err = {.struct_size = sizeof err};
  for (int64_t s = 0; s < t->n_seq; s++) {
    int64_t L = t->offsets[s + 1] - t->offsets[s];
    float *x = malloc((size_t)(L * c->hidden) * sizeof(float));
    cr_assert_eq(qf_rt_embed(m, t->ids + t->offsets[s], L, x, &err), QF_OK);
    for (int l = 0; l < layer; l++)
      cr_assert_eq(qf_rt_block(m, l, x, 1, L, NULL, &err), QF_OK, "%s",
                   err.message);
    qf_rt_block_opts o = {sizeof o, grab_obs, &g, site, 0, NULL, 0};
    cr_assert_eq(qf_rt_block(m, layer, x, 1, L, &o, &err), QF_OK);
    free(x);
  }
  cr_assert_eq(g.row, T);
  return out;
}

static void expect_hessian(const float *h, const float *x, int64_t K,
                           double tol, const char *what) {
  double *h64 = malloc((size_t)(K * K) * sizeof(double));
  mt_hessian64(x, k_lens, NSEQ, K, h64);
  double rel = mt_rel_maxdiff(h, h64, (size_t)(K * K));
  cr_log_info("%s: H vs float64 XᵀX: max rel diff %.3g", what, rel);
  cr_expect_lt(rel, tol, "%s: H differs from 2/n Σ XᵀX by %.3g", what, rel);
  free(h64);
}

Test(capture, hessian_is_xtx_in_float64) {
  fixture f;
  make_fixture(&f, 7);
  const qf_rt_config *c = qf_rt_get_config(f.m);
  int64_t H = c->hidden;
  /* layer-0 inputs by hand: embedding rows → RMSNorm in double */
  const float *emb, *nw;
  int64_t n;
  qf_error err = {.struct_size = sizeof err};
  float *x = malloc((size_t)(f.T * H) * sizeof(float));
  cr_assert_eq(qf_rt_tensor_f32(f.m, "model.embed_tokens.weight", &emb, &n, &err), QF_OK);
  float *e = malloc((size_t)(f.T * H) * sizeof(float));
  for (int64_t t = 0; t < f.T; t++)
    memcpy(e + t * H, emb + (int64_t)f.tok->ids[t] * H, (size_t)H * sizeof(float));
  cr_assert_eq(qf_rt_tensor_f32(f.m, "model.layers.0.input_layernorm.weight", &nw, &n, &err), QF_OK);
  for (int64_t t = 0; t < f.T; t++) {
    double ss = 0;
    for (int64_t i = 0; i < H; i++) ss += (double)e[t * H + i] * e[t * H + i];
    double inv = 1.0 / sqrt(ss / (double)H + c->rms_eps);
    for (int64_t i = 0; i < H; i++) x[t * H + i] = (float)(nw[i] * e[t * H + i] * inv);
  }
  qf_capture *cap;
  qf_capture_options o;
  qf_capture_options_default(&o);
  o.batch_size = 2;
  cr_assert_eq(qf_capture_new(f.m, f.tok, &o, &cap, &err), QF_OK, "%s", err.message);
  const float *h;
  int64_t k, ns;
  cr_assert_eq(qf_capture_hessian(cap, "model.layers.0.self_attn.q_proj.weight",
                                  &h, &k, &ns, &err), QF_OK, "%s", err.message);
  cr_assert_eq(k, H);
  cr_expect_eq(ns, NSEQ);
  expect_hessian(h, x, H, 1e-5, "layer 0 q_proj");
  float *hq = malloc((size_t)(k * k) * sizeof(float));
  memcpy(hq, h, (size_t)(k * k) * sizeof(float));
  cr_assert_eq(qf_capture_hessian(cap, "model.layers.0.self_attn.v_proj.weight",
                                  &h, &k, NULL, &err), QF_OK);
  cr_expect_eq(memcmp(hq, h, (size_t)(k * k) * sizeof(float)), 0,
               "q/k/v share one Hessian");
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++) cr_assert_eq(h[i * k + j], h[j * k + i]);
  /* importance = mean x² per column */
  const float *v;
  cr_assert_eq(qf_capture_importance(cap, "model.layers.0.self_attn.k_proj.weight",
                                     &v, &k, &err), QF_OK);
  for (int64_t i = 0; i < H; i++) {
    double s = 0;
    for (int64_t t = 0; t < f.T; t++) s += (double)x[t * H + i] * x[t * H + i];
    cr_expect_lt(fabs(v[i] - s / (double)f.T), 1e-5 * (1 + s / (double)f.T));
  }
  /* later sites and blocks against inputs observed one sequence at a time */
  static const struct {
    const char *name;
    int layer;
    qf_rt_site site;
  } cases[] = {
      {"model.layers.0.self_attn.o_proj.weight", 0, QF_RT_SITE_O_IN},
      {"model.layers.0.mlp.up_proj.weight", 0, QF_RT_SITE_MLP_IN},
      {"model.layers.0.mlp.down_proj.weight", 0, QF_RT_SITE_DOWN_IN},
      {"model.layers.1.self_attn.k_proj.weight", 1, QF_RT_SITE_ATTN_IN},
      {"model.layers.1.mlp.down_proj.weight", 1, QF_RT_SITE_DOWN_IN}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    cr_assert_eq(qf_capture_hessian(cap, cases[i].name, &h, &k, NULL, &err),
                 QF_OK, "%s", err.message);
    float *xi = explicit_inputs(f.m, f.tok, cases[i].layer, cases[i].site, k);
    expect_hessian(h, xi, k, 1e-4, cases[i].name);
    free(xi);
  }
  cr_expect_eq(qf_capture_layer(cap), 1);
  /* going back recomputes from the embeddings */
  cr_assert_eq(qf_capture_hessian(cap, "model.layers.0.self_attn.q_proj.weight",
                                  &h, &k, NULL, &err), QF_OK);
  cr_expect_eq(memcmp(hq, h, (size_t)(k * k) * sizeof(float)), 0);
  cr_expect_eq(qf_capture_hessian(cap, "lm_head.weight", &h, &k, NULL, &err),
               QF_ERR_NOT_FOUND);
  qf_capture_free(cap);
  free(hq);
  free(x);
  free(e);
  free_fixture(&f);
}

/* Hessian of `name` through a capture in `mode` while "quantizing" (the
 * perturb hook) each module of block 0 right after its Hessian was read. */
static float *walk(fixture *f, qf_capture_mode mode, mt_perturb *p,
                   const char *name, float **o_proj_h) {
  qf_capture *cap;
  qf_capture_options o;
  qf_capture_options_default(&o);
  o.mode = mode;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_capture_new(f->m, f->tok, &o, &cap, &err), QF_OK);
  const float *h;
  int64_t k;
  for (int mod = 0; mod < QF_RT_MODULE_COUNT; mod++) {
    char nm[96];
    qf_rt_linear_name(0, (qf_rt_module)mod, nm, sizeof nm);
    cr_assert_eq(qf_capture_hessian(cap, nm, &h, &k, NULL, &err), QF_OK, "%s",
                 err.message);
    if (mod == QF_RT_O && o_proj_h) {
      *o_proj_h = malloc((size_t)(k * k) * sizeof(float));
      memcpy(*o_proj_h, h, (size_t)(k * k) * sizeof(float));
    }
    mt_perturb_add(p, nm);
  }
  cr_assert_eq(qf_capture_hessian(cap, name, &h, &k, NULL, &err), QF_OK);
  float *copy = malloc((size_t)(k * k) * sizeof(float));
  memcpy(copy, h, (size_t)(k * k) * sizeof(float));
  qf_capture_free(cap);
  return copy;
}

Test(capture, sequential_feeds_quantized_or_float_outputs) {
  fixture f;
  make_fixture(&f, 11);
  int64_t H = qf_rt_get_config(f.m)->hidden;
  const char *next = "model.layers.1.self_attn.q_proj.weight";
  mt_perturb p = {.delta = 0.05f};
  qf_rt_set_linear(f.m, mt_perturb_hook, &p, 0);
  float *o_h = NULL;
  float *h_gptq = walk(&f, QF_CAPTURE_QUANTIZED, &p, next, &o_h);
  /* expected: block 0 entirely perturbed, then the input of block 1 */
  float *x_q = explicit_inputs(f.m, f.tok, 1, QF_RT_SITE_ATTN_IN, H);
  expect_hessian(h_gptq, x_q, H, 1e-4, "GPTQ block 1 fed by quantized block 0");
  /* true sequential: o_proj's inputs came from perturbed q/k/v only */
  mt_perturb q = {.delta = 0.05f};
  for (int mod = QF_RT_Q; mod <= QF_RT_V; mod++) {
    char nm[96];
    qf_rt_linear_name(0, (qf_rt_module)mod, nm, sizeof nm);
    mt_perturb_add(&q, nm);
  }
  qf_rt_set_linear(f.m, mt_perturb_hook, &q, 0);
  int64_t qd = qf_rt_get_config(f.m)->n_heads * qf_rt_get_config(f.m)->head_dim;
  float *x_o = explicit_inputs(f.m, f.tok, 0, QF_RT_SITE_O_IN, qd);
  expect_hessian(o_h, x_o, qd, 1e-4, "o_proj after quantized q/k/v");
  /* AWQ mode: block 1 sees the float block 0 whatever the hook does */
  mt_perturb r = {.delta = 0.05f};
  qf_rt_set_linear(f.m, mt_perturb_hook, &r, 0);
  float *h_awq = walk(&f, QF_CAPTURE_FLOAT, &r, next, NULL);
  qf_rt_set_linear(f.m, NULL, NULL, 0);
  float *x_f = explicit_inputs(f.m, f.tok, 1, QF_RT_SITE_ATTN_IN, H);
  expect_hessian(h_awq, x_f, H, 1e-4, "AWQ block 1 fed by float block 0");
  double *h64 = malloc((size_t)(H * H) * sizeof(double));
  mt_hessian64(x_f, k_lens, NSEQ, H, h64);
  double diff = mt_rel_maxdiff(h_gptq, h64, (size_t)(H * H));
  cr_expect_gt(diff, 1e-3, "the perturbation must show in block 1 (%.3g)", diff);
  free(h64);
  mt_perturb_clear(&p);
  mt_perturb_clear(&q);
  mt_perturb_clear(&r);
  free(h_gptq);
  free(h_awq);
  free(o_h);
  free(x_q);
  free(x_o);
  free(x_f);
  free_fixture(&f);
}

Test(capture, awq_inputs_and_part_forwards) {
  fixture f;
  make_fixture(&f, 5);
  const qf_rt_config *c = qf_rt_get_config(f.m);
  qf_capture *cap;
  qf_capture_options o;
  qf_capture_options_default(&o);
  o.mode = QF_CAPTURE_FLOAT;
  o.batch_size = 3;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_capture_new(f.m, f.tok, &o, &cap, &err), QF_OK);
  cr_expect_eq(qf_capture_tokens(cap), f.T);
  const float *x;
  int64_t T, K;
  cr_assert_eq(qf_capture_inputs(cap, 1, QF_RT_SITE_DOWN_IN, &x, &T, &K, &err),
               QF_OK, "%s", err.message);
  cr_expect_eq(T, f.T);
  cr_expect_eq(K, c->intermediate);
  float *xe = explicit_inputs(f.m, f.tok, 1, QF_RT_SITE_DOWN_IN, K);
  double md = 0, mx = 0;
  for (int64_t i = 0; i < T * K; i++) {
    md = fmax(md, fabs(x[i] - xe[i]));
    mx = fmax(mx, fabs(xe[i]));
  }
  cr_expect_lt(md, 1e-5 * mx, "captured down_proj inputs differ by %g (max %g)",
               md, mx);
  free(xe);
  double mse = -1;
  cr_assert_eq(qf_capture_part_mse(cap, 1, QF_CAPTURE_PART_ATTN, NULL, 0, &mse, &err), QF_OK);
  cr_expect_eq(mse, 0.0);
  /* a trial q_proj = 1.1 · W changes the attention output */
  const float *w;
  int64_t n;
  cr_assert_eq(qf_rt_tensor_f32(f.m, "model.layers.1.self_attn.q_proj.weight", &w, &n, &err), QF_OK);
  float *w2 = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) w2[i] = 1.1f * w[i];
  qf_rt_override ov = {"model.layers.1.self_attn.q_proj.weight", w2};
  cr_assert_eq(qf_capture_part_mse(cap, 1, QF_CAPTURE_PART_ATTN, &ov, 1, &mse, &err), QF_OK);
  cr_expect_gt(mse, 0.0);
  double mse_mlp = -1;
  cr_assert_eq(qf_capture_part_mse(cap, 1, QF_CAPTURE_PART_MLP, &ov, 1, &mse_mlp, &err), QF_OK);
  cr_expect_eq(mse_mlp, 0.0, "q_proj does not reach the MLP part");
  /* the whole block from its input equals running the block */
  float *y = malloc((size_t)(f.T * c->hidden) * sizeof(float));
  cr_assert_eq(qf_capture_part_forward(cap, 0, QF_CAPTURE_PART_BLOCK, NULL, 0, y, &err), QF_OK);
  float *xb = malloc((size_t)(f.T * c->hidden) * sizeof(float));
  cr_assert_eq(qf_rt_embed(f.m, f.tok->ids, f.T, xb, &err), QF_OK);
  for (int64_t s = 0; s < NSEQ; s++) {
    int64_t off = f.tok->offsets[s];
    cr_assert_eq(qf_rt_block(f.m, 0, xb + off * c->hidden, 1, k_lens[s], NULL, &err), QF_OK);
  }
  md = 0;
  mx = 0;
  for (int64_t i = 0; i < f.T * c->hidden; i++) {
    md = fmax(md, fabs(y[i] - xb[i]));
    mx = fmax(mx, fabs(xb[i]));
  }
  cr_expect_lt(md, 1e-5 * mx, "block output differs by %g (max %g)", md, mx);
  /* trial weights in either half: the cached-attention path (MLP trial)
   * and the full path (attention trial) against running the block */
  const char *trial[2] = {"model.layers.0.mlp.gate_proj.weight",
                          "model.layers.0.self_attn.k_proj.weight"};
  for (int i = 0; i < 2; i++) {
    const float *w0;
    cr_assert_eq(qf_rt_tensor_f32(f.m, trial[i], &w0, &n, &err), QF_OK);
    float *wt = malloc((size_t)n * sizeof(float));
    for (int64_t j = 0; j < n; j++) wt[j] = 0.9f * w0[j];
    qf_rt_override tov = {trial[i], wt};
    cr_assert_eq(qf_capture_part_forward(cap, 0, QF_CAPTURE_PART_BLOCK, &tov, 1,
                                         y, &err), QF_OK, "%s", err.message);
    qf_rt_block_opts bo = {sizeof bo, NULL, NULL, QF_RT_SITE_COUNT, 1, &tov, 1};
    cr_assert_eq(qf_rt_embed(f.m, f.tok->ids, f.T, xb, &err), QF_OK);
    for (int64_t s = 0; s < NSEQ; s++) {
      int64_t off = f.tok->offsets[s];
      cr_assert_eq(qf_rt_block(f.m, 0, xb + off * c->hidden, 1, k_lens[s], &bo,
                               &err), QF_OK);
    }
    md = 0;
    double moved = 0;
    for (int64_t j = 0; j < f.T * c->hidden; j++) md = fmax(md, fabs(y[j] - xb[j]));
    cr_expect_lt(md, 1e-5 * mx, "%s trial: block output differs by %g", trial[i], md);
    cr_assert_eq(qf_capture_part_forward(cap, 0, QF_CAPTURE_PART_BLOCK, NULL, 0,
                                         y, &err), QF_OK);
    for (int64_t j = 0; j < f.T * c->hidden; j++) moved = fmax(moved, fabs(y[j] - xb[j]));
    cr_expect_gt(moved, 1e-4 * mx, "%s trial must change the output", trial[i]);
    free(wt);
  }
  /* the qf_calib wrapper owns the capture */
  qf_calib *calib;
  cr_assert_eq(qf_calib_new_capture(cap, &calib, &err), QF_OK);
  cr_expect_eq(qf_calib_get_capture(calib), cap);
  qf_calib *st = qf_calib_new_static();
  cr_expect_null(qf_calib_get_capture(st));
  qf_calib_free(st);
  qf_calib_free(calib);
  free(w2);
  free(y);
  free(xb);
  free_fixture(&f);
}

/* y[M, N] = x[M, K] · wᵀ in float64 (w is [N, K]). */
static void matmul_t64(const float *x, const float *w, int64_t M, int64_t K,
                       int64_t N, double *y) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double)x[i * K + k] * w[j * K + k];
      y[i * N + j] = s;
    }
}

static const float *weight(qf_rt_model *m, const char *name) {
  const float *w;
  int64_t n;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_rt_tensor_f32(m, name, &w, &n, &err), QF_OK, "%s", err.message);
  return w;
}

/* max |a - b| <= tol · max |b| */
static void expect_close(const float *a, const double *b, size_t n, double tol,
                         const char *what) {
  double d = mt_rel_maxdiff(a, b, n);
  cr_expect_lt(d, tol, "%s differs by %g (relative)", what, d);
}

static int same(const float *a, const float *b, size_t n) {
  return !memcmp(a, b, n * sizeof(float));
}

Test(capture, abi_part_forward) {
  fixture f;
  make_fixture(&f, 9);
  const qf_rt_config *c = qf_rt_get_config(f.m);
  const int64_t H = c->hidden, I = c->intermediate, T = f.T;
  const int64_t QD = c->n_heads * c->head_dim;
  const size_t n_out = (size_t)(T * H);
  qf_capture *cap;
  qf_capture_options o;
  qf_capture_options_default(&o);
  o.mode = QF_CAPTURE_FLOAT;
  o.batch_size = 2;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_capture_new(f.m, f.tok, &o, &cap, &err), QF_OK);
  qf_calib *calib;
  cr_assert_eq(qf_calib_new_capture(cap, &calib, &err), QF_OK);
  const qf_host *h = qf_host_table();
  cr_assert(QF_HAS_FIELD(h, qf_host, calib_part_forward) && h->calib_part_forward);
  const char *anchor = "model.layers.1.input_layernorm.weight";

  /* independent float parts of block 1 */
  double *ref[3];
  for (int p = 0; p < 3; p++) ref[p] = malloc(n_out * sizeof(double));
  float *xo = explicit_inputs(f.m, f.tok, 1, QF_RT_SITE_O_IN, QD);
  matmul_t64(xo, weight(f.m, "model.layers.1.self_attn.o_proj.weight"), T, QD, H,
             ref[QF_CALIB_PART_ATTN]);
  float *xm = explicit_inputs(f.m, f.tok, 1, QF_RT_SITE_MLP_IN, H);
  double *g = malloc((size_t)(T * I) * sizeof(double));
  double *u = malloc((size_t)(T * I) * sizeof(double));
  matmul_t64(xm, weight(f.m, "model.layers.1.mlp.gate_proj.weight"), T, H, I, g);
  matmul_t64(xm, weight(f.m, "model.layers.1.mlp.up_proj.weight"), T, H, I, u);
  float *act = malloc((size_t)(T * I) * sizeof(float));
  for (int64_t i = 0; i < T * I; i++)
    act[i] = (float)(g[i] / (1.0 + exp(-g[i])) * u[i]);
  matmul_t64(act, weight(f.m, "model.layers.1.mlp.down_proj.weight"), T, I, H,
             ref[QF_CALIB_PART_MLP]);
  float *xb = malloc(n_out * sizeof(float));
  for (int64_t s = 0; s < NSEQ; s++) {
    int64_t off = f.tok->offsets[s], L = k_lens[s];
    cr_assert_eq(qf_rt_embed(f.m, f.tok->ids + off, L, xb + off * H, &err), QF_OK);
    for (int l = 0; l < 2; l++)
      cr_assert_eq(qf_rt_block(f.m, l, xb + off * H, 1, L, NULL, &err), QF_OK);
  }
  for (size_t i = 0; i < n_out; i++) ref[QF_CALIB_PART_BLOCK][i] = xb[i];

  /* n = 0: the float parts */
  float *y[3], *yt = malloc(n_out * sizeof(float));
  static const char *const what[3] = {"attention", "MLP", "block"};
  for (int p = 0; p < 3; p++) {
    y[p] = malloc(n_out * sizeof(float));
    cr_assert_eq(h->calib_part_forward(calib, anchor, p, NULL, NULL, 0, y[p], &err), QF_OK,
                 "%s", err.message);
    expect_close(y[p], ref[p], n_out, 1e-5, what[p]);
  }
  /* calib_block_forward is the BLOCK part */
  cr_assert_eq(h->calib_block_forward(calib, anchor, NULL, NULL, 0, yt, &err), QF_OK);
  cr_expect(same(yt, y[QF_CALIB_PART_BLOCK], n_out));

  /* a trial weight moves its own part (and the block) only */
  static const char *const trial[2] = {"model.layers.1.self_attn.v_proj.weight",
                                       "model.layers.1.mlp.up_proj.weight"};
  for (int t = 0; t < 2; t++) {
    int64_t rows = t ? I : c->n_kv_heads * c->head_dim;
    const float *w0 = weight(f.m, trial[t]);
    float *wt = malloc((size_t)(rows * H) * sizeof(float));
    for (int64_t i = 0; i < rows * H; i++) wt[i] = 0.8f * w0[i];
    int64_t shape[2] = {rows, H};
    DLTensor dt = qf_cpu_tensor(wt, qf_dl_dtype(kDLFloat, 32), 2, shape);
    for (int p = 0; p < 3; p++) {
      cr_assert_eq(h->calib_part_forward(calib, anchor, p, &trial[t], &dt, 1, yt, &err), QF_OK,
                   "%s", err.message);
      int own = p == QF_CALIB_PART_BLOCK || p == (t ? QF_CALIB_PART_MLP : QF_CALIB_PART_ATTN);
      if (own)
        cr_expect(!same(yt, y[p], n_out), "%s trial must change the %s", trial[t], what[p]);
      else
        cr_expect(same(yt, y[p], n_out), "%s trial must not change the %s", trial[t], what[p]);
    }
    free(wt);
  }

  /* bad part, trial from another block, no model calibration */
  cr_expect_eq(h->calib_part_forward(calib, anchor, 3, NULL, NULL, 0, yt, &err),
               QF_ERR_INVALID_ARGUMENT);
  const char *other = "model.layers.0.mlp.up_proj.weight";
  int64_t shape[2] = {I, H};
  DLTensor dt = qf_cpu_tensor(act, qf_dl_dtype(kDLFloat, 32), 2, shape);
  cr_expect_eq(h->calib_part_forward(calib, anchor, QF_CALIB_PART_MLP, &other, &dt, 1, yt, &err),
               QF_ERR_INVALID_ARGUMENT);
  qf_calib *st = qf_calib_new_static();
  cr_expect_eq(h->calib_part_forward(st, anchor, QF_CALIB_PART_ATTN, NULL, NULL, 0, yt, &err),
               QF_ERR_NOT_FOUND);
  cr_expect_eq(h->calib_part_forward(NULL, anchor, QF_CALIB_PART_ATTN, NULL, NULL, 0, yt, &err),
               QF_ERR_NOT_FOUND);
  qf_calib_free(st);

  for (int p = 0; p < 3; p++) {
    free(ref[p]);
    free(y[p]);
  }
  free(yt);
  free(xo);
  free(xm);
  free(g);
  free(u);
  free(act);
  free(xb);
  qf_calib_free(calib);
  free_fixture(&f);
}
