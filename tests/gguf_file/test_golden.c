/*
 * test_golden.c — the GGUF reader against files written by the reference
 * writers (gguf-py 0.15.0 and ggml's C writer), from the shared golden set.
 *
 * Purpose: every key/value of both files is read with its exact type, value
 * and record offset; every tensor's type, shape and offset matches the
 * manifest (*.tensors.tsv) and the layout gguf-py reports; every tensor's
 * values equal the reference dequantization bit for bit (F32/F16/BF16 here,
 * quantized types through qf_gguf_quants when that library is built).
 * A missing golden file fails the test.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_file.h"
#include "gguf_test_util.h"
#include "qforge/half.h"
#ifdef QF_HAVE_GGUF_QUANTS
#include "quants/gguf_quants.h"
#endif

static qf_gguf_file *open_golden(const char *name) {
  qf_gguf_file *f = NULL;
  qf_error err;
  memset(&err, 0, sizeof err);
  qf_status st = qf_gguf_open(golden_path(name), &f, &err);
  cr_assert_eq(st, QF_OK, "open %s: %s", name, err.message);
  cr_assert_not_null(f);
  return f;
}

static const qf_gguf_kv *kv_checked(qf_gguf_file *f, size_t idx, const char *key, int type,
                                    int elem, uint64_t offset) {
  const qf_gguf_kv *kv = qf_gguf_kv_at(f, idx);
  cr_assert_not_null(kv, "kv #%zu missing", idx);
  cr_assert_str_eq(kv->key, key, "kv #%zu", idx);
  cr_assert_eq(kv->type, type, "%s type %d", key, kv->type);
  cr_assert_eq(kv->elem_type, elem, "%s elem type %d", key, kv->elem_type);
  cr_assert_eq(kv->offset, offset, "%s offset %llu", key, (unsigned long long)kv->offset);
  cr_assert_eq(qf_gguf_find_kv(f, key), kv);
  return kv;
}

static void str_is(qf_gguf_string s, const char *want) {
  cr_assert_eq(s.len, strlen(want), "length %llu vs '%s'", (unsigned long long)s.len, want);
  cr_assert(memcmp(s.data, want, s.len) == 0, "string differs from '%s'", want);
}

Test(golden, tiny_llama_kvs) {
  qf_gguf_file *f = open_golden("tiny-llama-gguf-py.gguf");
  qf_error err;
  cr_assert_eq(qf_gguf_version(f), 3);
  cr_assert_eq(qf_gguf_kv_count(f), 30);
  cr_assert_eq(qf_gguf_alignment(f), 32);
  cr_assert_eq(qf_gguf_data_alignment(f), 32);
  cr_assert_null(qf_gguf_layout_note(f));
  cr_assert_eq(qf_gguf_data_offset(f), 3552);
  cr_assert(qf_gguf_is_strict_layout(f));

  const qf_gguf_kv *kv;
  qf_gguf_string s;
  uint32_t u32;
  float f32;
  kv = kv_checked(f, 0, "general.architecture", QF_GGUF_VT_STRING, QF_GGUF_VT_STRING, 24);
  str_is(qf_gguf_kv_elem(kv, 0).str, "llama");
  cr_assert_eq(qf_gguf_get_str(f, "general.architecture", &s, &err), QF_OK);
  str_is(s, "llama");
  kv = kv_checked(f, 1, "general.name", QF_GGUF_VT_STRING, QF_GGUF_VT_STRING, 69);
  str_is(kv->strs[0], "tiny-llama-test");
  static const struct {
    const char *key;
    uint32_t v;
    uint64_t off;
    size_t idx;
  } u32s[] = {
      {"llama.context_length", 128, 116, 2},     {"llama.embedding_length", 64, 152, 3},
      {"llama.block_count", 2, 190, 4},          {"llama.feed_forward_length", 128, 223, 5},
      {"llama.attention.head_count", 4, 264, 6}, {"llama.attention.head_count_kv", 2, 306, 7},
      {"general.file_type", 7, 441, 10}};
  for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
    kv_checked(f, u32s[i].idx, u32s[i].key, QF_GGUF_VT_UINT32, QF_GGUF_VT_UINT32, u32s[i].off);
    cr_assert_eq(qf_gguf_get_u32(f, u32s[i].key, &u32, &err), QF_OK, "%s", err.message);
    cr_assert_eq(u32, u32s[i].v, "%s = %u", u32s[i].key, u32);
  }
  kv_checked(f, 8, "llama.attention.layer_norm_rms_epsilon", QF_GGUF_VT_FLOAT32, QF_GGUF_VT_FLOAT32,
             351);
  cr_assert_eq(qf_gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &f32, &err), QF_OK);
  cr_assert_eq(f32, 1e-5f);
  kv_checked(f, 9, "llama.rope.freq_base", QF_GGUF_VT_FLOAT32, QF_GGUF_VT_FLOAT32, 405);
  cr_assert_eq(qf_gguf_get_f32(f, "llama.rope.freq_base", &f32, &err), QF_OK);
  cr_assert_eq(f32, 10000.0f);

  /* one key of every value type */
  uint8_t u8;
  int8_t i8;
  uint16_t u16;
  int16_t i16;
  int32_t i32;
  uint64_t u64;
  int64_t i64;
  double f64;
  bool b;
  kv_checked(f, 11, "test.u8", QF_GGUF_VT_UINT8, QF_GGUF_VT_UINT8, 474);
  cr_assert_eq(qf_gguf_get_u8(f, "test.u8", &u8, &err), QF_OK);
  cr_assert_eq(u8, 200);
  kv_checked(f, 12, "test.i8", QF_GGUF_VT_INT8, QF_GGUF_VT_INT8, 494);
  cr_assert_eq(qf_gguf_get_i8(f, "test.i8", &i8, &err), QF_OK);
  cr_assert_eq(i8, -100);
  kv_checked(f, 13, "test.u16", QF_GGUF_VT_UINT16, QF_GGUF_VT_UINT16, 514);
  cr_assert_eq(qf_gguf_get_u16(f, "test.u16", &u16, &err), QF_OK);
  cr_assert_eq(u16, 60000);
  kv_checked(f, 14, "test.i16", QF_GGUF_VT_INT16, QF_GGUF_VT_INT16, 536);
  cr_assert_eq(qf_gguf_get_i16(f, "test.i16", &i16, &err), QF_OK);
  cr_assert_eq(i16, -30000);
  kv_checked(f, 15, "test.u32", QF_GGUF_VT_UINT32, QF_GGUF_VT_UINT32, 558);
  cr_assert_eq(qf_gguf_get_u32(f, "test.u32", &u32, &err), QF_OK);
  cr_assert_eq(u32, 4000000000u);
  kv_checked(f, 16, "test.i32", QF_GGUF_VT_INT32, QF_GGUF_VT_INT32, 582);
  cr_assert_eq(qf_gguf_get_i32(f, "test.i32", &i32, &err), QF_OK);
  cr_assert_eq(i32, -2000000000);
  kv_checked(f, 17, "test.f32", QF_GGUF_VT_FLOAT32, QF_GGUF_VT_FLOAT32, 606);
  cr_assert_eq(qf_gguf_get_f32(f, "test.f32", &f32, &err), QF_OK);
  cr_assert_eq(f32, 3.25f);
  kv_checked(f, 18, "test.u64", QF_GGUF_VT_UINT64, QF_GGUF_VT_UINT64, 630);
  cr_assert_eq(qf_gguf_get_u64(f, "test.u64", &u64, &err), QF_OK);
  cr_assert_eq(u64, 9223372036854775813ull);
  kv_checked(f, 19, "test.i64", QF_GGUF_VT_INT64, QF_GGUF_VT_INT64, 658);
  cr_assert_eq(qf_gguf_get_i64(f, "test.i64", &i64, &err), QF_OK);
  cr_assert_eq(i64, -4611686018427387904ll);
  kv_checked(f, 20, "test.f64", QF_GGUF_VT_FLOAT64, QF_GGUF_VT_FLOAT64, 686);
  cr_assert_eq(qf_gguf_get_f64(f, "test.f64", &f64, &err), QF_OK);
  cr_assert_eq(f64, -1e300);
  kv_checked(f, 21, "test.bool", QF_GGUF_VT_BOOL, QF_GGUF_VT_BOOL, 714);
  cr_assert_eq(qf_gguf_get_bool(f, "test.bool", &b, &err), QF_OK);
  cr_assert(b);
  kv_checked(f, 22, "test.str", QF_GGUF_VT_STRING, QF_GGUF_VT_STRING, 736);
  cr_assert_eq(qf_gguf_get_str(f, "test.str", &s, &err), QF_OK);
  str_is(s, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");

  kv = kv_checked(f, 23, "test.arr_i32", QF_GGUF_VT_ARRAY, QF_GGUF_VT_INT32, 781);
  cr_assert_eq(kv->n, 3);
  int32_t ai[3];
  cr_assert_eq(qf_gguf_kv_copy(kv, ai, sizeof ai), 0);
  cr_assert(ai[0] == 1 && ai[1] == -2 && ai[2] == 3);
  cr_assert_eq(qf_gguf_kv_elem(kv, 1).i32, -2);
  kv = kv_checked(f, 24, "test.arr_str", QF_GGUF_VT_ARRAY, QF_GGUF_VT_STRING, 829);
  cr_assert_eq(kv->n, 3);
  str_is(qf_gguf_kv_elem(kv, 0).str, "a");
  str_is(qf_gguf_kv_elem(kv, 1).str, "bb");
  str_is(qf_gguf_kv_elem(kv, 2).str, "");
  kv = kv_checked(f, 25, "test.arr_f32", QF_GGUF_VT_ARRAY, QF_GGUF_VT_FLOAT32, 892);
  cr_assert_eq(kv->n, 2);
  cr_assert_eq(qf_gguf_kv_elem(kv, 0).f32, 0.5f);
  cr_assert_eq(qf_gguf_kv_elem(kv, 1).f32, 1.5f);
  const qf_gguf_kv *arr = NULL;
  cr_assert_eq(qf_gguf_get_arr(f, "test.arr_f32", QF_GGUF_VT_FLOAT32, &arr, &err), QF_OK);
  cr_assert_eq(arr, kv);

  kv = kv_checked(f, 26, "tokenizer.ggml.model", QF_GGUF_VT_STRING, QF_GGUF_VT_STRING, 936);
  str_is(kv->strs[0], "llama");
  kv = kv_checked(f, 27, "tokenizer.ggml.tokens", QF_GGUF_VT_ARRAY, QF_GGUF_VT_STRING, 981);
  cr_assert_eq(kv->n, 64);
  str_is(kv->strs[0], "<unk>");
  str_is(kv->strs[1], "<s>");
  str_is(kv->strs[2], "</s>");
  for (int i = 3; i < 64; i++) {
    char want[16];
    snprintf(want, sizeof want, "t%d", i - 3);
    str_is(kv->strs[i], want);
  }
  kv = kv_checked(f, 28, "tokenizer.ggml.scores", QF_GGUF_VT_ARRAY, QF_GGUF_VT_FLOAT32, 1723);
  cr_assert_eq(kv->n, 64);
  for (int i = 0; i < 64; i++) cr_assert_eq(qf_gguf_kv_elem(kv, (uint64_t)i).f32, 0.0f);
  kv = kv_checked(f, 29, "tokenizer.ggml.token_type", QF_GGUF_VT_ARRAY, QF_GGUF_VT_INT32, 2024);
  cr_assert_eq(kv->n, 64);
  int32_t tt[64];
  cr_assert_eq(qf_gguf_kv_copy(kv, tt, sizeof tt), 0);
  cr_assert(tt[0] == 2 && tt[1] == 3 && tt[2] == 3);
  for (int i = 3; i < 64; i++) cr_assert_eq(tt[i], 1);

  /* typed getters insist on the exact type */
  memset(&err, 0, sizeof err);
  cr_assert_eq(qf_gguf_get_u64(f, "llama.block_count", &u64, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "key 'llama.block_count' has type u32, expected u64"), "%s",
            err.message);
  cr_assert(strstr(err.message, "offset 190"), "%s", err.message);
  cr_assert_eq(qf_gguf_get_arr(f, "test.arr_i32", QF_GGUF_VT_UINT32, &arr, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "has type arr[i32], expected arr[u32]"), "%s", err.message);
  cr_assert_eq(qf_gguf_get_u32(f, "no.such.key", &u32, &err), QF_ERR_NOT_FOUND);
  cr_assert(strstr(err.message, "key 'no.such.key' not found"), "%s", err.message);
  qf_gguf_close(f);
}

