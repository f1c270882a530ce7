/*
 * tokenizer.json (Hugging Face tokenizers) read with jansson, for the two
 * BPE families of Llama-type models:
 *  - byte-level BPE (GPT-2, Llama 3, Qwen2): added tokens split out first,
 *    the pre-tokenizer regex (by hand, tok_pretok.c), bytes mapped to
 *    GPT-2's printable alphabet, merges by rank, ignore_merges;
 *  - SentencePiece-style BPE (Llama 2, Mistral): spaces → "▁", the "▁"
 *    prefix (Prepend normalizer or Metaspace), merges over characters, and
 *    <0xNN> byte fallback for characters outside the vocabulary.
 * Merging follows tokenizers' Word::merge_all: the lowest-rank pair first,
 * leftmost on ties, with a heap. The post-processor template's special
 * tokens (BOS) are added on request. Decoding inverts both mappings.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "tok_internal.h"

#define OP "tokenizer"
#define SP "\xe2\x96\x81" /* U+2581 ▁ */

typedef struct added_tok {
  const char *content;
  size_t len;
  int32_t id;
} added_tok;

struct qf_tokenizer {
  qf_tokenizer_kind kind;
  qf__pretok pre;
  int max_digits, add_prefix_space, ignore_merges, byte_fallback, fuse_unk;
  int sp_mode;     /* 0 none, 1 Prepend normalizer, 2 Metaspace always, 3 first */
  int sp_split;    /* Metaspace split: words start at ▁ */
  int32_t unk_id;
  char **tok;      /* id → text, NULL for gaps */
  size_t *tok_len;
  uint8_t *is_added;
  int64_t n;
  qf__strmap vocab;
  qf__pairmap merges;
  added_tok *added;
  size_t n_added;
  int32_t prefix[8], suffix[8];
  int n_prefix, n_suffix;
  int32_t byte_id[256];
  int16_t cp2byte[512];
};

typedef struct ibuf {
  int32_t *v;
  size_t n, cap;
} ibuf;

static int ib_push(ibuf *b, int32_t x) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    int32_t *p = realloc(b->v, cap * sizeof *p);
    if (!p) return -1;
    b->v = p;
    b->cap = cap;
  }
  b->v[b->n++] = x;
  return 0;
}

void qf_tokenizer_free(qf_tokenizer *t) {
  if (!t) return;
  for (int64_t i = 0; t->tok && i < t->n; i++) free(t->tok[i]);
  free(t->tok);
  free(t->tok_len);
  free(t->is_added);
  free(t->added);
  qf__strmap_free(&t->vocab);
  qf__pairmap_free(&t->merges);
  free(t);
}

qf_tokenizer_kind qf_tokenizer_get_kind(const qf_tokenizer *t) {
  return t ? t->kind : 0;
}
int64_t qf_tokenizer_size(const qf_tokenizer *t) { return t ? t->n : 0; }
const char *qf_tokenizer_token(const qf_tokenizer *t, int32_t id) {
  return t && id >= 0 && id < t->n ? t->tok[id] : NULL;
}
int32_t qf_tokenizer_id(const qf_tokenizer *t, const char *token) {
  return t && token ? qf__strmap_get(&t->vocab, token, strlen(token)) : -1;
}

/* ---------------------------------------------------------------- loading */

typedef struct load_ctx {
  const char *what;
  qf_error *err;
  int byte_level, bl_regex, replace_space, prepend, metaspace, ms_scheme;
  int has_split;
} load_ctx;

static qf_status bad(load_ctx *c, qf_status code, const char *fmt,
                     const char *a) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, a);
  return qf_errorf(c->err, code, OP, "%s: %s", c->what, msg);
}

