/*
 * ftype_policy.c — llama-quantize's file types (LLAMA_FTYPE, written as
 * general.file_type) and its per-tensor type policy.
 *
 * A file type such as Q4_K_M is a recipe, not one type: most weights get the
 * base type (Q4_K) but llama_tensor_get_type bumps some tensors — the output
 * head to Q6_K, attn_v and ffn_down to Q6_K on the layers use_more_bits
 * picks, … — and falls back to a 32-block type (then F16) when a row length
 * is not a multiple of the chosen block size. This file reproduces the
 * Feb-2025 rules (spec gguf_ggml.md §5.3) for dense Llama-family models,
 * statelessly: the running counters llama-quantize keeps (i_attention_wv,
 * i_ffn_down) equal the layer number for such models, which is parsed from
 * the tensor name instead.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf_plugin.h"
#include "gguf_quants.h"

/* LLAMA_FTYPE ids */
enum {
  FT_ALL_F32 = 0,
  FT_F16 = 1,
  FT_Q4_0 = 2,
  FT_Q4_1 = 3,
  FT_Q8_0 = 7,
  FT_Q5_0 = 8,
  FT_Q5_1 = 9,
  FT_Q2_K = 10,
  FT_Q3_K_S = 11,
  FT_Q3_K_M = 12,
  FT_Q3_K_L = 13,
  FT_Q4_K_S = 14,
  FT_Q4_K_M = 15,
  FT_Q5_K_S = 16,
  FT_Q5_K_M = 17,
  FT_Q6_K = 18,
  FT_IQ2_XXS = 19,
  FT_IQ2_XS = 20,
  FT_Q2_K_S = 21,
  FT_IQ3_XS = 22,
  FT_IQ3_XXS = 23,
  FT_IQ1_S = 24,
  FT_IQ4_NL = 25,
  FT_IQ3_S = 26,
  FT_IQ3_M = 27,
  FT_IQ2_S = 28,
  FT_IQ2_M = 29,
  FT_IQ4_XS = 30,
  FT_IQ1_M = 31,
  FT_BF16 = 32,
  FT_TQ1_0 = 36,
  FT_TQ2_0 = 37,
  FT_MXFP4_MOE = 38
};

static const qf_gguf_ftype qf__ftypes[] = {
    {"F32", FT_ALL_F32, QF_GGUF_TYPE_F32},         {"F16", FT_F16, QF_GGUF_TYPE_F16},
    {"BF16", FT_BF16, QF_GGUF_TYPE_BF16},          {"Q4_0", FT_Q4_0, QF_GGUF_TYPE_Q4_0},
    {"Q4_1", FT_Q4_1, QF_GGUF_TYPE_Q4_1},          {"Q5_0", FT_Q5_0, QF_GGUF_TYPE_Q5_0},
    {"Q5_1", FT_Q5_1, QF_GGUF_TYPE_Q5_1},          {"Q8_0", FT_Q8_0, QF_GGUF_TYPE_Q8_0},
    {"Q2_K", FT_Q2_K, QF_GGUF_TYPE_Q2_K},          {"Q2_K_S", FT_Q2_K_S, QF_GGUF_TYPE_Q2_K},
    {"Q3_K_S", FT_Q3_K_S, QF_GGUF_TYPE_Q3_K},      {"Q3_K_M", FT_Q3_K_M, QF_GGUF_TYPE_Q3_K},
    {"Q3_K_L", FT_Q3_K_L, QF_GGUF_TYPE_Q3_K},      {"Q4_K_S", FT_Q4_K_S, QF_GGUF_TYPE_Q4_K},
    {"Q4_K_M", FT_Q4_K_M, QF_GGUF_TYPE_Q4_K},      {"Q5_K_S", FT_Q5_K_S, QF_GGUF_TYPE_Q5_K},
    {"Q5_K_M", FT_Q5_K_M, QF_GGUF_TYPE_Q5_K},      {"Q6_K", FT_Q6_K, QF_GGUF_TYPE_Q6_K},
    {"IQ4_XS", FT_IQ4_XS, QF_GGUF_TYPE_IQ4_XS},    {"IQ4_NL", FT_IQ4_NL, QF_GGUF_TYPE_IQ4_NL},
    {"IQ2_XXS", FT_IQ2_XXS, QF_GGUF_TYPE_IQ2_XXS}, {"IQ2_XS", FT_IQ2_XS, QF_GGUF_TYPE_IQ2_XS},
    {"IQ2_S", FT_IQ2_S, QF_GGUF_TYPE_IQ2_XS},      {"IQ2_M", FT_IQ2_M, QF_GGUF_TYPE_IQ2_S},
    {"IQ3_XXS", FT_IQ3_XXS, QF_GGUF_TYPE_IQ3_XXS}, {"IQ3_XS", FT_IQ3_XS, QF_GGUF_TYPE_IQ3_S},
    {"IQ3_S", FT_IQ3_S, QF_GGUF_TYPE_IQ3_S},       {"IQ3_M", FT_IQ3_M, QF_GGUF_TYPE_IQ3_S},
    {"IQ1_S", FT_IQ1_S, QF_GGUF_TYPE_IQ1_S},       {"IQ1_M", FT_IQ1_M, QF_GGUF_TYPE_IQ1_M},
    {"TQ1_0", FT_TQ1_0, QF_GGUF_TYPE_TQ1_0},       {"TQ2_0", FT_TQ2_0, QF_GGUF_TYPE_TQ2_0},
};
#define QF__NFT (sizeof qf__ftypes / sizeof qf__ftypes[0])

