/*
 * The demo model generator: a deterministic Llama-style HF folder
 * (config.json, model.safetensors through the core's writer, optionally a
 * generated tokenizer.json) whose weights look like a trained model's in the
 * ways quantization cares about — roughly Gaussian rows with per-row scale
 * spread and a sprinkle of heavy-tailed entries, a few hidden channels with
 * large RMSNorm gains (activation outliers reaching q/k/v and gate/up, so
 * activation-aware methods matter) and a few boosted intermediate channels
 * (outliers at down_proj's input) — plus calibration / evaluation token sets
 * sampled from the model itself with a KV cache. The scales are tuned so
 * that, as with trained models, 8-bit round-to-nearest is nearly lossless
 * (mean KL ≈ 1e-3) while 4-bit g128 RTN costs visibly (KL ≈ 0.2), leaving
 * room for GPTQ / AWQ to show their gains.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt_internal.h"

#define OP "demo"

void qf_demo_config_default(qf_demo_config *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->struct_size = sizeof *c;
  c->model_type = "llama";
  c->hidden = 256;
  c->intermediate = 768;
  c->n_layers = 6;
  c->n_heads = 8;
  c->n_kv_heads = 4;
  c->head_dim = 32;
  c->vocab = 2048;
  c->max_position = 2048;
  c->rope_theta = 10000.0;
  c->rms_eps = 1e-5;
  c->rope_factor = 8.0;
  c->rope_low_freq_factor = 1.0;
  c->rope_high_freq_factor = 4.0;
  c->rope_original_max_position = 1024;
  c->dtype = QF_DTYPE_BF16;
  c->seed = 1234;
  c->n_outlier_channels = 4;
  c->outlier_scale = 8.0;
  c->tokenizer = QF_TOKENIZER_BYTE_LEVEL;
}

void qf_demo_config_1b(qf_demo_config *c) {
  qf_demo_config_default(c);
  if (!c) return;
  c->hidden = 2048;
  c->intermediate = 8192;
  c->n_layers = 16;
  c->n_heads = 32;
  c->n_kv_heads = 8;
  c->head_dim = 64;
  c->vocab = 128256;
  c->max_position = 131072;
  c->rope_theta = 500000.0;
  c->rope_llama3 = 1;
  c->rope_factor = 32.0;
  c->rope_original_max_position = 8192;
  c->tie_word_embeddings = 1;
  c->n_outlier_channels = 8;
  c->tokenizer = 0;
}

/* ---------------------------------------------------------------- random */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t next_u64(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform(rng *r) {
  return ((double)(next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gauss(rng *r) {
  double u = uniform(r), v = uniform(r);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A generator seeded by the model seed and the tensor name. */
static rng rng_for(uint64_t seed, const char *name) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  rng r = {h};
  next_u64(&r);
  return r;
}

/* ---------------------------------------------------------------- tensors */

typedef struct gen_ctx {
  const qf_demo_config *c;
  qf_st_writer *w;
  float *buf;
  void *conv;
  int *hid_out;   /* outlier flags per hidden channel */
  int *int_out;   /* boosted intermediate channels */
  qf_error *err;
} gen_ctx;

static qf_status emit(gen_ctx *g, const char *name, int64_t d0, int64_t d1) {
  int64_t shape[2] = {d0, d1};
  size_t n = (size_t)(d0 * (d1 ? d1 : 1));
  qf_convert(g->conv, g->c->dtype, g->buf, QF_DTYPE_F32, n);
  return qf_st_writer_add(g->w, name, g->c->dtype, d1 ? 2 : 1, shape, g->conv,
                          g->err);
}

static void gen_linear(gen_ctx *g, const char *name, int64_t N, int64_t K,
                       double scale, const int *row_boost) {
  rng r = rng_for(g->c->seed, name);
  for (int64_t i = 0; i < N; i++) {
    double rs = exp(0.25 * gauss(&r)) * scale / sqrt((double)K);
    if (row_boost && row_boost[i]) rs *= 3.0;
    for (int64_t j = 0; j < K; j++) {
      double v = gauss(&r) * rs;
      if (uniform(&r) < 0.002) v *= 3.0;
      g->buf[i * K + j] = (float)v;
    }
  }
}

static void gen_norm(gen_ctx *g, const char *name, int64_t H, double gain,
                     const int *outlier) {
  rng r = rng_for(g->c->seed, name);
  for (int64_t i = 0; i < H; i++) {
    double v = gain * (1.0 + 0.05 * gauss(&r));
    if (outlier && outlier[i]) v *= g->c->outlier_scale;
    g->buf[i] = (float)v;
  }
}

static void gen_gauss(gen_ctx *g, const char *name, int64_t n, double std) {
  rng r = rng_for(g->c->seed, name);
  for (int64_t i = 0; i < n; i++) g->buf[i] = (float)(gauss(&r) * std);
}

static void pick(uint64_t seed, const char *what, int *flags, int64_t n,
                 int64_t k) {
  rng r = rng_for(seed, what);
  memset(flags, 0, (size_t)n * sizeof *flags);
  for (int64_t i = 0; i < k && i < n;) {
    int64_t c = (int64_t)(next_u64(&r) % (uint64_t)n);
    if (!flags[c]) {
      flags[c] = 1;
      i++;
    }
  }
}

static qf_status gen_layer(gen_ctx *g, int l) {
  const qf_demo_config *c = g->c;
  char nm[128];
  qf_status st;
  int64_t H = c->hidden, I = c->intermediate, hd = c->head_dim;
  snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
  gen_norm(g, nm, H, 1.0, g->hid_out);
  if ((st = emit(g, nm, H, 0))) return st;
  for (int m = 0; m < QF_RT_MODULE_COUNT; m++) {
    int64_t N = m == QF_RT_Q ? c->n_heads * hd
                : m == QF_RT_K || m == QF_RT_V ? c->n_kv_heads * hd
                : m == QF_RT_GATE || m == QF_RT_UP ? I
                                                   : H;
    int64_t K = m == QF_RT_O ? c->n_heads * hd : m == QF_RT_DOWN ? I : H;
    if (m == QF_RT_GATE) {
      snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight",
               l);
      gen_norm(g, nm, H, 1.0, g->hid_out);
      if ((st = emit(g, nm, H, 0))) return st;
    }
    qf_rt_linear_name(l, (qf_rt_module)m, nm, sizeof nm);
    double scale = m == QF_RT_O || m == QF_RT_DOWN ? 0.25 : 1.0;
    gen_linear(g, nm, N, K, scale,
               m == QF_RT_GATE || m == QF_RT_UP ? g->int_out : NULL);
    if ((st = emit(g, nm, N, K))) return st;
    if (c->qkv_bias && m <= QF_RT_V) {
      snprintf(nm, sizeof nm, "model.layers.%d.%s.bias", l,
               qf_rt_module_name((qf_rt_module)m));
      gen_gauss(g, nm, N, m == QF_RT_K ? 0.5 : 0.1);
      if ((st = emit(g, nm, N, 0))) return st;
    }
  }
  return QF_OK;
}

static qf_status check_cfg(const qf_demo_config *c, qf_error *err) {
  const char *mt = c->model_type ? c->model_type : "llama";
  if (c->hidden <= 0 || c->intermediate <= 0 || c->n_layers <= 0 ||
      c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
      c->head_dim % 2 || c->vocab <= 0 || c->n_heads % c->n_kv_heads)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "demo config: sizes must be positive, head_dim even and "
                     "n_heads a multiple of n_kv_heads");
  if (strcmp(mt, "llama") && strcmp(mt, "mistral") && strcmp(mt, "qwen2"))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "demo config: model_type '%s' (expected llama, mistral "
                     "or qwen2)", mt);
  if (c->dtype != QF_DTYPE_F32 && c->dtype != QF_DTYPE_F16 &&
      c->dtype != QF_DTYPE_BF16)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "demo config: dtype must be F32, F16 or BF16");
  return QF_OK;
}

