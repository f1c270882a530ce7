/*
 * test_roundtrip.c — the GGUF writer: write → read round trips, the exact
 * bytes of small files against a layout computed by hand, key ordering
 * (re-set keys move to the end), copying a file's keys and tensors (the
 * requantize path, which must reproduce gguf-py's bytes), streaming, atomic
 * output and the writer's argument checks.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf_file.h"
#include "gguf_test_util.h"

static qf_error err;

#define OK(call) cr_assert_eq((call), QF_OK, "%s: %s", #call, err.message)

static char *join(const char *dir, const char *name) {
  static char buf[2][1024];
  static int k;
  k ^= 1;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static int count_tmp_files(const char *dir) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".tmp.")) n++;
  closedir(d);
  return n;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 131u + seed * 17u + (i >> 7)) & 0xff);
}

static void roundtrip(uint32_t align) {
  const char *dir = temp_dir();
  char *path = join(dir, "rt.gguf");
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_set_str(w, "general.architecture", "llama", &err));
  if (align != 32) OK(qf_gguf_writer_set_u32(w, "general.alignment", align, &err));
  OK(qf_gguf_writer_set_u8(w, "t.u8", 250, &err));
  OK(qf_gguf_writer_set_i8(w, "t.i8", -7, &err));
  OK(qf_gguf_writer_set_u16(w, "t.u16", 65535, &err));
  OK(qf_gguf_writer_set_i16(w, "t.i16", -32768, &err));
  OK(qf_gguf_writer_set_u32(w, "t.u32", 0xdeadbeefu, &err));
  OK(qf_gguf_writer_set_i32(w, "t.i32", INT32_MIN, &err));
  OK(qf_gguf_writer_set_f32(w, "t.f32", -0.15625f, &err));
  OK(qf_gguf_writer_set_bool(w, "t.bool", true, &err));
  OK(qf_gguf_writer_set_bool(w, "t.bool0", false, &err));
  OK(qf_gguf_writer_set_u64(w, "t.u64", UINT64_MAX - 5, &err));
  OK(qf_gguf_writer_set_i64(w, "t.i64", INT64_MIN + 3, &err));
  OK(qf_gguf_writer_set_f64(w, "t.f64", 1.0 / 3.0, &err));
  OK(qf_gguf_writer_set_strn(w, "t.strn", "a\0b", 3, &err));
  OK(qf_gguf_writer_set_str(w, "t.empty_str", "", &err));
  const uint8_t au8[] = {0, 1, 255};
  const int8_t ai8[] = {-128, 0, 127};
  const uint16_t au16[] = {1, 65535};
  const int16_t ai16[] = {-2, 3};
  const uint32_t au32[] = {7, 0xffffffffu, 9};
  const int32_t ai32[] = {1, -2, 3, -4};
  const float af32[] = {0.5f, -1.25f, 1e30f};
  const uint8_t abool[] = {1, 0, 7};
  const uint64_t au64[] = {UINT64_MAX, 1};
  const int64_t ai64[] = {INT64_MIN, INT64_MAX};
  const double af64[] = {1e-300, -2.5};
  OK(qf_gguf_writer_set_arr(w, "a.u8", QF_GGUF_VT_UINT8, au8, 3, &err));
  OK(qf_gguf_writer_set_arr(w, "a.i8", QF_GGUF_VT_INT8, ai8, 3, &err));
  OK(qf_gguf_writer_set_arr(w, "a.u16", QF_GGUF_VT_UINT16, au16, 2, &err));
  OK(qf_gguf_writer_set_arr(w, "a.i16", QF_GGUF_VT_INT16, ai16, 2, &err));
  OK(qf_gguf_writer_set_arr(w, "a.u32", QF_GGUF_VT_UINT32, au32, 3, &err));
  OK(qf_gguf_writer_set_arr(w, "a.i32", QF_GGUF_VT_INT32, ai32, 4, &err));
  OK(qf_gguf_writer_set_arr(w, "a.f32", QF_GGUF_VT_FLOAT32, af32, 3, &err));
  OK(qf_gguf_writer_set_arr(w, "a.bool", QF_GGUF_VT_BOOL, abool, 3, &err));
  OK(qf_gguf_writer_set_arr(w, "a.u64", QF_GGUF_VT_UINT64, au64, 2, &err));
  OK(qf_gguf_writer_set_arr(w, "a.i64", QF_GGUF_VT_INT64, ai64, 2, &err));
  OK(qf_gguf_writer_set_arr(w, "a.f64", QF_GGUF_VT_FLOAT64, af64, 2, &err));
  OK(qf_gguf_writer_set_arr(w, "a.empty", QF_GGUF_VT_INT32, NULL, 0, &err));
  const char *strs[] = {"x", "", "h\xc3\xa9llo"};
  OK(qf_gguf_writer_set_arr_str(w, "a.str", strs, 3, &err));
  const qf_gguf_string bstrs[] = {{"n\0l", 3}, {"z", 1}};
  OK(qf_gguf_writer_set_arr_strn(w, "a.strn", bstrs, 2, &err));

  /* tensors of several types and sizes (sizes not multiples of the alignment) */
  static float tf32[8 * 3];
  for (int i = 0; i < 24; i++) tf32[i] = (float)i * 0.25f - 2.0f;
  static uint8_t tf16[16 * 2], tq8[2 * 2 * 34], tq4k[144], ti8[5];
  fill_pattern(tf16, sizeof tf16, 1);
  fill_pattern(tq8, sizeof tq8, 2);
  fill_pattern(tq4k, sizeof tq4k, 3);
  fill_pattern(ti8, sizeof ti8, 4);
  const int64_t ne_f32[] = {8, 3}, ne_f16[] = {16}, ne_q8[] = {64, 2, 1}, ne_q4k[] = {256, 1, 1, 1},
                ne_i8[] = {5}, ne_empty[] = {0, 4};
  OK(qf_gguf_writer_add_tensor(w, "w.f32", 0, 2, ne_f32, tf32, &err));
  OK(qf_gguf_writer_add_tensor(w, "w.f16", 1, 1, ne_f16, tf16, &err));
  OK(qf_gguf_writer_add_tensor(w, "w.q8_0", 8, 3, ne_q8, tq8, &err));
  OK(qf_gguf_writer_add_tensor(w, "w.q4_K", 12, 4, ne_q4k, tq4k, &err));
  OK(qf_gguf_writer_add_tensor(w, "w.empty", 0, 2, ne_empty, NULL, &err));
  OK(qf_gguf_writer_add_tensor(w, "w.i8", 24, 1, ne_i8, ti8, &err));
  cr_assert_eq(qf_gguf_writer_tensor_count(w), 6);
  OK(qf_gguf_writer_write_file(w, path, &err));
  cr_assert_eq(count_tmp_files(dir), 0);
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert_eq(sb.st_mode & 0777, 0644);

  qf_gguf_file *f;
  OK(qf_gguf_open(path, &f, &err));
  cr_assert_eq(qf_gguf_version(f), 3);
  cr_assert_eq(qf_gguf_alignment(f), align);
  cr_assert_eq(qf_gguf_data_alignment(f), align);
  cr_assert_eq(qf_gguf_data_offset(f) % align, 0);
  cr_assert(qf_gguf_is_strict_layout(f));
  cr_assert_eq(qf_gguf_kv_count(f), qf_gguf_writer_kv_count(w));
  for (size_t i = 0; i < qf_gguf_kv_count(f); i++)
    cr_assert_str_eq(qf_gguf_kv_at(f, i)->key, qf_gguf_writer_kv_key(w, i));

  uint8_t u8;
  int8_t i8;
  uint16_t u16;
  int16_t i16;
  uint32_t u32;
  int32_t i32;
  float f32;
  bool b;
  uint64_t u64;
  int64_t i64;
  double f64;
  qf_gguf_string s;
  OK(qf_gguf_get_u8(f, "t.u8", &u8, &err));
  cr_assert_eq(u8, 250);
  OK(qf_gguf_get_i8(f, "t.i8", &i8, &err));
  cr_assert_eq(i8, -7);
  OK(qf_gguf_get_u16(f, "t.u16", &u16, &err));
  cr_assert_eq(u16, 65535);
  OK(qf_gguf_get_i16(f, "t.i16", &i16, &err));
  cr_assert_eq(i16, -32768);
  OK(qf_gguf_get_u32(f, "t.u32", &u32, &err));
  cr_assert_eq(u32, 0xdeadbeefu);
  OK(qf_gguf_get_i32(f, "t.i32", &i32, &err));
  cr_assert_eq(i32, INT32_MIN);
  OK(qf_gguf_get_f32(f, "t.f32", &f32, &err));
  cr_assert_eq(f32, -0.15625f);
  OK(qf_gguf_get_bool(f, "t.bool", &b, &err));
  cr_assert(b);
  OK(qf_gguf_get_bool(f, "t.bool0", &b, &err));
  cr_assert(!b);
  OK(qf_gguf_get_u64(f, "t.u64", &u64, &err));
  cr_assert_eq(u64, UINT64_MAX - 5);
  OK(qf_gguf_get_i64(f, "t.i64", &i64, &err));
  cr_assert_eq(i64, INT64_MIN + 3);
  OK(qf_gguf_get_f64(f, "t.f64", &f64, &err));
  cr_assert_eq(f64, 1.0 / 3.0);
  OK(qf_gguf_get_str(f, "t.strn", &s, &err));
  cr_assert(s.len == 3 && memcmp(s.data, "a\0b", 3) == 0);
  OK(qf_gguf_get_str(f, "t.empty_str", &s, &err));
  cr_assert_eq(s.len, 0);
  if (align != 32) {
    OK(qf_gguf_get_u32(f, "general.alignment", &u32, &err));
    cr_assert_eq(u32, align);
  }

  const qf_gguf_kv *kv;
  uint8_t got[64];
