/*
 * convert_meta.c — model metadata between an HF config.json and GGUF keys
 * for the Llama family.
 *
 * HF -> GGUF: the keys and key types convert_hf_to_gguf.py writes for the
 * llama / qwen2 architectures (general.architecture, <arch>.block_count,
 * .context_length, .embedding_length, .feed_forward_length,
 * .attention.head_count(_kv), .rope.freq_base, .attention.
 * layer_norm_rms_epsilon, .vocab_size, .rope.dimension_count, rope scaling):
 * integers as u32 and floats as f32, which llama.cpp's loader demands
 * exactly. GGUF -> HF: the config.json transformers builds when it loads a
 * GGUF (model_type, architectures, sizes, eps, rope theta, tied embeddings
 * when there is no output.weight). Reading GGUF keys is lenient about the
 * integer width so files of other writers load too.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf_plugin.h"
#include "qforge/plugin_util.h"

void qf_gguf_logf(const qf_gguf_env *env, qf_log_level level, const char *fmt, ...) {
  if (!env || !env->log) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  env->log(env->user, level, buf);
}

#define FAIL(err, code, ...) qf_fail(err, code, QF_GGUF_PLUGIN, "convert", __VA_ARGS__)

/* ------------------------------------------------------------ HF config.json */

static int qf__json_int(json_t *o, const char *key, int64_t *out) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return 0;
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 1;
  }
  if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
    *out = (int64_t)json_real_value(v);
    return 1;
  }
  return -1;
}

static int qf__json_num(json_t *o, const char *key, double *out) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_number(v)) return -1;
  *out = json_number_value(v);
  return 1;
}