static qf_status write_weights(const char *dir, const qf_demo_config *c,
                               qf_error *err) {
  int64_t H = c->hidden, I = c->intermediate, V = c->vocab;
  int64_t qd = c->n_heads * c->head_dim;
  int64_t big = V * H;
  int64_t sizes[3] = {qd > H ? qd * H : H * H, I * H, 0};
  for (int i = 0; i < 2; i++)
    if (sizes[i] > big) big = sizes[i];
  gen_ctx g = {c, NULL, malloc((size_t)big * sizeof(float)),
               malloc((size_t)big * sizeof(float)),
               malloc((size_t)H * sizeof(int)), malloc((size_t)I * sizeof(int)),
               err};
  qf_status st = QF_OK;
  if (!g.buf || !g.conv || !g.hid_out || !g.int_out) {
    st = qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    goto done;
  }
  pick(c->seed, "outliers.hidden", g.hid_out, H, c->n_outlier_channels);
  pick(c->seed, "outliers.intermediate", g.int_out, I,
       2 * (int64_t)c->n_outlier_channels);
  if ((st = qf_st_writer_new(dir, c->shard_bytes, &g.w, err))) goto done;
  gen_gauss(&g, "model.embed_tokens.weight", V * H, 1.0);
  if ((st = emit(&g, "model.embed_tokens.weight", V, H))) goto fail;
  for (int l = 0; l < c->n_layers; l++)
    if ((st = gen_layer(&g, l))) goto fail;
  gen_norm(&g, "model.norm.weight", H,
           c->tie_word_embeddings ? 2.5 / sqrt((double)H) : 2.5, NULL);
  if ((st = emit(&g, "model.norm.weight", H, 0))) goto fail;
  if (!c->tie_word_embeddings) {
    gen_gauss(&g, "lm_head.weight", V * H, 1.0 / sqrt((double)H));
    if ((st = emit(&g, "lm_head.weight", V, H))) goto fail;
  }
  st = qf_st_writer_finish(g.w, err);
  goto done;
fail:
  qf_st_writer_abort(g.w);
done:
  free(g.buf);
  free(g.conv);
  free(g.hid_out);
  free(g.int_out);
  return st;
}