const qf_gguf_ftype *qf_gguf_ftype_find(const char *name) {
  if (!name || !*name) return NULL;
  int digits = 1;
  for (const char *p = name; *p; p++)
    if (!isdigit((unsigned char)*p)) digits = 0;
  if (digits) return strlen(name) < 6 ? qf_gguf_ftype_by_id(atoi(name)) : NULL;
  for (size_t i = 0; i < QF__NFT; i++)
    if (!strcasecmp(name, qf__ftypes[i].name)) return &qf__ftypes[i];
  return NULL;
}

const qf_gguf_ftype *qf_gguf_ftype_by_id(int id) {
  for (size_t i = 0; i < QF__NFT; i++)
    if (qf__ftypes[i].id == id) return &qf__ftypes[i];
  return NULL;
}

const qf_gguf_ftype *qf_gguf_ftype_for_type(int type) {
  static const qf_gguf_ftype mxfp4 = {"MXFP4_MOE", FT_MXFP4_MOE, QF_GGUF_TYPE_MXFP4};
  static const struct {
    int type, ftype;
  } pure[] = {{QF_GGUF_TYPE_F32, FT_ALL_F32},     {QF_GGUF_TYPE_F16, FT_F16},
              {QF_GGUF_TYPE_BF16, FT_BF16},       {QF_GGUF_TYPE_Q4_0, FT_Q4_0},
              {QF_GGUF_TYPE_Q4_1, FT_Q4_1},       {QF_GGUF_TYPE_Q5_0, FT_Q5_0},
              {QF_GGUF_TYPE_Q5_1, FT_Q5_1},       {QF_GGUF_TYPE_Q8_0, FT_Q8_0},
              {QF_GGUF_TYPE_Q2_K, FT_Q2_K},       {QF_GGUF_TYPE_Q3_K, FT_Q3_K_S},
              {QF_GGUF_TYPE_Q4_K, FT_Q4_K_S},     {QF_GGUF_TYPE_Q5_K, FT_Q5_K_S},
              {QF_GGUF_TYPE_Q6_K, FT_Q6_K},       {QF_GGUF_TYPE_IQ4_XS, FT_IQ4_XS},
              {QF_GGUF_TYPE_IQ4_NL, FT_IQ4_NL},   {QF_GGUF_TYPE_IQ2_XXS, FT_IQ2_XXS},
              {QF_GGUF_TYPE_IQ2_XS, FT_IQ2_XS},   {QF_GGUF_TYPE_IQ2_S, FT_IQ2_M},
              {QF_GGUF_TYPE_IQ3_XXS, FT_IQ3_XXS}, {QF_GGUF_TYPE_IQ3_S, FT_IQ3_S},
              {QF_GGUF_TYPE_IQ1_S, FT_IQ1_S},     {QF_GGUF_TYPE_IQ1_M, FT_IQ1_M},
              {QF_GGUF_TYPE_TQ1_0, FT_TQ1_0},     {QF_GGUF_TYPE_TQ2_0, FT_TQ2_0}};
  if (type == QF_GGUF_TYPE_MXFP4) return &mxfp4;
  for (size_t i = 0; i < sizeof pure / sizeof pure[0]; i++)
    if (pure[i].type == type) return qf_gguf_ftype_by_id(pure[i].ftype);
  return NULL;
}

