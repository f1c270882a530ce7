/*
 * Expected float parameter names per architecture (see arch_keys.h).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch_keys.h"

int qf__keyset_add(qf__keyset *s, const char *key) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    char **k = realloc(s->keys, cap * sizeof *k);
    if (!k) return -1;
    s->keys = k;
    s->cap = cap;
  }
  s->keys[s->n] = strdup(key);
  if (!s->keys[s->n]) return -1;
  s->n++;
  return 0;
}

int qf__keyset_has(const qf__keyset *s, const char *key) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->keys[i], key)) return 1;
  return 0;
}

void qf__keyset_free(qf__keyset *s) {
  for (size_t i = 0; i < s->n; i++) free(s->keys[i]);
  free(s->keys);
  memset(s, 0, sizeof *s);
}

static int qf__add_fmt(qf__keyset *s, const char *fmt, int layer, const char *part) {
  char buf[256];
  snprintf(buf, sizeof buf, fmt, layer, part);
  return qf__keyset_add(s, buf);
}

static int qf__llama_keys(json_t *cfg, qf__keyset *s) {
  const char *type = json_string_value(json_object_get(cfg, "model_type"));
  int qkv_bias = type && !strcmp(type, "qwen2");
  json_t *ab = json_object_get(cfg, "attention_bias");
  if (json_is_true(ab)) qkv_bias = 1;
  int n_layers = (int)json_integer_value(json_object_get(cfg, "num_hidden_layers"));
  int tied = json_is_true(json_object_get(cfg, "tie_word_embeddings"));
  static const char *const lin[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                    "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                    "mlp.down_proj"};
  if (qf__keyset_add(s, "model.embed_tokens.weight") || qf__keyset_add(s, "model.norm.weight"))
    return -1;
  if (!tied && qf__keyset_add(s, "lm_head.weight")) return -1;
  for (int l = 0; l < n_layers; l++) {
    for (size_t j = 0; j < sizeof lin / sizeof lin[0]; j++) {
      if (qf__add_fmt(s, "model.layers.%d.%s.weight", l, lin[j])) return -1;
      if (qkv_bias && j < 3 && qf__add_fmt(s, "model.layers.%d.%s.bias", l, lin[j])) return -1;
    }
    if (qf__add_fmt(s, "model.layers.%d.%s.weight", l, "input_layernorm") ||
        qf__add_fmt(s, "model.layers.%d.%s.weight", l, "post_attention_layernorm"))
      return -1;
  }
  return 0;
}

qf_status qf__expected_keys(const qf_model *model, qf__keyset *out,
                            qf_error *err) {
  memset(out, 0, sizeof *out);
  json_error_t je;
  json_t *cfg = json_loads(qf_model_config(model), 0, &je);
  const char *type = cfg ? json_string_value(json_object_get(cfg, "model_type")) : NULL;
  int rc = 0;
  if (type && (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2")) &&
      json_is_integer(json_object_get(cfg, "num_hidden_layers"))) {
    rc = qf__llama_keys(cfg, out);
  } else {
    size_t n = qf_model_input_count(model);
    for (size_t i = 0; i < n && rc == 0; i++) {
      qf_tensor_info ti;
      qf_model_input_at(model, i, &ti, NULL);
      rc = qf__keyset_add(out, ti.name);
    }
  }
  json_decref(cfg);
  if (rc) {
    qf__keyset_free(out);
    return qf_errorf(err, QF_ERR_NO_MEMORY, "lifecycle", "out of memory listing keys");
  }
  return QF_OK;
}