/* ------------------------------------------------------------ tensors */

typedef struct row {
  char name[64];
  int type;
  int64_t ne[4];
  int n_dims;
  char deq[160];
} row;

static size_t read_tsv(const char *name, row *rows, size_t max) {
  size_t size;
  char *text = (char *)read_all(golden_path(name), &size);
  text = realloc(text, size + 1);
  text[size] = '\0';
  size_t n = 0;
  char *save = NULL;
  char *line = strtok_r(text, "\n", &save);
  cr_assert_not_null(line);
  cr_assert(strncmp(line, "name\tggml_type\tshape_ne\tdeq_file", 32) == 0, "tsv header: %s", line);
  while ((line = strtok_r(NULL, "\n", &save)) != NULL && n < max) {
    row *r = &rows[n];
    char shape[64];
    int k = sscanf(line, "%63[^\t]\t%d\t%63[^\t]\t%159s", r->name, &r->type, shape, r->deq);
    cr_assert_eq(k, 4, "tsv line: %s", line);
    r->n_dims = 0;
    for (int i = 0; i < 4; i++) r->ne[i] = 1;
    char *ss = NULL;
    for (char *tok = strtok_r(shape, ",", &ss); tok; tok = strtok_r(NULL, ",", &ss))
      r->ne[r->n_dims++] = strtoll(tok, NULL, 10);
    n++;
  }
  free(text);
  return n;
}

