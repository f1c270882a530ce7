/*
 * safetensors writer → reader round trips: every dtype, 0-d and empty
 * tensors, metadata, the exact header layout (metadata first, insertion
 * order, space padding to 8 bytes), sharded output read back through
 * qf_checkpoint_open (index text as transformers writes it), atomicity
 * (abort leaves nothing, finish replaces, a failed finish leaves no file
 * under a final name), writer argument errors, and the file utilities.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_test_util.h"
#include "qforge/qforge.h"

static qf_error g_err;
#define CHECK_OK(call)                                                     \
  do {                                                                     \
    qf_error_clear(&g_err);                                                \
    qf_status st_ = (call);                                                \
    cr_assert_eq(st_, QF_OK, "%s failed: %s", #call, g_err.message);       \
  } while (0)

typedef struct spec {
  const char *name;
  qf_dtype dtype;
  int ndim;
  int64_t shape[QF_MAX_DIMS];
} spec;

/* One tensor of every dtype, plus 0-d and empty tensors. */
static const spec k_specs[] = {
    {"model.embed.weight", QF_DTYPE_F32, 2, {3, 5}},
    {"a.f64", QF_DTYPE_F64, 1, {7}},
    {"a.f16", QF_DTYPE_F16, 3, {2, 3, 4}},
    {"a.bf16", QF_DTYPE_BF16, 2, {4, 4}},
    {"a.i64", QF_DTYPE_I64, 1, {3}},
    {"a.i32", QF_DTYPE_I32, 2, {2, 2}},
    {"a.i16", QF_DTYPE_I16, 1, {5}},
    {"a.i8", QF_DTYPE_I8, 1, {9}},
    {"a.u64", QF_DTYPE_U64, 1, {2}},
    {"a.u32", QF_DTYPE_U32, 1, {3}},
    {"a.u16", QF_DTYPE_U16, 1, {3}},
    {"a.u8", QF_DTYPE_U8, 1, {11}},
    {"a.bool", QF_DTYPE_BOOL, 1, {4}},
    {"a.f8e4m3", QF_DTYPE_F8_E4M3, 2, {2, 3}},
    {"a.f8e5m2", QF_DTYPE_F8_E5M2, 1, {5}},
    {"scalar", QF_DTYPE_F32, 0, {0}},
    {"empty", QF_DTYPE_F16, 1, {0}},
    {"empty.3d", QF_DTYPE_I32, 3, {3, 0, 2}},
    {"eight.dims", QF_DTYPE_U8, 8, {1, 2, 1, 2, 1, 2, 1, 2}},
};
#define N_SPECS (sizeof k_specs / sizeof k_specs[0])

static uint64_t spec_bytes(const spec *s) {
  uint64_t n = qf_dtype_size(s->dtype);
  for (int d = 0; d < s->ndim; d++) n *= (uint64_t)s->shape[d];
  return n;
}

static void add_spec(qf_st_writer *w, const spec *s, unsigned seed) {
  uint64_t nb = spec_bytes(s);
  unsigned char *buf = malloc(nb ? nb : 1);
  iot_fill(buf, nb, seed);
  CHECK_OK(qf_st_writer_add(w, s->name, s->dtype, s->ndim, s->shape, buf,
                            &g_err));
  free(buf);
}

static void check_tensor(const qf_st_tensor *t, const spec *s, unsigned seed) {
  cr_assert_not_null(t, "tensor %s missing", s->name);
  cr_assert_str_eq(t->name, s->name);
  cr_assert_eq(t->dtype, s->dtype, "%s dtype", s->name);
  cr_assert_eq(t->ndim, s->ndim, "%s ndim", s->name);
  for (int d = 0; d < s->ndim; d++) cr_assert_eq(t->shape[d], s->shape[d]);
  uint64_t nb = spec_bytes(s);
  cr_assert_eq(t->nbytes, nb, "%s nbytes", s->name);
  unsigned char *want = malloc(nb ? nb : 1);
  iot_fill(want, nb, seed);
  if (nb) cr_assert_eq(memcmp(t->data, want, nb), 0, "%s bytes", s->name);
  free(want);
}

