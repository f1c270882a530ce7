/*
 * Tokenizers read from tokenizer.json: hand-built byte-level (Llama 3,
 * Qwen2 and GPT-2 regexes) and SentencePiece-style (Prepend/Replace and
 * Metaspace) tokenizers against token sequences worked out by hand from the
 * regex and merge rules; byte fallback, added tokens, BOS templates,
 * ignore_merges; decode round trips; and the generated demo tokenizers.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "model_test_util.h"

#define SP "\xe2\x96\x81"

static const char *k_re_llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|"
    "\\s+";
static const char *k_re_qwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GPT-2 bytes_to_unicode, written out independently for the test. */
static void byte_char(unsigned b, char out[4]) {
  unsigned cp = b;
  int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
                  (b >= 0xae && b <= 0xff);
  if (!printable) {
    unsigned n = 0;
    for (unsigned i = 0; i < b; i++)
      if (!((i >= 0x21 && i <= 0x7e) || (i >= 0xa1 && i <= 0xac) ||
            (i >= 0xae && i <= 0xff)))
        n++;
    cp = 256 + n;
  }
  memset(out, 0, 4);
  if (cp < 0x80) {
    out[0] = (char)cp;
  } else {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
  }
}

/* "Ġw" etc.: map the ASCII bytes of s to the byte-level alphabet. */
static void mapped(const char *s, char *out) {
  out[0] = 0;
  for (const char *p = s; *p; p++) {
    char c[4];
    byte_char((unsigned char)*p, c);
    strcat(out, c);
  }
}

static json_t *byte_level_json(const char *regex, int ignore_merges,
                               int split) {
  json_t *vocab = json_object(), *merges = json_array();
  for (unsigned b = 0; b < 256; b++) {
    char c[4];
    byte_char(b, c);
    json_object_set_new(vocab, c, json_integer(b));
  }
  static const char *m[][2] = {
      {"h", "e"},    {"l", "l"},     {"he", "ll"}, {"hell", "o"},
      {" ", "w"},    {"o", "r"},     {" w", "or"}, {" wor", "l"},
      {" worl", "d"}, {"1", "2"},    {"12", "3"},  {"'", "s"},
      {" ", " "},    {"!", "!"},     {"!!", "\n"}};
  int id = 256;
  for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
    char a[32], b[32], ab[64], line[96];
    mapped(m[i][0], a);
    mapped(m[i][1], b);
    snprintf(ab, sizeof ab, "%s%s", a, b);
    snprintf(line, sizeof line, "%s %s", a, b);
    json_object_set_new(vocab, ab, json_integer(id++));
    json_array_append_new(merges, json_string(line));
  }
  json_object_set_new(vocab, "abc", json_integer(id++)); /* 271, no merge */
  json_t *pre =
      split ? json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b}]}",
                        "type", "Sequence", "pretokenizers", "type", "Split",
                        "pattern", "Regex", regex, "behavior", "Isolated",
                        "invert", 0, "type", "ByteLevel", "add_prefix_space",
                        0, "use_regex", 0)
            : json_pack("{s:s,s:b,s:b}", "type", "ByteLevel",
                        "add_prefix_space", 0, "use_regex", 1);
  json_t *post = json_pack(
      "{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}}],s:{s:{s:s,s:[i],s:[s]}}}", "type",
      "TemplateProcessing", "single", "SpecialToken", "id",
      "<|begin_of_text|>", "type_id", 0, "Sequence", "id", "A", "type_id", 0,
      "special_tokens", "<|begin_of_text|>", "id", "<|begin_of_text|>", "ids",
      272, "tokens", "<|begin_of_text|>");
  return json_pack(
      "{s:[{s:i,s:s,s:b}],s:n,s:o,s:o,s:{s:s},s:{s:s,s:b,s:o,s:o}}",
      "added_tokens", "id", 272, "content", "<|begin_of_text|>", "special", 1,
      "normalizer", "pre_tokenizer", pre, "post_processor", post, "decoder",
      "type", "ByteLevel", "model", "type", "BPE", "ignore_merges",
      ignore_merges, "vocab", vocab, "merges", merges);
}