static float *tensor_to_f32(const qf_gguf_tensor *t) {
  int64_t n = qf_gguf_tensor_nelements(t);
  float *out = malloc((size_t)n * sizeof *out);
  cr_assert_not_null(out);
  const uint8_t *p = t->data;
  if (t->type == 0) {
    memcpy(out, p, (size_t)n * 4);
  } else if (t->type == 1 || t->type == 30) {
    for (int64_t i = 0; i < n; i++) {
      uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
      out[i] = t->type == 1 ? qf_f16_to_f32(h) : qf_bf16_to_f32(h);
    }
  } else {
#ifdef QF_HAVE_GGUF_QUANTS
    int rc = qf_gguf_dequantize_rows(t->type, p, out, n / t->ne[0], t->ne[0]);
    cr_assert_eq(rc, 0, "dequantize %s (type %d) failed", t->name, t->type);
#else
    free(out);
    return NULL;
#endif
  }
  return out;
}

static int compared_quantized;

static void check_tensors(qf_gguf_file *f, const char *tsv, const uint64_t *offsets) {
  row rows[64];
  size_t n = read_tsv(tsv, rows, 64);
  cr_assert_eq(qf_gguf_tensor_count(f), n);
  uint64_t running = 0;
  uint32_t a = qf_gguf_data_alignment(f);
  for (size_t i = 0; i < n; i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
    const row *r = &rows[i];
    cr_assert_str_eq(t->name, r->name);
    cr_assert_eq(qf_gguf_find_tensor(f, r->name), t);
    cr_assert_eq(t->type, r->type, "%s type %d", t->name, t->type);
    cr_assert_eq(t->n_dims, (uint32_t)r->n_dims, "%s n_dims", t->name);
    for (int d = 0; d < 4; d++) cr_assert_eq(t->ne[d], r->ne[d], "%s ne[%d]", t->name, d);
    cr_assert_eq(t->offset, offsets[i], "%s offset %llu", t->name, (unsigned long long)t->offset);
    cr_assert_eq(t->offset, running);
    uint64_t nb;
    cr_assert_eq(qf_gguf_tensor_nbytes(t->type, t->ne, &nb), 0);
    cr_assert_eq(t->nbytes, nb);
    cr_assert_eq((const uint8_t *)t->data,
                 (const uint8_t *)qf_gguf_file_data(f) + qf_gguf_data_offset(f) + t->offset);
    running += (t->nbytes + a - 1) / a * a;

    size_t dsize;
    float *want = (float *)read_all(golden_path(r->deq), &dsize);
    cr_assert_eq(dsize, (size_t)qf_gguf_tensor_nelements(t) * 4, "%s: deq file size", t->name);
    float *got = tensor_to_f32(t);
    if (got) {
      if (t->type != 0 && t->type != 1 && t->type != 30) compared_quantized++;
      for (int64_t k = 0; k < qf_gguf_tensor_nelements(t); k++) {
        uint32_t x, y;
        memcpy(&x, &got[k], 4);
        memcpy(&y, &want[k], 4);
        cr_assert_eq(x, y, "%s[%lld]: got %.9g (0x%08x), want %.9g (0x%08x)", t->name, (long long)k,
                     got[k], x, want[k], y);
      }
      free(got);
    }
    free(want);
  }
}