Test(st_roundtrip, all_dtypes_scalar_empty_metadata) {
  char *dir = iot_mkdtemp();
  char *path = iot_join(dir, "all.safetensors");
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new_file(path, &w, &g_err));
  CHECK_OK(qf_st_writer_set_metadata(w, "quantizer", "qforge", &g_err));
  CHECK_OK(qf_st_writer_set_metadata(w, "note", "h\xc3\xa9llo \"q\"", &g_err));
  for (size_t i = 0; i < N_SPECS; i++) add_spec(w, &k_specs[i], (unsigned)i);
  CHECK_OK(qf_st_writer_finish(w, &g_err));
  cr_assert_eq(iot_count_entries(dir), 1, "only the final file remains");

  qf_st_file *f = NULL;
  CHECK_OK(qf_st_open(path, &f, &g_err));
  cr_assert_eq(qf_st_count(f), N_SPECS);
  for (size_t i = 0; i < N_SPECS; i++) {
    /* data order == insertion order */
    check_tensor(qf_st_at(f, i), &k_specs[i], (unsigned)i);
    check_tensor(qf_st_find(f, k_specs[i].name), &k_specs[i], (unsigned)i);
    cr_assert_str_eq(qf_st_at(f, i)->file, path);
  }
  cr_assert_null(qf_st_at(f, N_SPECS));
  cr_assert_null(qf_st_find(f, "nope"));
  cr_assert_str_eq(qf_st_metadata(f, "format"), "pt");
  cr_assert_str_eq(qf_st_metadata(f, "quantizer"), "qforge");
  cr_assert_str_eq(qf_st_metadata(f, "note"), "h\xc3\xa9llo \"q\"");
  cr_assert_null(qf_st_metadata(f, "missing"));
  qf_st_close(f);

  /* raw layout: LE length, multiple of 8, metadata first, space padding */
  size_t n = 0;
  char *raw = iot_read_all(path, &n);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (unsigned char)raw[i];
  cr_assert_eq(hlen % 8, 0);
  cr_assert(hlen + 8 <= n);
  const char *prefix = "{\"__metadata__\":{\"format\":\"pt\",\"quantizer\":"
                       "\"qforge\",";
  cr_assert_eq(strncmp(raw + 8, prefix, strlen(prefix)), 0, "header: %.80s",
               raw + 8);
  cr_assert_not_null(strstr(raw + 8, "\"model.embed.weight\":{\"dtype\":\"F32\","
                                     "\"shape\":[3,5],\"data_offsets\":[0,60]}"));
  cr_assert_not_null(strstr(raw + 8, "\"scalar\":{\"dtype\":\"F32\",\"shape\":[]"));
  size_t j = 8 + (size_t)hlen;
  while (j > 8 && raw[j - 1] == ' ') j--;
  cr_assert_eq(raw[j - 1], '}', "padding is spaces after the JSON");
  cr_assert(8 + hlen - j < 8);
  free(raw);
  free(path);
  iot_rmtree(dir);
  free(dir);
}

Test(st_roundtrip, no_tensors_and_metadata_override) {
  char *dir = iot_mkdtemp();
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new(dir, 0, &w, &g_err));
  CHECK_OK(qf_st_writer_set_metadata(w, "format", "mlx", &g_err));
  CHECK_OK(qf_st_writer_finish(w, &g_err));
  char *path = iot_join(dir, "model.safetensors");
  qf_st_file *f = NULL;
  CHECK_OK(qf_st_open(path, &f, &g_err));
  cr_assert_eq(qf_st_count(f), 0);
  cr_assert_str_eq(qf_st_metadata(f, "format"), "mlx");
  qf_st_close(f);
  size_t n;
  char *raw = iot_read_all(path, &n);
  cr_assert_eq(n, 8 + 40);
  cr_assert_eq(memcmp(raw + 8, "{\"__metadata__\":{\"format\":\"mlx\"}}       ", 40), 0);
  free(raw);
  free(path);
  iot_rmtree(dir);
  free(dir);
}