#define ARR(key, vt, src)                                     \
  do {                                                        \
    OK(qf_gguf_get_arr(f, key, vt, &kv, &err));               \
    cr_assert_eq(kv->n, sizeof(src) / sizeof((src)[0]), key); \
    cr_assert_eq(qf_gguf_kv_copy(kv, got, sizeof got), 0);    \
    cr_assert(memcmp(got, src, sizeof(src)) == 0, key);       \
  } while (0)
  ARR("a.u8", QF_GGUF_VT_UINT8, au8);
  ARR("a.i8", QF_GGUF_VT_INT8, ai8);
  ARR("a.u16", QF_GGUF_VT_UINT16, au16);
  ARR("a.i16", QF_GGUF_VT_INT16, ai16);
  ARR("a.u32", QF_GGUF_VT_UINT32, au32);
  ARR("a.i32", QF_GGUF_VT_INT32, ai32);
  ARR("a.f32", QF_GGUF_VT_FLOAT32, af32);
  ARR("a.u64", QF_GGUF_VT_UINT64, au64);
  ARR("a.i64", QF_GGUF_VT_INT64, ai64);
  ARR("a.f64", QF_GGUF_VT_FLOAT64, af64);
#undef ARR
  OK(qf_gguf_get_arr(f, "a.bool", QF_GGUF_VT_BOOL, &kv, &err));
  cr_assert_eq(kv->n, 3);
  cr_assert(kv->value[0] == 1 && kv->value[1] == 0 && kv->value[2] == 1); /* written as 0/1 */
  cr_assert(qf_gguf_kv_elem(kv, 0).b && !qf_gguf_kv_elem(kv, 1).b && qf_gguf_kv_elem(kv, 2).b);
  OK(qf_gguf_get_arr(f, "a.empty", QF_GGUF_VT_INT32, &kv, &err));
  cr_assert_eq(kv->n, 0);
  OK(qf_gguf_get_arr(f, "a.str", QF_GGUF_VT_STRING, &kv, &err));
  cr_assert_eq(kv->n, 3);
  for (int i = 0; i < 3; i++)
    cr_assert(kv->strs[i].len == strlen(strs[i]) &&
              memcmp(kv->strs[i].data, strs[i], kv->strs[i].len) == 0);
  cr_assert_eq(qf_gguf_kv_copy(kv, got, sizeof got), -1);
  OK(qf_gguf_get_arr(f, "a.strn", QF_GGUF_VT_STRING, &kv, &err));
  cr_assert(kv->n == 2 && kv->strs[0].len == 3 && memcmp(kv->strs[0].data, "n\0l", 3) == 0);

  /* tensors: shapes, bytes, running padded offsets, zero padding */
  const void *datas[] = {tf32, tf16, tq8, tq4k, NULL, ti8};
  const uint64_t sizes[] = {96, 32, 136, 144, 0, 5};
  const uint32_t ndims[] = {2, 1, 3, 4, 2, 1};
  cr_assert_eq(qf_gguf_tensor_count(f), 6);
  uint64_t run = 0;
  const uint8_t *base = (const uint8_t *)qf_gguf_file_data(f) + qf_gguf_data_offset(f);
  for (size_t i = 0; i < 6; i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
    cr_assert_eq(t->n_dims, ndims[i], "%s", t->name);
    cr_assert_eq(t->nbytes, sizes[i], "%s", t->name);
    cr_assert_eq(t->offset, run, "%s", t->name);
    cr_assert_eq(t->offset % align, 0);
    if (sizes[i]) cr_assert(memcmp(t->data, datas[i], sizes[i]) == 0, "%s bytes", t->name);
    uint64_t padded = (sizes[i] + align - 1) / align * align;
    for (uint64_t k = sizes[i]; k < padded; k++)
      cr_assert_eq(base[t->offset + k], 0, "%s padding byte %llu", t->name, (unsigned long long)k);
    run += padded;
  }
  cr_assert_eq(qf_gguf_data_offset(f) + run, qf_gguf_file_size(f));
  const qf_gguf_tensor *t = qf_gguf_find_tensor(f, "w.q4_K");
  cr_assert(t && t->type == 12 && t->ne[0] == 256 && t->ne[3] == 1);
  t = qf_gguf_find_tensor(f, "w.f32");
  cr_assert(t && t->ne[0] == 8 && t->ne[1] == 3 && t->ne[2] == 1);
  qf_gguf_close(f);
  qf_gguf_writer_free(w);
  remove_dir(dir);
}