static qf_tokenizer *load(json_t *j) {
  char *text = json_dumps(j, 0);
  json_decref(j);
  qf_tokenizer *t = NULL;
  qf_error err = {.struct_size = sizeof err};
  qf_status st = qf_tokenizer_from_json(text, "test tokenizer.json", &t, &err);
  free(text);
  cr_assert_eq(st, QF_OK, "%s", err.message);
  return t;
}

static void expect_ids(qf_tokenizer *t, const char *text, int add,
                       const int32_t *want, size_t n) {
  int32_t *ids = NULL;
  size_t k = 0;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_tokenizer_encode(t, text, strlen(text), add, &ids, &k, &err),
               QF_OK, "%s", err.message);
  int same = k == n;
  for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
  if (!same) {
    char got[512] = "";
    for (size_t i = 0; i < k && strlen(got) < 480; i++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
    cr_expect(same, "'%s' encoded to [%s]", text, got);
  }
  free(ids);
}

static void expect_roundtrip(qf_tokenizer *t, const char *text) {
  int32_t *ids = NULL;
  size_t k = 0;
  char *back = NULL;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_tokenizer_encode(t, text, strlen(text), 0, &ids, &k, &err),
               QF_OK, "%s", err.message);
  cr_assert_eq(qf_tokenizer_decode(t, ids, k, &back, &err), QF_OK, "%s",
               err.message);
  cr_expect_str_eq(back, text);
  free(ids);
  free(back);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), \
  sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

Test(tokenizer, byte_level_llama3) {
  qf_tokenizer *t = load(byte_level_json(k_re_llama3, 0, 1));
  cr_expect_eq(qf_tokenizer_get_kind(t), QF_TOKENIZER_BYTE_LEVEL);
  cr_expect_eq(qf_tokenizer_size(t), 273);
  expect_ids(t, "hello world", 0, IDS(259, 264));
  expect_ids(t, "hello!!\n\nworld", 0, IDS(259, 270, 10, 119, 261, 108, 100));
  expect_ids(t, "abc1234", 0, IDS(97, 98, 99, 266, 52));
  expect_ids(t, "it's  hello", 0, IDS(105, 116, 267, 32, 32, 259));
  expect_ids(t, "IT'S", 0, IDS(73, 84, 39, 83));
  expect_ids(t, "hi<|begin_of_text|>hello", 1, IDS(272, 104, 105, 272, 259));
  expect_ids(t, "", 1, IDS(272));
  expect_roundtrip(t, "hello!!\n\nworld it's 1234 h\xc3\xa9llo na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac  \t x");
  qf_tokenizer_free(t);
}

Test(tokenizer, byte_level_qwen2_and_ignore_merges) {
  qf_tokenizer *t = load(byte_level_json(k_re_qwen2, 0, 1));
  expect_ids(t, "abc1234", 0, IDS(97, 98, 99, 49, 50, 51, 52));
  qf_tokenizer_free(t);
  t = load(byte_level_json(k_re_llama3, 1, 1));
  expect_ids(t, "abc1234", 0, IDS(271, 266, 52));
  qf_tokenizer_free(t);
}

Test(tokenizer, byte_level_gpt2) {
  qf_tokenizer *t = load(byte_level_json(NULL, 0, 0));
  expect_ids(t, "hello!!\n\nworld", 0, IDS(259, 269, 10, 10, 119, 261, 108, 100));
  expect_ids(t, "hello world", 0, IDS(259, 264));
  expect_ids(t, "x 1234", 0, IDS(120, 32, 266, 52));
  expect_roundtrip(t, "Hello,  world!\n\n  12345 caf\xc3\xa9");
  qf_tokenizer_free(t);
}