/* An integer token id, or the first of a list of them. */
static int64_t qf__json_token_id(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (json_is_array(v)) v = json_array_get(v, 0);
  return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

static qf_status qf__need_int(json_t *o, const char *what, const char *key, int64_t def,
                              int required, int64_t *out, qf_error *err) {
  int r = qf__json_int(o, key, out);
  if (r < 0) return FAIL(err, QF_ERR_FORMAT, "%s: field '%s' must be an integer", what, key);
  if (r == 0) {
    if (required)
      return FAIL(err, QF_ERR_FORMAT, "%s: field '%s' (an integer) is required", what, key);
    *out = def;
  } else if (*out <= 0 || *out > ((int64_t)1 << 31)) {
    return FAIL(err, QF_ERR_FORMAT,
                "%s: field '%s' must be a positive integer below 2^31, got %lld", what, key,
                (long long)*out);
  }
  return QF_OK;
}

static qf_status qf__rope_from_hf(json_t *root, const char *what, qf_gguf_hparams *hp,
                                  qf_error *err) {
  json_t *rs = json_object_get(root, "rope_scaling");
  if (!rs || json_is_null(rs)) return QF_OK;
  if (!json_is_object(rs))
    return FAIL(err, QF_ERR_FORMAT, "%s: field 'rope_scaling' must be an object or null", what);
  const char *type = json_string_value(json_object_get(rs, "rope_type"));
  if (!type) type = json_string_value(json_object_get(rs, "type"));
  if (!type || !strcmp(type, "default")) return QF_OK;
  snprintf(hp->rope_type, sizeof hp->rope_type, "%s", type);
  double v;
  hp->rope_factor = qf__json_num(rs, "factor", &v) > 0 ? (float)v : 1.0f;
  hp->rope_low_freq = qf__json_num(rs, "low_freq_factor", &v) > 0 ? (float)v : 1.0f;
  hp->rope_high_freq = qf__json_num(rs, "high_freq_factor", &v) > 0 ? (float)v : 4.0f;
  int64_t oc = 0;
  if (qf__json_int(rs, "original_max_position_embeddings", &oc) > 0) hp->rope_orig_ctx = oc;
  return QF_OK;
}

qf_status qf_gguf_hparams_from_hf(const char *config_json, const char *what, qf_gguf_hparams *hp,
                                  qf_error *err) {
  memset(hp, 0, sizeof *hp);
  hp->bos_id = hp->eos_id = hp->pad_id = hp->unk_id = -1;
  json_error_t je;
  json_t *root = json_loads(config_json ? config_json : "", 0, &je);
  if (!root || !json_is_object(root)) {
    json_decref(root);
    return FAIL(err, QF_ERR_FORMAT, "%s: not a JSON object (%s)", what,
                root ? "another JSON value" : je.text);
  }
  qf_status st = QF_OK;
  const char *mt = json_string_value(json_object_get(root, "model_type"));
  if (!mt) {
    st = FAIL(err, QF_ERR_FORMAT, "%s: field 'model_type' (a string) is required", what);
    goto out;
  }
  if (!strcmp(mt, "llama") || !strcmp(mt, "mistral")) {
    hp->arch = QF_GGUF_ARCH_LLAMA;
    snprintf(hp->arch_name, sizeof hp->arch_name, "llama");
  } else if (!strcmp(mt, "qwen2")) {
    hp->arch = QF_GGUF_ARCH_QWEN2;
    snprintf(hp->arch_name, sizeof hp->arch_name, "qwen2");
  } else {
    st = FAIL(err, QF_ERR_UNSUPPORTED,
              "%s: model_type '%s' is not supported (llama, mistral and qwen2 are)", what, mt);
    goto out;
  }
  snprintf(hp->model_type, sizeof hp->model_type, "%s", mt);
  int is_qwen = hp->arch == QF_GGUF_ARCH_QWEN2;
  if ((st = qf__need_int(root, what, "num_hidden_layers", 0, 1, &hp->n_layer, err)) ||
      (st = qf__need_int(root, what, "hidden_size", 0, 1, &hp->n_embd, err)) ||
      (st = qf__need_int(root, what, "intermediate_size", 0, 1, &hp->n_ff, err)) ||
      (st = qf__need_int(root, what, "num_attention_heads", 0, 1, &hp->n_head, err)) ||
      (st = qf__need_int(root, what, "num_key_value_heads", hp->n_head, 0, &hp->n_head_kv, err)) ||
      (st = qf__need_int(root, what, "max_position_embeddings", is_qwen ? 32768 : 2048, 0,
                         &hp->n_ctx, err)) ||
      (st = qf__need_int(root, what, "vocab_size", is_qwen ? 151936 : 32000, 0, &hp->n_vocab,
                         err)) ||
      (st = qf__need_int(root, what, "head_dim", hp->n_embd / hp->n_head, 0, &hp->head_dim, err)))
    goto out;
  if (hp->n_head % hp->n_head_kv != 0) {
    st = FAIL(err, QF_ERR_FORMAT,
              "%s: num_attention_heads (%lld) must be a multiple of num_key_value_heads (%lld)",
              what, (long long)hp->n_head, (long long)hp->n_head_kv);
    goto out;
  }
  double v;
  int r;
  if ((r = qf__json_num(root, "rope_theta", &v)) < 0) {
    st = FAIL(err, QF_ERR_FORMAT, "%s: field 'rope_theta' must be a number", what);
    goto out;
  }
  hp->rope_theta = r ? (float)v : 10000.0f;
  if ((r = qf__json_num(root, "rms_norm_eps", &v)) < 0) {
    st = FAIL(err, QF_ERR_FORMAT, "%s: field 'rms_norm_eps' must be a number", what);
    goto out;
  }
  hp->rms_eps = r ? (float)v : 1e-6f;
  json_t *tie = json_object_get(root, "tie_word_embeddings");
  hp->tie_embeddings = tie ? json_is_true(tie) : 0;
  hp->bos_id = qf__json_token_id(root, "bos_token_id");
  hp->eos_id = qf__json_token_id(root, "eos_token_id");
  hp->pad_id = qf__json_token_id(root, "pad_token_id");
  if ((st = qf__rope_from_hf(root, what, hp, err)) != QF_OK) goto out;
  const char *np = json_string_value(json_object_get(root, "_name_or_path"));
  if (np && *np) {
    const char *slash = strrchr(np, '/');
    snprintf(hp->name, sizeof hp->name, "%s", slash ? slash + 1 : np);
  } else {
    snprintf(hp->name, sizeof hp->name, "%s",
             !strcmp(mt, "mistral") ? "Mistral"
             : is_qwen              ? "Qwen2"
                                    : "Llama");
  }
out:
  json_decref(root);
  return st;
}

/* ------------------------------------------------------------ GGUF keys */

/* Any integer scalar (or the first element of an integer array). */
static int qf__kv_int(const qf_gguf_file *f, const char *key, int64_t *out) {
  const qf_gguf_kv *kv = qf_gguf_find_kv(f, key);
  if (!kv || kv->n == 0) return 0;
  qf_gguf_value v = qf_gguf_kv_elem(kv, 0);
  switch (kv->elem_type) {
    case QF_GGUF_VT_UINT8:
      *out = v.u8;
      return 1;
    case QF_GGUF_VT_INT8:
      *out = v.i8;
      return 1;
    case QF_GGUF_VT_UINT16:
      *out = v.u16;
      return 1;
    case QF_GGUF_VT_INT16:
      *out = v.i16;
      return 1;
    case QF_GGUF_VT_UINT32:
      *out = v.u32;
      return 1;
    case QF_GGUF_VT_INT32:
      *out = v.i32;
      return 1;
    case QF_GGUF_VT_UINT64:
      *out = (int64_t)v.u64;
      return 1;
    case QF_GGUF_VT_INT64:
      *out = v.i64;
      return 1;
    default:
      return -1;
  }
}

static int qf__kv_float(const qf_gguf_file *f, const char *key, double *out) {
  const qf_gguf_kv *kv = qf_gguf_find_kv(f, key);
  if (!kv || kv->n == 0) return 0;
  qf_gguf_value v = qf_gguf_kv_elem(kv, 0);
  if (kv->elem_type == QF_GGUF_VT_FLOAT32)
    *out = v.f32;
  else if (kv->elem_type == QF_GGUF_VT_FLOAT64)
    *out = v.f64;
  else
    return -1;
  return 1;
}

static void qf__kv_str(const qf_gguf_file *f, const char *key, char *out, size_t n) {
  const qf_gguf_kv *kv = qf_gguf_find_kv(f, key);
  out[0] = '\0';
  if (kv && kv->type == QF_GGUF_VT_STRING && kv->strs)
    snprintf(out, n, "%.*s", (int)(kv->strs[0].len < n ? kv->strs[0].len : n - 1),
             kv->strs[0].data);
}

static qf_status qf__need_kv_int(const qf_gguf_file *f, const char *arch, const char *suffix,
                                 int64_t def, int required, int64_t *out, qf_error *err) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  int r = qf__kv_int(f, key, out);
  if (r < 0)
    return FAIL(err, QF_ERR_FORMAT, "%s: key '%s' must be an integer (u32)", qf_gguf_path(f), key);
  if (r == 0) {
    if (required)
      return FAIL(err, QF_ERR_FORMAT, "%s: key '%s' (u32) is required", qf_gguf_path(f), key);
    *out = def;
  }
  return QF_OK;
}

