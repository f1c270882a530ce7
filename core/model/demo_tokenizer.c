/*
 * A generated tokenizer.json for the demo model, in either BPE family:
 * byte-level (Llama 3 layout: the Llama 3 Split regex + ByteLevel, BOS
 * <|begin_of_text|> by template) or SentencePiece-style (Llama 2 layout:
 * Prepend/Replace normalizer, <0xNN> byte fallback, <s> by template). The
 * merges spell a fixed list of common English words left to right (with and
 * without the word-initial space marker), so English text tokenizes into
 * plausible pieces; reserved special tokens pad the vocabulary to the
 * requested size. Deterministic.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "tok_internal.h"

#define SP "\xe2\x96\x81"

static const char *const k_words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was",
    "with", "be", "by", "on", "not", "he", "this", "are", "or", "his",
    "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
    "their", "one", "all", "we", "can", "her", "has", "there", "been", "if",
    "more", "when", "will", "would", "who", "so", "no", "she", "other", "its",
    "may", "these", "about", "than", "into", "them", "some", "could", "time",
    "only", "new", "then", "do", "what", "also", "first", "two", "any",
    "like", "our", "such", "over", "my", "most", "made", "after", "many",
    "where", "make", "through", "back", "years", "much", "before", "must",
    "well", "because", "each", "people", "state", "world", "between",
    "under", "model", "weight", "quant", "ization", "token", "layer",
    "matrix", "value", "scale", "group", "error", "data", "small", "large",
    "number", "water", "house", "system", "power", "during", "without",
    "against", "light", "night", "right", "little", "great", "know", "think",
    "going", "should", "still", "never", "those", "every", "while", "found",
    "again", "thing", "place", "point", "might", "being", "another",
    "country", "around", "school", "however", "important", "example",
    "language", "computer", "network", "student", "history", "question",
    "different", "something", "The", "It", "In", "This", "We", "He", "A",
    "ing", "ed", "er", "ly", "tion", "ment", "ness", "able", "ous"};

typedef struct gen {
  json_t *vocab, *merges, *ranks;
  int64_t n, limit;
} gen;

static int add_tok(gen *g, const char *s) {
  if (json_object_get(g->vocab, s)) return 0;
  if (g->n >= g->limit) return -1;
  json_object_set_new(g->vocab, s, json_integer(g->n++));
  return 0;
}

/* Merges that make the word `sym[0..n)` one token: apply the merges so
 * far (lowest rank first, as BPE does), then merge the first remaining pair
 * with a new, last-ranked merge, until one token is left. Earlier words keep
 * their tokenization: a last-ranked merge only applies when no other does. */
static void spell(gen *g, char **sym, size_t n) {
  char tok[64][64], key[160];
  for (size_t i = 0; i < n; i++) snprintf(tok[i], sizeof tok[i], "%s", sym[i]);
  while (n > 1) {
    for (;;) {
      json_int_t best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < n; i++) {
        snprintf(key, sizeof key, "%s %s", tok[i], tok[i + 1]);
        json_t *r = json_object_get(g->ranks, key);
        if (r && (best < 0 || json_integer_value(r) < best)) {
          best = json_integer_value(r);
          at = i;
        }
      }
      if (best < 0) break;
      char both[128];
      snprintf(both, sizeof both, "%s%s", tok[at], tok[at + 1]);
      snprintf(tok[at], sizeof tok[at], "%s", both);
      memmove(tok[at + 1], tok[at + 2], (n - at - 2) * sizeof tok[0]);
      n--;
    }
    if (n == 1) return;
    char merged[128];
    snprintf(merged, sizeof merged, "%s%s", tok[0], tok[1]);
    if (add_tok(g, merged)) return;
    snprintf(key, sizeof key, "%s %s", tok[0], tok[1]);
    json_object_set_new(g->ranks, key,
                        json_integer((json_int_t)json_array_size(g->merges)));
    json_array_append_new(g->merges, json_string(key));
  }
}

/* Split a word (with an optional marker prefix) into symbol strings. */
static size_t symbols(const char *marker, const char *w, int byte_level,
                      char sym[][8]) {
  size_t n = 0;
  if (marker) snprintf(sym[n++], 8, "%s", marker);
  for (const char *p = w; *p && n < 63; p++) {
    if (byte_level) {
      int k = qf__utf8_encode(qf__byte_to_cp((unsigned char)*p), sym[n]);
      sym[n++][k] = 0;
    } else {
      sym[n][0] = *p;
      sym[n++][1] = 0;
    }
  }
  return n;
}

static json_t *added(const char *content, int64_t id) {
  return json_pack("{s:I,s:s,s:b,s:b,s:b,s:b,s:b}", "id", (json_int_t)id,
                   "content", content, "single_word", 0, "lstrip", 0,
                   "rstrip", 0, "normalized", 0, "special", 1);
}