const char *qf_gguf_ftype_names(void) {
  static char buf[512];
  if (!buf[0]) {
    size_t used = 0;
    for (size_t i = 0; i < QF__NFT && used < sizeof buf; i++)
      used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", i ? ", " : "",
                               qf__ftypes[i].name);
  }
  return buf;
}

/* ---- the policy ---- */

static int qf__use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int qf__has(const char *name, const char *part) {
  return strstr(name, part) != NULL;
}

static int qf__is_iq_low(int f) {
  return f == FT_IQ2_XXS || f == FT_IQ2_XS || f == FT_IQ1_S || f == FT_IQ2_S || f == FT_IQ2_M ||
         f == FT_IQ1_M;
}

int qf_gguf_fallback_type(int type, int64_t ne0) {
  const int64_t blck = qf_gguf_blck_size(type);
  if (blck > 0 && ne0 % blck == 0) return type;
  int t;
  switch (type) {
    case QF_GGUF_TYPE_TQ1_0:
    case QF_GGUF_TYPE_TQ2_0:
      t = QF_GGUF_TYPE_Q4_0;
      break;
    case QF_GGUF_TYPE_IQ2_XXS:
    case QF_GGUF_TYPE_IQ2_XS:
    case QF_GGUF_TYPE_IQ2_S:
    case QF_GGUF_TYPE_IQ3_XXS:
    case QF_GGUF_TYPE_IQ3_S:
    case QF_GGUF_TYPE_IQ1_S:
    case QF_GGUF_TYPE_IQ1_M:
    case QF_GGUF_TYPE_Q2_K:
    case QF_GGUF_TYPE_Q3_K:
    case QF_GGUF_TYPE_IQ4_XS:
      t = QF_GGUF_TYPE_IQ4_NL;
      break;
    case QF_GGUF_TYPE_Q4_K:
      t = QF_GGUF_TYPE_Q5_0;
      break;
    case QF_GGUF_TYPE_Q5_K:
      t = QF_GGUF_TYPE_Q5_1;
      break;
    case QF_GGUF_TYPE_Q6_K:
      t = QF_GGUF_TYPE_Q8_0;
      break;
    default:
      return -1; /* llama-quantize: "Unsupported tensor size encountered" */
  }
  if (ne0 % qf_gguf_blck_size(t) != 0) t = QF_GGUF_TYPE_F16;
  return t;
}

static int qf__attn_v(int f, int t, int64_t i, const qf_gguf_policy_ctx *c, int64_t n_gqa) {
  const int64_t n = c->n_layer;
  if (f == FT_Q2_K)
    t = n_gqa >= 4 ? QF_GGUF_TYPE_Q4_K : QF_GGUF_TYPE_Q3_K;
  else if (f == FT_Q2_K_S && n_gqa >= 4)
    t = QF_GGUF_TYPE_Q4_K;
  else if (f == FT_IQ3_XXS)
    t = n_gqa >= 4        ? QF_GGUF_TYPE_Q4_K
        : !c->has_imatrix ? QF_GGUF_TYPE_IQ3_S
                          : QF_GGUF_TYPE_IQ3_XXS;
  else if ((f == FT_IQ3_XS || f == FT_IQ3_S) && n_gqa >= 4)
    t = QF_GGUF_TYPE_Q4_K;
  else if (f == FT_IQ3_M)
    t = QF_GGUF_TYPE_Q4_K;
  else if (f == FT_Q3_K_M)
    t = i < 2 ? QF_GGUF_TYPE_Q5_K : QF_GGUF_TYPE_Q4_K;
  else if (f == FT_Q3_K_L)
    t = QF_GGUF_TYPE_Q5_K;
  else if ((f == FT_IQ4_NL || f == FT_IQ4_XS) && n_gqa >= 4)
    t = QF_GGUF_TYPE_Q5_K;
  else if ((f == FT_Q4_K_M || f == FT_Q5_K_M) && qf__use_more_bits(i, n))
    t = QF_GGUF_TYPE_Q6_K;
  else if (f == FT_Q4_K_S && i < 4)
    t = QF_GGUF_TYPE_Q5_K;
  /* LLM_TYPE_70B: 80 layers with grouped-query attention */
  const int is70b = c->n_layer == 80 && (c->arch == QF_GGUF_ARCH_QWEN2 || n_gqa > 1);
  if (is70b && (t == QF_GGUF_TYPE_Q3_K || t == QF_GGUF_TYPE_Q4_K)) t = QF_GGUF_TYPE_Q5_K;
  if (c->n_expert == 8) t = QF_GGUF_TYPE_Q8_0;
  return t;
}