qf_status qf_gguf_hparams_from_gguf(const qf_gguf_file *f, qf_gguf_hparams *hp, qf_error *err) {
  memset(hp, 0, sizeof *hp);
  hp->bos_id = hp->eos_id = hp->pad_id = hp->unk_id = -1;
  qf__kv_str(f, "general.architecture", hp->arch_name, sizeof hp->arch_name);
  if (!hp->arch_name[0])
    return FAIL(err, QF_ERR_FORMAT, "%s: key 'general.architecture' (a string) is required",
                qf_gguf_path(f));
  qf__kv_str(f, "general.name", hp->name, sizeof hp->name);
  if (!strcmp(hp->arch_name, "llama")) {
    hp->arch = QF_GGUF_ARCH_LLAMA;
    int mistral = 0;
    for (const char *p = hp->name; *p && !mistral; p++) mistral = !strncasecmp(p, "mistral", 7);
    snprintf(hp->model_type, sizeof hp->model_type, "%s", mistral ? "mistral" : "llama");
  } else if (!strcmp(hp->arch_name, "qwen2")) {
    hp->arch = QF_GGUF_ARCH_QWEN2;
    snprintf(hp->model_type, sizeof hp->model_type, "qwen2");
  }
  const char *a = hp->arch_name;
  qf_status st;
  int known = hp->arch != QF_GGUF_ARCH_UNKNOWN;
  if ((st = qf__need_kv_int(f, a, "block_count", 0, known, &hp->n_layer, err)) ||
      (st = qf__need_kv_int(f, a, "embedding_length", 0, known, &hp->n_embd, err)) ||
      (st = qf__need_kv_int(f, a, "feed_forward_length", 0, known, &hp->n_ff, err)) ||
      (st = qf__need_kv_int(f, a, "attention.head_count", 0, known, &hp->n_head, err)) ||
      (st = qf__need_kv_int(f, a, "attention.head_count_kv", hp->n_head, 0, &hp->n_head_kv, err)) ||
      (st = qf__need_kv_int(f, a, "context_length", 2048, 0, &hp->n_ctx, err)) ||
      (st = qf__need_kv_int(f, a, "vocab_size", 0, 0, &hp->n_vocab, err)) ||
      (st = qf__need_kv_int(f, a, "expert_count", 0, 0, &hp->n_expert, err)))
    return st;
  if (known && (hp->n_layer <= 0 || hp->n_embd <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
                hp->n_head % hp->n_head_kv != 0))
    return FAIL(err, QF_ERR_FORMAT,
                "%s: block_count, embedding_length, attention.head_count(_kv) must be positive "
                "and head_count a multiple of head_count_kv",
                qf_gguf_path(f));
  int64_t def_hd = hp->n_head > 0 ? hp->n_embd / hp->n_head : 0;
  if ((st = qf__need_kv_int(f, a, "attention.key_length", def_hd, 0, &hp->head_dim, err)))
    return st;
  char key[128];
  double v;
  snprintf(key, sizeof key, "%s.rope.freq_base", a);
  hp->rope_theta = qf__kv_float(f, key, &v) > 0 ? (float)v : 10000.0f;
  snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
  hp->rms_eps = qf__kv_float(f, key, &v) > 0 ? (float)v : 1e-5f;
  snprintf(key, sizeof key, "%s.rope.scaling.type", a);
  qf__kv_str(f, key, hp->rope_type, sizeof hp->rope_type);
  if (!strcmp(hp->rope_type, "none")) hp->rope_type[0] = '\0';
  snprintf(key, sizeof key, "%s.rope.scaling.factor", a);
  hp->rope_factor = qf__kv_float(f, key, &v) > 0 ? (float)v : 1.0f;
  snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", a);
  int64_t oc = 0;
  if (qf__kv_int(f, key, &oc) > 0) hp->rope_orig_ctx = oc;
  int64_t id;
  if (qf__kv_int(f, "tokenizer.ggml.bos_token_id", &id) > 0) hp->bos_id = id;
  if (qf__kv_int(f, "tokenizer.ggml.eos_token_id", &id) > 0) hp->eos_id = id;
  if (qf__kv_int(f, "tokenizer.ggml.padding_token_id", &id) > 0) hp->pad_id = id;
  if (qf__kv_int(f, "tokenizer.ggml.unknown_token_id", &id) > 0) hp->unk_id = id;
  if (hp->n_vocab <= 0) {
    const qf_gguf_kv *tok = qf_gguf_find_kv(f, "tokenizer.ggml.tokens");
    const qf_gguf_tensor *emb = qf_gguf_find_tensor(f, "token_embd.weight");
    hp->n_vocab = tok ? (int64_t)tok->n : emb ? emb->ne[1] : 0;
  }
  hp->tie_embeddings = qf_gguf_find_tensor(f, "output.weight") == NULL;
  return QF_OK;
}