Test(tokenizer, unknown_regex_is_unsupported) {
  json_t *j = byte_level_json("\\w+|\\s+", 0, 1);
  char *text = json_dumps(j, 0);
  json_decref(j);
  qf_tokenizer *t = NULL;
  qf_error err = {.struct_size = sizeof err};
  cr_expect_eq(qf_tokenizer_from_json(text, "x.json", &t, &err),
               QF_ERR_UNSUPPORTED);
  cr_expect(strstr(err.message, "regex"), "%s", err.message);
  free(text);
  cr_expect_eq(qf_tokenizer_from_json("{\"model\": {\"type\": \"Unigram\"}}",
                                      NULL, &t, &err),
               QF_ERR_UNSUPPORTED);
}

/* Llama 2 style: ids 0..2 specials, 3..258 <0xNN>, then characters. */
static json_t *sp_json(int metaspace) {
  json_t *vocab = json_object(), *merges = json_array();
  const char *sp3[3] = {"<unk>", "<s>", "</s>"};
  for (int i = 0; i < 3; i++) json_object_set_new(vocab, sp3[i], json_integer(i));
  for (int b = 0; b < 256; b++) {
    char tok[8];
    snprintf(tok, sizeof tok, "<0x%02X>", b);
    json_object_set_new(vocab, tok, json_integer(3 + b));
  }
  const char *chars[] = {SP, "h", "e", "l", "o", "w", "r", "d"};
  int id = 259;
  for (int i = 0; i < 8; i++) json_object_set_new(vocab, chars[i], json_integer(id++));
  static const char *m[][2] = {
      {SP, "h"},          {SP "h", "e"},        {"l", "l"},
      {SP "he", "ll"},    {SP "hell", "o"},     {SP, "w"},
      {"o", "r"},         {SP "w", "or"},       {"l", "d"},
      {SP "wor", "ld"},   {SP, SP}};
  for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
    char ab[64], line[64];
    snprintf(ab, sizeof ab, "%s%s", m[i][0], m[i][1]);
    snprintf(line, sizeof line, "%s %s", m[i][0], m[i][1]);
    json_object_set_new(vocab, ab, json_integer(id++)); /* 267 .. 277 */
    json_array_append_new(merges, json_string(line));
  }
  json_t *norm = metaspace ? json_null()
                           : json_pack("{s:s,s:[{s:s,s:s},{s:s,s:{s:s},s:s}]}",
                                       "type", "Sequence", "normalizers", "type",
                                       "Prepend", "prepend", SP, "type",
                                       "Replace", "pattern", "String", " ",
                                       "content", SP);
  json_t *pre = metaspace ? json_pack("{s:s,s:s,s:s,s:b}", "type", "Metaspace",
                                      "replacement", SP, "prepend_scheme",
                                      "first", "split", 0)
                          : json_null();
  json_t *post = json_pack(
      "{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}}],s:{s:{s:s,s:[i],s:[s]}}}", "type",
      "TemplateProcessing", "single", "SpecialToken", "id", "<s>", "type_id", 0,
      "Sequence", "id", "A", "type_id", 0, "special_tokens", "<s>", "id",
      "<s>", "ids", 1, "tokens", "<s>");
  json_t *added = json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b},{s:i,s:s,s:b}]",
                            "id", 0, "content", "<unk>", "special", 1, "id", 1,
                            "content", "<s>", "special", 1, "id", 2, "content",
                            "</s>", "special", 1);
  return json_pack("{s:o,s:o,s:o,s:o,s:n,s:{s:s,s:s,s:b,s:b,s:o,s:o}}",
                   "added_tokens", added, "normalizer", norm, "pre_tokenizer",
                   pre, "post_processor", post, "decoder", "model", "type",
                   "BPE", "unk_token", "<unk>", "byte_fallback", 1, "fuse_unk",
                   1, "vocab", vocab, "merges", merges);
}

