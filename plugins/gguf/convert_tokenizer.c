/*
 * convert_tokenizer.c — tokenizer.ggml.* metadata from a Hugging Face
 * tokenizer.json (and tokenizer_config.json when it sits beside it), best
 * effort, the way convert_hf_to_gguf.py fills it without sentencepiece:
 *
 *  - byte-level BPE (a ByteLevel pre-tokenizer or decoder) -> model "gpt2":
 *    tokens by id, token_type (NORMAL, CONTROL for special added tokens,
 *    USER_DEFINED for other added tokens, UNUSED for "[PADn]" fillers up to
 *    the config's vocab_size), merges as "a b" strings, pre "qwen2" /
 *    "llama-bpe" / "default" by architecture;
 *  - SentencePiece-style BPE (byte_fallback or a Metaspace / "▁" decoder)
 *    -> model "llama": tokens, token_type (BYTE for <0xXX>, UNKNOWN,
 *    CONTROL), scores (-id for normal pieces, 0 otherwise: the HF file holds
 *    no piece scores), pre "default";
 *  - bos / eos / unknown / padding ids (u32) from config.json or the
 *    tokenizer config's token strings, add_bos_token / add_eos_token (bool)
 *    and chat_template (string) from tokenizer_config.json.
 * Other tokenizer kinds (Unigram, WordPiece) are skipped with a warning.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_plugin.h"
#include "qforge/plugin_util.h"

#define FAIL(err, code, ...) qf_fail(err, code, QF_GGUF_PLUGIN, "convert", __VA_ARGS__)

enum {
  TT_NORMAL = 1,
  TT_UNKNOWN = 2,
  TT_CONTROL = 3,
  TT_USER_DEFINED = 4,
  TT_UNUSED = 5,
  TT_BYTE = 6
};

/* Does any node of `j` (recursively through Sequence lists) have type `type`? */
static int qf__has_type(json_t *j, const char *type) {
  if (!j) return 0;
  if (json_is_object(j)) {
    const char *t = json_string_value(json_object_get(j, "type"));
    if (t && !strcmp(t, type)) return 1;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      if ((json_is_array(v) || json_is_object(v)) && qf__has_type(v, type)) return 1;
    }
  } else if (json_is_array(j)) {
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
      if (qf__has_type(v, type)) return 1;
    }
  }
  return 0;
}

/* A token string of tokenizer_config.json: "…" or {"content": "…"}. */
static const char *qf__tok_str(json_t *cfg, const char *key) {
  json_t *v = json_object_get(cfg, key);
  if (json_is_object(v)) v = json_object_get(v, "content");
  return json_string_value(v);
}

static int64_t qf__find_id(const char **tokens, size_t n, const char *s) {
  if (!s) return -1;
  for (size_t i = 0; i < n; i++)
    if (tokens[i] && !strcmp(tokens[i], s)) return (int64_t)i;
  return -1;
}