/* ------------------------------------------------------------ writing */

#define W(call)                   \
  do {                            \
    qf_status st_ = (call);       \
    if (st_ != QF_OK) return st_; \
  } while (0)

static qf_status qf__set_u32(qf_gguf_writer *w, const char *arch, const char *suffix, int64_t v,
                             qf_error *err) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  return qf_gguf_writer_set_u32(w, key, (uint32_t)v, err);
}

static qf_status qf__set_f32(qf_gguf_writer *w, const char *arch, const char *suffix, float v,
                             qf_error *err) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  return qf_gguf_writer_set_f32(w, key, v, err);
}

qf_status qf_gguf_write_hparams(qf_gguf_writer *w, const qf_gguf_hparams *hp, qf_error *err) {
  const char *a = hp->arch_name;
  W(qf_gguf_writer_set_str(w, "general.architecture", a, err));
  W(qf_gguf_writer_set_str(w, "general.type", "model", err));
  if (hp->name[0]) W(qf_gguf_writer_set_str(w, "general.name", hp->name, err));
  W(qf__set_u32(w, a, "block_count", hp->n_layer, err));
  W(qf__set_u32(w, a, "context_length", hp->n_ctx, err));
  W(qf__set_u32(w, a, "embedding_length", hp->n_embd, err));
  W(qf__set_u32(w, a, "feed_forward_length", hp->n_ff, err));
  W(qf__set_u32(w, a, "attention.head_count", hp->n_head, err));
  W(qf__set_u32(w, a, "attention.head_count_kv", hp->n_head_kv, err));
  W(qf__set_f32(w, a, "rope.freq_base", hp->rope_theta, err));
  W(qf__set_f32(w, a, "attention.layer_norm_rms_epsilon", hp->rms_eps, err));
  if (hp->head_dim > 0 && hp->head_dim != hp->n_embd / hp->n_head) {
    W(qf__set_u32(w, a, "attention.key_length", hp->head_dim, err));
    W(qf__set_u32(w, a, "attention.value_length", hp->head_dim, err));
  }
  W(qf__set_u32(w, a, "vocab_size", hp->n_vocab, err));
  W(qf__set_u32(w, a, "rope.dimension_count", hp->head_dim, err));
  if (!strcmp(hp->rope_type, "linear") || !strcmp(hp->rope_type, "yarn")) {
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    W(qf_gguf_writer_set_str(w, key, hp->rope_type, err));
    W(qf__set_f32(w, a, "rope.scaling.factor", hp->rope_factor, err));
    if (hp->rope_orig_ctx > 0)
      W(qf__set_u32(w, a, "rope.scaling.original_context_length", hp->rope_orig_ctx, err));
  }
  return QF_OK;
}

