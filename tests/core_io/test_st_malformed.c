/*
 * Malformed safetensors files and HF folders: each case is built byte by
 * byte and must be rejected with QF_ERR_FORMAT (or NOT_FOUND / IO where the
 * file itself is the problem) and a message that names the file and the
 * tensor or field with the expectation — asserted by exact substrings.
 * A mutation sweep (every truncation, random byte flips of a valid header)
 * checks that no input crashes the reader.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io_test_util.h"
#include "qforge/qforge.h"

static char *g_dir;

static void setup(void) { g_dir = iot_mkdtemp(); }
static void teardown(void) {
  iot_rmtree(g_dir);
  free(g_dir);
}

/* Open `path` and require failure `code` with both the path and `want` in
 * the message. */
static void expect_fail_path(const char *path, qf_status code,
                             const char *want) {
  qf_st_file *f = (qf_st_file *)0x1;
  qf_error e;
  qf_error_clear(&e);
  qf_status st = qf_st_open(path, &f, &e);
  cr_assert_eq(st, code, "status %s, message: %s", qf_status_name(st),
               e.message);
  cr_assert_null(f, "out is NULL on failure");
  cr_assert_not_null(strstr(e.message, path), "file not named: %s", e.message);
  cr_assert_not_null(strstr(e.message, want), "\nwant: %s\ngot:  %s", want,
                     e.message);
  cr_assert_str_eq(e.op, "safetensors");
}

/* Write header (+ data_len bytes) to a fresh file and expect FORMAT. */
static void expect_bad(const char *header, size_t data_len, const char *want) {
  char *p = iot_join(g_dir, "bad.safetensors");
  cr_assert_eq(iot_write_st_auto(p, header, data_len), 0);
  expect_fail_path(p, QF_ERR_FORMAT, want);
  free(p);
}

#define T(name) Test(st_malformed, name, .init = setup, .fini = teardown)

T(truncated_length) {
  char *p = iot_join(g_dir, "short.safetensors");
  cr_assert_eq(iot_write_bytes(p, "\x10\0\0\0\0", 5), 0);
  expect_fail_path(p, QF_ERR_FORMAT,
                   "file is 5 bytes, expected at least 8 (the header length)");
  cr_assert_eq(iot_write_bytes(p, "", 0), 0);
  expect_fail_path(p, QF_ERR_FORMAT, "file is 0 bytes");
  free(p);
}

T(header_length_past_eof) {
  char *p = iot_join(g_dir, "past.safetensors");
  cr_assert_eq(iot_write_st(p, 1000, "{}      ", 0), 0);
  expect_fail_path(p, QF_ERR_FORMAT,
                   "header length 1000 runs past the end of the file "
                   "(expected at most 8)");
  free(p);
}

T(header_length_too_large) {
  char *p = iot_join(g_dir, "huge.safetensors");
  cr_assert_eq(iot_write_st(p, 200000000ull, "{}", 0), 0);
  expect_fail_path(p, QF_ERR_FORMAT,
                   "header length 200000000 is too large (expected at most "
                   "100000000 bytes)");
  cr_assert_eq(iot_write_st(p, UINT64_MAX, "{}", 0), 0);
  expect_fail_path(p, QF_ERR_FORMAT, "is too large");
  free(p);
}

T(not_json) {
  expect_bad("{not json", 0, "header is not valid JSON: ");
  expect_bad("", 0, "header is not valid JSON: ");
  expect_bad("{\"a\": \"\xff\"}", 0, "header is not valid JSON: ");
  expect_bad("{} trailing", 0, "header is not valid JSON: ");
}

T(not_object) {
  expect_bad("[1, 2]", 0, "header: expected a JSON object, got a list");
}

T(tensor_not_object) {
  expect_bad("{\"w\": 3}", 0,
             "tensor 'w': expected an object with dtype, shape and "
             "data_offsets, got an integer");
}

T(bad_dtype) {
  expect_bad("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             4, "tensor 'w': dtype 'F17' is unknown (expected one of F64,");
  expect_bad("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             4, "tensor 'w': dtype 'f32' is unknown");
  expect_bad("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "tensor 'w': dtype: expected a string, got an integer");
  expect_bad("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "tensor 'w': dtype: missing");
}

T(shape_negative_or_not_int) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,4]}}",
             4, "tensor 'w': shape[1] is -2, expected a non-negative integer");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}",
             4,
             "tensor 'w': shape[0]: expected a non-negative integer, got a "
             "real number");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}",
             4,
             "tensor 'w': shape[0]: expected a non-negative integer, got a "
             "string");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}",
             4,
             "tensor 'w': shape: expected a list of non-negative integers, "
             "got a string");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
             "tensor 'w': shape: missing");
}