static json_t *qf__load_sibling(const char *path, const char *name) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  char p[4400];
  if (slash) {
    *slash = '\0';
    snprintf(p, sizeof p, "%s/%s", dir, name);
  } else {
    snprintf(p, sizeof p, "%s", name);
  }
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
  if (j && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

typedef struct {
  const char **tokens;
  int32_t *types;
  float *scores;
  char **merges;
  size_t n, n_merges;
} qf__vocab;

static void qf__vocab_free(qf__vocab *v) {
  for (size_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
  free(v->merges);
  free(v->tokens);
  free(v->types);
  free(v->scores);
}

static qf_status qf__build_vocab(json_t *root, json_t *model, int spm, const qf_gguf_hparams *hp,
                                 const char *path, qf__vocab *v, qf_error *err) {
  json_t *vocab = json_object_get(model, "vocab");
  json_t *added = json_object_get(root, "added_tokens");
  if (!json_is_object(vocab))
    return FAIL(err, QF_ERR_FORMAT, "%s: model.vocab must be an object of token -> id", path);
  int64_t max_id = -1;
  const char *k;
  json_t *val;
  json_object_foreach(vocab, k, val) {
    if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) > (1 << 24))
      return FAIL(err, QF_ERR_FORMAT, "%s: model.vocab['%s'] must be an id in [0, 2^24]", path, k);
    if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
  }
  size_t i;
  json_array_foreach(added, i, val) {
    json_t *id = json_object_get(val, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > (1 << 24) ||
        !json_is_string(json_object_get(val, "content")))
      return FAIL(err, QF_ERR_FORMAT,
                  "%s: added_tokens[%zu] needs an integer 'id' and a string "
                  "'content'",
                  path, i);
    if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
  }
  size_t n = (size_t)(max_id + 1);
  if (hp->n_vocab > (int64_t)n) n = (size_t)hp->n_vocab;
  v->n = n;
  v->tokens = calloc(n + 1, sizeof *v->tokens);
  v->types = calloc(n + 1, sizeof *v->types);
  v->scores = calloc(n + 1, sizeof *v->scores);
  if (!v->tokens || !v->types || !v->scores)
    return FAIL(err, QF_ERR_NO_MEMORY, "%s: out of memory for %zu tokens", path, n);
  json_object_foreach(vocab, k, val) {
    size_t id = (size_t)json_integer_value(val);
    v->tokens[id] = k;
    v->types[id] = TT_NORMAL;
    if (spm && strlen(k) == 6 && !strncmp(k, "<0x", 3) && k[5] == '>') v->types[id] = TT_BYTE;
    v->scores[id] = v->types[id] == TT_NORMAL ? -(float)id : 0.0f;
  }
  const char *unk = json_string_value(json_object_get(model, "unk_token"));
  json_array_foreach(added, i, val) {
    size_t id = (size_t)json_integer_value(json_object_get(val, "id"));
    v->tokens[id] = json_string_value(json_object_get(val, "content"));
    v->types[id] = json_is_true(json_object_get(val, "special")) ? TT_CONTROL : TT_USER_DEFINED;
    v->scores[id] = 0.0f;
  }
  if (unk) {
    int64_t uid = qf__find_id(v->tokens, n, unk);
    if (uid >= 0) v->types[uid] = TT_UNKNOWN;
  }
  for (size_t id = 0; id < n; id++)
    if (!v->tokens[id]) v->types[id] = TT_UNUSED; /* "[PADn]" filled in by the caller */
  if (!spm) {
    json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_array(merges))
      return FAIL(err, QF_ERR_FORMAT, "%s: model.merges must be an array", path);
    v->merges = calloc(json_array_size(merges) + 1, sizeof *v->merges);
    if (!v->merges) return FAIL(err, QF_ERR_NO_MEMORY, "%s: out of memory", path);
    json_array_foreach(merges, i, val) {
      char *m = NULL;
      if (json_is_string(val)) {
        m = strdup(json_string_value(val));
      } else if (json_is_array(val) && json_array_size(val) == 2 &&
                 json_is_string(json_array_get(val, 0)) && json_is_string(json_array_get(val, 1))) {
        const char *a = json_string_value(json_array_get(val, 0));
        const char *b = json_string_value(json_array_get(val, 1));
        m = malloc(strlen(a) + strlen(b) + 2);
        if (m) sprintf(m, "%s %s", a, b);
      } else {
        return FAIL(err, QF_ERR_FORMAT, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"]",
                    path, i);
      }
      if (!m) return FAIL(err, QF_ERR_NO_MEMORY, "%s: out of memory", path);
      v->merges[v->n_merges++] = m;
    }
  }
  return QF_OK;
}

static qf_status qf__write_vocab(qf_gguf_writer *w, const qf__vocab *v, int spm, qf_error *err) {
  qf_status st;
  char **pad = calloc(v->n + 1, sizeof *pad);
  const char **toks = calloc(v->n + 1, sizeof *toks);
  if (!pad || !toks) {
    free(pad);
    free(toks);
    return FAIL(err, QF_ERR_NO_MEMORY, "out of memory writing %zu tokens", v->n);
  }
  for (size_t i = 0; i < v->n; i++) {
    if (v->tokens[i]) {
      toks[i] = v->tokens[i];
    } else {
      pad[i] = malloc(32);
      if (pad[i]) snprintf(pad[i], 32, "[PAD%zu]", i);
      toks[i] = pad[i] ? pad[i] : "";
    }
  }
  st = qf_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, v->n, err);
  if (st == QF_OK && spm)
    st = qf_gguf_writer_set_arr(w, "tokenizer.ggml.scores", QF_GGUF_VT_FLOAT32, v->scores, v->n,
                                err);
  if (st == QF_OK)
    st = qf_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", QF_GGUF_VT_INT32, v->types, v->n,
                                err);
  if (st == QF_OK && !spm && v->n_merges)
    st = qf_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges,
                                    v->n_merges, err);
  for (size_t i = 0; i < v->n; i++) free(pad[i]);
  free(pad);
  free(toks);
  return st;
}

