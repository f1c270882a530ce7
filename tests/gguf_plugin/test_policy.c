/*
 * test_policy.c — llama-quantize's per-tensor type policy and file-type
 * table (ftype_policy.c) and the HF <-> llama.cpp names and Q/K permutation
 * (convert_names.c), tested directly on those files.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "gguf_plugin.h"
#include "gguf_quants.h"

static qf_gguf_policy_ctx ctx32(void) {
  qf_gguf_policy_ctx c = {QF_GGUF_ARCH_LLAMA, 32, 32, 8, 0, 1, 0};
  return c;
}

static int pick(const char *ftype, const char *name, int64_t ne0, const qf_gguf_policy_ctx *c) {
  const qf_gguf_ftype *ft = qf_gguf_ftype_find(ftype);
  cr_assert(ft, "file type %s", ftype);
  return qf_gguf_policy_type(ft, name, ne0, c);
}

Test(policy, q4_k_m_worked_example) {
  /* spec §5.3: with 32 layers attn_v and ffn_down get Q6_K on
   * {0-3, 6, 9, 12, 15, 18, 21, 24, 27, 28-31} */
  qf_gguf_policy_ctx c = ctx32();
  int six = 0;
  for (int l = 0; l < 32; l++) {
    char v[64], dn[64], q[64];
    snprintf(v, sizeof v, "blk.%d.attn_v.weight", l);
    snprintf(dn, sizeof dn, "blk.%d.ffn_down.weight", l);
    snprintf(q, sizeof q, "blk.%d.attn_q.weight", l);
    int want6 = l < 4 || l >= 28 || (l - 4) % 3 == 2;
    int tv = pick("Q4_K_M", v, 4096, &c), td = pick("Q4_K_M", dn, 14336, &c);
    cr_expect_eq(tv, want6 ? QF_GGUF_TYPE_Q6_K : QF_GGUF_TYPE_Q4_K, "layer %d attn_v", l);
    cr_expect_eq(td, want6 ? QF_GGUF_TYPE_Q6_K : QF_GGUF_TYPE_Q4_K, "layer %d ffn_down", l);
    cr_expect_eq(pick("Q4_K_M", q, 4096, &c), QF_GGUF_TYPE_Q4_K);
    six += want6;
  }
  cr_expect_eq(six, 16);
  cr_expect_eq(pick("Q4_K_M", "output.weight", 4096, &c), QF_GGUF_TYPE_Q6_K);
  cr_expect_eq(pick("Q4_K_M", "token_embd.weight", 4096, &c), QF_GGUF_TYPE_Q4_K);
  c.has_output = 0; /* tied: the embeddings are the head */
  cr_expect_eq(pick("Q4_K_M", "token_embd.weight", 4096, &c), QF_GGUF_TYPE_Q6_K);
}