T(shape_too_many_dims_or_overflow) {
  expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
             "\"data_offsets\":[0,1]}}",
             1, "tensor 'w': shape has 9 dimensions, expected at most 8");
  expect_bad("{\"w\":{\"dtype\":\"F64\",\"shape\":[1099511627776,"
             "1099511627776],\"data_offsets\":[0,8]}}",
             8, "tensor 'w': shape: the byte size overflows 64 bits");
}

T(offsets_out_of_range) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
             8,
             "tensor 'w': data_offsets [0, 16] out of range: expected end <= "
             "8 (the data section's size)");
}

T(offsets_malformed) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
             4,
             "tensor 'w': data_offsets: expected [begin, end] with two "
             "non-negative integers");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}",
             4, "tensor 'w': data_offsets: expected [begin, end]");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0-4\"}}",
             4, "tensor 'w': data_offsets: expected [begin, end]");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}",
             4, "tensor 'w': data_offsets [4, 0]: begin is after end");
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
             "tensor 'w': data_offsets: missing");
}

T(size_mismatch) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}",
             12,
             "tensor 'w': data_offsets [0, 12] span 12 bytes, expected 8 (2 "
             "elements of F32)");
}

T(overlapping) {
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
             12,
             "tensor 'b': data_offsets [4, 12] overlap tensor 'a' (expected "
             "begin 8)");
}

T(gap) {
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[12,20]}}",
             20,
             "tensor 'b': data_offsets [12, 20] leave a gap after tensor 'a' "
             "(expected begin 8)");
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
             12,
             "tensor 'a': data_offsets [4, 12] leave a gap at the start of "
             "the data section (expected begin 0)");
}

T(trailing_bytes) {
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
             12,
             "data section is 12 bytes but the tensors end at 8 (expected no "
             "trailing bytes)");
}

T(metadata_not_strings) {
  expect_bad("{\"__metadata__\":{\"format\":1}}", 0,
             "__metadata__: key 'format': expected a string value, got an "
             "integer");
  expect_bad("{\"__metadata__\":[\"pt\"]}", 0,
             "__metadata__: expected an object of string values, got a list");
}

T(duplicate_key) {
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
             "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
             0, "header is not valid JSON: duplicate object key");
  expect_bad("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
             "header is not valid JSON: duplicate object key");
}

T(not_a_file) {
  expect_fail_path(g_dir, QF_ERR_IO, "not a regular file");
  char *p = iot_join(g_dir, "missing.safetensors");
  expect_fail_path(p, QF_ERR_NOT_FOUND, "cannot open: No such file");
  free(p);
}

T(valid_edge_cases_accepted) {
  /* empty object, null metadata, unknown extra keys, zero-size tensors */
  char *p = iot_join(g_dir, "ok.safetensors");
  const char *headers[] = {
      "{}",
      "{\"__metadata__\":null}",
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"x\":1},"
      "\"c\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[2,2]}}",
  };
  size_t lens[] = {0, 0, 2};
  for (size_t i = 0; i < 3; i++) {
    cr_assert_eq(iot_write_st_auto(p, headers[i], lens[i]), 0);
    qf_st_file *f = NULL;
    qf_error e;
    cr_assert_eq(qf_st_open(p, &f, &e), QF_OK, "%s", e.message);
    if (i == 2) {
      cr_assert_eq(qf_st_count(f), 3);
      cr_assert_str_eq(qf_st_at(f, 0)->name, "a");
      cr_assert_str_eq(qf_st_at(f, 1)->name, "b");
      cr_assert_str_eq(qf_st_at(f, 2)->name, "c");
      cr_assert_eq(qf_st_at(f, 2)->nbytes, 0);
    }
    qf_st_close(f);
  }
  free(p);
}