static const char *str_of(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static qf_status set_token(qf_tokenizer *t, int64_t id, const char *s,
                           size_t len, load_ctx *c) {
  if (id < 0 || id >= t->n)
    return bad(c, QF_ERR_FORMAT, "token id out of range for '%s'", s);
  if (t->tok[id]) return QF_OK; /* the vocab entry wins */
  if (!(t->tok[id] = malloc(len + 1)))
    return qf_errorf(c->err, QF_ERR_NO_MEMORY, OP, "out of memory");
  memcpy(t->tok[id], s, len);
  t->tok[id][len] = 0;
  t->tok_len[id] = len;
  if (qf__strmap_put(&t->vocab, t->tok[id], len, (int32_t)id))
    return qf_errorf(c->err, QF_ERR_NO_MEMORY, OP, "out of memory");
  return QF_OK;
}

static qf_status load_vocab(qf_tokenizer *t, json_t *model, json_t *added,
                            load_ctx *c) {
  json_t *vocab = json_object_get(model, "vocab");
  if (!json_is_object(vocab))
    return bad(c, QF_ERR_FORMAT, "'model.vocab' must be an object%s", "");
  int64_t mx = -1;
  const char *k;
  json_t *v;
  json_object_foreach(vocab, k, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > INT32_MAX)
      return bad(c, QF_ERR_FORMAT, "vocab entry '%s' needs a non-negative "
                 "integer id", k);
    if (json_integer_value(v) > mx) mx = json_integer_value(v);
  }
  size_t i;
  json_array_foreach(added, i, v) {
    json_t *id = json_object_get(v, "id");
    if (!json_is_integer(id) || !str_of(v, "content") ||
        json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX)
      return bad(c, QF_ERR_FORMAT, "added_tokens entries need an id and a "
                 "content%s", "");
    if (json_integer_value(id) > mx) mx = json_integer_value(id);
  }
  t->n = mx + 1;
  t->tok = calloc((size_t)t->n + 1, sizeof *t->tok);
  t->tok_len = calloc((size_t)t->n + 1, sizeof *t->tok_len);
  t->is_added = calloc((size_t)t->n + 1, 1);
  t->added = calloc(json_array_size(added) + 1, sizeof *t->added);
  if (!t->tok || !t->tok_len || !t->is_added || !t->added)
    return qf_errorf(c->err, QF_ERR_NO_MEMORY, OP, "out of memory");
  qf_status st;
  json_object_foreach(vocab, k, v) {
    if ((st = set_token(t, json_integer_value(v), k, strlen(k), c))) return st;
  }
  json_array_foreach(added, i, v) {
    int64_t id = json_integer_value(json_object_get(v, "id"));
    const char *s = str_of(v, "content");
    if ((st = set_token(t, id, s, strlen(s), c))) return st;
    t->is_added[id] = 1;
    t->added[t->n_added].content = t->tok[id];
    t->added[t->n_added].len = t->tok_len[id];
    t->added[t->n_added].id = (int32_t)id;
    t->n_added++;
  }
  return QF_OK;
}

static qf_status load_merges(qf_tokenizer *t, json_t *merges, load_ctx *c) {
  if (!json_is_array(merges))
    return bad(c, QF_ERR_FORMAT, "'model.merges' must be a list%s", "");
  size_t i;
  json_t *m;
  char buf[1024];
  json_array_foreach(merges, i, m) {
    const char *a, *b;
    size_t la, lb;
    if (json_is_string(m)) {
      const char *s = json_string_value(m), *sp = strchr(s, ' ');
      if (!sp || strchr(sp + 1, ' '))
        return bad(c, QF_ERR_FORMAT, "merge '%s' is not two tokens separated "
                   "by one space", s);
      a = s;
      la = (size_t)(sp - s);
      b = sp + 1;
      lb = strlen(b);
    } else if (json_is_array(m) && json_array_size(m) == 2 &&
               json_is_string(json_array_get(m, 0)) &&
               json_is_string(json_array_get(m, 1))) {
      a = json_string_value(json_array_get(m, 0));
      b = json_string_value(json_array_get(m, 1));
      la = strlen(a);
      lb = strlen(b);
    } else {
      return bad(c, QF_ERR_FORMAT, "merges must be \"a b\" strings or [a, b] "
                 "pairs%s", "");
    }
    if (la + lb >= sizeof buf)
      return bad(c, QF_ERR_FORMAT, "merge too long near '%s'", a);
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    int32_t ia = qf__strmap_get(&t->vocab, a, la);
    int32_t ib = qf__strmap_get(&t->vocab, b, lb);
    int32_t im = qf__strmap_get(&t->vocab, buf, la + lb);
    if (ia < 0 || ib < 0 || im < 0) {
      buf[la + lb] = 0;
      return bad(c, QF_ERR_FORMAT, "merge into '%s' names a token missing "
                 "from the vocab", buf);
    }
    if (qf__pairmap_put(&t->merges, ia, ib, (int32_t)i, im))
      return qf_errorf(c->err, QF_ERR_NO_MEMORY, OP, "out of memory");
  }
  return QF_OK;
}