static int qf__ffn_down(int f, int t, int64_t i, const qf_gguf_policy_ctx *c) {
  const int64_t n = c->n_layer;
  if (f == FT_Q2_K)
    t = QF_GGUF_TYPE_Q3_K;
  else if (f == FT_Q2_K_S) {
    if (i < n / 8) t = QF_GGUF_TYPE_Q4_K;
  } else if (f == FT_IQ3_XXS && !c->has_imatrix)
    t = i < n / 8 ? QF_GGUF_TYPE_Q4_K : QF_GGUF_TYPE_Q3_K;
  else if (f == FT_Q3_K_M)
    t = i < n / 16 ? QF_GGUF_TYPE_Q5_K : QF_GGUF_TYPE_Q4_K; /* non-Falcon */
  else if (f == FT_IQ3_M && (i < n / 8 || (c->n_expert == 8 && qf__use_more_bits(i, n))))
    t = QF_GGUF_TYPE_Q4_K;
  else if (f == FT_Q3_K_L)
    t = QF_GGUF_TYPE_Q5_K;
  else if (f == FT_Q4_K_M) {
    if (qf__use_more_bits(i, n)) t = QF_GGUF_TYPE_Q6_K;
  } else if (i < n / 8 && (f == FT_IQ4_NL || f == FT_IQ4_XS) && !c->has_imatrix)
    t = QF_GGUF_TYPE_Q5_K;
  else if (f == FT_Q5_K_M && qf__use_more_bits(i, n))
    t = QF_GGUF_TYPE_Q6_K;
  else if (f == FT_Q4_K_S && i < n / 8)
    t = QF_GGUF_TYPE_Q5_K;
  else if ((f == FT_Q4_0 || f == FT_Q5_0) && c->has_imatrix && i < n / 8)
    t = f == FT_Q4_0 ? QF_GGUF_TYPE_Q4_1 : QF_GGUF_TYPE_Q5_1;
  return t;
}

static int qf__attn_output(int f, int t, const qf_gguf_policy_ctx *c) {
  if (c->n_expert == 8) {
    if (f == FT_Q2_K || f == FT_IQ3_XS || f == FT_IQ3_XXS || f == FT_Q3_K_S || f == FT_Q3_K_M ||
        f == FT_IQ4_NL || f == FT_Q4_K_S || f == FT_Q4_K_M || f == FT_IQ3_S || f == FT_IQ3_M ||
        f == FT_IQ4_XS)
      t = QF_GGUF_TYPE_Q5_K;
  } else {
    if (f == FT_Q2_K)
      t = QF_GGUF_TYPE_Q3_K;
    else if (f == FT_IQ3_XXS)
      t = QF_GGUF_TYPE_IQ3_S;
    else if (f == FT_Q3_K_M)
      t = QF_GGUF_TYPE_Q4_K;
    else if (f == FT_Q3_K_L)
      t = QF_GGUF_TYPE_Q5_K;
    else if (f == FT_IQ3_M)
      t = QF_GGUF_TYPE_Q4_K;
  }
  return t;
}