/* Every truncation of a valid file fails cleanly; random flips never crash. */
T(mutations_never_crash) {
  char *good = iot_join(g_dir, "good.safetensors");
  qf_st_writer *w = NULL;
  qf_error e;
  cr_assert_eq(qf_st_writer_new_file(good, &w, &e), QF_OK);
  int64_t s1[2] = {2, 3}, s2[1] = {5};
  float v[6] = {1, 2, 3, 4, 5, 6};
  cr_assert_eq(qf_st_writer_add(w, "w", QF_DTYPE_F32, 2, s1, v, &e), QF_OK);
  cr_assert_eq(qf_st_writer_add(w, "b", QF_DTYPE_U8, 1, s2, v, &e), QF_OK);
  cr_assert_eq(qf_st_writer_finish(w, &e), QF_OK);
  size_t n = 0;
  char *raw = iot_read_all(good, &n);
  char *p = iot_join(g_dir, "mut.safetensors");
  for (size_t len = 0; len < n; len++) {
    cr_assert_eq(iot_write_bytes(p, raw, len), 0);
    qf_st_file *f = NULL;
    if (qf_st_open(p, &f, &e) == QF_OK)
      cr_assert_fail("truncation to %zu bytes was accepted", len);
    if (!e.message[0] || !strstr(e.message, p))
      cr_assert_fail("truncation %zu: bad message '%s'", len, e.message);
  }
  char *m = malloc(n);
  uint32_t x = 12345;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(m, raw, n);
    int flips = 1 + iter % 3;
    for (int k = 0; k < flips; k++) {
      x = x * 1664525u + 1013904223u;
      size_t pos = (x >> 8) % n;
      x = x * 1664525u + 1013904223u;
      m[pos] = (char)(x >> 24);
    }
    cr_assert_eq(iot_write_bytes(p, m, n), 0);
    qf_st_file *f = NULL;
    qf_error_clear(&e);
    if (qf_st_open(p, &f, &e) == QF_OK) {
      /* accepted: everything it exposes must be inside the file */
      for (size_t i = 0; i < qf_st_count(f); i++) {
        const qf_st_tensor *t = qf_st_at(f, i);
        volatile unsigned char sink = 0;
        for (uint64_t b = 0; b < t->nbytes; b++)
          sink ^= ((const unsigned char *)t->data)[b];
        (void)sink;
      }
      qf_st_close(f);
    } else if (!e.message[0]) {
      cr_assert_fail("mutation %d: empty message", iter);
    }
  }
  free(m);
  free(raw);
  free(p);
  free(good);
}

/* ---- HF folders ---- */

static void put(const char *name, const char *text) {
  char *p = iot_join(g_dir, name);
  cr_assert_eq(iot_write_bytes(p, text, strlen(text)), 0);
  free(p);
}

static void put_st(const char *name, const char *header, size_t data_len) {
  char *p = iot_join(g_dir, name);
  cr_assert_eq(iot_write_st_auto(p, header, data_len), 0);
  free(p);
}

static void expect_ckpt_fail(qf_status code, const char *file,
                             const char *want) {
  qf_checkpoint *c = (qf_checkpoint *)0x1;
  qf_error e;
  qf_error_clear(&e);
  qf_status st = qf_checkpoint_open(g_dir, &c, &e);
  cr_assert_eq(st, code, "status %s: %s", qf_status_name(st), e.message);
  cr_assert_null(c);
  char *p = iot_join(g_dir, file);
  cr_assert_not_null(strstr(e.message, p), "file not named: %s", e.message);
  free(p);
  cr_assert_not_null(strstr(e.message, want), "\nwant: %s\ngot:  %s", want,
                     e.message);
}

#define SHARD_A "model-00001-of-00002.safetensors"
#define SHARD_B "model-00002-of-00002.safetensors"
#define HDR_A "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}"
#define HDR_B "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}"
#define INDEX "model.safetensors.index.json"

static void good_shards(void) {
  put_st(SHARD_A, HDR_A, 4);
  put_st(SHARD_B, HDR_B, 2);
}

T(index_ok) {
  good_shards();
  put(INDEX, "{\"metadata\":{\"total_size\":6},\"weight_map\":{\"b\":\"" SHARD_B
             "\",\"a\":\"" SHARD_A "\"}}");
  qf_checkpoint *c = NULL;
  qf_error e;
  cr_assert_eq(qf_checkpoint_open(g_dir, &c, &e), QF_OK, "%s", e.message);
  cr_assert_eq(qf_checkpoint_count(c), 2);
  cr_assert_str_eq(qf_checkpoint_at(c, 0)->name, "a"); /* shard order */
  cr_assert_str_eq(qf_checkpoint_at(c, 1)->name, "b");
  qf_checkpoint_close(c);
}