Test(writer, roundtrip_all_types_align32) { roundtrip(32); }
Test(writer, roundtrip_all_types_align64) { roundtrip(64); }
Test(writer, roundtrip_all_types_align8) { roundtrip(8); }

/* The exact bytes of a small file, laid out by hand from spec §1. */
Test(writer, bytes_equal_hand_computed_layout) {
  const char *dir = temp_dir();
  char *path = join(dir, "hand.gguf");
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_set_u32(w, "a", 7, &err));
  OK(qf_gguf_writer_set_str(w, "s", "hi", &err));
  const int32_t arr[] = {-1, 2};
  OK(qf_gguf_writer_set_arr(w, "r", QF_GGUF_VT_INT32, arr, 2, &err));
  const float td[] = {1.0f, 2.0f, 3.0f};
  const uint8_t ud[] = {1, 2, 3, 4, 5};
  const int64_t ne_t[] = {3}, ne_u[] = {5, 1};
  OK(qf_gguf_writer_add_tensor(w, "t", 0, 1, ne_t, td, &err));
  OK(qf_gguf_writer_add_tensor(w, "u", 24, 2, ne_u, ud, &err));
  OK(qf_gguf_writer_write_file(w, path, &err));

  tb want = {0};
  tb_header(&want, 3, 2, 3);
  tb_str(&want, "a");
  tb_u32(&want, 4);
  tb_u32(&want, 7);
  tb_str(&want, "s");
  tb_u32(&want, 8);
  tb_str(&want, "hi");
  tb_str(&want, "r");
  tb_u32(&want, 9);
  tb_u32(&want, 5);
  tb_u64(&want, 2);
  tb_u32(&want, (uint32_t)-1);
  tb_u32(&want, 2);
  tb_str(&want, "t");
  tb_u32(&want, 1);
  tb_u64(&want, 3);
  tb_u32(&want, 0);
  tb_u64(&want, 0);
  tb_str(&want, "u");
  tb_u32(&want, 2);
  tb_u64(&want, 5);
  tb_u64(&want, 1);
  tb_u32(&want, 24);
  tb_u64(&want, 32); /* PAD(12, 32) */
  cr_assert_eq(want.n, 24 + 17 + 23 + 33 + 33 + 41);
  tb_zeros(&want, 192 - want.n); /* data section at PAD(171, 32) = 192 */
  tb_f32(&want, 1.0f);
  tb_f32(&want, 2.0f);
  tb_f32(&want, 3.0f);
  tb_zeros(&want, 20);
  tb_bytes(&want, ud, 5);
  tb_zeros(&want, 27);
  cr_assert_eq(want.n, 256);

  size_t size;
  uint8_t *gotb = read_all(path, &size);
  cr_assert_eq(size, want.n, "file is %zu bytes, want %zu", size, want.n);
  for (size_t i = 0; i < size; i++)
    cr_assert_eq(gotb[i], want.p[i], "byte %zu: 0x%02x, want 0x%02x", i, gotb[i], want.p[i]);
  free(gotb);
  tb_free(&want);

  /* no tensors: the metadata is still padded (as gguf.cpp's writer does),
   * and a general.alignment of 64 is honoured */
  qf_gguf_writer *w2;
  OK(qf_gguf_writer_create(&w2, &err));
  OK(qf_gguf_writer_set_u32(w2, "general.alignment", 64, &err));
  char *p2 = join(dir, "empty.gguf");
  OK(qf_gguf_writer_write_file(w2, p2, &err));
  tb want2 = {0};
  tb_header(&want2, 3, 0, 1);
  tb_kv_u32(&want2, "general.alignment", 64);
  tb_pad(&want2, 64);
  gotb = read_all(p2, &size);
  cr_assert_eq(size, 64);
  cr_assert(memcmp(gotb, want2.p, 64) == 0);
  free(gotb);
  tb_free(&want2);
  qf_gguf_writer_free(w2);
  qf_gguf_writer_free(w);
  remove_dir(dir);
}