static int qf__policy_raw(const qf_gguf_ftype *ft, const char *name, int64_t ne0,
                          const qf_gguf_policy_ctx *c) {
  const int f = ft->id;
  int t = ft->base_type;
  const int64_t n_gqa = c->n_head_kv > 0 ? c->n_head / c->n_head_kv : 1;
  const int64_t layer = qf_gguf_name_layer(name) < 0 ? 0 : qf_gguf_name_layer(name);
  const int64_t n = c->n_layer;

  if (!strcmp(name, "output.weight") || (!c->has_output && !strcmp(name, "token_embd.weight"))) {
    if (ne0 % 256 != 0)
      t = QF_GGUF_TYPE_Q8_0;
    else if (f == FT_IQ2_XXS || f == FT_IQ2_XS || f == FT_IQ3_XXS || f == FT_IQ1_S ||
             f == FT_IQ2_S || f == FT_IQ2_M || f == FT_IQ1_M)
      t = QF_GGUF_TYPE_Q5_K;
    else if (t != QF_GGUF_TYPE_Q8_0)
      t = QF_GGUF_TYPE_Q6_K;
    return t;
  }
  if (!strcmp(name, "token_embd.weight")) {
    if (f == FT_IQ2_XXS || f == FT_IQ2_XS || f == FT_IQ1_S || f == FT_IQ1_M)
      t = QF_GGUF_TYPE_Q2_K;
    else if (f == FT_IQ2_S || f == FT_IQ2_M || f == FT_IQ3_XXS)
      t = QF_GGUF_TYPE_IQ3_S;
    else if (f == FT_TQ1_0 || f == FT_TQ2_0)
      t = QF_GGUF_TYPE_Q4_K;
    return t;
  }
  if (qf__is_iq_low(f)) {
    const int iq2s = f == FT_IQ2_S || f == FT_IQ2_M;
    if (qf__has(name, "attn_v.weight")) {
      if (n_gqa >= 4 || c->n_expert >= 4)
        t = QF_GGUF_TYPE_Q4_K;
      else
        t = iq2s ? QF_GGUF_TYPE_IQ3_S : QF_GGUF_TYPE_Q2_K;
    } else if (c->n_expert == 8 && qf__has(name, "attn_k.weight")) {
      t = QF_GGUF_TYPE_Q4_K;
    } else if (qf__has(name, "ffn_down")) {
      if (layer < n / 8) t = iq2s ? QF_GGUF_TYPE_IQ3_S : QF_GGUF_TYPE_Q2_K;
    } else if (qf__has(name, "attn_output.weight")) {
      if (c->n_expert == 8)
        t = QF_GGUF_TYPE_Q5_K;
      else if (f == FT_IQ1_S || f == FT_IQ1_M)
        t = QF_GGUF_TYPE_IQ2_XXS;
      else if (iq2s)
        t = QF_GGUF_TYPE_IQ3_S;
    }
    return t;
  }
  if (qf__has(name, "attn_v.weight")) return qf__attn_v(f, t, layer, c, n_gqa);
  if (qf__has(name, "attn_k.weight")) {
    if (c->n_expert == 8)
      t = QF_GGUF_TYPE_Q8_0;
    else if (f == FT_IQ3_XS)
      t = QF_GGUF_TYPE_IQ3_XXS;
    return t;
  }
  if (qf__has(name, "attn_q.weight")) {
    if (f == FT_IQ3_XS) t = QF_GGUF_TYPE_IQ3_XXS;
    return t;
  }
  if (qf__has(name, "ffn_down")) return qf__ffn_down(f, t, layer, c);
  if (qf__has(name, "attn_output.weight")) return qf__attn_output(f, t, c);
  if (qf__has(name, "attn_qkv.weight")) {
    if (f == FT_Q3_K_M || f == FT_Q3_K_L || f == FT_IQ3_M)
      t = QF_GGUF_TYPE_Q4_K;
    else if (f == FT_Q4_K_M)
      t = QF_GGUF_TYPE_Q5_K;
    else if (f == FT_Q5_K_M)
      t = QF_GGUF_TYPE_Q6_K;
    return t;
  }
  if (qf__has(name, "ffn_gate") || qf__has(name, "ffn_up")) {
    if (f == FT_IQ3_XS && layer >= n / 8 && layer < 7 * n / 8) t = QF_GGUF_TYPE_IQ3_XXS;
    return t;
  }
  return t;
}

int qf_gguf_policy_type(const qf_gguf_ftype *ft, const char *gguf_name, int64_t ne0,
                        const qf_gguf_policy_ctx *ctx) {
  int t = qf__policy_raw(ft, gguf_name, ne0, ctx);
  return qf_gguf_fallback_type(t, ne0);
}

int qf_gguf_type_needs_imatrix(int type, const qf_gguf_ftype *ft, const char *gguf_name) {
  const int embd_or_out =
      !strcmp(gguf_name, "token_embd.weight") || !strcmp(gguf_name, "output.weight");
  if (type == QF_GGUF_TYPE_IQ2_XXS || type == QF_GGUF_TYPE_IQ2_XS || type == QF_GGUF_TYPE_IQ2_S ||
      type == QF_GGUF_TYPE_IQ1_S)
    return 1;
  if (type == QF_GGUF_TYPE_IQ1_M && !embd_or_out) return 1;
  if (type == QF_GGUF_TYPE_Q2_K && ft && ft->id == FT_Q2_K_S &&
      strcmp(gguf_name, "token_embd.weight") != 0)
    return 1;
  const qf_gguf_type_info *ti = qf_gguf_type_get(type);
  return ti && ti->needs_imatrix;
}
