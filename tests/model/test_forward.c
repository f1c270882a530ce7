/*
 * Forward pass of the model runtime: logits against the independent Python
 * reference (tests/model/reference_forward.py, torch in float64) on
 * generated models covering f32 / bf16 / f16 weights, GQA and plain
 * multi-head attention, tied and untied heads, Qwen2 q/k/v biases, llama3
 * rope scaling and sharded checkpoints; plus KV-cache decoding against the
 * full forward, the linear hook, and config errors.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_test_util.h"

#define NCASE 6
#define B 2
#define L 24

typedef struct ref_case {
  const char *label;
  qf_demo_config cfg;
  char *dir;
  char *out;
  float *logits;
  int32_t tokens[B * L];
} ref_case;

static void setup_cases(ref_case *c) {
  for (int i = 0; i < NCASE; i++) mt_tiny_config(&c[i].cfg);
  c[0].label = "f32 gqa untied llama";
  c[1].label = "bf16 mha tied";
  c[1].cfg.dtype = QF_DTYPE_BF16;
  c[1].cfg.n_kv_heads = 4;
  c[1].cfg.tie_word_embeddings = 1;
  c[2].label = "qwen2 biases f16";
  c[2].cfg.model_type = "qwen2";
  c[2].cfg.qkv_bias = 1;
  c[2].cfg.dtype = QF_DTYPE_F16;
  c[2].cfg.n_kv_heads = 1;
  c[3].label = "llama3 rope scaling bf16";
  c[3].cfg.dtype = QF_DTYPE_BF16;
  c[3].cfg.rope_llama3 = 1;
  c[3].cfg.rope_factor = 8;
  c[3].cfg.rope_low_freq_factor = 1;
  c[3].cfg.rope_high_freq_factor = 4;
  c[3].cfg.rope_original_max_position = 16;
  c[3].cfg.rope_theta = 500000;
  c[4].label = "sharded mistral, head_dim != hidden/heads";
  c[4].cfg.model_type = "mistral";
  c[4].cfg.shard_bytes = 60000;
  c[4].cfg.head_dim = 8;
  c[5].label = "three layers, tied, f32";
  c[5].cfg.n_layers = 3;
  c[5].cfg.tie_word_embeddings = 1;
  c[5].cfg.seed = 99;
}

static const char *python(void) {
  const char *p = getenv("QF_MODEL_PYTHON");
  return p && *p ? p : "python3";
}

Test(forward, matches_python_reference, .timeout = 300) {
  ref_case c[NCASE];
  memset(c, 0, sizeof c);
  setup_cases(c);
  char *work = mt_tmpdir("ref");
  json_t *manifest = json_array();
  for (int i = 0; i < NCASE; i++) {
    qf_rt_model *m = mt_make_model(&c[i].cfg, &c[i].dir);
    int64_t V = qf_rt_get_config(m)->vocab;
    mt_tokens(c[i].tokens, B * L, V, 17 + (uint64_t)i);
    c[i].logits = malloc((size_t)(B * L * V) * sizeof(float));
    qf_error err = {.struct_size = sizeof err};
    qf_status st = qf_rt_forward(m, c[i].tokens, B, L, NULL, c[i].logits, 0,
                                 &err);
    cr_assert_eq(st, QF_OK, "%s: %s", c[i].label, err.message);
    qf_rt_free(m);
    char name[32];
    snprintf(name, sizeof name, "logits%d.f32", i);
    c[i].out = mt_join(work, name);
    json_t *toks = json_array();
    for (int b = 0; b < B; b++) {
      json_t *row = json_array();
      for (int t = 0; t < L; t++)
        json_array_append_new(row, json_integer(c[i].tokens[b * L + t]));
      json_array_append_new(toks, row);
    }
    json_array_append_new(manifest, json_pack("{s:s,s:o,s:s}", "dir",
                                              c[i].dir, "tokens", toks, "out",
                                              c[i].out));
  }
  char *mpath = mt_join(work, "manifest.json");
  cr_assert_eq(json_dump_file(manifest, mpath, 0), 0);
  json_decref(manifest);
  const char *src = getenv("QF_SOURCE_DIR");
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "\"%s\" \"%s/tests/model/reference_forward.py\" \"%s\"",
           python(), src ? src : ".", mpath);
  int rc = system(cmd);
  cr_assert_eq(rc, 0,
               "the Python reference failed (rc %d): it needs python3 with "
               "torch and numpy (set QF_MODEL_PYTHON); command: %s", rc, cmd);
  for (int i = 0; i < NCASE; i++) {
    int64_t V = c[i].cfg.vocab, n = B * L * V;
    FILE *f = fopen(c[i].out, "rb");
    cr_assert(f, "%s: no reference output", c[i].label);
    float *ref = malloc((size_t)n * sizeof(float));
    cr_assert_eq(fread(ref, sizeof(float), (size_t)n, f), (size_t)n);
    fclose(f);
    double md = 0, mr = 0;
    int argmax_eq = 0;
    for (int64_t r = 0; r < B * L; r++) {
      argmax_eq += qf_eval_argmax(ref + r * V, V) ==
                   qf_eval_argmax(c[i].logits + r * V, V);
      for (int64_t v = 0; v < V; v++) {
        double d = fabs((double)ref[r * V + v] - c[i].logits[r * V + v]);
        if (d > md) md = d;
        if (fabs(ref[r * V + v]) > mr) mr = fabs(ref[r * V + v]);
      }
    }
    cr_log_info("%s: max |diff| %.3g over max |logit| %.3g (rel %.2g)",
                c[i].label, md, mr, md / mr);
    cr_expect_lt(md / mr, 1e-4, "%s: logits differ from the reference by "
                 "%.3g relative", c[i].label, md / mr);
    cr_expect_geq(argmax_eq, B * L - 1, "%s: argmax agrees on %d of %d",
                  c[i].label, argmax_eq, B * L);
    free(ref);
    free(c[i].logits);
    free(c[i].out);
    mt_rmtree(c[i].dir);
    free(c[i].dir);
  }
  free(mpath);
  mt_rmtree(work);
  free(work);
}

Test(forward, kv_cache_matches_full_forward) {
  qf_demo_config cfg;
  mt_tiny_config(&cfg);
  cfg.dtype = QF_DTYPE_BF16;
  char *dir;
  qf_rt_model *m = mt_make_model(&cfg, &dir);
  int64_t V = cfg.vocab;
  int32_t tok[B * L];
  mt_tokens(tok, B * L, V, 5);
  float *full = malloc((size_t)(B * L * V) * sizeof(float));
  float *step = malloc((size_t)(B * V) * sizeof(float));
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_rt_forward(m, tok, B, L, NULL, full, 0, &err), QF_OK, "%s",
               err.message);
  qf_rt_kv *kv;
  cr_assert_eq(qf_rt_kv_new(m, B, L, &kv, &err), QF_OK);
  /* prefill 10 tokens, then one at a time */
  int32_t pre[B * 10];
  for (int b = 0; b < B; b++) memcpy(pre + b * 10, tok + b * L, 10 * sizeof(int32_t));
  float *pl = malloc((size_t)(B * V) * sizeof(float));
  cr_assert_eq(qf_rt_forward(m, pre, B, 10, kv, pl, QF_RT_LOGITS_LAST, &err),
               QF_OK, "%s", err.message);
  double md = 0;
  for (int b = 0; b < B; b++)
    for (int64_t v = 0; v < V; v++)
      md = fmax(md, fabs(pl[b * V + v] - full[(b * L + 9) * V + v]));
  for (int t = 10; t < L; t++) {
    int32_t cur[B];
    for (int b = 0; b < B; b++) cur[b] = tok[b * L + t];
    cr_assert_eq(qf_rt_forward(m, cur, B, 1, kv, step, QF_RT_LOGITS_LAST, &err),
                 QF_OK, "%s", err.message);
    for (int b = 0; b < B; b++)
      for (int64_t v = 0; v < V; v++)
        md = fmax(md, fabs(step[b * V + v] - full[(b * L + t) * V + v]));
  }
  cr_expect_lt(md, 1e-4, "incremental logits differ by %g", md);
  cr_expect_eq(qf_rt_kv_len(kv), L);
  int32_t one[B] = {0, 0};
  cr_expect_neq(qf_rt_forward(m, one, B, 1, kv, step, 0, &err), QF_OK,
                "a full cache must refuse more tokens");
  qf_rt_kv_free(kv);
  free(full);
  free(step);
  free(pl);
  qf_rt_free(m);
  mt_rmtree(dir);
  free(dir);
}