static qf_status load_normalizer(json_t *n, load_ctx *c) {
  if (!n || json_is_null(n)) return QF_OK;
  const char *type = str_of(n, "type");
  if (!type) return bad(c, QF_ERR_FORMAT, "normalizer without a type%s", "");
  if (!strcmp(type, "Sequence")) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(n, "normalizers"), i, e) {
      qf_status st = load_normalizer(e, c);
      if (st) return st;
    }
    return QF_OK;
  }
  if (!strcmp(type, "NFC")) return QF_OK; /* input is expected in NFC */
  if (!strcmp(type, "Prepend")) {
    const char *p = str_of(n, "prepend");
    if (!p || strcmp(p, SP))
      return bad(c, QF_ERR_UNSUPPORTED, "Prepend normalizer must prepend "
                 "\"" SP "\"%s", "");
    c->prepend = 1;
    return QF_OK;
  }
  if (!strcmp(type, "Replace")) {
    const char *pat = str_of(json_object_get(n, "pattern"), "String");
    const char *to = str_of(n, "content");
    if (!pat || !to || strcmp(pat, " ") || strcmp(to, SP))
      return bad(c, QF_ERR_UNSUPPORTED, "only the Replace(\" \" → \"" SP
                 "\") normalizer is supported%s", "");
    c->replace_space = 1;
    return QF_OK;
  }
  return bad(c, QF_ERR_UNSUPPORTED, "normalizer '%s' is not supported", type);
}

static qf_status load_pretok(qf_tokenizer *t, json_t *p, load_ctx *c) {
  if (!p || json_is_null(p)) return QF_OK;
  const char *type = str_of(p, "type");
  if (!type) return bad(c, QF_ERR_FORMAT, "pre_tokenizer without a type%s", "");
  if (!strcmp(type, "Sequence")) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(p, "pretokenizers"), i, e) {
      qf_status st = load_pretok(t, e, c);
      if (st) return st;
    }
    return QF_OK;
  }
  if (!strcmp(type, "ByteLevel")) {
    json_t *ur = json_object_get(p, "use_regex");
    c->byte_level = 1;
    c->bl_regex = !ur || json_is_true(ur);
    t->add_prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
    return QF_OK;
  }
  if (!strcmp(type, "Split")) {
    const char *re = str_of(json_object_get(p, "pattern"), "Regex");
    const char *beh = str_of(p, "behavior");
    if (!re || !beh || strcmp(beh, "Isolated") ||
        json_is_true(json_object_get(p, "invert")))
      return bad(c, QF_ERR_UNSUPPORTED, "only Split(Regex, Isolated, "
                 "invert=false) is supported%s", "");
    if (!qf__pretok_from_regex(re, &t->pre, &t->max_digits))
      return bad(c, QF_ERR_UNSUPPORTED, "pre-tokenizer regex '%s' is not one "
                 "of the GPT-2, Llama 3 or Qwen2 patterns", re);
    c->has_split = 1;
    return QF_OK;
  }
  if (!strcmp(type, "Metaspace")) {
    const char *r = str_of(p, "replacement");
    const char *scheme = str_of(p, "prepend_scheme");
    if (!r || strcmp(r, SP))
      return bad(c, QF_ERR_UNSUPPORTED, "Metaspace replacement must be \"" SP
                 "\"%s", "");
    c->metaspace = 1;
    if (scheme)
      c->ms_scheme = !strcmp(scheme, "always") ? 2
                     : !strcmp(scheme, "first") ? 3 : 0;
    else
      c->ms_scheme =
          json_is_false(json_object_get(p, "add_prefix_space")) ? 0 : 2;
    t->sp_split = !json_is_false(json_object_get(p, "split"));
    return QF_OK;
  }
  return bad(c, QF_ERR_UNSUPPORTED, "pre_tokenizer '%s' is not supported",
             type);
}