Test(tokenizer, sentencepiece_llama2) {
  qf_tokenizer *t = load(sp_json(0));
  cr_expect_eq(qf_tokenizer_get_kind(t), QF_TOKENIZER_SENTENCEPIECE);
  /* ▁hello = 271, ▁world = 276, ▁ = 259, ▁h = 267, ll = 269, o = 263 */
  expect_ids(t, "hello world", 0, IDS(271, 276));
  expect_ids(t, "hello world", 1, IDS(1, 271, 276));
  expect_ids(t, " hello", 0, IDS(259, 271));
  /* é has no token: its UTF-8 bytes C3 A9 fall back to <0xC3> <0xA9> */
  expect_ids(t, "h\xc3\xa9llo", 0, IDS(267, 3 + 0xc3, 3 + 0xa9, 269, 263));
  expect_ids(t, "hello</s>", 0, IDS(271, 2));
  expect_roundtrip(t, "hello world h\xc3\xa9llo  wold");
  int32_t ids[] = {1, 271, 276};
  char *text = NULL;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_tokenizer_decode(t, ids, 3, &text, &err), QF_OK);
  cr_expect_str_eq(text, "<s> hello world");
  free(text);
  cr_expect_eq(qf_tokenizer_id(t, SP "hello"), 271);
  cr_expect_str_eq(qf_tokenizer_token(t, 276), SP "world");
  qf_tokenizer_free(t);
}

Test(tokenizer, sentencepiece_metaspace_first) {
  qf_tokenizer *t = load(sp_json(1));
  expect_ids(t, "hello world", 0, IDS(271, 276));
  /* a leading space already gives the ▁: no second one is prepended */
  expect_ids(t, " hello", 0, IDS(271));
  /* only the first segment gets the ▁ (prepend_scheme "first") */
  expect_ids(t, "<s>hello", 0, IDS(1, 260, 261, 269, 263));
  qf_tokenizer_free(t);
}

static void demo_tokenizer(qf_tokenizer_kind kind, const int32_t *want,
                           size_t n_want) {
  char *json = qf_demo_tokenizer_json(kind, 2048);
  cr_assert(json);
  qf_tokenizer *t = NULL;
  qf_error err = {.struct_size = sizeof err};
  cr_assert_eq(qf_tokenizer_from_json(json, "demo", &t, &err), QF_OK, "%s",
               err.message);
  free(json);
  cr_expect_eq(qf_tokenizer_size(t), 2048);
  cr_expect_eq(qf_tokenizer_get_kind(t), kind);
  /* ids checked against Hugging Face tokenizers 0.23 on the same file */
  expect_ids(t, "The model's weights, in 2024: quantized!", 1, want, n_want);
  const char *text = "The model of the world is important for people. In 2024, "
                     "the quantization error was small!";
  int32_t *ids = NULL;
  size_t n = 0;
  cr_assert_eq(qf_tokenizer_encode(t, text, strlen(text), 1, &ids, &n, &err),
               QF_OK, "%s", err.message);
  cr_expect_lt(n, strlen(text) / 2, "%zu tokens for %zu bytes", n, strlen(text));
  cr_expect_eq(ids[0], kind == QF_TOKENIZER_BYTE_LEVEL
                           ? qf_tokenizer_id(t, "<|begin_of_text|>")
                           : 1);
  char *back = NULL;
  cr_assert_eq(qf_tokenizer_decode(t, ids + 1, n - 1, &back, &err), QF_OK);
  cr_expect_str_eq(back, text);
  free(back);
  free(ids);
  qf_tokenizer_free(t);
}

Test(tokenizer, demo_byte_level) {
  demo_tokenizer(QF_TOKENIZER_BYTE_LEVEL,
                 IDS(1044, 1005, 640, 39, 115, 647, 115, 44, 272, 32, 50, 48,
                     50, 52, 58, 654, 458, 122, 1023, 33));
}

Test(tokenizer, demo_sentencepiece) {
  demo_tokenizer(QF_TOKENIZER_SENTENCEPIECE,
                 IDS(1, 1081, 717, 326, 278, 724, 278, 323, 349, 259, 314, 312,
                     314, 316, 329, 731, 535, 285, 1100, 324));
}
