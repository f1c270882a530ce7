/*
 * Token files (.u32, .npy in int32/int64/uint32, JSON lists, text through a
 * tokenizer), windows and writers; the evaluation metrics as pure functions
 * and the model-pair driver; and the demo generator (determinism, shape,
 * sampled token sets, activation outliers, the speed budget of the demo).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_test_util.h"

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(p, 1, n, f), n);
  fclose(f);
}

static void npy(const char *path, const char *descr, const char *shape,
                const void *data, size_t nbytes) {
  char hdr[128];
  int hl = snprintf(hdr, sizeof hdr,
                    "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                    descr, shape);
  size_t total = 10 + (size_t)hl + 1;
  while (total % 64) total++;
  unsigned char *buf = calloc(1, total + nbytes);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)((total - 10) & 0xff);
  buf[9] = (unsigned char)((total - 10) >> 8);
  memset(buf + 10, ' ', total - 10);
  memcpy(buf + 10, hdr, (size_t)hl);
  buf[total - 1] = '\n';
  memcpy(buf + total, data, nbytes);
  write_bytes(path, buf, total + nbytes);
  free(buf);
}

Test(tokens, files_in_every_format) {
  char *d = mt_tmpdir("tok");
  qf_error err = {.struct_size = sizeof err};
  qf_token_set *t = NULL;
  char *p = mt_join(d, "a.u32");
  uint32_t raw[5] = {1, 2, 3, 70000, 5};
  write_bytes(p, raw, sizeof raw);
  cr_assert_eq(qf_tokens_load(p, NULL, &t, &err), QF_OK, "%s", err.message);
  cr_expect_eq(t->n_seq, 1);
  cr_expect_eq(qf_tokens_total(t), 5);
  cr_expect_eq(t->ids[3], 70000);
  cr_expect_eq(qf_tokens_max_id(t), 70001);
  qf_tokens_free(t);
  free(p);

  p = mt_join(d, "b.npy");
  int64_t i64[6] = {0, 1, 2, 3, 4, 5};
  npy(p, "<i8", "(2, 3)", i64, sizeof i64);
  cr_assert_eq(qf_tokens_load(p, NULL, &t, &err), QF_OK, "%s", err.message);
  cr_expect_eq(t->n_seq, 2);
  cr_expect_eq(t->offsets[1], 3);
  cr_expect_eq(t->ids[5], 5);
  /* write back as .npy (int32) and .u32, read again */
  char *p2 = mt_join(d, "c.npy");
  cr_assert_eq(qf_tokens_write_npy(p2, t, &err), QF_OK);
  qf_token_set *t2 = NULL;
  cr_assert_eq(qf_tokens_load(p2, NULL, &t2, &err), QF_OK, "%s", err.message);
  cr_expect_eq(t2->n_seq, 2);
  cr_expect_eq(memcmp(t2->ids, t->ids, 6 * sizeof(int32_t)), 0);
  qf_tokens_free(t2);
  free(p2);
  p2 = mt_join(d, "c.u32");
  cr_assert_eq(qf_tokens_write_u32(p2, t, &err), QF_OK);
  cr_assert_eq(qf_tokens_load(p2, NULL, &t2, &err), QF_OK);
  cr_expect_eq(qf_tokens_total(t2), 6);
  qf_tokens_free(t2);
  free(p2);
  qf_tokens_free(t);
  free(p);

  p = mt_join(d, "u.npy");
  uint32_t u32[3] = {7, 8, 9};
  npy(p, "<u4", "(3,)", u32, sizeof u32);
  cr_assert_eq(qf_tokens_load(p, NULL, &t, &err), QF_OK, "%s", err.message);
  cr_expect_eq(t->n_seq, 1);
  cr_expect_eq(t->ids[2], 9);
  qf_tokens_free(t);
  npy(p, "<f4", "(3,)", u32, sizeof u32);
  cr_expect_eq(qf_tokens_load(p, NULL, &t, &err), QF_ERR_FORMAT);
  cr_expect(strstr(err.message, "dtype"), "%s", err.message);
  npy(p, "<i4", "(30,)", u32, sizeof u32);
  cr_expect_eq(qf_tokens_load(p, NULL, &t, &err), QF_ERR_FORMAT);
  int32_t neg[2] = {1, -4};
  npy(p, "<i4", "(2,)", neg, sizeof neg);
  cr_expect_eq(qf_tokens_load(p, NULL, &t, &err), QF_ERR_FORMAT);
  free(p);

  p = mt_join(d, "d.json");
  write_bytes(p, "[[1, 2, 3], [4, 5]]", 19);
  cr_assert_eq(qf_tokens_load(p, NULL, &t, &err), QF_OK, "%s", err.message);
  cr_expect_eq(t->n_seq, 2);
  cr_expect_eq(t->offsets[2], 5);
  qf_token_set *w = NULL;
  cr_assert_eq(qf_tokens_windows(t, 2, 0, &w, &err), QF_OK);
  cr_expect_eq(w->n_seq, 2);
  cr_expect_eq(w->ids[3], 4);
  qf_tokens_free(w);
  cr_expect_eq(qf_tokens_windows(t, 9, 0, &w, &err), QF_ERR_INVALID_ARGUMENT);
  qf_tokens_free(t);
  write_bytes(p, "[1, 2, \"x\"]", 11);
  cr_expect_eq(qf_tokens_load(p, NULL, &t, &err), QF_ERR_FORMAT);
  free(p);

  p = mt_join(d, "e.txt");
  write_bytes(p, "the world", 9);
  cr_expect_eq(qf_tokens_load(p, NULL, &t, &err), QF_ERR_INVALID_ARGUMENT,
               "text needs a tokenizer");
  char *json = qf_demo_tokenizer_json(QF_TOKENIZER_BYTE_LEVEL, 2048);
  qf_tokenizer *tok;
  cr_assert_eq(qf_tokenizer_from_json(json, NULL, &tok, &err), QF_OK);
  free(json);
  cr_assert_eq(qf_tokens_load(p, tok, &t, &err), QF_OK, "%s", err.message);
  cr_expect_eq(qf_tokens_total(t), 3, "BOS, 'the', ' world'");
  cr_expect_eq(t->ids[0], qf_tokenizer_id(tok, "<|begin_of_text|>"));
  qf_tokens_free(t);
  qf_tokenizer_free(tok);
  free(p);
  mt_rmtree(d);
  free(d);
}