static char *path_join(const char *dir, const char *file) {
  size_t n = strlen(dir) + strlen(file) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, file);
  return p;
}

static qf_status write_text(const char *dir, const char *file,
                            const char *text, qf_error *err) {
  char *p = path_join(dir, file);
  if (!p || !text) {
    free(p);
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  }
  qf_status st = qf_write_file_atomic(p, text, strlen(text), err);
  free(p);
  return st;
}

static json_t *config_json(const qf_demo_config *c, int64_t bos, int64_t eos) {
  json_t *o = json_object();
  const char *mt = c->model_type ? c->model_type : "llama";
  const char *arch = !strcmp(mt, "qwen2")     ? "Qwen2ForCausalLM"
                     : !strcmp(mt, "mistral") ? "MistralForCausalLM"
                                              : "LlamaForCausalLM";
  json_object_set_new(o, "architectures", json_pack("[s]", arch));
  json_object_set_new(o, "model_type", json_string(mt));
  json_object_set_new(o, "hidden_act", json_string("silu"));
  json_object_set_new(o, "hidden_size", json_integer(c->hidden));
  json_object_set_new(o, "intermediate_size", json_integer(c->intermediate));
  json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
  json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
  json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
  json_object_set_new(o, "head_dim", json_integer(c->head_dim));
  json_object_set_new(o, "vocab_size", json_integer(c->vocab));
  json_object_set_new(o, "max_position_embeddings",
                      json_integer(c->max_position > 0 ? c->max_position
                                                       : 2048));
  json_object_set_new(o, "rms_norm_eps", json_real(c->rms_eps > 0 ? c->rms_eps
                                                                   : 1e-5));
  json_object_set_new(o, "rope_theta",
                      json_real(c->rope_theta > 0 ? c->rope_theta : 10000.0));
  json_object_set_new(
      o, "rope_scaling",
      c->rope_llama3
          ? json_pack("{s:s,s:f,s:f,s:f,s:I}", "rope_type", "llama3", "factor",
                      c->rope_factor, "low_freq_factor",
                      c->rope_low_freq_factor, "high_freq_factor",
                      c->rope_high_freq_factor,
                      "original_max_position_embeddings",
                      (json_int_t)c->rope_original_max_position)
          : json_null());
  json_object_set_new(o, "tie_word_embeddings",
                      json_boolean(c->tie_word_embeddings));
  json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
  if (!strcmp(mt, "qwen2"))
    json_object_set_new(o, "use_sliding_window", json_false());
  if (!strcmp(mt, "mistral")) json_object_set_new(o, "sliding_window", json_null());
  json_object_set_new(o, "bos_token_id", bos >= 0 ? json_integer(bos) : json_null());
  json_object_set_new(o, "eos_token_id", eos >= 0 ? json_integer(eos) : json_null());
  json_object_set_new(o, "torch_dtype",
                      json_string(c->dtype == QF_DTYPE_F32   ? "float32"
                                  : c->dtype == QF_DTYPE_F16 ? "float16"
                                                             : "bfloat16"));
  json_object_set_new(o, "transformers_version", json_string("4.45.0"));
  return o;
}