static json_t *template_single(const char *bos, int64_t id) {
  json_t *single = json_pack("[{s:{s:s,s:i}},{s:{s:s,s:i}}]", "SpecialToken",
                             "id", bos, "type_id", 0, "Sequence", "id", "A",
                             "type_id", 0);
  json_t *special = json_object();
  json_object_set_new(special, bos,
                      json_pack("{s:s,s:[I],s:[s]}", "id", bos, "ids",
                                (json_int_t)id, "tokens", bos));
  return json_pack("{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing",
                   "single", single, "pair", json_array(), "special_tokens",
                   special);
}

char *qf_demo_tokenizer_json(qf_tokenizer_kind kind, int64_t size) {
  int bl = kind != QF_TOKENIZER_SENTENCEPIECE;
  gen g = {json_object(), json_array(), json_object(), 0, size};
  json_t *add = json_array(), *root = json_object();
  char sym[64][8];
  char *ptr[64];
  for (int i = 0; i < 64; i++) ptr[i] = sym[i];
  int64_t base = bl ? 258 : 334;
  if (g.limit < base + 2) g.limit = base + 2;
  int64_t specials = bl ? 2 : 0;
  g.limit -= specials; /* byte-level specials go after the merges */
  if (!bl) {
    const char *sp3[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
      add_tok(&g, sp3[i]);
      json_array_append_new(add, added(sp3[i], i));
    }
    for (int b = 0; b < 256; b++) {
      char t[8];
      snprintf(t, sizeof t, "<0x%02X>", b);
      add_tok(&g, t);
    }
    add_tok(&g, SP);
    const char *chars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        ".,!?'\"-:;()";
    for (const char *p = chars; *p; p++) {
      char t[2] = {*p, 0};
      add_tok(&g, t);
    }
  } else {
    for (unsigned b = 0; b < 256; b++) {
      char t[8];
      int k = qf__utf8_encode(qf__byte_to_cp(b), t);
      t[k] = 0;
      add_tok(&g, t);
    }
  }
  char marker[8];
  int mk = bl ? qf__utf8_encode(qf__byte_to_cp(' '), marker) : 3;
  if (!bl) memcpy(marker, SP, 3);
  marker[mk] = 0;
  for (size_t w = 0; w < sizeof k_words / sizeof *k_words; w++) {
    spell(&g, ptr, symbols(marker, k_words[w], bl, sym));
    spell(&g, ptr, symbols(NULL, k_words[w], bl, sym));
  }
  g.limit += specials;
  int64_t bos_id = bl ? g.n : 1;
  if (bl) {
    json_array_append_new(add, added("<|begin_of_text|>", g.n));
    add_tok(&g, "<|begin_of_text|>");
    json_array_append_new(add, added("<|end_of_text|>", g.n));
    add_tok(&g, "<|end_of_text|>");
  }
  for (int64_t r = 0; g.n < g.limit; r++) {
    char t[40];
    snprintf(t, sizeof t, "<|reserved_special_token_%lld|>", (long long)r);
    json_array_append_new(add, added(t, g.n));
    add_tok(&g, t);
  }
  json_t *model = json_pack(
      "{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b,s:o,s:o}", "type", "BPE", "dropout",
      "unk_token", bl ? json_null() : json_string("<unk>"),
      "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", !bl,
      "byte_fallback", !bl, "ignore_merges", 0, "vocab", g.vocab, "merges",
      g.merges);
  json_object_set_new(root, "version", json_string("1.0"));
  json_object_set_new(root, "truncation", json_null());
  json_object_set_new(root, "padding", json_null());
  json_object_set_new(root, "added_tokens", add);
  if (bl) {
    static const char re[] =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
        "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|"
        "\\s+";
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(
        root, "pre_tokenizer",
        json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]}", "type",
                  "Sequence", "pretokenizers", "type", "Split", "pattern",
                  "Regex", re, "behavior", "Isolated", "invert", 0, "type",
                  "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                  "use_regex", 0));
    json_object_set_new(root, "post_processor",
                        template_single("<|begin_of_text|>", bos_id));
    json_object_set_new(root, "decoder",
                        json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel",
                                  "add_prefix_space", 1, "trim_offsets", 1,
                                  "use_regex", 1));
  } else {
    json_object_set_new(
        root, "normalizer",
        json_pack("{s:s,s:[{s:s,s:s},{s:s,s:{s:s},s:s}]}", "type", "Sequence",
                  "normalizers", "type", "Prepend", "prepend", SP, "type",
                  "Replace", "pattern", "String", " ", "content", SP));
    json_object_set_new(root, "pre_tokenizer", json_null());
    json_object_set_new(root, "post_processor", template_single("<s>", bos_id));
    json_object_set_new(
        root, "decoder",
        json_pack("{s:s,s:[{s:s,s:{s:s},s:s},{s:s},{s:s},{s:s,s:s,s:i,s:i}]}",
                  "type", "Sequence", "decoders", "type", "Replace", "pattern",
                  "String", SP, "content", " ", "type", "ByteFallback", "type",
                  "Fuse", "type", "Strip", "content", " ", "start", 1, "stop",
                  0));
  }
  json_object_set_new(root, "model", model);
  json_decref(g.ranks);
  char *text = json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII);
  json_decref(root);
  return text;
}