static qf_status template_ids(qf_tokenizer *t, json_t *pp, load_ctx *c) {
  if (!pp || json_is_null(pp)) return QF_OK;
  const char *type = str_of(pp, "type");
  if (type && !strcmp(type, "Sequence")) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(pp, "processors"), i, e) {
      qf_status st = template_ids(t, e, c);
      if (st) return st;
    }
    return QF_OK;
  }
  if (!type || strcmp(type, "TemplateProcessing")) return QF_OK;
  size_t i;
  json_t *e;
  int seen_seq = 0;
  json_array_foreach(json_object_get(pp, "single"), i, e) {
    json_t *sp = json_object_get(e, "SpecialToken");
    if (!sp) {
      seen_seq = 1;
      continue;
    }
    const char *name = str_of(sp, "id");
    json_t *ids = json_object_get(
        json_object_get(json_object_get(pp, "special_tokens"), name ? name : ""),
        "ids");
    int32_t id = json_is_array(ids) && json_array_size(ids) == 1
                     ? (int32_t)json_integer_value(json_array_get(ids, 0))
                     : (name ? qf__strmap_get(&t->vocab, name, strlen(name))
                             : -1);
    if (id < 0 || id >= t->n)
      return bad(c, QF_ERR_FORMAT, "post_processor names unknown special "
                 "token '%s'", name ? name : "?");
    if (!seen_seq && t->n_prefix < 8) t->prefix[t->n_prefix++] = id;
    else if (seen_seq && t->n_suffix < 8) t->suffix[t->n_suffix++] = id;
  }
  return QF_OK;
}

static qf_status load_root(qf_tokenizer *t, json_t *root, load_ctx *c) {
  json_t *model = json_object_get(root, "model");
  json_t *added = json_object_get(root, "added_tokens");
  if (!json_is_object(model))
    return bad(c, QF_ERR_FORMAT, "'model' must be an object%s", "");
  const char *mt = str_of(model, "type");
  if (mt && strcmp(mt, "BPE"))
    return bad(c, QF_ERR_UNSUPPORTED, "model type '%s' is not supported "
               "(expected BPE)", mt);
  if (added && !json_is_array(added))
    return bad(c, QF_ERR_FORMAT, "'added_tokens' must be a list%s", "");
  const char *pre = str_of(model, "continuing_subword_prefix");
  const char *suf = str_of(model, "end_of_word_suffix");
  if ((pre && *pre) || (suf && *suf))
    return bad(c, QF_ERR_UNSUPPORTED, "continuing_subword_prefix / "
               "end_of_word_suffix are not supported%s", "");
  qf_status st;
  if ((st = load_vocab(t, model, added, c)) ||
      (st = load_merges(t, json_object_get(model, "merges"), c)) ||
      (st = load_normalizer(json_object_get(root, "normalizer"), c)) ||
      (st = load_pretok(t, json_object_get(root, "pre_tokenizer"), c)))
    return st;
  t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
  t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
  t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
  const char *unk = str_of(model, "unk_token");
  t->unk_id = unk ? qf__strmap_get(&t->vocab, unk, strlen(unk)) : -1;
  const char *dec = str_of(json_object_get(root, "decoder"), "type");
  if (c->byte_level || (dec && !strcmp(dec, "ByteLevel"))) {
    t->kind = QF_TOKENIZER_BYTE_LEVEL;
    if (c->has_split && c->bl_regex)
      return bad(c, QF_ERR_UNSUPPORTED, "Split followed by a regex ByteLevel "
                 "is not supported%s", "");
    if (!c->has_split && (c->bl_regex || !c->byte_level)) {
      t->pre = QF__PRETOK_GPT2;
      t->max_digits = 0;
    }
    for (unsigned b = 0; b < 256; b++) {
      char u[4];
      int k = qf__utf8_encode(qf__byte_to_cp(b), u);
      t->byte_id[b] = qf__strmap_get(&t->vocab, u, (size_t)k);
    }
  } else if (c->replace_space || c->metaspace) {
    t->kind = QF_TOKENIZER_SENTENCEPIECE;
    t->sp_mode = c->prepend ? 1 : c->metaspace ? c->ms_scheme : 0;
    for (unsigned b = 0; b < 256; b++) {
      char u[8];
      snprintf(u, sizeof u, "<0x%02X>", b);
      t->byte_id[b] = qf__strmap_get(&t->vocab, u, strlen(u));
    }
  } else {
    return bad(c, QF_ERR_UNSUPPORTED, "neither a byte-level nor a "
               "SentencePiece-style BPE tokenizer%s", "");
  }
  for (uint32_t cp = 0; cp < 512; cp++)
    t->cp2byte[cp] = (int16_t)qf__cp_to_byte(cp);
  return template_ids(t, json_object_get(root, "post_processor"), c);
}