Test(writer, reset_key_moves_to_end) {
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_set_u32(w, "k.a", 1, &err));
  OK(qf_gguf_writer_set_u32(w, "k.b", 2, &err));
  OK(qf_gguf_writer_set_u32(w, "k.c", 3, &err));
  OK(qf_gguf_writer_set_str(w, "k.a", "again", &err)); /* type may change too */
  cr_assert_eq(qf_gguf_writer_kv_count(w), 3);
  cr_assert_str_eq(qf_gguf_writer_kv_key(w, 0), "k.b");
  cr_assert_str_eq(qf_gguf_writer_kv_key(w, 1), "k.c");
  cr_assert_str_eq(qf_gguf_writer_kv_key(w, 2), "k.a");
  cr_assert_null(qf_gguf_writer_kv_key(w, 3));
  cr_assert_eq(qf_gguf_writer_remove_key(w, "k.c"), 1);
  cr_assert_eq(qf_gguf_writer_remove_key(w, "k.c"), 0);
  const char *dir = temp_dir();
  char *path = join(dir, "order.gguf");
  OK(qf_gguf_writer_write_file(w, path, &err));
  qf_gguf_file *f;
  OK(qf_gguf_open(path, &f, &err));
  cr_assert_eq(qf_gguf_kv_count(f), 2);
  cr_assert_str_eq(qf_gguf_kv_at(f, 0)->key, "k.b");
  cr_assert_str_eq(qf_gguf_kv_at(f, 1)->key, "k.a");
  cr_assert_eq(qf_gguf_kv_at(f, 1)->type, QF_GGUF_VT_STRING);
  cr_assert_eq(qf_gguf_tensor_count(f), 0);
  qf_gguf_close(f);
  qf_gguf_writer_free(w);
  remove_dir(dir);
}