qf_status qf_gguf_write_tokenizer(qf_gguf_writer *w, const char *path, const qf_gguf_hparams *hp,
                                  const qf_gguf_env *env, qf_error *err) {
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root || !json_is_object(root)) {
    json_decref(root);
    return FAIL(err, root ? QF_ERR_FORMAT : QF_ERR_IO, "%s: cannot read the tokenizer (%s)", path,
                root ? "not a JSON object" : je.text);
  }
  qf_status st = QF_OK;
  qf__vocab v;
  memset(&v, 0, sizeof v);
  json_t *tcfg = qf__load_sibling(path, "tokenizer_config.json");
  json_t *model = json_object_get(root, "model");
  const char *mtype = json_string_value(json_object_get(model, "type"));
  if (!json_is_object(model) || !mtype) {
    st = FAIL(err, QF_ERR_FORMAT, "%s: field 'model' must be an object with a string 'type'", path);
    goto out;
  }
  json_t *pre = json_object_get(root, "pre_tokenizer"), *dec = json_object_get(root, "decoder");
  int bytelevel = qf__has_type(pre, "ByteLevel") || qf__has_type(dec, "ByteLevel");
  int spm = !bytelevel && (json_is_true(json_object_get(model, "byte_fallback")) ||
                           qf__has_type(pre, "Metaspace") || qf__has_type(dec, "Metaspace") ||
                           qf__has_type(dec, "Replace"));
  if (strcmp(mtype, "BPE") != 0 || (!bytelevel && !spm)) {
    qf_gguf_logf(env, QF_LOG_WARN,
                 "%s: tokenizer model '%s' is neither byte-level BPE nor SentencePiece BPE; "
                 "no tokenizer metadata written",
                 path, mtype);
    goto out;
  }
  if ((st = qf__build_vocab(root, model, spm, hp, path, &v, err)) != QF_OK) goto out;
  const char *pre_name = spm                              ? "default"
                         : hp->arch == QF_GGUF_ARCH_QWEN2 ? "qwen2"
                         : hp->arch == QF_GGUF_ARCH_LLAMA ? "llama-bpe"
                                                          : "default";
  if ((st = qf_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2", err)) ||
      (st = qf_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre_name, err)) ||
      (st = qf__write_vocab(w, &v, spm, err)))
    goto out;
  static const struct {
    const char *key, *cfg;
  } ids[] = {{"tokenizer.ggml.bos_token_id", "bos_token"},
             {"tokenizer.ggml.eos_token_id", "eos_token"},
             {"tokenizer.ggml.unknown_token_id", "unk_token"},
             {"tokenizer.ggml.padding_token_id", "pad_token"}};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    int64_t id = i == 0 ? hp->bos_id : i == 1 ? hp->eos_id : i == 3 ? hp->pad_id : -1;
    if (id < 0 && tcfg) id = qf__find_id(v.tokens, v.n, qf__tok_str(tcfg, ids[i].cfg));
    if (id < 0 && i == 2)
      id = qf__find_id(v.tokens, v.n, json_string_value(json_object_get(model, "unk_token")));
    if (id >= 0 && (size_t)id < v.n &&
        (st = qf_gguf_writer_set_u32(w, ids[i].key, (uint32_t)id, err)))
      goto out;
  }
  if (tcfg) {
    json_t *b = json_object_get(tcfg, "add_bos_token"), *e = json_object_get(tcfg, "add_eos_token");
    if (json_is_boolean(b) &&
        (st = qf_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", json_is_true(b), err)))
      goto out;
    if (json_is_boolean(e) &&
        (st = qf_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", json_is_true(e), err)))
      goto out;
    const char *tmpl = json_string_value(json_object_get(tcfg, "chat_template"));
    if (tmpl && (st = qf_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl, err))) goto out;
  }
out:
  qf__vocab_free(&v);
  json_decref(tcfg);
  json_decref(root);
  return st;
}