typedef struct count_hook {
  int calls, lm_head;
} count_hook;

static qf_status counting(void *user, qf_rt_model *m, const char *name,
                          const float *x, int64_t M, int64_t K, float *y,
                          int64_t N, qf_error *err) {
  count_hook *c = user;
  c->calls++;
  if (!strcmp(name, "lm_head.weight")) c->lm_head++;
  return qf_rt_linear_float(NULL, m, name, x, M, K, y, N, err);
}

Test(forward, every_linear_goes_through_the_hook) {
  qf_demo_config cfg;
  mt_tiny_config(&cfg);
  cfg.qkv_bias = 1;
  cfg.tie_word_embeddings = 1;
  char *dir;
  qf_rt_model *m = mt_make_model(&cfg, &dir);
  int64_t V = cfg.vocab;
  int32_t tok[8];
  mt_tokens(tok, 8, V, 3);
  float *a = malloc((size_t)(8 * V) * sizeof(float));
  float *b = malloc((size_t)(8 * V) * sizeof(float));
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_rt_forward(m, tok, 1, 8, NULL, a, 0, &err), QF_OK);
  count_hook ch = {0, 0};
  qf_rt_set_linear(m, counting, &ch, 0);
  cr_assert_eq(qf_rt_forward(m, tok, 1, 8, NULL, b, 0, &err), QF_OK, "%s",
               err.message);
  cr_expect_eq(ch.calls, 2 * 7 + 1);
  cr_expect_eq(ch.lm_head, 1);
  cr_expect_eq(memcmp(a, b, (size_t)(8 * V) * sizeof(float)), 0,
               "the float hook must reproduce the default path exactly");
  /* a hook that claims to add the bias: q/k/v outputs lose the bias */
  qf_rt_set_linear(m, counting, &ch, QF_RT_LINEAR_ADDS_BIAS);
  cr_assert_eq(qf_rt_forward(m, tok, 1, 8, NULL, b, 0, &err), QF_OK);
  cr_expect_neq(memcmp(a, b, (size_t)(8 * V) * sizeof(float)), 0);
  qf_rt_set_linear(m, NULL, NULL, 0);
  cr_assert_eq(qf_rt_forward(m, tok, 1, 8, NULL, b, 0, &err), QF_OK);
  cr_expect_eq(memcmp(a, b, (size_t)(8 * V) * sizeof(float)), 0);
  int32_t bad = (int32_t)V;
  cr_expect_eq(qf_rt_forward(m, &bad, 1, 1, NULL, b, 0, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(err.message, "vocabulary"), "%s", err.message);
  free(a);
  free(b);
  qf_rt_free(m);
  mt_rmtree(dir);
  free(dir);
}