/* Requantize-style copy: all KVs and tensors of the gguf-py golden file, in
 * order, must reproduce its bytes exactly; re-setting file_type moves it. */
Test(writer, copy_reproduces_gguf_py_bytes) {
  qf_gguf_file *src;
  OK(qf_gguf_open(golden_path("tiny-llama-gguf-py.gguf"), &src, &err));
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_copy_kvs(w, src, &err));
  for (size_t i = 0; i < qf_gguf_tensor_count(src); i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(src, i);
    OK(qf_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err));
  }
  const char *dir = temp_dir();
  char *path = join(dir, "copy.gguf");
  OK(qf_gguf_writer_write_file(w, path, &err));
  size_t a_size, b_size;
  uint8_t *a = read_all(golden_path("tiny-llama-gguf-py.gguf"), &a_size);
  uint8_t *b = read_all(path, &b_size);
  cr_assert_eq(a_size, b_size);
  cr_assert(memcmp(a, b, a_size) == 0, "copy differs from the gguf-py file");
  free(a);
  free(b);

  /* llama-quantize's order: copy everything, then re-set these two */
  OK(qf_gguf_writer_set_u32(w, "general.quantization_version", 2, &err));
  OK(qf_gguf_writer_set_u32(w, "general.file_type", 15, &err));
  size_t n = qf_gguf_writer_kv_count(w);
  cr_assert_eq(n, 31);
  cr_assert_str_eq(qf_gguf_writer_kv_key(w, n - 2), "general.quantization_version");
  cr_assert_str_eq(qf_gguf_writer_kv_key(w, n - 1), "general.file_type");
  cr_assert_str_eq(qf_gguf_writer_kv_key(w, 10), "test.u8"); /* file_type left slot 10 */
  OK(qf_gguf_writer_write_file(w, path, &err));
  qf_gguf_file *f;
  OK(qf_gguf_open(path, &f, &err));
  uint32_t ft;
  OK(qf_gguf_get_u32(f, "general.file_type", &ft, &err));
  cr_assert_eq(ft, 15);
  for (size_t i = 0; i < qf_gguf_kv_count(src); i++) {
    const qf_gguf_kv *x = qf_gguf_kv_at(src, i), *y = qf_gguf_find_kv(f, x->key);
    cr_assert_not_null(y, "%s", x->key);
    if (strcmp(x->key, "general.file_type") == 0) continue;
    cr_assert(x->type == y->type && x->elem_type == y->elem_type && x->n == y->n);
    cr_assert(x->value_nbytes == y->value_nbytes &&
                  memcmp(x->value, y->value, (size_t)x->value_nbytes) == 0,
              "%s value differs", x->key);
  }
  qf_gguf_close(f);
  qf_gguf_close(src);
  qf_gguf_writer_free(w);
  remove_dir(dir);
}