Test(golden, tiny_llama_tensors) {
  qf_gguf_file *f = open_golden("tiny-llama-gguf-py.gguf");
  static const uint64_t offsets[] = {0,     4352,  4608,  6912,  8192,  9600,   12672,
                                     12928, 21632, 38016, 54400, 54656, 56960,  58240,
                                     59648, 62720, 62976, 71680, 88064, 104448, 104704};
  compared_quantized = 0;
  check_tensors(f, "tiny-llama-gguf-py.tensors.tsv", offsets);
#ifdef QF_HAVE_GGUF_QUANTS
  cr_assert_eq(compared_quantized, 12);
#endif
  qf_gguf_close(f);
}

Test(golden, kquants_kvs_and_alignment_quirk) {
  qf_gguf_file *f = open_golden("kquants-ggml.gguf");
  qf_error err;
  cr_assert_eq(qf_gguf_version(f), 3);
  cr_assert_eq(qf_gguf_kv_count(f), 5);
  const qf_gguf_kv *kv;
  kv = kv_checked(f, 0, "general.architecture", QF_GGUF_VT_STRING, QF_GGUF_VT_STRING, 24);
  str_is(kv->strs[0], "llama");
  kv = kv_checked(f, 1, "general.name", QF_GGUF_VT_STRING, QF_GGUF_VT_STRING, 69);
  str_is(kv->strs[0], "kquant-test");
  kv_checked(f, 2, "general.alignment", QF_GGUF_VT_UINT32, QF_GGUF_VT_UINT32, 112);
  kv_checked(f, 3, "general.quantization_version", QF_GGUF_VT_UINT32, QF_GGUF_VT_UINT32, 145);
  kv_checked(f, 4, "llama.block_count", QF_GGUF_VT_UINT32, QF_GGUF_VT_UINT32, 189);
  uint32_t v;
  cr_assert_eq(qf_gguf_get_u32(f, "general.alignment", &v, &err), QF_OK);
  cr_assert_eq(v, 64);
  cr_assert_eq(qf_gguf_get_u32(f, "general.quantization_version", &v, &err), QF_OK);
  cr_assert_eq(v, 2);
  cr_assert_eq(qf_gguf_get_u32(f, "llama.block_count", &v, &err), QF_OK);
  cr_assert_eq(v, 1);
  /* ggml's C writer stored general.alignment = 64 but laid the data out at
   * 32 (gguf_set_val_u32 does not change the context's alignment). */
  cr_assert_eq(qf_gguf_alignment(f), 64);
  cr_assert_eq(qf_gguf_data_alignment(f), 32);
  cr_assert_eq(qf_gguf_data_offset(f), 800);
  cr_assert(qf_gguf_is_strict_layout(f));
  cr_assert_not_null(qf_gguf_layout_note(f));
  cr_assert(strstr(qf_gguf_layout_note(f), "general.alignment is 64"));
  qf_gguf_close(f);
}