Test(forward, tiny_cache_budget_gives_identical_logits) {
  qf_demo_config cfg;
  mt_tiny_config(&cfg);
  cfg.dtype = QF_DTYPE_BF16;
  char *dir;
  qf_rt_model *m = mt_make_model(&cfg, &dir);
  qf_rt_model *small = NULL;
  qf_error err = {.struct_size = sizeof err};
  qf_rt_options o = {sizeof o, 1, 4096};
  cr_assert_eq(qf_rt_open(dir, &o, &small, &err), QF_OK);
  int32_t tok[12];
  mt_tokens(tok, 12, cfg.vocab, 8);
  float *a = malloc((size_t)(12 * cfg.vocab) * sizeof(float));
  float *b = malloc((size_t)(12 * cfg.vocab) * sizeof(float));
  cr_assert_eq(qf_rt_forward(m, tok, 1, 12, NULL, a, 0, &err), QF_OK);
  cr_assert_eq(qf_rt_forward(small, tok, 1, 12, NULL, b, 0, &err), QF_OK);
  cr_expect_eq(memcmp(a, b, (size_t)(12 * cfg.vocab) * sizeof(float)), 0);
  free(a);
  free(b);
  qf_rt_free(small);
  qf_rt_free(m);
  mt_rmtree(dir);
  free(dir);
}