Test(eval, pure_metrics) {
  float u[4] = {0, 0, 0, 0};
  cr_expect_lt(fabs(qf_eval_nll(u, 4, 2) - log(4.0)), 1e-12);
  float a[2] = {0, (float)log(3.0)}; /* p = (1/4, 3/4) */
  float b[2] = {0, 0};               /* q = (1/2, 1/2) */
  double kl = 0.25 * log(0.5) + 0.75 * log(1.5);
  cr_expect_lt(fabs(qf_eval_kl(a, b, 2) - kl), 1e-7);
  cr_expect_eq(qf_eval_kl(a, a, 2), 0.0);
  float big[3] = {1000, 1001, 999};
  cr_expect(isfinite(qf_eval_nll(big, 3, 0)));
  cr_expect_eq(qf_eval_argmax(big, 3), 1);
  double num = 0, den = 0;
  float r[2] = {1, 2}, x[2] = {1, 3};
  qf_eval_sq_err(r, x, 2, &num, &den);
  cr_expect_eq(num, 1.0);
  cr_expect_eq(den, 5.0);
}

Test(eval, compare_a_model_pair) {
  qf_demo_config cfg;
  mt_tiny_config(&cfg);
  char *dir;
  qf_rt_model *ref = mt_make_model(&cfg, &dir);
  qf_rt_model *q = NULL;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_rt_open(dir, NULL, &q, &err), QF_OK);
  qf_token_set *t;
  cr_assert_eq(qf_demo_sample(ref, 3, 16, 4, &t, &err), QF_OK, "%s", err.message);
  qf_eval_report r = {.struct_size = sizeof r};
  cr_assert_eq(qf_eval_compare(ref, q, t, 2, &r, &err), QF_OK, "%s", err.message);
  cr_expect_eq(r.n_positions, 48);
  cr_expect_eq(r.n_predicted, 45);
  cr_expect_lt(r.kl_mean, 1e-9);
  cr_expect_eq(r.top1, 1.0);
  cr_expect_lt(fabs(r.ppl - r.ppl_ref), 1e-9 * r.ppl_ref);
  for (int l = 0; l < r.n_layers; l++) cr_expect_eq(r.layer_rel_err[l], 0.0);
  double ppl;
  cr_assert_eq(qf_eval_perplexity(ref, t, 0, &ppl, &err), QF_OK);
  cr_expect_lt(fabs(ppl - r.ppl_ref), 1e-6 * ppl);
  cr_expect_lt(ppl, (double)cfg.vocab, "sampled text is likelier than chance");
  /* a "quantized" model: every linear perturbed */
  mt_perturb p = {.delta = 0.02f};
  for (int l = 0; l < cfg.n_layers; l++)
    for (int m = 0; m < QF_RT_MODULE_COUNT; m++) {
      char nm[96];
      qf_rt_linear_name(l, (qf_rt_module)m, nm, sizeof nm);
      mt_perturb_add(&p, nm);
    }
  qf_rt_set_linear(q, mt_perturb_hook, &p, 0);
  cr_assert_eq(qf_eval_compare(ref, q, t, 2, &r, &err), QF_OK);
  cr_log_info("perturbed: ppl %.3f vs %.3f, KL %.4g, top-1 %.3f, layer err %.3g %.3g",
              r.ppl, r.ppl_ref, r.kl_mean, r.top1, r.layer_rel_err[0],
              r.layer_rel_err[1]);
  cr_expect_gt(r.kl_mean, 0.0);
  cr_expect_gt(r.layer_rel_err[0], 0.0);
  cr_expect_gt(r.layer_rel_err[1], r.layer_rel_err[0] * 0.5);
  qf_eval_report_clear(&r);
  mt_perturb_clear(&p);
  qf_tokens_free(t);
  qf_rt_free(q);
  qf_rt_free(ref);
  mt_rmtree(dir);
  free(dir);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

