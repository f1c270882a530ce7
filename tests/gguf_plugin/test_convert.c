/*
 * test_convert.c — GGUF containers through the CLI: HF folder -> GGUF
 * (names, metadata keys and key types, Q/K permutation, llama-quantize's
 * Q4_K_M policy, tokenizer metadata, imatrix), GGUF -> HF (exact round trip,
 * config.json), requantization and `qforge inspect --json`.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_file.h"
#include "gguf_plugin.h"
#include "gguf_quants.h"
#include "gp_util.h"
#include "qf_test_util.h"

static qf_gguf_file *open_gguf(const char *path) {
  qf_gguf_file *f = NULL;
  qf_error err;
  cr_assert(qf_gguf_open(path, &f, &err) == QF_OK, "%s", err.message);
  return f;
}

static void expect_u32(const qf_gguf_file *f, const char *key, uint32_t want) {
  uint32_t v = 0;
  qf_error err;
  cr_assert(qf_gguf_get_u32(f, key, &v, &err) == QF_OK, "%s: %s", key, err.message);
  cr_expect_eq(v, want, "%s = %u, expected %u", key, v, want);
}

static void expect_f32(const qf_gguf_file *f, const char *key, float want) {
  float v = 0;
  qf_error err;
  cr_assert(qf_gguf_get_f32(f, key, &v, &err) == QF_OK, "%s: %s", key, err.message);
  cr_expect_eq(v, want, "%s = %g, expected %g", key, v, want);
}

static void expect_str(const qf_gguf_file *f, const char *key, const char *want) {
  qf_gguf_string s;
  qf_error err;
  cr_assert(qf_gguf_get_str(f, key, &s, &err) == QF_OK, "%s: %s", key, err.message);
  cr_expect(s.len == strlen(want) && !memcmp(s.data, want, s.len), "%s = '%.*s', expected '%s'",
            key, (int)s.len, s.data, want);
}

static int tensor_type(const qf_gguf_file *f, const char *name) {
  const qf_gguf_tensor *t = qf_gguf_find_tensor(f, name);
  cr_assert(t, "tensor %s missing", name);
  return t->type;
}

static qf_checkpoint *open_ckpt(const char *dir) {
  qf_checkpoint *c = NULL;
  qf_error err;
  cr_assert(qf_checkpoint_open(dir, &c, &err) == QF_OK, "%s", err.message);
  return c;
}

Test(convert, f32_round_trip_llama) {
  char d[4096], m[4200], g[4200], back[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/m.gguf", d);
  snprintf(back, sizeof back, "%s/back", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  gp_write_model(m, &o);
  cr_assert_eq(gp_cli(d, NULL, 0, "convert '%s' -o '%s' --type F32", m, g), 0, "%s", gp_stderr(d));

  qf_gguf_file *f = open_gguf(g);
  expect_str(f, "general.architecture", "llama");
  expect_u32(f, "llama.block_count", 4);
  expect_u32(f, "llama.context_length", 4096);
  expect_u32(f, "llama.embedding_length", 256);
  expect_u32(f, "llama.feed_forward_length", 512);
  expect_u32(f, "llama.attention.head_count", 4);
  expect_u32(f, "llama.attention.head_count_kv", 2);
  expect_u32(f, "llama.rope.dimension_count", 64);
  expect_u32(f, "llama.vocab_size", 512);
  expect_f32(f, "llama.rope.freq_base", 500000.0f);
  expect_f32(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  expect_u32(f, "general.file_type", 0);
  expect_u32(f, "general.quantization_version", 2);
  cr_expect_eq(qf_gguf_tensor_count(f), 3 + 9 * 4);
  /* llama-quantize order: global tensors by name, then layer by layer */
  cr_expect_str_eq(qf_gguf_tensor_at(f, 0)->name, "output.weight");
  cr_expect_str_eq(qf_gguf_tensor_at(f, 3)->name, "blk.0.attn_k.weight");
  const qf_gguf_tensor *emb = qf_gguf_find_tensor(f, "token_embd.weight");
  cr_expect(emb->ne[0] == 256 && emb->ne[1] == 512 && emb->n_dims == 2);

  /* Q/K: GGUF rows are HF rows permuted by the converter's rule */
  qf_checkpoint *c = open_ckpt(m);
  static const char *const qk[][2] = {
      {"blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight"},
      {"blk.2.attn_k.weight", "model.layers.2.self_attn.k_proj.weight"}};
  for (int i = 0; i < 2; i++) {
    const qf_gguf_tensor *t = qf_gguf_find_tensor(f, qk[i][0]);
    const qf_st_tensor *h = qf_checkpoint_find(c, qk[i][1]);
    cr_assert(t && h && t->type == QF_GGUF_TYPE_F32);
    int64_t rows = h->shape[0], cols = h->shape[1], heads = i ? 2 : 4;
    int permuted = 0;
    for (int64_t r = 0; r < rows; r++) {
      int64_t src = (r / (rows / heads)) * (rows / heads) + (r % 2) * (rows / heads / 2) +
                    (r % (rows / heads)) / 2;
      cr_assert(!memcmp((const float *)t->data + r * cols, (const float *)h->data + src * cols,
                        (size_t)cols * 4),
                "%s row %lld", qk[i][0], (long long)r);
      permuted += src != r;
    }
    cr_expect(permuted > 0);
  }
  qf_gguf_close(f);

  /* GGUF -> HF gives back every tensor bit for bit */
  cr_assert_eq(gp_cli(d, NULL, 0, "convert '%s' -o '%s'", g, back), 0, "%s", gp_stderr(d));
  qf_checkpoint *b = open_ckpt(back);
  cr_expect_eq(qf_checkpoint_count(b), qf_checkpoint_count(c));
  for (size_t i = 0; i < qf_checkpoint_count(c); i++) {
    const qf_st_tensor *x = qf_checkpoint_at(c, i), *y = qf_checkpoint_find(b, x->name);
    cr_assert(y, "%s missing after the round trip", x->name);
    cr_expect(
        y->dtype == QF_DTYPE_F32 && y->nbytes == x->nbytes && !memcmp(x->data, y->data, x->nbytes),
        "%s differs", x->name);
  }
  json_error_t je;
  json_t *cfg = json_loads(qf_checkpoint_config_json(b), 0, &je);
  cr_assert(cfg);
  cr_expect_str_eq(json_string_value(json_object_get(cfg, "model_type")), "llama");
  cr_expect_str_eq(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                   "LlamaForCausalLM");
  cr_expect_eq(json_integer_value(json_object_get(cfg, "hidden_size")), 256);
  cr_expect_eq(json_integer_value(json_object_get(cfg, "intermediate_size")), 512);
  cr_expect_eq(json_integer_value(json_object_get(cfg, "num_hidden_layers")), 4);
  cr_expect_eq(json_integer_value(json_object_get(cfg, "num_attention_heads")), 4);
  cr_expect_eq(json_integer_value(json_object_get(cfg, "num_key_value_heads")), 2);
  cr_expect_eq(json_integer_value(json_object_get(cfg, "vocab_size")), 512);
  cr_expect_eq(json_integer_value(json_object_get(cfg, "max_position_embeddings")), 4096);
  cr_expect_eq((float)json_real_value(json_object_get(cfg, "rms_norm_eps")), 1e-5f);
  cr_expect_eq(json_real_value(json_object_get(cfg, "rope_theta")), 500000.0);
  cr_expect(json_is_false(json_object_get(cfg, "tie_word_embeddings")));
  cr_expect_str_eq(json_string_value(json_object_get(cfg, "torch_dtype")), "float32");
  json_decref(cfg);
  qf_checkpoint_close(b);
  qf_checkpoint_close(c);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(convert, qwen2_bf16_tied_biases) {
  char d[4096], m[4200], g[4200], back[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/m.gguf", d);
  snprintf(back, sizeof back, "%s/back", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  o.model_type = "qwen2";
  o.tie = o.bias = 1;
  o.dtype = QF_DTYPE_BF16;
  o.layers = 2;
  gp_write_model(m, &o);
  cr_assert_eq(gp_cli(d, NULL, 0, "convert '%s' -o '%s' --type BF16", m, g), 0, "%s", gp_stderr(d));
  qf_gguf_file *f = open_gguf(g);
  expect_str(f, "general.architecture", "qwen2");
  expect_u32(f, "qwen2.block_count", 2);
  expect_u32(f, "general.file_type", 32);
  cr_expect(qf_gguf_find_tensor(f, "output.weight") == NULL, "tied: no output.weight");
  cr_expect_eq(tensor_type(f, "blk.0.attn_q.bias"), QF_GGUF_TYPE_F32);
  cr_expect_eq(tensor_type(f, "blk.0.attn_norm.weight"), QF_GGUF_TYPE_F32);
  cr_expect_eq(tensor_type(f, "blk.0.attn_q.weight"), QF_GGUF_TYPE_BF16);
  /* qwen2 is not permuted: the bf16 bytes are the HF bytes */
  qf_checkpoint *c = open_ckpt(m);
  const qf_st_tensor *h = qf_checkpoint_find(c, "model.layers.1.self_attn.q_proj.weight");
  const qf_gguf_tensor *t = qf_gguf_find_tensor(f, "blk.1.attn_q.weight");
  cr_expect(t->nbytes == h->nbytes && !memcmp(t->data, h->data, h->nbytes));
  qf_gguf_close(f);
  cr_assert_eq(gp_cli(d, NULL, 0, "convert '%s' -o '%s'", g, back), 0, "%s", gp_stderr(d));
  qf_checkpoint *b = open_ckpt(back);
  for (size_t i = 0; i < qf_checkpoint_count(c); i++) {
    const qf_st_tensor *x = qf_checkpoint_at(c, i), *y = qf_checkpoint_find(b, x->name);
    cr_assert(y, "%s missing", x->name);
    cr_expect_eq(y->dtype, x->ndim == 1 ? QF_DTYPE_F32 : QF_DTYPE_BF16, "%s dtype", x->name);
    float *a = gp_f32(x), *z = gp_f32(y);
    size_t n = x->nbytes / 2;
    cr_expect(!memcmp(a, z, n * 4), "%s values differ", x->name);
    free(a);
    free(z);
  }
  json_error_t je;
  json_t *cfg = json_loads(qf_checkpoint_config_json(b), 0, &je);
  cr_expect_str_eq(json_string_value(json_object_get(cfg, "model_type")), "qwen2");
  cr_expect(json_is_true(json_object_get(cfg, "tie_word_embeddings")));
  cr_expect_str_eq(json_string_value(json_object_get(cfg, "torch_dtype")), "bfloat16");
  json_decref(cfg);
  qf_checkpoint_close(b);
  qf_checkpoint_close(c);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(convert, q4_k_m_policy_and_bytes) {
  char d[4096], m[4200], g[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/q.gguf", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  gp_write_model(m, &o);
  cr_assert_eq(gp_cli(d, NULL, 0, "quantize '%s' --method gguf --type Q4_K_M -o '%s'", m, g), 0,
               "%s", gp_stderr(d));
  qf_gguf_file *f = open_gguf(g);
  expect_u32(f, "general.file_type", 15);
  /* the two tail keys come last, as llama-quantize leaves them */
  size_t nkv = qf_gguf_kv_count(f);
  cr_expect_str_eq(qf_gguf_kv_at(f, nkv - 1)->key, "general.file_type");
  cr_expect_str_eq(qf_gguf_kv_at(f, nkv - 2)->key, "general.quantization_version");
  cr_expect_eq(tensor_type(f, "output.weight"), QF_GGUF_TYPE_Q6_K);
  cr_expect_eq(tensor_type(f, "token_embd.weight"), QF_GGUF_TYPE_Q4_K);
  cr_expect_eq(tensor_type(f, "output_norm.weight"), QF_GGUF_TYPE_F32);
  for (int l = 0; l < 4; l++) {
    char n[64];
    int more = l >= 3 || l == 2; /* use_more_bits(l, 4) */
    snprintf(n, sizeof n, "blk.%d.attn_v.weight", l);
    cr_expect_eq(tensor_type(f, n), more ? QF_GGUF_TYPE_Q6_K : QF_GGUF_TYPE_Q4_K, "%s", n);
    snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
    cr_expect_eq(tensor_type(f, n), more ? QF_GGUF_TYPE_Q6_K : QF_GGUF_TYPE_Q4_K, "%s", n);
    snprintf(n, sizeof n, "blk.%d.attn_q.weight", l);
    cr_expect_eq(tensor_type(f, n), QF_GGUF_TYPE_Q4_K, "%s", n);
  }
  /* the bytes are ggml's quantization of the (permuted) rows */
  qf_checkpoint *c = open_ckpt(m);
  const qf_st_tensor *h = qf_checkpoint_find(c, "model.layers.1.self_attn.k_proj.weight");
  const qf_gguf_tensor *t = qf_gguf_find_tensor(f, "blk.1.attn_k.weight");
  int64_t rows = h->shape[0], cols = h->shape[1];
  float *p = malloc((size_t)(rows * cols) * 4);
  for (int64_t r = 0; r < rows; r++)
    memcpy(p + r * cols, (const float *)h->data + qf_gguf_qk_src_row(r, rows, 2, 1) * cols,
           (size_t)cols * 4);
  size_t rs = qf_gguf_row_size(QF_GGUF_TYPE_Q4_K, cols);
  uint8_t *q = malloc(rs * (size_t)rows);
  cr_assert_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_K, p, q, rows, cols, NULL), rs * (size_t)rows);
  cr_expect(t->nbytes == rs * (size_t)rows && !memcmp(q, t->data, t->nbytes));
  free(p);
  free(q);
  qf_checkpoint_close(c);
  qf_gguf_close(f);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(convert, tokenizer_metadata) {
  char d[4096], m[4200], g[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/t.gguf", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  o.layers = 1;
  o.tokenizer = 1;
  gp_write_model(m, &o);
  cr_assert_eq(
      gp_cli(
          d, NULL, 0,
          "convert '%s' -o '%s' --type Q8_0 --config '{\"tokenizer_json\": \"%s/tokenizer.json\"}'",
          m, g, m),
      0, "%s", gp_stderr(d));
  qf_gguf_file *f = open_gguf(g);
  expect_str(f, "tokenizer.ggml.model", "gpt2");
  expect_str(f, "tokenizer.ggml.pre", "llama-bpe");
  expect_u32(f, "tokenizer.ggml.bos_token_id", 260);
  expect_u32(f, "tokenizer.ggml.eos_token_id", 261);
  expect_str(f, "tokenizer.chat_template", "{{ messages }}");
  qf_error err;
  const qf_gguf_kv *toks, *types, *merges;
  cr_assert(qf_gguf_get_arr(f, "tokenizer.ggml.tokens", QF_GGUF_VT_STRING, &toks, &err) == QF_OK);
  cr_assert(qf_gguf_get_arr(f, "tokenizer.ggml.token_type", QF_GGUF_VT_INT32, &types, &err) ==
            QF_OK);
  cr_assert(qf_gguf_get_arr(f, "tokenizer.ggml.merges", QF_GGUF_VT_STRING, &merges, &err) == QF_OK);
  cr_expect_eq(toks->n, 512);
  cr_expect_eq(types->n, 512);
  cr_expect_eq(merges->n, 4);
  qf_gguf_value v = qf_gguf_kv_elem(merges, 1);
  cr_expect(v.str.len == 4 && !memcmp(v.str.data, "th e", 4));
  v = qf_gguf_kv_elem(toks, 260);
  cr_expect(v.str.len == 7 && !memcmp(v.str.data, "<|bos|>", 7));
  cr_expect_eq(qf_gguf_kv_elem(types, 260).i32, 3); /* CONTROL */
  cr_expect_eq(qf_gguf_kv_elem(types, 65).i32, 1);  /* NORMAL */
  cr_expect_eq(qf_gguf_kv_elem(types, 300).i32, 5); /* [PAD300]: UNUSED */
  bool add_bos = false;
  cr_expect(qf_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos, &err) == QF_OK &&
            add_bos);
  qf_gguf_close(f);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(convert, requantize_copies_kvs) {
  char d[4096], m[4200], g[4200], q[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/f.gguf", d);
  snprintf(q, sizeof q, "%s/q8.gguf", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  o.layers = 2;
  gp_write_model(m, &o);
  cr_assert_eq(gp_cli(d, NULL, 0, "convert '%s' -o '%s' --type F32", m, g), 0, "%s", gp_stderr(d));
  cr_assert_eq(gp_cli(d, NULL, 0, "quantize '%s' --method gguf --type Q8_0 -o '%s'", g, q), 0, "%s",
               gp_stderr(d));
  qf_gguf_file *src = open_gguf(g), *f = open_gguf(q);
  expect_u32(f, "general.file_type", 7);
  expect_str(f, "general.name", "Llama");
  expect_u32(f, "llama.block_count", 2);
  cr_expect_eq(qf_gguf_kv_count(f), qf_gguf_kv_count(src));
  cr_expect_str_eq(qf_gguf_kv_at(f, qf_gguf_kv_count(f) - 1)->key, "general.file_type");
  for (size_t i = 0; i < qf_gguf_tensor_count(f); i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i), *s = qf_gguf_find_tensor(src, t->name);
    cr_assert(s);
    if (t->n_dims == 1) {
      cr_expect(t->type == QF_GGUF_TYPE_F32 && !memcmp(t->data, s->data, s->nbytes), "%s", t->name);
      continue;
    }
    cr_expect_eq(t->type, QF_GGUF_TYPE_Q8_0, "%s", t->name);
    uint8_t *b = malloc(t->nbytes);
    cr_assert_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q8_0, s->data, b, s->ne[1], s->ne[0], NULL),
                 t->nbytes);
    cr_expect(!memcmp(b, t->data, t->nbytes), "%s bytes", t->name);
    free(b);
  }
  qf_gguf_close(src);
  qf_gguf_close(f);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(convert, describe_json) {
  char d[4096], m[4200], g[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/q.gguf", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  o.layers = 2;
  gp_write_model(m, &o);
  cr_assert_eq(gp_cli(d, NULL, 0, "quantize '%s' --method gguf --type Q4_K_M -o '%s'", m, g), 0,
               "%s", gp_stderr(d));
  static char out[1 << 20];
  cr_assert_eq(gp_cli(d, out, sizeof out, "inspect '%s' --json", g), 0, "%s", gp_stderr(d));
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  cr_assert(j, "inspect --json is not JSON: %s", je.text);
  cr_expect_str_eq(json_string_value(json_object_get(j, "format")), "gguf");
  cr_expect_eq(json_integer_value(json_object_get(j, "version")), 3);
  json_t *meta = json_object_get(j, "metadata"), *types = json_object_get(j, "metadata_types");
  cr_expect_str_eq(json_string_value(json_object_get(meta, "general.architecture")), "llama");
  cr_expect_eq(json_integer_value(json_object_get(meta, "general.file_type")), 15);
  cr_expect_str_eq(json_string_value(json_object_get(types, "llama.block_count")), "u32");
  json_t *ts = json_object_get(j, "tensors");
  cr_expect_eq(json_array_size(ts), 3 + 9 * 2);
  json_t *t0 = json_array_get(ts, 0);
  cr_expect_str_eq(json_string_value(json_object_get(t0, "name")), "output.weight");
  cr_expect_str_eq(json_string_value(json_object_get(t0, "type")), "q6_K");
  cr_expect_eq(json_integer_value(json_array_get(json_object_get(t0, "shape"), 0)), 256);
  cr_expect_eq(json_integer_value(json_array_get(json_object_get(t0, "shape"), 1)), 512);
  cr_expect_eq(json_integer_value(json_object_get(t0, "bytes")), 512 * 210);
  cr_expect_eq(json_real_value(json_object_get(t0, "bits_per_weight")), 6.5625);
  double bpw = json_real_value(json_object_get(j, "bits_per_weight"));
  cr_expect(bpw > 4.5 && bpw < 6.0, "overall %g bpw", bpw);
  json_decref(j);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

/* legacy imatrix (.dat): int32 count, per entry name, ncall, nval, values */
static void write_imatrix(const char *path, const char *const *names, const int *nvals, int n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  int32_t c = n;
  fwrite(&c, 4, 1, f);
  for (int i = 0; i < n; i++) {
    int32_t len = (int32_t)strlen(names[i]), ncall = 1, nval = nvals[i];
    fwrite(&len, 4, 1, f);
    fwrite(names[i], 1, (size_t)len, f);
    fwrite(&ncall, 4, 1, f);
    fwrite(&nval, 4, 1, f);
    for (int k = 0; k < nval; k++) {
      float v = 0.5f + (float)((k * 37 + i * 11) % 17);
      fwrite(&v, 4, 1, f);
    }
  }
  fclose(f);
}

Test(convert, imatrix_export) {
  char d[4096], m[4200], g[4200], im[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/q.gguf", d);
  snprintf(im, sizeof im, "%s/imatrix.dat", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  o.layers = 1;
  gp_write_model(m, &o);
  static const char *const names[] = {"blk.0.ffn_up.weight", "blk.0.ffn_down.weight"};
  static const int nv[] = {256, 512};
  write_imatrix(im, names, nv, 2);
  cr_assert_eq(gp_cli(d, NULL, 0,
                      "quantize '%s' --method gguf --type Q4_K_M --imatrix '%s' -o '%s'", m, im, g),
               0, "%s", gp_stderr(d));
  qf_gguf_file *f = open_gguf(g);
  int32_t entries = 0;
  qf_error err;
  cr_expect(qf_gguf_get_i32(f, "quantize.imatrix.entries_count", &entries, &err) == QF_OK &&
            entries == 2);
  expect_str(f, "quantize.imatrix.file", im);
  /* ffn_up quantized with the importance vector */
  qf_gguf_imatrix *imx = NULL;
  cr_assert(qf_gguf_imatrix_load(im, &imx, &err) == QF_OK, "%s", err.message);
  const qf_gguf_imatrix_entry *e = qf_gguf_imatrix_find(imx, "blk.0.ffn_up.weight");
  qf_checkpoint *c = open_ckpt(m);
  const qf_st_tensor *h = qf_checkpoint_find(c, "model.layers.0.mlp.up_proj.weight");
  const qf_gguf_tensor *t = qf_gguf_find_tensor(f, "blk.0.ffn_up.weight");
  uint8_t *b = malloc(t->nbytes);
  cr_assert_eq(
      qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_K, h->data, b, h->shape[0], h->shape[1], e->values),
      t->nbytes);
  cr_expect(!memcmp(b, t->data, t->nbytes), "imatrix-weighted bytes differ");
  cr_assert_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_K, h->data, b, h->shape[0], h->shape[1], NULL),
               t->nbytes);
  cr_expect(memcmp(b, t->data, t->nbytes) != 0, "the importance vector changed nothing");
  free(b);
  qf_checkpoint_close(c);
  qf_gguf_imatrix_free(imx);
  qf_gguf_close(f);

  /* an entry whose size does not match its tensor is refused */
  static const int bad[] = {128, 512};
  write_imatrix(im, names, bad, 2);
  cr_expect_neq(
      gp_cli(d, NULL, 0, "quantize '%s' --method gguf --type Q4_K_M --imatrix '%s' -o '%s' --force",
             m, im, g),
      0);
  cr_expect(
      strstr(gp_stderr(d), "imatrix size mismatch") && strstr(gp_stderr(d), "blk.0.ffn_up.weight"),
      "message: %s", gp_stderr(d));
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

/* GGUF -> HF keeping the ggml blocks ("dequantize": false): a checkpoint in
 * this plugin's own layout whose pre-quantized load dequantizes to exactly
 * what the dequantizing import writes (rows un-permuted block-wise). */
Test(convert, import_keeping_blocks) {
  char d[4096], m[4200], g[4200], keep[4200], deq[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(m, sizeof m, "%s/model", d);
  snprintf(g, sizeof g, "%s/q.gguf", d);
  snprintf(keep, sizeof keep, "%s/keep", d);
  snprintf(deq, sizeof deq, "%s/deq", d);
  gp_model_opts o;
  gp_model_defaults(&o);
  o.layers = 2;
  gp_write_model(m, &o);
  cr_assert_eq(gp_cli(d, NULL, 0,
                      "quantize '%s' --method gguf --type Q4_K_M --config "
                      "'{\"pure\": true, \"output_tensor_type\": \"q8_0\"}' -o '%s'",
                      m, g),
               0, "%s", gp_stderr(d));
  qf_gguf_file *f = open_gguf(g);
  cr_expect_eq(tensor_type(f, "output.weight"), QF_GGUF_TYPE_Q8_0);
  cr_expect_eq(tensor_type(f, "blk.1.ffn_down.weight"), QF_GGUF_TYPE_Q4_K, "pure: no bump");
  expect_u32(f, "general.file_type", 15);
  qf_gguf_close(f);
  cr_assert_eq(
      gp_cli(d, NULL, 0, "convert '%s' -o '%s' --config '{\"dequantize\": false}'", g, keep), 0,
      "%s", gp_stderr(d));
  cr_assert_eq(gp_cli(d, NULL, 0, "convert '%s' -o '%s'", g, deq), 0, "%s", gp_stderr(d));
  qf_checkpoint *k = open_ckpt(keep), *x = open_ckpt(deq);
  const qf_st_tensor *qt = qf_checkpoint_find(k, "model.layers.1.self_attn.q_proj.weight");
  const qf_st_tensor *tt =
      qf_checkpoint_find(k, "model.layers.1.self_attn.q_proj.weight.ggml_type");
  cr_assert(qt && tt && qt->dtype == QF_DTYPE_U8 && tt->dtype == QF_DTYPE_I32);
  cr_expect_eq(*(const int32_t *)tt->data, QF_GGUF_TYPE_Q4_K);
  json_error_t je;
  json_t *cfg = json_loads(qf_checkpoint_config_json(k), 0, &je);
  json_t *qc = json_object_get(cfg, "quantization_config");
  cr_assert(qc, "config.json has no quantization_config");
  cr_expect_str_eq(json_string_value(json_object_get(qc, "quant_method")), "gguf");
  char *qtext = json_dumps(qc, JSON_COMPACT);
  json_decref(cfg);

  qf_error err;
  qf_plugin *p = NULL;
  qf_model *model = NULL;
  qf_session *s = NULL;
  cr_assert(qf_plugin_open(gp_plugin_path(), &p, &err) == QF_OK, "%s", err.message);
  cr_assert(qf_model_new(k, &model, &err) == QF_OK, "%s", err.message);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.pre_quantized = 1;
  opt.config_json = qtext;
  cr_assert(qf_run_lifecycle(p, model, &opt, &s, &err) == QF_OK, "%s", err.message);
  int compared = 0;
  for (size_t i = 0; i < qf_checkpoint_count(x); i++) {
    const qf_st_tensor *ref = qf_checkpoint_at(x, i);
    if (ref->ndim != 2) continue;
    float *out = malloc(ref->nbytes);
    int64_t shape[2] = {ref->shape[0], ref->shape[1]};
    DLTensor t = qf_f32_tensor(out, 2, shape);
    cr_assert(p->desc->vtable->dequantize(s->q, model, ref->name, &t, &err) == QF_OK, "%s: %s",
              ref->name, err.message);
    cr_expect(!memcmp(out, ref->data, ref->nbytes), "%s differs", ref->name);
    free(out);
    compared++;
  }
  cr_expect_eq(compared, 2 + 7 * 2);
  free(qtext);
  qf_session_free(s);
  qf_model_free(model);
  qf_plugin_release(p);
  qf_checkpoint_close(x);
  qf_checkpoint_close(k);
  qf_remove_tree(d); /* kept when a check fails, for a look */
}
