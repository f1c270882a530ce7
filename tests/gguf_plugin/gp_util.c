/*
 * gp_util.c — scratch folders, the CLI runner and the tiny generated
 * checkpoints of the GGUF plugin suites (see gp_util.h).
 */
#include "gp_util.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

void gp_model_defaults(gp_model_opts *o) {
  memset(o, 0, sizeof *o);
  o->model_type = "llama";
  o->layers = 4;
  o->hidden = 256;
  o->inter = 512;
  o->heads = 4;
  o->kv_heads = 2;
  o->vocab = 512;
  o->dtype = QF_DTYPE_F32;
  o->seed = 0x1234567ull;
}

static float gp_gauss(uint64_t *s) {
  double u[2];
  for (int i = 0; i < 2; i++) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    u[i] = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
  }
  return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static void gp_add(qf_st_writer *w, const gp_model_opts *o, uint64_t *s, const char *name,
                   int64_t rows, int64_t cols, float scale, float offset) {
  int64_t n = rows * (cols ? cols : 1);
  float *f = malloc((size_t)n * sizeof *f);
  uint16_t *h = malloc((size_t)n * sizeof *h);
  cr_assert(f && h);
  for (int64_t i = 0; i < n; i++) f[i] = offset + scale * gp_gauss(s);
  int64_t shape[2] = {rows, cols};
  const void *data = f;
  if (o->dtype != QF_DTYPE_F32) {
    cr_assert(qf_convert(h, o->dtype, f, QF_DTYPE_F32, (size_t)n) == 0);
    data = h;
  }
  qf_error err;
  cr_assert(qf_st_writer_add(w, name, o->dtype, cols ? 2 : 1, shape, data, &err) == QF_OK, "%s",
            err.message);
  free(f);
  free(h);
}

static void gp_write_tokenizer(const char *dir, const gp_model_opts *o) {
  /* byte-level BPE: 256 byte tokens, a few merges, two special tokens */
  json_t *root = json_object(), *model = json_object(), *vocab = json_object();
  json_t *merges = json_array(), *added = json_array();
  int id = 0;
  for (int b = 0; b < 256; b++) {
    char tok[8];
    if (b >= 33 && b <= 126)
      snprintf(tok, sizeof tok, "%c", b);
    else
      snprintf(tok, sizeof tok, "<%02x>", b);
    json_object_set_new(vocab, tok, json_integer(id++));
  }
  static const char *const m[][2] = {{"t", "h"}, {"th", "e"}, {"a", "n"}, {"an", "d"}};
  for (size_t i = 0; i < 4; i++) {
    char both[8];
    snprintf(both, sizeof both, "%s%s", m[i][0], m[i][1]);
    json_object_set_new(vocab, both, json_integer(id++));
    if (i % 2 == 0) {
      char s2[8];
      snprintf(s2, sizeof s2, "%s %s", m[i][0], m[i][1]);
      json_array_append_new(merges, json_string(s2));
    } else {
      json_array_append_new(merges, json_pack("[ss]", m[i][0], m[i][1]));
    }
  }
  static const char *const special[] = {"<|bos|>", "<|eos|>"};
  for (int i = 0; i < 2; i++) {
    json_t *a = json_object();
    json_object_set_new(a, "id", json_integer(id++));
    json_object_set_new(a, "content", json_string(special[i]));
    json_object_set_new(a, "special", json_true());
    json_array_append_new(added, a);
  }
  json_object_set_new(model, "type", json_string("BPE"));
  json_object_set_new(model, "vocab", vocab);
  json_object_set_new(model, "merges", merges);
  json_object_set_new(root, "model", model);
  json_object_set_new(root, "added_tokens", added);
  json_object_set_new(root, "pre_tokenizer", json_pack("{s:s}", "type", "ByteLevel"));
  json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "ByteLevel"));
  char path[4200];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  cr_assert(json_dump_file(root, path, JSON_INDENT(1)) == 0);
  json_decref(root);
  json_t *tc = json_pack("{s:s, s:s, s:b, s:s}", "bos_token", "<|bos|>", "eos_token", "<|eos|>",
                         "add_bos_token", 1, "chat_template", "{{ messages }}");
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  cr_assert(json_dump_file(tc, path, 0) == 0);
  json_decref(tc);
  (void)o;
}