Test(forward, config_errors_name_the_field) {
  qf_rt_config c;
  qf_error err = {.struct_size = sizeof err};
  cr_expect_eq(qf_rt_config_parse("{\"model_type\": \"gpt2\"}", &c, &err),
               QF_ERR_UNSUPPORTED);
  cr_expect(strstr(err.message, "model_type"), "%s", err.message);
  const char *base =
      "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":"
      "128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":"
      "100%s}";
  char buf[512];
  snprintf(buf, sizeof buf, base, ",\"rope_scaling\":{\"rope_type\":\"yarn\","
           "\"factor\":4}");
  cr_expect_eq(qf_rt_config_parse(buf, &c, &err), QF_ERR_UNSUPPORTED);
  cr_expect(strstr(err.message, "yarn"), "%s", err.message);
  snprintf(buf, sizeof buf, base, ",\"num_key_value_heads\":3");
  cr_expect_eq(qf_rt_config_parse(buf, &c, &err), QF_ERR_FORMAT);
  snprintf(buf, sizeof buf, base, ",\"hidden_act\":\"gelu\"");
  cr_expect_eq(qf_rt_config_parse(buf, &c, &err), QF_ERR_UNSUPPORTED);
  snprintf(buf, sizeof buf, base, "");
  cr_assert_eq(qf_rt_config_parse(buf, &c, &err), QF_OK, "%s", err.message);
  cr_expect_eq(c.n_kv_heads, 4);
  cr_expect_eq(c.head_dim, 16);
  cr_expect_eq(c.tie_word_embeddings, 0);
  cr_expect_eq(c.rope_theta, 10000.0);
  cr_expect_eq(qf_rt_config_parse("{\"model_type\":\"llama\"}", &c, &err),
               QF_ERR_FORMAT);
  cr_expect(strstr(err.message, "hidden_size"), "%s", err.message);
}

Test(forward, names_and_ranks) {
  char buf[128];
  qf_rt_linear_name(3, QF_RT_UP, buf, sizeof buf);
  cr_expect_str_eq(buf, "model.layers.3.mlp.up_proj.weight");
  int l;
  qf_rt_module mod;
  cr_expect(qf_rt_parse_linear_name("model.layers.12.self_attn.o_proj.qweight",
                                    &l, &mod));
  cr_expect_eq(l, 12);
  cr_expect_eq(mod, QF_RT_O);
  cr_expect(!qf_rt_parse_linear_name("model.layers.1.input_layernorm.weight",
                                     &l, &mod));
  cr_expect(!qf_rt_parse_linear_name("lm_head.weight", &l, &mod));
  cr_expect_lt(qf_rt_forward_rank("model.layers.2.self_attn.o_proj.weight"),
               qf_rt_forward_rank("model.layers.2.mlp.gate_proj.weight"));
  cr_expect_lt(qf_rt_forward_rank("model.layers.2.mlp.down_proj.weight"),
               qf_rt_forward_rank("model.layers.10.self_attn.q_proj.weight"));
  cr_expect_lt(qf_rt_forward_rank("model.embed_tokens.weight"),
               qf_rt_forward_rank("model.layers.0.input_layernorm.weight"));
  cr_expect_lt(qf_rt_forward_rank("model.layers.0.self_attn.v_proj.weight"),
               qf_rt_forward_rank("model.layers.0.self_attn.o_proj.weight"));
  cr_expect_lt(qf_rt_forward_rank("model.norm.weight"),
               qf_rt_forward_rank("lm_head.weight"));
}

Test(forward, rope_scaling_changes_the_logits) {
  qf_demo_config cfg;
  mt_tiny_config(&cfg);
  cfg.rope_llama3 = 1;
  cfg.rope_original_max_position = 16;
  char *d1, *d2;
  qf_rt_model *a = mt_make_model(&cfg, &d1);
  cfg.rope_llama3 = 0;
  qf_rt_model *b = mt_make_model(&cfg, &d2);
  cr_expect_eq(qf_rt_get_config(a)->rope_type, QF_RT_ROPE_LLAMA3);
  cr_expect_eq(qf_rt_get_config(b)->rope_type, QF_RT_ROPE_DEFAULT);
  int32_t tok[20];
  mt_tokens(tok, 20, cfg.vocab, 2);
  float *la = malloc((size_t)(20 * cfg.vocab) * sizeof(float));
  float *lb = malloc((size_t)(20 * cfg.vocab) * sizeof(float));
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_rt_forward(a, tok, 1, 20, NULL, la, 0, &err), QF_OK);
  cr_assert_eq(qf_rt_forward(b, tok, 1, 20, NULL, lb, 0, &err), QF_OK);
  /* position 0 has no rotation: equal; later positions differ */
  cr_expect_eq(memcmp(la, lb, (size_t)cfg.vocab * sizeof(float)), 0);
  double md = 0;
  for (int64_t i = 19 * cfg.vocab; i < 20 * cfg.vocab; i++)
    md = fmax(md, fabs(la[i] - lb[i]));
  cr_expect_gt(md, 1e-3, "llama3 scaling must change the last logits (%g)", md);
  free(la);
  free(lb);
  qf_rt_free(a);
  qf_rt_free(b);
  mt_rmtree(d1);
  mt_rmtree(d2);
  free(d1);
  free(d2);
}