Test(writer, streaming_and_atomicity) {
  const char *dir = temp_dir();
  char *path = join(dir, "s.gguf");
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_set_u32(w, "general.alignment", 64, &err));
  const int64_t ne[] = {32, 2};
  static uint8_t big[3u << 20]; /* larger than the writer's buffer */
  fill_pattern(big, sizeof big, 9);
  const int64_t ne_big[] = {(int64_t)sizeof big};
  OK(qf_gguf_writer_add_tensor(w, "q", 8, 2, ne, NULL, &err));
  OK(qf_gguf_writer_add_tensor(w, "big", 24, 1, ne_big, NULL, &err));
  /* write_file refuses tensors without data */
  cr_assert_eq(qf_gguf_writer_write_file(w, path, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "tensor 'q' has no data"), "%s", err.message);
  uint8_t q[2 * 34];
  fill_pattern(q, sizeof q, 5);
  OK(qf_gguf_writer_begin(w, path, &err));
  /* frozen while streaming */
  cr_assert_eq(qf_gguf_writer_set_u32(w, "late", 1, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(count_tmp_files(dir), 1);
  OK(qf_gguf_writer_write_tensor_data(w, q, sizeof q, &err));
  OK(qf_gguf_writer_write_tensor_data(w, big, sizeof big, &err));
  OK(qf_gguf_writer_finish(w, &err));
  cr_assert_eq(count_tmp_files(dir), 0);
  qf_gguf_file *f;
  OK(qf_gguf_open(path, &f, &err));
  cr_assert_eq(qf_gguf_data_alignment(f), 64);
  cr_assert(memcmp(qf_gguf_find_tensor(f, "q")->data, q, sizeof q) == 0);
  cr_assert_eq(qf_gguf_find_tensor(f, "big")->offset, 128);
  cr_assert(memcmp(qf_gguf_find_tensor(f, "big")->data, big, sizeof big) == 0);
  qf_gguf_close(f);
  size_t good_size;
  uint8_t *good = read_all(path, &good_size);

  /* a failed rewrite leaves the old file untouched and no temporary file */
  OK(qf_gguf_writer_begin(w, path, &err));
  cr_assert_eq(qf_gguf_writer_write_tensor_data(w, q, sizeof q - 1, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "tensor 'q' needs 68 bytes of data, got 67"), "%s", err.message);
  cr_assert_eq(count_tmp_files(dir), 0);
  OK(qf_gguf_writer_begin(w, path, &err));
  OK(qf_gguf_writer_write_tensor_data(w, q, sizeof q, &err));
  cr_assert_eq(qf_gguf_writer_finish(w, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "tensor 'big' is missing"), "%s", err.message);
  cr_assert_eq(count_tmp_files(dir), 0);
  OK(qf_gguf_writer_begin(w, path, &err));
  qf_gguf_writer_abort(w);
  cr_assert_eq(count_tmp_files(dir), 0);
  OK(qf_gguf_writer_begin(w, path, &err));
  qf_gguf_writer_free(w); /* free while streaming removes the temporary */
  cr_assert_eq(count_tmp_files(dir), 0);
  size_t now_size;
  uint8_t *now = read_all(path, &now_size);
  cr_assert(now_size == good_size && memcmp(now, good, now_size) == 0);
  free(now);
  free(good);

  /* an unwritable destination is an I/O error naming the path */
  qf_gguf_writer *w2;
  OK(qf_gguf_writer_create(&w2, &err));
  char *bad = join(dir, "no/such/folder/x.gguf");
  cr_assert_eq(qf_gguf_writer_write_file(w2, bad, &err), QF_ERR_IO);
  cr_assert(strstr(err.message, "no/such/folder/x.gguf"), "%s", err.message);
  cr_assert(strstr(err.message, "temporary"), "%s", err.message);
  qf_gguf_writer_free(w2);
  remove_dir(dir);
}

Test(writer, argument_checks) {
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  cr_assert_eq(qf_gguf_writer_set_u32(w, "", 1, &err), QF_ERR_INVALID_ARGUMENT);
  static char longkey[QF_GGUF_MAX_KEY + 2];
  memset(longkey, 'k', QF_GGUF_MAX_KEY + 1);
  cr_assert_eq(qf_gguf_writer_set_u32(w, longkey, 1, &err), QF_ERR_INVALID_ARGUMENT);
  longkey[QF_GGUF_MAX_KEY] = '\0';
  OK(qf_gguf_writer_set_u32(w, longkey, 1, &err));
  cr_assert_eq(qf_gguf_writer_set_u64(w, "general.alignment", 64, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "general.alignment"), "%s", err.message);
  cr_assert_eq(qf_gguf_writer_set_u32(w, "general.alignment", 48, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_gguf_writer_set_u32(w, "general.alignment", 0, &err), QF_ERR_INVALID_ARGUMENT);
  const uint32_t al[] = {32};
  cr_assert_eq(qf_gguf_writer_set_arr(w, "general.alignment", QF_GGUF_VT_UINT32, al, 1, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_gguf_writer_set_arr(w, "nested", QF_GGUF_VT_ARRAY, al, 1, &err),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "nested"), "%s", err.message);
  cr_assert_eq(qf_gguf_writer_set_str(w, "k", NULL, &err), QF_ERR_INVALID_ARGUMENT);
  const int64_t ne[] = {32, 2, 1, 1, 1};
  char name64[65];
  memset(name64, 'n', 64);
  name64[64] = '\0';
  cr_assert_eq(qf_gguf_writer_add_tensor(w, name64, 0, 1, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  name64[63] = '\0';
  OK(qf_gguf_writer_add_tensor(w, name64, 0, 1, ne, NULL, &err));
  cr_assert_eq(qf_gguf_writer_add_tensor(w, name64, 0, 1, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "duplicate tensor name"), "%s", err.message);
  cr_assert_eq(qf_gguf_writer_add_tensor(w, "x", 0, 5, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_gguf_writer_add_tensor(w, "x", 0, 0, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_gguf_writer_add_tensor(w, "x", 4, 1, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "removed"), "%s", err.message);
  cr_assert_eq(qf_gguf_writer_add_tensor(w, "x", 99, 1, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "unknown"), "%s", err.message);
  cr_assert_eq(qf_gguf_writer_add_tensor(w, "x", 12, 2, ne, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(err.message, "not a multiple of the block size 256"), "%s", err.message);
  const int64_t neg[] = {-32};
  cr_assert_eq(qf_gguf_writer_add_tensor(w, "x", 0, 1, neg, NULL, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_gguf_writer_write_tensor_data(w, ne, 8, &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_gguf_writer_finish(w, &err), QF_ERR_INVALID_ARGUMENT);
  qf_gguf_writer_free(w);
  qf_gguf_writer_free(NULL);
  qf_gguf_close(NULL);
}

Test(types, table) {
  const char *name;
  int64_t block;
  size_t size;
  cr_assert_eq(qf_gguf_ggml_type_info(12, &name, &block, &size), 1);
  cr_assert(strcmp(name, "q4_K") == 0 && block == 256 && size == 144);
  cr_assert_eq(qf_gguf_ggml_type_info(39, &name, &block, &size), 1);
  cr_assert(strcmp(name, "mxfp4") == 0 && block == 32 && size == 17);
  cr_assert_eq(qf_gguf_ggml_type_info(31, &name, &block, &size), 0);
  cr_assert_eq(qf_gguf_ggml_type_info(43, &name, NULL, NULL), -1);
  cr_assert_null(name);
  cr_assert_eq(qf_gguf_ggml_type_info(-1, NULL, NULL, NULL), -1);
  cr_assert_eq(qf_gguf_ggml_type_count(), 43);
  cr_assert_eq(qf_gguf_ggml_type_from_name("Q6_K"), 14);
  cr_assert_eq(qf_gguf_ggml_type_from_name("bf16"), 30);
  cr_assert_eq(qf_gguf_ggml_type_from_name("q4_2"), -1);
  cr_assert_eq(qf_gguf_ggml_type_from_name("nope"), -1);
  const int64_t ne[4] = {512, 3, 1, 1};
  uint64_t nb;
  cr_assert_eq(qf_gguf_tensor_nbytes(10, ne, &nb), 0);
  cr_assert_eq(nb, 504);
  cr_assert_str_eq(qf_gguf_vtype_name(QF_GGUF_VT_ARRAY), "arr");
  cr_assert_str_eq(qf_gguf_vtype_name(99), "?");
  cr_assert_eq(qf_gguf_vtype_size(QF_GGUF_VT_FLOAT64), 8);
  cr_assert_eq(qf_gguf_vtype_size(QF_GGUF_VT_STRING), 0);
}