Test(golden, kquants_tensors) {
  qf_gguf_file *f = open_golden("kquants-ggml.gguf");
  static const uint64_t offsets[] = {0,    512,  1408, 2848, 3904,  5600,
                                     7040, 7872, 8960, 9632, 12704, 16800};
  compared_quantized = 0;
  check_tensors(f, "kquants-ggml.tensors.tsv", offsets);
#ifdef QF_HAVE_GGUF_QUANTS
  cr_assert_eq(compared_quantized, 9);
#endif
  qf_gguf_close(f);
}

Test(golden, memory_and_mmap_agree) {
  size_t size;
  uint8_t *buf = read_all(golden_path("tiny-llama-gguf-py.gguf"), &size);
  qf_gguf_file *a = open_golden("tiny-llama-gguf-py.gguf"), *b = NULL;
  qf_error err;
  cr_assert_eq(qf_gguf_open_memory(buf, size, "tiny.gguf", &b, &err), QF_OK, "%s", err.message);
  cr_assert_str_eq(qf_gguf_path(b), "tiny.gguf");
  cr_assert_eq(qf_gguf_file_size(a), size);
  cr_assert_eq(qf_gguf_kv_count(a), qf_gguf_kv_count(b));
  for (size_t i = 0; i < qf_gguf_kv_count(a); i++) {
    const qf_gguf_kv *x = qf_gguf_kv_at(a, i), *y = qf_gguf_kv_at(b, i);
    cr_assert_str_eq(x->key, y->key);
    cr_assert_eq(x->value_nbytes, y->value_nbytes);
    cr_assert(memcmp(x->value, y->value, (size_t)x->value_nbytes) == 0);
  }
  for (size_t i = 0; i < qf_gguf_tensor_count(a); i++) {
    const qf_gguf_tensor *x = qf_gguf_tensor_at(a, i), *y = qf_gguf_tensor_at(b, i);
    cr_assert(memcmp(x->data, y->data, (size_t)x->nbytes) == 0);
  }
  cr_assert_null(qf_gguf_tensor_at(a, 999));
  cr_assert_null(qf_gguf_kv_at(a, 999));
  cr_assert_null(qf_gguf_find_tensor(a, "nope"));
  qf_gguf_close(a);
  qf_gguf_close(b);
  free(buf);
}

#ifdef QF_HAVE_GGUF_QUANTS
/* qf_gguf_file keeps its own small type table (so the container library does
 * not pull in the quantization kernels); it must agree with qf_gguf_quants'. */
Test(types, agree_with_quants_table) {
  cr_assert_eq(qf_gguf_ggml_type_count(), QF_GGUF_TYPE_COUNT);
  for (int32_t id = -2; id < QF_GGUF_TYPE_COUNT + 3; id++) {
    const char *name;
    int64_t block;
    size_t size;
    int usable = qf_gguf_ggml_type_info(id, &name, &block, &size);
    const qf_gguf_type_info *q = qf_gguf_type_get(id);
    if (usable != 1) {
      cr_assert_null(q, "id %d: quants knows it, the file table does not", id);
      continue;
    }
    cr_assert_not_null(q, "id %d (%s): missing from the quants table", id, name);
    cr_assert_str_eq(name, q->name, "id %d", id);
    cr_assert_eq(block, q->blck_size, "id %d (%s) block", id, name);
    cr_assert_eq(size, q->type_size, "id %d (%s) size", id, name);
    cr_assert_eq(qf_gguf_ggml_type_from_name(name), qf_gguf_type_from_name(name));
  }
}
#endif