qf_status qf_tokenizer_from_json(const char *json, const char *what,
                                 qf_tokenizer **out, qf_error *err) {
  if (!json || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokenizer_from_json needs text and an output");
  *out = NULL;
  load_ctx c = {what ? what : "tokenizer.json", err, 0, 0, 0, 0, 0, 0, 0};
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  if (!root)
    return qf_errorf(err, QF_ERR_FORMAT, OP, "%s:%d:%d: %s", c.what, je.line,
                     je.column, je.text);
  qf_tokenizer *t = calloc(1, sizeof *t);
  qf_status st = t ? QF_OK : qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  if (!st && !json_is_object(root))
    st = bad(&c, QF_ERR_FORMAT, "expected a JSON object%s", "");
  if (!st) st = load_root(t, root, &c);
  json_decref(root);
  if (st) {
    qf_tokenizer_free(t);
    return st;
  }
  *out = t;
  return QF_OK;
}

qf_status qf_tokenizer_load(const char *path, qf_tokenizer **out,
                            qf_error *err) {
  if (!path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokenizer_load needs a path and an output");
  size_t pl = strlen(path);
  int is_json = pl >= 5 && !strcmp(path + pl - 5, ".json");
  char *file = malloc(pl + 32);
  if (!file) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  snprintf(file, pl + 32, is_json ? "%s" : "%s/tokenizer.json", path);
  char *text = NULL;
  size_t n = 0;
  qf_status st = qf_read_file(file, &text, &n, err);
  if (!st) st = qf_tokenizer_from_json(text, file, out, err);
  free(text);
  free(file);
  return st;
}

/* ---------------------------------------------------------------- BPE */

typedef struct hitem {
  int32_t rank, pos;
} hitem;

static int hless(hitem a, hitem b) {
  return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void hpush(hitem *h, size_t *n, hitem x) {
  size_t i = (*n)++;
  while (i > 0 && hless(x, h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = x;
}

static hitem hpop(hitem *h, size_t *n) {
  hitem top = h[0], x = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    hitem best = x;
    if (l < *n && hless(h[l], best)) {
      m = l;
      best = h[l];
    }
    if (r < *n && hless(h[r], best)) m = r;
    if (m == i) break;
    h[i] = h[m];
    i = m;
  }
  if (*n) h[i] = x;
  return top;
}

/* Merge ids[0..n) in place; returns the new length or (size_t)-1. */
static size_t bpe(const qf_tokenizer *t, int32_t *ids, size_t n) {
  if (n < 2) return n;
  int32_t *nx = malloc(n * sizeof *nx), *pv = malloc(n * sizeof *pv);
  hitem *h = malloc(3 * n * sizeof *h);
  size_t hn = 0, out = (size_t)-1;
  if (!nx || !pv || !h) goto done;
  for (size_t i = 0; i < n; i++) {
    nx[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    pv[i] = (int32_t)i - 1;
  }
  int32_t r, m;
  for (size_t i = 0; i + 1 < n; i++)
    if (qf__pairmap_get(&t->merges, ids[i], ids[i + 1], &r, &m))
      hpush(h, &hn, (hitem){r, (int32_t)i});
  while (hn) {
    hitem it = hpop(h, &hn);
    int32_t p = it.pos, q = nx[p];
    if (ids[p] < 0 || q < 0 ||
        !qf__pairmap_get(&t->merges, ids[p], ids[q], &r, &m) || r != it.rank)
      continue;
    ids[p] = m;
    ids[q] = -1;
    nx[p] = nx[q];
    if (nx[q] >= 0) pv[nx[q]] = p;
    if (pv[p] >= 0 &&
        qf__pairmap_get(&t->merges, ids[pv[p]], ids[p], &r, &m))
      hpush(h, &hn, (hitem){r, pv[p]});
    if (nx[p] >= 0 && qf__pairmap_get(&t->merges, ids[p], ids[nx[p]], &r, &m))
      hpush(h, &hn, (hitem){r, p});
  }
  out = 0;
  for (int32_t i = 0; i >= 0; i = nx[i]) ids[out++] = ids[i];
done:
  free(nx);
  free(pv);
  free(h);
  return out;
}

/* ---------------------------------------------------------------- encode */

static qf_status nomem(qf_error *err) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
}

static qf_status push_all(ibuf *out, const int32_t *ids, size_t n,
                          qf_error *err) {
  for (size_t i = 0; i < n; i++)
    if (ib_push(out, ids[i])) return nomem(err);
  return QF_OK;
}

/* One byte-level pre-token: bytes → alphabet ids → merges. */
static qf_status bl_piece(const qf_tokenizer *t, const char *s, size_t len,
                          ibuf *out, qf_error *err) {
  int32_t *ids = malloc((len ? len : 1) * sizeof *ids);
  char *mapped = malloc(2 * len + 1);
  qf_status st = QF_OK;
  size_t ml = 0;
  if (!ids || !mapped) {
    st = nomem(err);
    goto done;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char b = (unsigned char)s[i];
    if ((ids[i] = t->byte_id[b]) < 0) {
      st = qf_errorf(err, QF_ERR_FORMAT, OP,
                     "the vocab has no token for byte 0x%02X", b);
      goto done;
    }
    ml += (size_t)qf__utf8_encode(qf__byte_to_cp(b), mapped + ml);
  }
  if (t->ignore_merges) {
    int32_t id = qf__strmap_get(&t->vocab, mapped, ml);
    if (id >= 0) {
      st = push_all(out, &id, 1, err);
      goto done;
    }
  }
  size_t n = bpe(t, ids, len);
  st = n == (size_t)-1 ? nomem(err) : push_all(out, ids, n, err);
done:
  free(ids);
  free(mapped);
  return st;
}

static qf_status bl_segment(const qf_tokenizer *t, const char *s, size_t len,
                            int first, ibuf *out, qf_error *err) {
  char *own = NULL;
  if (t->add_prefix_space && first && (len == 0 || s[0] != ' ')) {
    if (!(own = malloc(len + 1))) return nomem(err);
    own[0] = ' ';
    memcpy(own + 1, s, len);
    s = own;
    len++;
  }
  uint32_t *cp = malloc((len + 1) * sizeof *cp);
  size_t *off = malloc((len + 1) * sizeof *off);
  size_t *ends = malloc((len + 1) * sizeof *ends);
  qf_status st = QF_OK;
  if (!cp || !off || !ends) {
    st = nomem(err);
  } else {
    size_t n = qf__utf8_decode(s, len, cp, off);
    size_t k = qf__pretok_split(t->pre, t->max_digits, cp, n, ends);
    size_t start = 0;
    for (size_t i = 0; !st && i < k; i++) {
      st = bl_piece(t, s + off[start], off[ends[i]] - off[start], out, err);
      start = ends[i];
    }
  }
  free(cp);
  free(off);
  free(ends);
  free(own);
  return st;
}

/* One SentencePiece word (code points of the normalised text). */
static qf_status sp_word(const qf_tokenizer *t, const uint32_t *cp, size_t n,
                         ibuf *out, qf_error *err) {
  ibuf sym = {0};
  qf_status st = QF_OK;
  for (size_t i = 0; !st && i < n; i++) {
    char u[4];
    int k = qf__utf8_encode(cp[i], u);
    int32_t id = qf__strmap_get(&t->vocab, u, (size_t)k);
    if (id >= 0) {
      if (ib_push(&sym, id)) st = nomem(err);
      continue;
    }
    int fb = t->byte_fallback;
    for (int j = 0; fb && j < k; j++)
      if (t->byte_id[(unsigned char)u[j]] < 0) fb = 0;
    if (fb) {
      for (int j = 0; !st && j < k; j++)
        if (ib_push(&sym, t->byte_id[(unsigned char)u[j]])) st = nomem(err);
    } else if (t->unk_id >= 0) {
      if (!(t->fuse_unk && sym.n && sym.v[sym.n - 1] == t->unk_id) &&
          ib_push(&sym, t->unk_id))
        st = nomem(err);
    } else {
      st = qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "character U+%04X is not in the vocab and the tokenizer "
                     "has neither byte fallback nor an unk token", cp[i]);
    }
  }
  if (!st) {
    size_t m = bpe(t, sym.v, sym.n);
    st = m == (size_t)-1 ? nomem(err) : push_all(out, sym.v, m, err);
  }
  free(sym.v);
  return st;
}

static qf_status sp_segment(const qf_tokenizer *t, const char *s, size_t len,
                            int first, ibuf *out, qf_error *err) {
  if (len == 0) return QF_OK;
  int starts_sp = s[0] == ' ' || (len >= 3 && !memcmp(s, SP, 3));
  int prepend = t->sp_mode == 1 || (t->sp_mode == 2 && !starts_sp) ||
                (t->sp_mode == 3 && first && !starts_sp);
  char *norm = malloc(3 * len + 4);
  size_t nl = 0;
  if (!norm) return nomem(err);
  if (prepend) {
    memcpy(norm, SP, 3);
    nl = 3;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] == ' ') {
      memcpy(norm + nl, SP, 3);
      nl += 3;
    } else {
      norm[nl++] = s[i];
    }
  }
  uint32_t *cp = malloc((nl + 1) * sizeof *cp);
  size_t *off = malloc((nl + 1) * sizeof *off);
  qf_status st = QF_OK;
  if (!cp || !off) {
    st = nomem(err);
  } else {
    size_t n = qf__utf8_decode(norm, nl, cp, off), start = 0;
    for (size_t i = 1; t->sp_split && !st && i < n; i++)
      if (cp[i] == 0x2581) {
        st = sp_word(t, cp + start, i - start, out, err);
        start = i;
      }
    if (!st) st = sp_word(t, cp + start, n - start, out, err);
  }
  free(cp);
  free(off);
  free(norm);
  return st;
}

static qf_status segment(const qf_tokenizer *t, const char *s, size_t len,
                         int first, ibuf *out, qf_error *err) {
  if (len == 0) return QF_OK;
  return t->kind == QF_TOKENIZER_BYTE_LEVEL
             ? bl_segment(t, s, len, first, out, err)
             : sp_segment(t, s, len, first, out, err);
}

qf_status qf_tokenizer_encode(const qf_tokenizer *t, const char *text,
                              size_t len, int add_special, int32_t **ids,
                              size_t *n, qf_error *err) {
  if (!t || (!text && len) || !ids || !n)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokenizer_encode needs a tokenizer, text and "
                     "outputs");
  ibuf out = {0};
  qf_status st = QF_OK;
  uint8_t first_byte[256] = {0};
  for (size_t a = 0; a < t->n_added; a++)
    if (t->added[a].len) first_byte[(unsigned char)t->added[a].content[0]] = 1;
  if (add_special) st = push_all(&out, t->prefix, (size_t)t->n_prefix, err);
  size_t seg = 0, i = 0;
  while (!st && i < len) {
    const added_tok *best = NULL;
    if (first_byte[(unsigned char)text[i]])
      for (size_t a = 0; a < t->n_added; a++) {
        const added_tok *c = &t->added[a];
        if (c->len && c->len <= len - i && (!best || c->len > best->len) &&
            !memcmp(text + i, c->content, c->len))
          best = c;
      }
    if (!best) {
      i++;
      continue;
    }
    st = segment(t, text + seg, i - seg, seg == 0, &out, err);
    if (!st && ib_push(&out, best->id)) st = nomem(err);
    i += best->len;
    seg = i;
  }
  if (!st) st = segment(t, text + seg, len - seg, seg == 0, &out, err);
  if (!st && add_special)
    st = push_all(&out, t->suffix, (size_t)t->n_suffix, err);
  if (st) {
    free(out.v);
    return st;
  }
  *ids = out.v ? out.v : malloc(sizeof(int32_t));
  *n = out.n;
  return *ids ? QF_OK : nomem(err);
}

