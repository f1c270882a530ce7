/*
 * qf_st_selftest_write: the C side of the safetensors interop check
 * (tests/interop/safetensors_interop.py).
 *
 *   qf_st_selftest_write write DIR   writes DIR/selftest.safetensors (every
 *       dtype, 0-d and empty tensors, metadata) and DIR/sharded/ (several
 *       shards + model.safetensors.index.json) with contents the script
 *       recomputes independently;
 *   qf_st_selftest_write check FILE  reads FILE with qf_st_open and prints
 *       one line per tensor in data order ("tensor NAME DTYPE SHAPE NBYTES
 *       FNV1A64", tab-separated, SHAPE comma-separated) and one per metadata
 *       entry ("meta KEY VALUE"), so the script can compare a file written
 *       by the Python safetensors package with what qforge reads.
 *
 * Tensor bytes come from iot_fill (a 32-bit LCG, see io_test_util.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_test_util.h"
#include "qforge/qforge.h"

typedef struct item {
  const char *name;
  qf_dtype dtype;
  int ndim;
  int64_t shape[3];
} item;

/* Keep in sync with SINGLE in safetensors_interop.py. */
static const item k_single[] = {
    {"model.embed_tokens.weight", QF_DTYPE_F32, 2, {4, 3}},
    {"f64", QF_DTYPE_F64, 1, {3}},
    {"f16", QF_DTYPE_F16, 2, {2, 5}},
    {"bf16", QF_DTYPE_BF16, 2, {3, 2}},
    {"i64", QF_DTYPE_I64, 1, {2}},
    {"i32", QF_DTYPE_I32, 3, {2, 1, 2}},
    {"i16", QF_DTYPE_I16, 1, {3}},
    {"i8", QF_DTYPE_I8, 1, {7}},
    {"u64", QF_DTYPE_U64, 1, {1}},
    {"u32", QF_DTYPE_U32, 1, {2}},
    {"u16", QF_DTYPE_U16, 1, {5}},
    {"u8", QF_DTYPE_U8, 1, {9}},
    {"bool", QF_DTYPE_BOOL, 1, {6}},
    {"f8_e4m3", QF_DTYPE_F8_E4M3, 1, {4}},
    {"f8_e5m2", QF_DTYPE_F8_E5M2, 2, {2, 2}},
    {"scalar", QF_DTYPE_F32, 0, {0}},
    {"empty", QF_DTYPE_F16, 2, {0, 4}},
};

static uint64_t nbytes_of(const item *it) {
  uint64_t n = qf_dtype_size(it->dtype);
  for (int d = 0; d < it->ndim; d++) n *= (uint64_t)it->shape[d];
  return n;
}

/* BOOL must hold 0/1 for numpy-based readers to round-trip the bytes. */
static void fill(const item *it, unsigned char *buf, uint64_t n, unsigned seed) {
  iot_fill(buf, n, seed);
  if (it->dtype == QF_DTYPE_BOOL)
    for (uint64_t i = 0; i < n; i++) buf[i] &= 1;
}

static int die(const qf_error *e) {
  char buf[1400];
  fprintf(stderr, "qf_st_selftest_write: %s\n", qf_error_format(e, buf, sizeof buf));
  return 1;
}

static int add_items(qf_st_writer *w, const item *items, size_t n,
                     unsigned seed0, qf_error *e) {
  for (size_t i = 0; i < n; i++) {
    uint64_t nb = nbytes_of(&items[i]);
    unsigned char *buf = malloc(nb ? nb : 1);
    if (!buf) return 1;
    fill(&items[i], buf, nb, seed0 + (unsigned)i);
    qf_status st = qf_st_writer_add(w, items[i].name, items[i].dtype,
                                    items[i].ndim, items[i].shape, buf, e);
    free(buf);
    if (st != QF_OK) return 1;
  }
  return 0;
}

static int do_write(const char *dir) {
  qf_error e;
  qf_error_clear(&e);
  char *single = iot_join(dir, "selftest.safetensors");
  qf_st_writer *w = NULL;
  if (qf_st_writer_new_file(single, &w, &e) != QF_OK) return die(&e);
  if (qf_st_writer_set_metadata(w, "qforge_selftest", "1", &e) != QF_OK ||
      add_items(w, k_single, sizeof k_single / sizeof k_single[0], 0, &e)) {
    qf_st_writer_abort(w);
    return die(&e);
  }
  if (qf_st_writer_finish(w, &e) != QF_OK) return die(&e);
  free(single);

  /* Sharded: 7 F16 tensors of 32 bytes (numpy-readable), limit 80 bytes ->
   * shards of 2, 2, 2, 1. Names chosen so sorted order differs from
   * insertion order. Keep in sync with SHARDED in the script. */
  static const item sharded[] = {
      {"z.last", QF_DTYPE_F16, 2, {4, 4}},
      {"layers.10.w", QF_DTYPE_F16, 2, {4, 4}},
      {"layers.9.w", QF_DTYPE_F16, 2, {4, 4}},
      {"layers.2.w", QF_DTYPE_F16, 1, {16}},
      {"a.first", QF_DTYPE_F16, 2, {2, 8}},
      {"m.mid", QF_DTYPE_F16, 2, {8, 2}},
      {"m.end", QF_DTYPE_F16, 1, {16}},
  };
  char *sdir = iot_join(dir, "sharded");
  if (qf_st_writer_new(sdir, 80, &w, &e) != QF_OK) return die(&e);
  if (add_items(w, sharded, sizeof sharded / sizeof sharded[0], 100, &e)) {
    qf_st_writer_abort(w);
    return die(&e);
  }
  if (qf_st_writer_finish(w, &e) != QF_OK) return die(&e);
  free(sdir);
  return 0;
}

static uint64_t fnv1a(const unsigned char *p, uint64_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static int do_check(const char *path) {
  qf_error e;
  qf_error_clear(&e);
  qf_st_file *f = NULL;
  if (qf_st_open(path, &f, &e) != QF_OK) return die(&e);
  for (size_t i = 0; i < qf_st_count(f); i++) {
    const qf_st_tensor *t = qf_st_at(f, i);
    printf("tensor\t%s\t%s\t", t->name, qf_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
      printf("%s%" PRId64, d ? "," : "", t->shape[d]);
    printf("\t%" PRIu64 "\t%016" PRIx64 "\n", t->nbytes,
           fnv1a(t->data, t->nbytes));
  }
  for (size_t i = 0; i < qf_st_metadata_count(f); i++) {
    const char *k = qf_st_metadata_key(f, i);
    printf("meta\t%s\t%s\n", k, qf_st_metadata(f, k));
  }
  qf_st_close(f);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "write") == 0) return do_write(argv[2]);
  if (argc == 3 && strcmp(argv[1], "check") == 0) return do_check(argv[2]);
  fprintf(stderr, "usage: %s write DIR | check FILE\n", argv[0]);
  return 2;
}