void gp_write_model(const char *dir, const gp_model_opts *o) {
  qf_error err;
  qf_st_writer *w = NULL;
  cr_assert(qf_st_writer_new(dir, 0, &w, &err) == QF_OK, "%s", err.message);
  uint64_t s = o->seed ? o->seed : 1;
  const int64_t H = o->hidden, I = o->inter, hd = o->hidden / o->heads;
  gp_add(w, o, &s, "model.embed_tokens.weight", o->vocab, H, 1.0f, 0);
  char name[256];
  static const char *const proj[] = {"q", "k", "v"};
  for (int l = 0; l < o->layers; l++) {
#define P(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
    gp_add(w, o, &s, P("input_layernorm.weight"), H, 0, 0.1f, 1.0f);
    gp_add(w, o, &s, P("self_attn.q_proj.weight"), o->heads * hd, H, 0.05f, 0);
    gp_add(w, o, &s, P("self_attn.k_proj.weight"), o->kv_heads * hd, H, 0.05f, 0);
    gp_add(w, o, &s, P("self_attn.v_proj.weight"), o->kv_heads * hd, H, 0.05f, 0);
    for (int b = 0; o->bias && b < 3; b++) {
      char suffix[64];
      snprintf(suffix, sizeof suffix, "self_attn.%s_proj.bias", proj[b]);
      gp_add(w, o, &s, P(suffix), (b ? o->kv_heads : o->heads) * hd, 0, 0.1f, 0);
    }
    gp_add(w, o, &s, P("self_attn.o_proj.weight"), H, o->heads * hd, 0.05f, 0);
    gp_add(w, o, &s, P("post_attention_layernorm.weight"), H, 0, 0.1f, 1.0f);
    gp_add(w, o, &s, P("mlp.gate_proj.weight"), I, H, 0.05f, 0);
    gp_add(w, o, &s, P("mlp.up_proj.weight"), I, H, 0.05f, 0);
    gp_add(w, o, &s, P("mlp.down_proj.weight"), H, I, 0.05f, 0);
#undef P
  }
  gp_add(w, o, &s, "model.norm.weight", H, 0, 0.1f, 1.0f);
  if (!o->tie) gp_add(w, o, &s, "lm_head.weight", o->vocab, H, 0.05f, 0);
  cr_assert(qf_st_writer_finish(w, &err) == QF_OK, "%s", err.message);

  const char *mt = o->model_type ? o->model_type : "llama";
  const char *arch = !strcmp(mt, "qwen2")     ? "Qwen2ForCausalLM"
                     : !strcmp(mt, "mistral") ? "MistralForCausalLM"
                                              : "LlamaForCausalLM";
  json_t *c = json_pack(
      "{s:s, s:[s], s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:i, s:i, s:b, s:s, s:i, s:i}", "model_type",
      mt, "architectures", arch, "hidden_size", (int)H, "intermediate_size", (int)I,
      "num_hidden_layers", o->layers, "num_attention_heads", o->heads, "num_key_value_heads",
      o->kv_heads, "rms_norm_eps", 1e-5, "rope_theta", 500000.0, "max_position_embeddings", 4096,
      "vocab_size", o->vocab, "tie_word_embeddings", o->tie, "torch_dtype",
      o->dtype == QF_DTYPE_BF16  ? "bfloat16"
      : o->dtype == QF_DTYPE_F16 ? "float16"
                                 : "float32",
      "bos_token_id", 256 + 4, "eos_token_id", 256 + 5);
  cr_assert(c);
  char path[4200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  cr_assert(json_dump_file(c, path, JSON_INDENT(2)) == 0);
  json_decref(c);
  if (o->tokenizer) gp_write_tokenizer(dir, o);
}

void gp_tmpdir(char *out, size_t n) {
  const char *b = getenv("QF_BUILD_DIR");
  cr_assert(b && *b, "QF_BUILD_DIR is not set (run through ctest)");
  char base[4096];
  snprintf(base, sizeof base, "%s/tests", b);
  mkdir(base, 0777);
  snprintf(out, n, "%s/gguf_plugin.XXXXXX", base);
  cr_assert(mkdtemp(out), "cannot create a scratch folder under %s", base);
}

int gp_cli(const char *dir, char *out, size_t n, const char *fmt, ...) {
  const char *cli = getenv("QF_CLI");
  cr_assert(cli && *cli, "QF_CLI is not set (run through ctest)");
  char args[8192], cmd[12288];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s/stderr.txt'", cli, args, dir);
  FILE *f = popen(cmd, "r");
  cr_assert(f, "cannot run %s", cmd);
  if (out && n) {
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
  }
  char sink[4096];
  while (fread(sink, 1, sizeof sink, f) > 0) {
  }
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *gp_stderr(const char *dir) {
  static char buf[8192];
  char path[4200];
  snprintf(path, sizeof path, "%s/stderr.txt", dir);
  size_t n = 0;
  char *t = gp_read(path, &n);
  snprintf(buf, sizeof buf, "%s", t ? t : "");
  free(t);
  return buf;
}

void *gp_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)(len > 0 ? len : 0) + 1);
  if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[len] = '\0';
    if (n) *n = (size_t)len;
  }
  return buf;
}

float *gp_f32(const qf_st_tensor *t) {
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
  float *f = malloc(n * sizeof *f + 1);
  cr_assert(f && qf_convert(f, QF_DTYPE_F32, t->data, t->dtype, n) == 0);
  return f;
}

const char *gp_plugin_path(void) {
  static char path[4200];
  const char *d = getenv("QF_PLUGIN_DIR");
  cr_assert(d && *d, "QF_PLUGIN_DIR is not set (run through ctest)");
  snprintf(path, sizeof path, "%s/gguf-cpu.so", d);
  return path;
}