qf_status qf_demo_write(const char *dir, const qf_demo_config *cfg,
                        qf_error *err) {
  qf_demo_config c;
  qf_demo_config_default(&c);
  if (!dir)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP, "no folder given");
  if (cfg) {
    size_t n = cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c;
    memcpy(&c, cfg, n);
  }
  qf_status st = check_cfg(&c, err);
  if (st) return st;
  if (mkdir(dir, 0777) && errno != EEXIST)
    return qf_errorf(err, QF_ERR_IO, OP, "%s: cannot create the folder: %s",
                     dir, strerror(errno));
  if ((st = write_weights(dir, &c, err))) return st;
  int64_t bos = -1, eos = -1;
  if (c.tokenizer) {
    char *tj = qf_demo_tokenizer_json(c.tokenizer, c.vocab);
    qf_tokenizer *tok = NULL;
    st = tj ? qf_tokenizer_from_json(tj, "generated tokenizer.json", &tok, err)
            : qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    if (!st) {
      int bl = c.tokenizer == QF_TOKENIZER_BYTE_LEVEL;
      bos = qf_tokenizer_id(tok, bl ? "<|begin_of_text|>" : "<s>");
      eos = qf_tokenizer_id(tok, bl ? "<|end_of_text|>" : "</s>");
      st = write_text(dir, "tokenizer.json", tj, err);
    }
    qf_tokenizer_free(tok);
    free(tj);
    if (st) return st;
  }
  json_t *o = config_json(&c, bos, eos);
  char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
  json_decref(o);
  st = write_text(dir, "config.json", text, err);
  free(text);
  return st;
}

/* ---------------------------------------------------------------- sampling */

static int32_t sample_row(const float *lg, int64_t V, rng *r) {
  float mx = lg[0];
  for (int64_t i = 1; i < V; i++)
    if (lg[i] > mx) mx = lg[i];
  double sum = 0;
  for (int64_t i = 0; i < V; i++) sum += exp((double)lg[i] - mx);
  double u = uniform(r) * sum, acc = 0;
  for (int64_t i = 0; i < V; i++) {
    acc += exp((double)lg[i] - mx);
    if (acc >= u) return (int32_t)i;
  }
  return (int32_t)(V - 1);
}

qf_status qf_demo_sample(qf_rt_model *m, int64_t n_seq, int64_t len,
                         uint64_t seed, qf_token_set **out, qf_error *err) {
  if (!m || !out || n_seq <= 0 || len <= 0)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_demo_sample needs a model, sizes > 0 and an output");
  const qf_rt_config *c = qf_rt_get_config(m);
  int64_t V = c->vocab;
  int32_t *ids = malloc((size_t)(n_seq * len) * sizeof *ids);
  int64_t *lens = malloc((size_t)n_seq * sizeof *lens);
  float *lg = malloc((size_t)(16 * V) * sizeof *lg);
  qf_status st = ids && lens && lg ? QF_OK
                                   : qf_errorf(err, QF_ERR_NO_MEMORY, OP,
                                               "out of memory");
  rng r = rng_for(seed, "sample");
  for (int64_t s0 = 0; !st && s0 < n_seq; s0 += 16) {
    int64_t B = n_seq - s0 < 16 ? n_seq - s0 : 16;
    qf_rt_kv *kv = NULL;
    int32_t cur[16];
    if ((st = qf_rt_kv_new(m, B, len, &kv, err))) break;
    for (int64_t b = 0; b < B; b++) {
      cur[b] = c->bos_token_id >= 0 && c->bos_token_id < V
                   ? (int32_t)c->bos_token_id
                   : (int32_t)(next_u64(&r) % (uint64_t)V);
      ids[(s0 + b) * len] = cur[b];
    }
    for (int64_t t = 1; !st && t < len; t++) {
      st = qf_rt_forward(m, cur, B, 1, kv, lg, QF_RT_LOGITS_LAST, err);
      for (int64_t b = 0; !st && b < B; b++) {
        cur[b] = sample_row(lg + b * V, V, &r);
        ids[(s0 + b) * len + t] = cur[b];
      }
    }
    qf_rt_kv_free(kv);
  }
  for (int64_t s = 0; !st && s < n_seq; s++) lens[s] = len;
  if (!st) st = qf_tokens_from_array(ids, lens, n_seq, out, err);
  free(ids);
  free(lens);
  free(lg);
  return st;
}

qf_status qf_demo_write_tokens(const char *dir, int64_t n_calib,
                               int64_t n_eval, int64_t len, uint64_t seed,
                               qf_error *err) {
  qf_rt_model *m = NULL;
  qf_token_set *t = NULL;
  qf_status st = qf_rt_open(dir, NULL, &m, err);
  const char *files[2] = {"calib.npy", "eval.npy"};
  int64_t counts[2] = {n_calib, n_eval};
  for (int i = 0; !st && i < 2; i++) {
    if (counts[i] <= 0) continue;
    char *p = path_join(dir, files[i]);
    st = p ? qf_demo_sample(m, counts[i], len, seed + (uint64_t)i * 7919u, &t,
                            err)
           : qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    if (!st) st = qf_tokens_write_npy(p, t, err);
    qf_tokens_free(t);
    t = NULL;
    free(p);
  }
  qf_rt_free(m);
  return st;
}
