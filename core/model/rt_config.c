/*
 * config.json → qf_rt_config: the architecture fields of a Llama-family
 * model (Llama 2/3, Mistral, Qwen2), with the defaults transformers applies
 * and llama3 / linear rope_scaling. Anything the runtime cannot run exactly
 * (another activation, another rope type, Qwen2's per-layer sliding window)
 * is an error that names the field.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "rt_internal.h"

#define OP "config"

static qf_status get_int(json_t *root, const char *key, int required,
                         int64_t dflt, int64_t *out, qf_error *err) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) {
    if (required)
      return qf_errorf(err, QF_ERR_FORMAT, OP,
                       "config.json: field '%s' is missing (expected an "
                       "integer)", key);
    *out = dflt;
    return QF_OK;
  }
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return QF_OK;
  }
  if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) {
    *out = (int64_t)json_real_value(v);
    return QF_OK;
  }
  return qf_errorf(err, QF_ERR_FORMAT, OP,
                   "config.json: field '%s' must be an integer", key);
}

static qf_status get_num(json_t *obj, const char *where, const char *key,
                         int required, double dflt, double *out,
                         qf_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) {
    if (required)
      return qf_errorf(err, QF_ERR_FORMAT, OP,
                       "config.json: field '%s%s' is missing (expected a "
                       "number)", where, key);
    *out = dflt;
    return QF_OK;
  }
  if (!json_is_number(v))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: field '%s%s' must be a number", where, key);
  *out = json_number_value(v);
  return QF_OK;
}

static int64_t first_id(json_t *v) {
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  if (json_is_array(v) && json_array_size(v) > 0 &&
      json_is_integer(json_array_get(v, 0)))
    return (int64_t)json_integer_value(json_array_get(v, 0));
  return -1;
}

static qf_status parse_rope_scaling(json_t *rs, qf_rt_config *c,
                                    qf_error *err) {
  c->rope_type = QF_RT_ROPE_DEFAULT;
  if (!rs || json_is_null(rs)) return QF_OK;
  if (!json_is_object(rs))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: 'rope_scaling' must be an object or null");
  json_t *t = json_object_get(rs, "rope_type");
  if (!t) t = json_object_get(rs, "type");
  if (!json_is_string(t))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: 'rope_scaling.rope_type' must be a string");
  const char *type = json_string_value(t);
  qf_status st;
  if (!strcmp(type, "default")) return QF_OK;
  if (!strcmp(type, "linear")) {
    c->rope_type = QF_RT_ROPE_LINEAR;
    return get_num(rs, "rope_scaling.", "factor", 1, 1.0, &c->rope_factor,
                   err);
  }
  if (!strcmp(type, "llama3")) {
    c->rope_type = QF_RT_ROPE_LLAMA3;
    if ((st = get_num(rs, "rope_scaling.", "factor", 1, 0, &c->rope_factor,
                      err)) ||
        (st = get_num(rs, "rope_scaling.", "low_freq_factor", 1, 0,
                      &c->rope_low_freq_factor, err)) ||
        (st = get_num(rs, "rope_scaling.", "high_freq_factor", 1, 0,
                      &c->rope_high_freq_factor, err)))
      return st;
    double omp = 0;
    if ((st = get_num(rs, "rope_scaling.", "original_max_position_embeddings",
                      1, 0, &omp, err)))
      return st;
    c->rope_original_max_position = (int64_t)omp;
    if (c->rope_factor <= 0 || c->rope_original_max_position <= 0 ||
        c->rope_high_freq_factor <= c->rope_low_freq_factor)
      return qf_errorf(err, QF_ERR_FORMAT, OP,
                       "config.json: llama3 'rope_scaling' needs factor > 0, "
                       "original_max_position_embeddings > 0 and "
                       "high_freq_factor > low_freq_factor");
    return QF_OK;
  }
  return qf_errorf(err, QF_ERR_UNSUPPORTED, OP,
                   "config.json: rope_scaling type '%s' is not supported "
                   "(expected default, linear or llama3)", type);
}

static qf_status parse_root(json_t *root, qf_rt_config *c, qf_error *err) {
  qf_status st;
  json_t *mt = json_object_get(root, "model_type");
  if (!json_is_string(mt))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: field 'model_type' is missing (expected "
                     "\"llama\", \"mistral\" or \"qwen2\")");
  const char *type = json_string_value(mt);
  if (strcmp(type, "llama") && strcmp(type, "mistral") && strcmp(type, "qwen2"))
    return qf_errorf(err, QF_ERR_UNSUPPORTED, OP,
                     "config.json: model_type '%s' is not supported (expected "
                     "llama, mistral or qwen2)", type);
  snprintf(c->model_type, sizeof c->model_type, "%s", type);
  json_t *act = json_object_get(root, "hidden_act");
  if (act && !(json_is_string(act) && !strcmp(json_string_value(act), "silu")))
    return qf_errorf(err, QF_ERR_UNSUPPORTED, OP,
                     "config.json: hidden_act must be \"silu\"");
  if ((st = get_int(root, "hidden_size", 1, 0, &c->hidden, err)) ||
      (st = get_int(root, "intermediate_size", 1, 0, &c->intermediate, err)) ||
      (st = get_int(root, "num_hidden_layers", 1, 0, &c->n_layers, err)) ||
      (st = get_int(root, "num_attention_heads", 1, 0, &c->n_heads, err)) ||
      (st = get_int(root, "vocab_size", 1, 0, &c->vocab, err)) ||
      (st = get_int(root, "num_key_value_heads", 0, c->n_heads,
                    &c->n_kv_heads, err)) ||
      (st = get_int(root, "max_position_embeddings", 0, 4096,
                    &c->max_position, err)))
    return st;
  if (c->hidden <= 0 || c->intermediate <= 0 || c->n_layers <= 0 ||
      c->n_heads <= 0 || c->vocab <= 0 || c->n_kv_heads <= 0)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: hidden_size, intermediate_size, "
                     "num_hidden_layers, num_attention_heads, "
                     "num_key_value_heads and vocab_size must be positive");
  if (c->n_heads % c->n_kv_heads)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: num_attention_heads (%lld) must be a "
                     "multiple of num_key_value_heads (%lld)",
                     (long long)c->n_heads, (long long)c->n_kv_heads);
  if ((st = get_int(root, "head_dim", 0, c->hidden / c->n_heads, &c->head_dim,
                    err)))
    return st;
  if (c->head_dim <= 0 || c->head_dim % 2)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: head_dim must be a positive even number "
                     "(got %lld)", (long long)c->head_dim);
  if ((st = get_num(root, "", "rms_norm_eps", 0, 1e-6, &c->rms_eps, err)) ||
      (st = get_num(root, "", "rope_theta", 0, 10000.0, &c->rope_theta, err)))
    return st;
  if ((st = parse_rope_scaling(json_object_get(root, "rope_scaling"), c, err)))
    return st;
  json_t *tie = json_object_get(root, "tie_word_embeddings");
  if (tie && !json_is_boolean(tie))
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: 'tie_word_embeddings' must be a boolean");
  c->tie_word_embeddings = tie ? json_is_true(tie) : 0;
  c->sliding_window = 0;
  json_t *usw = json_object_get(root, "use_sliding_window");
  if (!strcmp(type, "qwen2")) {
    if (json_is_true(usw))
      return qf_errorf(err, QF_ERR_UNSUPPORTED, OP,
                       "config.json: qwen2 'use_sliding_window': true is not "
                       "supported");
  } else if (!strcmp(type, "mistral")) {
    if ((st = get_int(root, "sliding_window", 0, 0, &c->sliding_window, err)))
      return st;
    if (c->sliding_window < 0) c->sliding_window = 0;
  }
  c->bos_token_id = first_id(json_object_get(root, "bos_token_id"));
  c->eos_token_id = first_id(json_object_get(root, "eos_token_id"));
  return QF_OK;
}

qf_status qf_rt_config_parse(const char *json, qf_rt_config *out,
                             qf_error *err) {
  if (!json || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "no config.json text was given");
  memset(out, 0, sizeof *out);
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  if (!root)
    return qf_errorf(err, QF_ERR_FORMAT, OP,
                     "config.json: invalid JSON at line %d column %d: %s",
                     je.line, je.column, je.text);
  qf_status st = QF_OK;
  if (!json_is_object(root))
    st = qf_errorf(err, QF_ERR_FORMAT, OP,
                   "config.json: expected a JSON object");
  else
    st = parse_root(root, out, err);
  json_decref(root);
  return st;
}