Test(demo, default_model_is_deterministic_and_quick, .timeout = 120) {
  qf_demo_config cfg;
  qf_demo_config_default(&cfg);
  char *a = mt_tmpdir("demoa"), *b = mt_tmpdir("demob");
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_demo_write(a, &cfg, &err), QF_OK, "%s", err.message);
  cr_assert_eq(qf_demo_write(b, &cfg, &err), QF_OK, "%s", err.message);
  char *fa = mt_join(a, "model.safetensors"), *fb = mt_join(b, "model.safetensors");
  char *da = NULL, *db = NULL;
  size_t na = 0, nb = 0;
  cr_assert_eq(qf_read_file(fa, &da, &na, &err), QF_OK);
  cr_assert_eq(qf_read_file(fb, &db, &nb, &err), QF_OK);
  cr_expect_eq(na, nb);
  cr_expect_eq(memcmp(da, db, na), 0, "the demo model must be deterministic");
  free(da);
  free(db);
  free(fa);
  free(fb);
  cr_assert_eq(qf_demo_write_tokens(a, 4, 4, 64, 1, &err), QF_OK, "%s", err.message);
  char *ev = mt_join(a, "eval.npy");
  qf_token_set *t;
  cr_assert_eq(qf_tokens_load(ev, NULL, &t, &err), QF_OK, "%s", err.message);
  cr_expect_eq(t->n_seq, 4);
  cr_expect_eq(qf_tokens_total(t), 256);
  qf_rt_model *m;
  cr_assert_eq(qf_rt_open(a, NULL, &m, &err), QF_OK);
  qf_tokenizer *tok;
  cr_assert_eq(qf_tokenizer_load(a, &tok, &err), QF_OK, "%s", err.message);
  cr_expect_eq(qf_tokenizer_size(tok), cfg.vocab);
  cr_expect_eq(t->ids[0], qf_tokenizer_id(tok, "<|begin_of_text|>"));
  char *text;
  cr_expect_eq(qf_tokenizer_decode(tok, t->ids, 64, &text, &err), QF_OK);
  free(text);
  qf_tokenizer_free(tok);
  double t0 = now(), ppl;
  cr_assert_eq(qf_eval_perplexity(m, t, 4, &ppl, &err), QF_OK);
  double dt = now() - t0;
  cr_log_info("demo: eval forward of 256 tokens in %.3f s, ppl %.2f", dt, ppl);
  cr_expect_lt(ppl, 0.5 * (double)cfg.vocab);
  /* activation outliers: a few ATTN_IN channels dominate the importance */
  qf_capture *cap;
  cr_assert_eq(qf_capture_new(m, t, NULL, &cap, &err), QF_OK);
  const float *v;
  int64_t k;
  cr_assert_eq(qf_capture_importance(cap, "model.layers.2.self_attn.q_proj.weight",
                                     &v, &k, &err), QF_OK);
  float *s = malloc((size_t)k * sizeof(float));
  memcpy(s, v, (size_t)k * sizeof(float));
  int big = 0;
  float mx = 0;
  for (int64_t i = 0; i < k; i++) mx = fmaxf(mx, s[i]);
  double mean = 0;
  for (int64_t i = 0; i < k; i++) mean += s[i] / (double)k;
  for (int64_t i = 0; i < k; i++) big += s[i] > 10 * mean / 4;
  cr_expect_gt(mx, 20 * mean, "outlier channels expected (max %g, mean %g)", mx, mean);
  cr_expect_leq(big, 2 * cfg.n_outlier_channels);
  free(s);
  qf_capture_free(cap);
  qf_rt_free(m);
  qf_tokens_free(t);
  free(ev);
  mt_rmtree(a);
  mt_rmtree(b);
  free(a);
  free(b);
}