Test(policy, other_file_types) {
  qf_gguf_policy_ctx c = ctx32();
  cr_expect_eq(pick("Q4_K_S", "blk.3.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q5_K);
  cr_expect_eq(pick("Q4_K_S", "blk.4.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q4_K);
  cr_expect_eq(pick("Q4_K_S", "blk.3.ffn_down.weight", 4096, &c), QF_GGUF_TYPE_Q5_K);
  cr_expect_eq(pick("Q3_K_M", "blk.1.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q5_K);
  cr_expect_eq(pick("Q3_K_M", "blk.2.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q4_K);
  cr_expect_eq(pick("Q3_K_M", "blk.0.attn_output.weight", 4096, &c), QF_GGUF_TYPE_Q4_K);
  cr_expect_eq(pick("Q3_K_L", "blk.9.ffn_down.weight", 4096, &c), QF_GGUF_TYPE_Q5_K);
  cr_expect_eq(pick("Q3_K_S", "blk.9.ffn_down.weight", 4096, &c), QF_GGUF_TYPE_Q3_K);
  cr_expect_eq(pick("Q2_K", "blk.9.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q4_K); /* gqa 4 */
  cr_expect_eq(pick("Q2_K", "blk.9.ffn_down.weight", 4096, &c), QF_GGUF_TYPE_Q3_K);
  cr_expect_eq(pick("Q2_K", "blk.9.attn_output.weight", 4096, &c), QF_GGUF_TYPE_Q3_K);
  cr_expect_eq(pick("Q5_K_M", "blk.0.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q6_K);
  cr_expect_eq(pick("Q5_K_M", "blk.5.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q5_K);
  cr_expect_eq(pick("Q5_K_S", "output.weight", 4096, &c), QF_GGUF_TYPE_Q6_K);
  cr_expect_eq(pick("Q4_0", "output.weight", 4096, &c), QF_GGUF_TYPE_Q6_K);
  cr_expect_eq(pick("Q4_0", "blk.0.ffn_down.weight", 4096, &c), QF_GGUF_TYPE_Q4_0);
  cr_expect_eq(pick("Q8_0", "output.weight", 4096, &c), QF_GGUF_TYPE_Q8_0);
  cr_expect_eq(pick("IQ4_XS", "blk.0.attn_v.weight", 4096, &c), QF_GGUF_TYPE_Q5_K);
  cr_expect_eq(pick("Q6_K", "blk.0.ffn_up.weight", 4096, &c), QF_GGUF_TYPE_Q6_K);
  c.has_imatrix = 1;
  cr_expect_eq(pick("Q4_0", "blk.0.ffn_down.weight", 4096, &c), QF_GGUF_TYPE_Q4_1);
  /* an 80-layer GQA llama is "70B": attn_v Q4_K -> Q5_K */
  qf_gguf_policy_ctx b = ctx32();
  b.n_layer = 80;
  cr_expect_eq(pick("Q4_K_M", "blk.20.attn_v.weight", 8192, &b), QF_GGUF_TYPE_Q5_K);
}

Test(policy, fallbacks) {
  qf_gguf_policy_ctx c = ctx32();
  /* rows not a multiple of 256 */
  cr_expect_eq(pick("Q4_K_M", "blk.5.attn_q.weight", 96, &c), QF_GGUF_TYPE_Q5_0);
  cr_expect_eq(pick("Q4_K_M", "blk.0.attn_v.weight", 96, &c), QF_GGUF_TYPE_Q8_0);
  cr_expect_eq(pick("Q5_K_S", "blk.5.attn_q.weight", 96, &c), QF_GGUF_TYPE_Q5_1);
  cr_expect_eq(pick("Q3_K_S", "blk.5.attn_q.weight", 96, &c), QF_GGUF_TYPE_IQ4_NL);
  cr_expect_eq(pick("Q4_K_M", "output.weight", 96, &c), QF_GGUF_TYPE_Q8_0);
  cr_expect_eq(pick("Q4_K_M", "blk.5.attn_q.weight", 48, &c), QF_GGUF_TYPE_F16);
  cr_expect_eq(qf_gguf_fallback_type(QF_GGUF_TYPE_Q4_0, 48), -1);
  cr_expect_eq(qf_gguf_fallback_type(QF_GGUF_TYPE_Q4_0, 64), QF_GGUF_TYPE_Q4_0);
  cr_expect_eq(qf_gguf_fallback_type(QF_GGUF_TYPE_TQ1_0, 96), QF_GGUF_TYPE_Q4_0);
}

Test(policy, file_type_table) {
  cr_expect_eq(qf_gguf_ftype_find("q4_k_m")->id, 15);
  cr_expect_eq(qf_gguf_ftype_find("15")->base_type, QF_GGUF_TYPE_Q4_K);
  cr_expect_eq(qf_gguf_ftype_find("BF16")->id, 32);
  cr_expect_eq(qf_gguf_ftype_find("IQ4_XS")->id, 30);
  cr_expect_eq(qf_gguf_ftype_find("Q2_K_S")->id, 21);
  cr_expect(qf_gguf_ftype_find("Q4_K") == NULL);
  cr_expect(qf_gguf_ftype_find("99") == NULL);
  cr_expect(qf_gguf_ftype_find("") == NULL);
  cr_expect_eq(qf_gguf_ftype_for_type(QF_GGUF_TYPE_Q4_K)->id, 14);
  cr_expect(strstr(qf_gguf_ftype_names(), "Q4_K_M") != NULL);
  cr_expect(qf_gguf_type_needs_imatrix(QF_GGUF_TYPE_IQ2_XXS, NULL, "blk.0.ffn_up.weight"));
  cr_expect(!qf_gguf_type_needs_imatrix(QF_GGUF_TYPE_IQ1_M, NULL, "output.weight"));
  cr_expect(qf_gguf_type_needs_imatrix(QF_GGUF_TYPE_Q2_K, qf_gguf_ftype_find("Q2_K_S"),
                                       "blk.0.ffn_up.weight"));
  cr_expect(!qf_gguf_type_needs_imatrix(QF_GGUF_TYPE_Q2_K, qf_gguf_ftype_find("Q2_K"),
                                        "blk.0.ffn_up.weight"));
}

Test(names, hf_gguf_round_trip) {
  static const char *const hf[] = {"model.embed_tokens.weight",
                                   "model.norm.weight",
                                   "lm_head.weight",
                                   "model.layers.0.input_layernorm.weight",
                                   "model.layers.11.self_attn.q_proj.weight",
                                   "model.layers.2.self_attn.k_proj.bias",
                                   "model.layers.3.self_attn.v_proj.weight",
                                   "model.layers.4.self_attn.o_proj.weight",
                                   "model.layers.5.post_attention_layernorm.weight",
                                   "model.layers.6.mlp.gate_proj.weight",
                                   "model.layers.7.mlp.up_proj.weight",
                                   "model.layers.8.mlp.down_proj.weight"};
  static const char *const gg[] = {
      "token_embd.weight",      "output_norm.weight",       "output.weight",
      "blk.0.attn_norm.weight", "blk.11.attn_q.weight",     "blk.2.attn_k.bias",
      "blk.3.attn_v.weight",    "blk.4.attn_output.weight", "blk.5.ffn_norm.weight",
      "blk.6.ffn_gate.weight",  "blk.7.ffn_up.weight",      "blk.8.ffn_down.weight"};
  char a[256], b[256];
  for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++) {
    cr_expect_eq(qf_gguf_name_hf_to_gguf(hf[i], a, sizeof a), 1, "%s", hf[i]);
    cr_expect_str_eq(a, gg[i]);
    cr_expect_eq(qf_gguf_name_gguf_to_hf(a, b, sizeof b), 1);
    cr_expect_str_eq(b, hf[i]);
  }
  cr_expect_eq(qf_gguf_name_hf_to_gguf("model.layers.0.self_attn.rotary_emb.inv_freq", a, sizeof a),
               -1);
  cr_expect_eq(qf_gguf_name_hf_to_gguf("model.layers.x.mlp.up_proj.weight", a, sizeof a), 0);
  cr_expect_eq(qf_gguf_name_hf_to_gguf("weight", a, sizeof a), 0);
  cr_expect_str_eq(a, "weight");
  cr_expect_eq(qf_gguf_name_layer("blk.17.ffn_up.weight"), 17);
  cr_expect_eq(qf_gguf_name_layer("output.weight"), -1);
}

Test(names, qk_permutation_is_inverted_exactly) {
  qf_gguf_hparams hp;
  memset(&hp, 0, sizeof hp);
  hp.arch = QF_GGUF_ARCH_LLAMA;
  hp.n_head = 8;
  hp.n_head_kv = 2;
  cr_expect_eq(qf_gguf_qk_heads("blk.0.attn_q.weight", &hp), 8);
  cr_expect_eq(qf_gguf_qk_heads("blk.0.attn_k.bias", &hp), 2);
  cr_expect_eq(qf_gguf_qk_heads("blk.0.attn_v.weight", &hp), 0);
  hp.arch = QF_GGUF_ARCH_QWEN2;
  cr_expect_eq(qf_gguf_qk_heads("blk.0.attn_q.weight", &hp), 0);
  static const int64_t cases[][2] = {{64, 4}, {128, 8}, {512, 8}, {48, 2}};
  for (size_t c = 0; c < 4; c++) {
    const int64_t rows = cases[c][0], heads = cases[c][1];
    int seen[512] = {0};
    for (int64_t r = 0; r < rows; r++) {
      int64_t s = qf_gguf_qk_src_row(r, rows, heads, 1);
      cr_assert(s >= 0 && s < rows);
      seen[s]++;
      /* un-permuting the permuted row gives the row back */
      cr_expect_eq(qf_gguf_qk_src_row(s, rows, heads, 0), r);
      /* the converter's formula: GGUF h·2d + 2i + j <- HF h·2d + j·d + i */
      int64_t d = rows / heads / 2, h = r / (2 * d), i = (r % (2 * d)) / 2, j = r % 2;
      cr_expect_eq(s, h * 2 * d + j * d + i);
    }
    for (int64_t r = 0; r < rows; r++) cr_expect_eq(seen[r], 1, "a permutation");
  }
  cr_expect_eq(qf_gguf_qk_src_row(5, 30, 4, 1), 5, "identity when rows do not split");
}