T(index_names_missing_shard) {
  put_st(SHARD_A, HDR_A, 4);
  put(INDEX, "{\"weight_map\":{\"a\":\"" SHARD_A "\",\"b\":\"" SHARD_B "\"}}");
  expect_ckpt_fail(QF_ERR_NOT_FOUND, INDEX,
                   ": weight_map: tensor 'b': shard '" SHARD_B
                   "' does not exist");
}

T(index_tensor_not_in_shard) {
  good_shards();
  put(INDEX, "{\"weight_map\":{\"a\":\"" SHARD_A "\",\"b\":\"" SHARD_B
             "\",\"zz\":\"" SHARD_B "\"}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": weight_map: tensor 'zz' is not in shard '" SHARD_B "'");
}

T(shard_tensor_missing_from_index) {
  /* shard A holds a tensor that the index does not list */
  put(INDEX, "{\"weight_map\":{\"a\":\"" SHARD_A "\"}}");
  put_st(SHARD_A,
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"extra\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]}}",
         5);
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": weight_map: tensor 'extra' of shard '" SHARD_A
                   "' is missing");
}

T(tensor_in_two_shards) {
  put_st(SHARD_A, HDR_A, 4);
  put_st(SHARD_B,
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}",
         6);
  put(INDEX, "{\"weight_map\":{\"a\":\"" SHARD_A "\",\"b\":\"" SHARD_B "\"}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": weight_map: tensor 'a' is also in shard '" SHARD_B
                   "' but mapped to '" SHARD_A "'");
}

T(index_malformed) {
  good_shards();
  put(INDEX, "{\"weight_map\": [1]}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": weight_map: expected an object mapping tensor names to "
                   "shard files, got a list");
  put(INDEX, "{\"metadata\": {}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX, "weight_map: expected an object");
  put(INDEX, "{\"weight_map\": {\"a\": 7}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": weight_map: tensor 'a': expected a shard file name (a "
                   "string), got an integer");
  put(INDEX, "{\"weight_map\": {\"a\": \"../" SHARD_A "\"}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": weight_map: tensor 'a': shard '../" SHARD_A
                   "' is not a file name inside the folder");
  put(INDEX, "{\"weight_map\": {\"a\": \"/etc/" SHARD_A "\"}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX, "is not a file name inside the folder");
  put(INDEX, "{\"weight_map\": {");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX, ": not valid JSON: ");
  put(INDEX, "[]");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": expected a JSON object at the top, got a list");
  put(INDEX, "{\"weight_map\":{\"a\":\"" SHARD_A "\",\"a\":\"" SHARD_A "\"}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX, "duplicate object key");
  put(INDEX, "{\"metadata\": 5, \"weight_map\": {}}");
  expect_ckpt_fail(QF_ERR_FORMAT, INDEX,
                   ": metadata: expected an object, got an integer");
}

T(bad_shard_content_names_shard) {
  put_st(SHARD_A, HDR_A, 3); /* 3 data bytes for a 4-byte tensor */
  put(INDEX, "{\"weight_map\":{\"a\":\"" SHARD_A "\"}}");
  expect_ckpt_fail(QF_ERR_FORMAT, SHARD_A,
                   ": tensor 'a': data_offsets [0, 4] out of range");
}

T(folder_without_checkpoint_or_bad_config) {
  qf_checkpoint *c = NULL;
  qf_error e;
  cr_assert_eq(qf_checkpoint_open(g_dir, &c, &e), QF_ERR_NOT_FOUND);
  cr_assert_not_null(strstr(e.message,
                            ": no checkpoint in the folder (expected "
                            "model.safetensors or "
                            "model.safetensors.index.json)"),
                     "%s", e.message);
  put_st("model.safetensors", HDR_A, 4);
  put("config.json", "{\"model_type\": ");
  expect_ckpt_fail(QF_ERR_FORMAT, "config.json", ": not valid JSON: ");
  put("config.json", "\"llama\"");
  expect_ckpt_fail(QF_ERR_FORMAT, "config.json", "not valid JSON");
  put("config.json", "[\"llama\"]");
  expect_ckpt_fail(QF_ERR_FORMAT, "config.json",
                   ": expected a JSON object at the top, got a list");
  char *missing = iot_join(g_dir, "nothing-here");
  cr_assert_eq(qf_checkpoint_open(missing, &c, &e), QF_ERR_NOT_FOUND);
  cr_assert_not_null(strstr(e.message, "nothing-here: cannot open checkpoint"),
                     "%s", e.message);
  free(missing);
}