/* ---------------------------------------------------------------- decode */

typedef struct cbuf {
  char *v;
  size_t n, cap;
} cbuf;

static int cb_put(cbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->v, cap);
    if (!p) return -1;
    b->v = p;
    b->cap = cap;
  }
  memcpy(b->v + b->n, s, n);
  b->n += n;
  b->v[b->n] = 0;
  return 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                               : -1;
}

static int decode_token(const qf_tokenizer *t, int32_t id, cbuf *b) {
  const char *s = t->tok[id];
  size_t len = t->tok_len[id];
  if (t->is_added[id]) return cb_put(b, s, len);
  if (t->kind == QF_TOKENIZER_BYTE_LEVEL) {
    uint32_t cp[64];
    size_t off[65];
    for (size_t i = 0; i < len;) {
      size_t chunk = len - i > 60 ? 60 : len - i;
      while (chunk < len - i && ((unsigned char)s[i + chunk] & 0xc0) == 0x80)
        chunk--;
      size_t n = qf__utf8_decode(s + i, chunk, cp, off);
      for (size_t k = 0; k < n; k++) {
        int by = cp[k] < 512 ? t->cp2byte[cp[k]] : -1;
        char u[4], c = (char)by;
        if (by >= 0 ? cb_put(b, &c, 1)
                    : cb_put(b, u, (size_t)qf__utf8_encode(cp[k], u)))
          return -1;
      }
      i += chunk;
    }
    return 0;
  }
  if (t->byte_fallback && len == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' &&
      hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
    char c = (char)(hexval(s[3]) * 16 + hexval(s[4]));
    return cb_put(b, &c, 1);
  }
  for (size_t i = 0; i < len;) {
    if (len - i >= 3 && !memcmp(s + i, SP, 3)) {
      if (cb_put(b, " ", 1)) return -1;
      i += 3;
    } else {
      if (cb_put(b, s + i, 1)) return -1;
      i++;
    }
  }
  return 0;
}

qf_status qf_tokenizer_decode(const qf_tokenizer *t, const int32_t *ids,
                              size_t n, char **text, qf_error *err) {
  if (!t || (!ids && n) || !text)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_tokenizer_decode needs a tokenizer, ids and an "
                     "output");
  cbuf b = {0};
  if (cb_put(&b, "", 0)) return nomem(err);
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->n || !t->tok[ids[i]]) {
      free(b.v);
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                       "token #%zu (%d) is not in the vocab", i, ids[i]);
    }
    if (decode_token(t, ids[i], &b)) {
      free(b.v);
      return nomem(err);
    }
  }
  if (t->kind == QF_TOKENIZER_SENTENCEPIECE && t->sp_mode && b.n &&
      b.v[0] == ' ')
    memmove(b.v, b.v + 1, b.n--);
  *text = b.v;
  return QF_OK;
}