Test(st_roundtrip, writer_argument_errors_keep_writer_usable) {
  char *dir = iot_mkdtemp();
  char *path = iot_join(dir, "x.safetensors");
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new_file(path, &w, &g_err));
  float v[2] = {1, 2};
  int64_t sh[1] = {2}, neg[2] = {2, -1};
  qf_error e;
  CHECK_OK(qf_st_writer_add(w, "a", QF_DTYPE_F32, 1, sh, v, &g_err));
  cr_assert_eq(qf_st_writer_add(w, "a", QF_DTYPE_F32, 1, sh, v, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_not_null(strstr(e.message, "tensor 'a' was already added"), "%s",
                     e.message);
  cr_assert_eq(qf_st_writer_add(w, "b", QF_DTYPE_INVALID, 1, sh, v, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_not_null(strstr(e.message, "tensor 'b': dtype"), "%s", e.message);
  cr_assert_eq(qf_st_writer_add(w, "c", QF_DTYPE_F32, 2, neg, v, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_not_null(strstr(e.message, "tensor 'c': shape[1] is -1"), "%s",
                     e.message);
  cr_assert_eq(qf_st_writer_add(w, "d", QF_DTYPE_F32, 9, sh, v, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_st_writer_add(w, "__metadata__", QF_DTYPE_F32, 1, sh, v, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_st_writer_add(w, "e", QF_DTYPE_F32, 1, sh, NULL, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_st_writer_add(w, "\xff\xfe", QF_DTYPE_F32, 1, sh, v, &e),
               QF_ERR_INVALID_ARGUMENT);
  CHECK_OK(qf_st_writer_add(w, "b", QF_DTYPE_F32, 1, sh, v, &g_err));
  CHECK_OK(qf_st_writer_finish(w, &g_err));
  qf_st_file *f = NULL;
  CHECK_OK(qf_st_open(path, &f, &g_err));
  cr_assert_eq(qf_st_count(f), 2);
  cr_assert_str_eq(qf_st_at(f, 1)->name, "b");
  qf_st_close(f);
  free(path);
  iot_rmtree(dir);
  free(dir);
}

/* ---- sharding ---- */

static void write_sharded(const char *dir, uint64_t limit, size_t n,
                          size_t elems) {
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new(dir, limit, &w, &g_err));
  for (size_t i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "layers.%zu.weight", i);
    int64_t sh[1] = {(int64_t)elems};
    float *buf = malloc(elems * sizeof *buf);
    iot_fill(buf, elems * sizeof *buf, (unsigned)(100 + i));
    CHECK_OK(qf_st_writer_add(w, name, QF_DTYPE_F32, 1, sh, buf, &g_err));
    free(buf);
  }
  CHECK_OK(qf_st_writer_finish(w, &g_err));
}

Test(st_roundtrip, sharded_with_index_through_checkpoint) {
  char *dir = iot_mkdtemp();
  /* 7 tensors of 40 bytes, limit 100: two per shard -> 4 shards */
  write_sharded(dir, 100, 7, 10);
  static const char *files[] = {
      "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
      "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
      "model.safetensors.index.json"};
  for (size_t i = 0; i < 5; i++) {
    char *p = iot_join(dir, files[i]);
    cr_assert_eq(access(p, F_OK), 0, "%s exists", files[i]);
    free(p);
  }
  cr_assert_eq(iot_count_entries(dir), 5);

  char *ip = iot_join(dir, "model.safetensors.index.json");
  char *idx = iot_read_all(ip, NULL);
  /* as transformers writes it: json.dumps(indent=2, sort_keys=True) + "\n";
   * "layers.10" would sort before "layers.2": names here are single digits */
  const char *want =
      "{\n"
      "  \"metadata\": {\n"
      "    \"total_size\": 280\n"
      "  },\n"
      "  \"weight_map\": {\n"
      "    \"layers.0.weight\": \"model-00001-of-00004.safetensors\",\n"
      "    \"layers.1.weight\": \"model-00001-of-00004.safetensors\",\n"
      "    \"layers.2.weight\": \"model-00002-of-00004.safetensors\",\n"
      "    \"layers.3.weight\": \"model-00002-of-00004.safetensors\",\n"
      "    \"layers.4.weight\": \"model-00003-of-00004.safetensors\",\n"
      "    \"layers.5.weight\": \"model-00003-of-00004.safetensors\",\n"
      "    \"layers.6.weight\": \"model-00004-of-00004.safetensors\"\n"
      "  }\n"
      "}\n";
  cr_assert_str_eq(idx, want);
  free(idx);
  free(ip);

  qf_checkpoint *c = NULL;
  CHECK_OK(qf_checkpoint_open(dir, &c, &g_err));
  cr_assert_eq(qf_checkpoint_count(c), 7);
  cr_assert_null(qf_checkpoint_config_json(c));
  cr_assert_str_eq(qf_checkpoint_dir(c), dir);
  for (size_t i = 0; i < 7; i++) {
    char name[64];
    snprintf(name, sizeof name, "layers.%zu.weight", i);
    const qf_st_tensor *t = qf_checkpoint_at(c, i);
    cr_assert_str_eq(t->name, name, "shard by shard, data order");
    cr_assert_eq(qf_checkpoint_find(c, name), t);
    cr_assert_not_null(strstr(t->file, files[i / 2]));
    unsigned char want_b[40];
    iot_fill(want_b, 40, (unsigned)(100 + i));
    cr_assert_eq(memcmp(t->data, want_b, 40), 0);
  }
  cr_assert_null(qf_checkpoint_find(c, "layers.7.weight"));
  cr_assert_null(qf_checkpoint_at(c, 7));
  qf_checkpoint_close(c);

  /* a later unsharded save into the same folder removes the stale shards */
  write_sharded(dir, 0, 3, 4);
  cr_assert_eq(iot_count_entries(dir), 1);
  CHECK_OK(qf_checkpoint_open(dir, &c, &g_err));
  cr_assert_eq(qf_checkpoint_count(c), 3);
  qf_checkpoint_close(c);
  /* and a sharded one removes model.safetensors */
  write_sharded(dir, 16, 2, 4);
  cr_assert_eq(iot_count_entries(dir), 3);
  CHECK_OK(qf_checkpoint_open(dir, &c, &g_err));
  cr_assert_eq(qf_checkpoint_count(c), 2);
  qf_checkpoint_close(c);
  iot_rmtree(dir);
  free(dir);
}

Test(st_roundtrip, big_tensor_gets_own_shard_and_small_total_stays_single) {
  char *dir = iot_mkdtemp();
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new(dir, 64, &w, &g_err));
  unsigned char buf[200];
  iot_fill(buf, sizeof buf, 5);
  int64_t s8[1] = {8}, s200[1] = {200}, s0[1] = {0};
  CHECK_OK(qf_st_writer_add(w, "small", QF_DTYPE_U8, 1, s8, buf, &g_err));
  CHECK_OK(qf_st_writer_add(w, "big", QF_DTYPE_U8, 1, s200, buf, &g_err));
  CHECK_OK(qf_st_writer_add(w, "zero", QF_DTYPE_U8, 1, s0, buf, &g_err));
  CHECK_OK(qf_st_writer_finish(w, &g_err));
  /* as huggingface_hub splits: the oversize tensor is a shard of its own,
   * closed first; small and zero share the shard left open */
  qf_checkpoint *c = NULL;
  CHECK_OK(qf_checkpoint_open(dir, &c, &g_err));
  cr_assert_eq(qf_checkpoint_count(c), 3);
  cr_assert_eq(iot_count_entries(dir), 3);
  cr_assert_not_null(strstr(qf_checkpoint_find(c, "big")->file, "model-00001-of-00002"));
  cr_assert_not_null(strstr(qf_checkpoint_find(c, "small")->file, "model-00002-of-00002"));
  cr_assert_not_null(strstr(qf_checkpoint_find(c, "zero")->file, "model-00002-of-00002"));
  cr_assert_str_eq(qf_checkpoint_at(c, 0)->name, "big");
  cr_assert_eq(memcmp(qf_checkpoint_find(c, "big")->data, buf, 200), 0);
  qf_checkpoint_close(c);
  iot_rmtree(dir);
  free(dir);

  dir = iot_mkdtemp();
  write_sharded(dir, 1000, 3, 10); /* 120 bytes <= 1000 */
  cr_assert_eq(iot_count_entries(dir), 1);
  char *p = iot_join(dir, "model.safetensors");
  cr_assert_eq(access(p, F_OK), 0);
  free(p);
  iot_rmtree(dir);
  free(dir);
}

/* ---- atomicity ---- */

Test(st_roundtrip, abort_leaves_no_files) {
  char *dir = iot_mkdtemp();
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new(dir, 50, &w, &g_err));
  unsigned char buf[40] = {0};
  int64_t sh[1] = {40};
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%d", i);
    CHECK_OK(qf_st_writer_add(w, name, QF_DTYPE_U8, 1, sh, buf, &g_err));
  }
  cr_assert_eq(iot_count_entries(dir), 0, "data temp files are anonymous");
  qf_st_writer_abort(w);
  cr_assert_eq(iot_count_entries(dir), 0);
  qf_st_writer_abort(NULL);

  char *path = iot_join(dir, "one.safetensors");
  CHECK_OK(qf_st_writer_new_file(path, &w, &g_err));
  CHECK_OK(qf_st_writer_add(w, "x", QF_DTYPE_U8, 1, sh, buf, &g_err));
  qf_st_writer_abort(w);
  cr_assert_eq(iot_count_entries(dir), 0);
  free(path);
  iot_rmtree(dir);
  free(dir);
}

Test(st_roundtrip, finish_replaces_existing_file) {
  char *dir = iot_mkdtemp();
  char *path = iot_join(dir, "m.safetensors");
  cr_assert_eq(iot_write_bytes(path, "old junk", 8), 0);
  for (int round = 0; round < 2; round++) {
    qf_st_writer *w = NULL;
    CHECK_OK(qf_st_writer_new_file(path, &w, &g_err));
    int32_t v = 1000 + round;
    CHECK_OK(qf_st_writer_add(w, round ? "second" : "first", QF_DTYPE_I32, 0,
                              NULL, &v, &g_err));
    CHECK_OK(qf_st_writer_finish(w, &g_err));
    qf_st_file *f = NULL;
    CHECK_OK(qf_st_open(path, &f, &g_err));
    cr_assert_eq(qf_st_count(f), 1);
    cr_assert_str_eq(qf_st_at(f, 0)->name, round ? "second" : "first");
    cr_assert_eq(qf_st_at(f, 0)->ndim, 0);
    cr_assert_eq(memcmp(qf_st_at(f, 0)->data, &v, 4), 0);
    qf_st_close(f);
    cr_assert_eq(iot_count_entries(dir), 1);
  }
  free(path);
  iot_rmtree(dir);
  free(dir);
}

Test(st_roundtrip, failed_finish_leaves_no_partial_file) {
  /* the final name is taken by a folder: the rename must fail */
  char *dir = iot_mkdtemp();
  char *path = iot_join(dir, "m.safetensors");
  cr_assert_eq(mkdir(path, 0755), 0);
  qf_st_writer *w = NULL;
  CHECK_OK(qf_st_writer_new_file(path, &w, &g_err));
  uint8_t b[3] = {1, 2, 3};
  int64_t sh[1] = {3};
  CHECK_OK(qf_st_writer_add(w, "x", QF_DTYPE_U8, 1, sh, b, &g_err));
  qf_error e;
  cr_assert_neq(qf_st_writer_finish(w, &e), QF_OK);
  cr_assert_not_null(strstr(e.message, "m.safetensors"), "%s", e.message);
  cr_assert_eq(iot_count_entries(dir), 1, "only the folder we made");
  cr_assert_eq(iot_has_entry_containing(dir, ".tmp."), 0);
  free(path);
  iot_rmtree(dir);
  free(dir);

  /* sharded: shard 2's name is a folder; shard 1 must not stay behind */
  dir = iot_mkdtemp();
  char *s2 = iot_join(dir, "model-00002-of-00002.safetensors");
  cr_assert_eq(mkdir(s2, 0755), 0);
  CHECK_OK(qf_st_writer_new(dir, 4, &w, &g_err));
  CHECK_OK(qf_st_writer_add(w, "a", QF_DTYPE_U8, 1, sh, b, &g_err));
  CHECK_OK(qf_st_writer_add(w, "b", QF_DTYPE_U8, 1, sh, b, &g_err));
  cr_assert_neq(qf_st_writer_finish(w, &e), QF_OK);
  cr_assert_eq(iot_count_entries(dir), 1, "only the folder we made");
  free(s2);
  iot_rmtree(dir);
  free(dir);
}

/* ---- file utilities ---- */

Test(st_roundtrip, write_file_atomic_and_read_file) {
  char *dir = iot_mkdtemp();
  char *path = iot_join(dir, "config.json");
  CHECK_OK(qf_write_file_atomic(path, "{\"a\": 1}", 8, &g_err));
  char *text = NULL;
  size_t n = 0;
  CHECK_OK(qf_read_file(path, &text, &n, &g_err));
  cr_assert_eq(n, 8);
  cr_assert_str_eq(text, "{\"a\": 1}");
  free(text);
  CHECK_OK(qf_write_file_atomic(path, "", 0, &g_err));
  CHECK_OK(qf_read_file(path, &text, &n, &g_err));
  cr_assert_eq(n, 0);
  cr_assert_str_eq(text, "");
  free(text);
  cr_assert_eq(iot_count_entries(dir), 1);
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert_neq(sb.st_mode & 0444, 0, "readable, not a 0600 temp");

  qf_error e;
  char *missing = iot_join(dir, "nope.json");
  cr_assert_eq(qf_read_file(missing, &text, &n, &e), QF_ERR_NOT_FOUND);
  cr_assert_null(text);
  cr_assert_not_null(strstr(e.message, "nope.json: cannot open"), "%s",
                     e.message);
  cr_assert_neq(qf_read_file(dir, &text, &n, &e), QF_OK);
  char *deep = iot_join(dir, "no/such/dir/x");
  cr_assert_neq(qf_write_file_atomic(deep, "x", 1, &e), QF_OK);
  free(deep);
  free(missing);
  free(path);
  iot_rmtree(dir);
  free(dir);
}

/* qf_partial_dir_begin/commit: the all-or-nothing output folder that
 * quantize and convert build beside OUT and rename into place. */
Test(st_roundtrip, partial_dir_begin_and_commit) {
  char *dir = iot_mkdtemp();
  char *out = iot_join(dir, "out");
  char tmp[4096];
  CHECK_OK(qf_partial_dir_begin(out, 0, "quantize", tmp, sizeof tmp, &g_err));
  cr_assert_not_null(strstr(tmp, "out.partial-"), "%s", tmp);
  cr_assert_eq(iot_count_entries(tmp), 0);
  char *f = iot_join(tmp, "a");
  cr_assert_eq(iot_write_bytes(f, "1", 1), 0);
  free(f);
  CHECK_OK(qf_partial_dir_commit(tmp, out, 0, "quantize", &g_err));
  cr_assert_str_eq(tmp, "");
  cr_assert_eq(iot_count_entries(out), 1);
  cr_assert_eq(iot_count_entries(dir), 1, "no .partial folder left");

  qf_error e;
  cr_assert_eq(qf_partial_dir_begin(out, 0, "convert", tmp, sizeof tmp, &e),
               QF_ERR_INVALID_ARGUMENT);
  cr_assert_str_eq(tmp, "");
  cr_assert_str_eq(e.op, "convert");
  cr_assert_not_null(strstr(e.message, "already exists (use --force"), "%s", e.message);
  cr_assert_eq(iot_count_entries(dir), 1);

  CHECK_OK(qf_partial_dir_begin(out, 1, "quantize", tmp, sizeof tmp, &g_err));
  CHECK_OK(qf_partial_dir_commit(tmp, out, 1, "quantize", &g_err));
  cr_assert_eq(iot_count_entries(out), 0, "--force replaced the old folder");
  cr_assert_eq(iot_count_entries(dir), 1);

  char *deep = iot_join(dir, "no/such/out");
  cr_assert_eq(qf_partial_dir_begin(deep, 0, "quantize", tmp, sizeof tmp, &e), QF_ERR_IO);
  cr_assert_str_eq(tmp, "");
  cr_assert_not_null(strstr(e.message, "cannot create a folder beside it"), "%s", e.message);
  free(deep);
  free(out);
  iot_rmtree(dir);
  free(dir);
}

Test(st_roundtrip, checkpoint_single_file_and_config) {
  char *dir = iot_mkdtemp();
  write_sharded(dir, 0, 2, 3);
  char *cfg = iot_join(dir, "config.json");
  const char *cfg_text = "{\"model_type\": \"llama\"}\n";
  CHECK_OK(qf_write_file_atomic(cfg, cfg_text, strlen(cfg_text), &g_err));
  qf_checkpoint *c = NULL;
  CHECK_OK(qf_checkpoint_open(dir, &c, &g_err));
  cr_assert_str_eq(qf_checkpoint_config_json(c), cfg_text);
  cr_assert_eq(qf_checkpoint_count(c), 2);
  qf_checkpoint_close(c);

  char *file = iot_join(dir, "model.safetensors");
  CHECK_OK(qf_checkpoint_open(file, &c, &g_err));
  cr_assert_null(qf_checkpoint_config_json(c));
  cr_assert_str_eq(qf_checkpoint_dir(c), dir);
  cr_assert_eq(qf_checkpoint_count(c), 2);
  cr_assert_str_eq(qf_checkpoint_at(c, 1)->name, "layers.1.weight");
  qf_checkpoint_close(c);
  qf_checkpoint_close(NULL);
  free(file);
  free(cfg);
  iot_rmtree(dir);
  free(dir);
}
