/*
 * selftest_write.c — qf_gguf_selftest_write: writes a deterministic GGUF file
 * with qforge's writer for the Python interoperability check
 * (tests/interop/gguf_interop.py reads it back with gguf-py's GGUFReader).
 *
 * Content (the script knows it too): general.* and llama.* keys, one test.*
 * key of every scalar type, arrays of several element types, general.file_type
 * set twice (so it must come last), general.alignment = 64, and tensors of
 * types F32, F16, BF16, Q8_0, Q4_K and I32 whose bytes follow
 * byte[k] = (k*31 + j*7 + 3) & 0xff for tensor j (F32 and I32: values).
 * Usage: qf_gguf_selftest_write <out.gguf>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_file.h"

static qf_error err;

#define CHECK(call)                                           \
  do {                                                        \
    if ((call) != QF_OK) {                                    \
      fprintf(stderr, "%s failed: %s\n", #call, err.message); \
      return 1;                                               \
    }                                                         \
  } while (0)

static uint8_t *pattern(size_t n, int j) {
  uint8_t *p = malloc(n ? n : 1);
  for (size_t k = 0; k < n; k++) p[k] = (uint8_t)((k * 31 + (size_t)j * 7 + 3) & 0xff);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <out.gguf>\n", argv[0]);
    return 2;
  }
  qf_gguf_writer *w;
  CHECK(qf_gguf_writer_create(&w, &err));
  CHECK(qf_gguf_writer_set_str(w, "general.architecture", "llama", &err));
  CHECK(qf_gguf_writer_set_u32(w, "general.file_type", 1, &err));
  CHECK(qf_gguf_writer_set_str(w, "general.name", "qforge-selftest", &err));
  CHECK(qf_gguf_writer_set_u32(w, "general.alignment", 64, &err));
  CHECK(qf_gguf_writer_set_u32(w, "llama.block_count", 2, &err));
  CHECK(qf_gguf_writer_set_u32(w, "llama.context_length", 256, &err));
  CHECK(qf_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f, &err));
  CHECK(qf_gguf_writer_set_u8(w, "test.u8", 200, &err));
  CHECK(qf_gguf_writer_set_i8(w, "test.i8", -100, &err));
  CHECK(qf_gguf_writer_set_u16(w, "test.u16", 60000, &err));
  CHECK(qf_gguf_writer_set_i16(w, "test.i16", -30000, &err));
  CHECK(qf_gguf_writer_set_u32(w, "test.u32", 4000000000u, &err));
  CHECK(qf_gguf_writer_set_i32(w, "test.i32", -2000000000, &err));
  CHECK(qf_gguf_writer_set_f32(w, "test.f32", 3.25f, &err));
  CHECK(qf_gguf_writer_set_bool(w, "test.bool", true, &err));
  CHECK(qf_gguf_writer_set_u64(w, "test.u64", 9223372036854775813ull, &err));
  CHECK(qf_gguf_writer_set_i64(w, "test.i64", -4611686018427387904ll, &err));
  CHECK(qf_gguf_writer_set_f64(w, "test.f64", -1e300, &err));
  CHECK(qf_gguf_writer_set_str(w, "test.str", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93", &err));
  const int32_t ai32[] = {1, -2, 3};
  const float af32[] = {0.5f, 1.5f};
  const uint8_t au8[] = {1, 2, 255};
  const uint8_t abool[] = {1, 0};
  const double af64[] = {1.5, -2.25};
  const uint64_t au64[] = {0, 18446744073709551615ull};
  const char *astr[] = {"a", "bb", ""};
  CHECK(qf_gguf_writer_set_arr(w, "test.arr_i32", QF_GGUF_VT_INT32, ai32, 3, &err));
  CHECK(qf_gguf_writer_set_arr(w, "test.arr_f32", QF_GGUF_VT_FLOAT32, af32, 2, &err));
  CHECK(qf_gguf_writer_set_arr(w, "test.arr_u8", QF_GGUF_VT_UINT8, au8, 3, &err));
  CHECK(qf_gguf_writer_set_arr(w, "test.arr_bool", QF_GGUF_VT_BOOL, abool, 2, &err));
  CHECK(qf_gguf_writer_set_arr(w, "test.arr_f64", QF_GGUF_VT_FLOAT64, af64, 2, &err));
  CHECK(qf_gguf_writer_set_arr(w, "test.arr_u64", QF_GGUF_VT_UINT64, au64, 2, &err));
  CHECK(qf_gguf_writer_set_arr_str(w, "test.arr_str", astr, 3, &err));
  CHECK(qf_gguf_writer_set_u32(w, "general.file_type", 7, &err)); /* moves to the end */

  static const struct {
    const char *name;
    int32_t type;
    uint32_t n_dims;
    int64_t ne[4];
    size_t nbytes;
  } ts[] = {
      {"token_embd.weight", 0, 2, {8, 4, 1, 1}, 8 * 4 * 4},
      {"blk.0.attn_q.weight", 1, 2, {16, 2, 1, 1}, 16 * 2 * 2},
      {"output_norm.weight", 30, 1, {8, 1, 1, 1}, 8 * 2},
      {"blk.0.ffn_up.weight", 8, 2, {64, 3, 1, 1}, 2 * 34 * 3},
      {"blk.0.ffn_down.weight", 12, 3, {256, 2, 1, 1}, 144 * 2},
      {"blk.1.counts", 26, 1, {5, 1, 1, 1}, 5 * 4},
  };
  void *datas[6];
  for (int j = 0; j < 6; j++) {
    datas[j] = pattern(ts[j].nbytes, j);
    if (ts[j].type == 0) {
      float *v = datas[j];
      for (size_t k = 0; k < ts[j].nbytes / 4; k++) v[k] = (float)k * 0.5f - 3.0f;
    } else if (ts[j].type == 26) {
      int32_t *v = datas[j];
      for (size_t k = 0; k < ts[j].nbytes / 4; k++) v[k] = (int32_t)(k * 1000) - 2000;
    }
    CHECK(qf_gguf_writer_add_tensor(w, ts[j].name, ts[j].type, ts[j].n_dims, ts[j].ne, datas[j],
                                    &err));
  }
  CHECK(qf_gguf_writer_write_file(w, argv[1], &err));
  for (int j = 0; j < 6; j++) free(datas[j]);
  qf_gguf_writer_free(w);
  printf("wrote %s\n", argv[1]);
  return 0;
}