/* The shortest decimal that reads back as the same float (1e-05, not
 * 9.999999747378752e-06). */
static json_t *qf__json_float(float f) {
  char buf[32];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
    if ((float)strtod(buf, NULL) == f) break;
  }
  return json_real(strtod(buf, NULL));
}

char *qf_gguf_hf_config_json(const qf_gguf_file *f, const qf_gguf_hparams *hp,
                             const char *torch_dtype, int has_output) {
  json_t *o = json_object();
  const char *arch_cls = !strcmp(hp->model_type, "mistral") ? "MistralForCausalLM"
                         : hp->arch == QF_GGUF_ARCH_QWEN2   ? "Qwen2ForCausalLM"
                                                            : "LlamaForCausalLM";
  json_t *archs = json_array();
  json_array_append_new(archs, json_string(arch_cls));
  json_object_set_new(o, "architectures", archs);
  json_object_set_new(o, "model_type", json_string(hp->model_type));
  if (hp->name[0]) json_object_set_new(o, "_name_or_path", json_string(hp->name));
  json_object_set_new(o, "hidden_size", json_integer(hp->n_embd));
  json_object_set_new(o, "intermediate_size", json_integer(hp->n_ff));
  json_object_set_new(o, "num_hidden_layers", json_integer(hp->n_layer));
  json_object_set_new(o, "num_attention_heads", json_integer(hp->n_head));
  json_object_set_new(o, "num_key_value_heads", json_integer(hp->n_head_kv));
  if (hp->head_dim > 0 && hp->head_dim != hp->n_embd / hp->n_head)
    json_object_set_new(o, "head_dim", json_integer(hp->head_dim));
  json_object_set_new(o, "hidden_act", json_string("silu"));
  json_object_set_new(o, "rms_norm_eps", qf__json_float(hp->rms_eps));
  json_object_set_new(o, "rope_theta", qf__json_float(hp->rope_theta));
  json_object_set_new(o, "max_position_embeddings", json_integer(hp->n_ctx));
  json_object_set_new(o, "vocab_size", json_integer(hp->n_vocab));
  json_object_set_new(o, "tie_word_embeddings", json_boolean(!has_output));
  json_object_set_new(o, "torch_dtype", json_string(torch_dtype));
  if (hp->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(hp->bos_id));
  if (hp->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(hp->eos_id));
  if (hp->pad_id >= 0) json_object_set_new(o, "pad_token_id", json_integer(hp->pad_id));
  if (hp->rope_type[0]) {
    json_t *rs = json_object();
    json_object_set_new(rs, "rope_type", json_string(hp->rope_type));
    json_object_set_new(rs, "type", json_string(hp->rope_type));
    json_object_set_new(rs, "factor", qf__json_float(hp->rope_factor));
    if (hp->rope_orig_ctx > 0)
      json_object_set_new(rs, "original_max_position_embeddings", json_integer(hp->rope_orig_ctx));
    json_object_set_new(o, "rope_scaling", rs);
  }
  if (hp->arch == QF_GGUF_ARCH_LLAMA) {
    int bias = qf_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
    json_object_set_new(o, "attention_bias", json_boolean(bias));
  }
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(o);
  return text;
}
