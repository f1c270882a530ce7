/*
 * convert_names.c — tensor names between Hugging Face checkpoints and
 * llama.cpp (GGUF) for the Llama family (Llama, Mistral, Qwen2), and the row
 * permutation llama.cpp's converter applies to the Q and K projections.
 *
 * The name table is the public mapping of gguf-py's tensor map for these
 * architectures (model.layers.N.self_attn.q_proj <-> blk.N.attn_q, …). The
 * permutation: convert_hf_to_gguf.py reorders the rows of q_proj / k_proj of
 * the llama architecture from HF's rotate-half pairing to llama.cpp's
 * interleaved pairing; with d = rows / n_head / 2, GGUF row h·2d + 2i + j is
 * HF row h·2d + j·d + i (i < d, j in {0, 1}). transformers applies the
 * inverse when it loads a GGUF. Qwen2 is not permuted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_plugin.h"

typedef struct {
  const char *hf;
  const char *gguf;
} qf__name_pair;

/* Per-layer suffixes (after "model.layers.N." / "blk.N."). */
static const qf__name_pair qf__layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

static const qf__name_pair qf__global_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

#define QF__COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Parse "<prefix><N>." at the start of s; returns the rest or NULL. */
static const char *qf__parse_layer(const char *s, const char *prefix, int *layer) {
  size_t pl = strlen(prefix);
  if (strncmp(s, prefix, pl) != 0) return NULL;
  const char *p = s + pl;
  if (*p < '0' || *p > '9') return NULL;
  long v = 0;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (*p - '0');
    if (v > 1000000) return NULL;
    p++;
  }
  if (*p != '.') return NULL;
  *layer = (int)v;
  return p + 1;
}

int qf_gguf_name_hf_to_gguf(const char *hf, char *out, size_t out_size) {
  int layer;
  const char *rest = qf__parse_layer(hf, "model.layers.", &layer);
  if (rest) {
    if (!strcmp(rest, "self_attn.rotary_emb.inv_freq")) {
      snprintf(out, out_size, "%s", hf);
      return -1;
    }
    for (size_t i = 0; i < QF__COUNT(qf__layer_names); i++)
      if (!strcmp(rest, qf__layer_names[i].hf)) {
        snprintf(out, out_size, "blk.%d.%s", layer, qf__layer_names[i].gguf);
        return 1;
      }
  } else {
    for (size_t i = 0; i < QF__COUNT(qf__global_names); i++)
      if (!strcmp(hf, qf__global_names[i].hf)) {
        snprintf(out, out_size, "%s", qf__global_names[i].gguf);
        return 1;
      }
  }
  snprintf(out, out_size, "%s", hf);
  return 0;
}

int qf_gguf_name_gguf_to_hf(const char *gguf, char *out, size_t out_size) {
  int layer;
  const char *rest = qf__parse_layer(gguf, "blk.", &layer);
  if (rest) {
    for (size_t i = 0; i < QF__COUNT(qf__layer_names); i++)
      if (!strcmp(rest, qf__layer_names[i].gguf)) {
        snprintf(out, out_size, "model.layers.%d.%s", layer, qf__layer_names[i].hf);
        return 1;
      }
  } else {
    for (size_t i = 0; i < QF__COUNT(qf__global_names); i++)
      if (!strcmp(gguf, qf__global_names[i].gguf)) {
        snprintf(out, out_size, "%s", qf__global_names[i].hf);
        return 1;
      }
  }
  snprintf(out, out_size, "%s", gguf);
  return 0;
}

int qf_gguf_name_layer(const char *gguf) {
  int layer;
  return qf__parse_layer(gguf, "blk.", &layer) ? layer : -1;
}

int64_t qf_gguf_qk_heads(const char *gguf, const qf_gguf_hparams *hp) {
  if (!hp || hp->arch != QF_GGUF_ARCH_LLAMA) return 0;
  int layer;
  const char *rest = qf__parse_layer(gguf, "blk.", &layer);
  if (!rest) return 0;
  if (!strcmp(rest, "attn_q.weight") || !strcmp(rest, "attn_q.bias")) return hp->n_head;
  if (!strcmp(rest, "attn_k.weight") || !strcmp(rest, "attn_k.bias"))
    return hp->n_head_kv > 0 ? hp->n_head_kv : hp->n_head;
  return 0;
}

int64_t qf_gguf_qk_src_row(int64_t row, int64_t rows, int64_t n_head, int to_gguf) {
  if (n_head <= 0 || rows % (2 * n_head) != 0) return row;
  const int64_t d = rows / n_head / 2;
  const int64_t h = row / (2 * d), r = row % (2 * d);
  if (to_gguf) {
    /* destination GGUF row h·2d + 2i + j  <-  HF row h·2d + j·d + i */
    const int64_t i = r / 2, j = r % 2;
    return h * 2 * d + j * d + i;
  }
  /* destination HF row h·2d + j·d + i  <-  GGUF row h·2d + 2i + j */
  const int64_t j = r / d, i = r % d;
  return h * 2 * d + 2 * i + j;
}
