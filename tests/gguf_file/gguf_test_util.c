/*
 * gguf_test_util.c — byte builders, golden-file paths and temporary folders
 * for the gguf_file tests (see gguf_test_util.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "gguf_test_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tb_bytes(tb *b, const void *data, size_t n) {
  if (n == 0) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    b->p = realloc(b->p, cap);
    cr_assert_not_null(b->p);
    b->cap = cap;
  }
  if (data)
    memcpy(b->p + b->n, data, n);
  else
    memset(b->p + b->n, 0, n);
  b->n += n;
}

void tb_u8(tb *b, uint8_t v) { tb_bytes(b, &v, 1); }
void tb_u16(tb *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  tb_bytes(b, x, 2);
}
void tb_u32(tb *b, uint32_t v) {
  uint8_t x[4];
  for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
  tb_bytes(b, x, 4);
}
void tb_u64(tb *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
  tb_bytes(b, x, 8);
}
void tb_f32(tb *b, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  tb_u32(b, u);
}
void tb_f64(tb *b, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  tb_u64(b, u);
}
void tb_str(tb *b, const char *s) {
  tb_u64(b, strlen(s));
  tb_bytes(b, s, strlen(s));
}
void tb_zeros(tb *b, size_t n) { tb_bytes(b, NULL, n); }
void tb_pad(tb *b, size_t align) {
  if (b->n % align) tb_zeros(b, align - b->n % align);
}
void tb_free(tb *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

void tb_header(tb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  tb_bytes(b, "GGUF", 4);
  tb_u32(b, version);
  tb_u64(b, n_tensors);
  tb_u64(b, n_kv);
}

void tb_kv_u32(tb *b, const char *key, uint32_t v) {
  tb_str(b, key);
  tb_u32(b, 4);
  tb_u32(b, v);
}

void tb_tensor(tb *b, const char *name, uint32_t n_dims, const int64_t *ne, int32_t type,
               uint64_t offset) {
  tb_str(b, name);
  tb_u32(b, n_dims);
  for (uint32_t i = 0; i < n_dims; i++) tb_u64(b, (uint64_t)ne[i]);
  tb_u32(b, (uint32_t)type);
  tb_u64(b, offset);
}

const char *golden_path(const char *name) {
  static char buf[4096];
  const char *dir = getenv("QF_GOLDEN_DIR");
  cr_assert_not_null(dir, "QF_GOLDEN_DIR is not set: the golden files are required");
  snprintf(buf, sizeof buf, "%s/gguf-files/%s", dir, name);
  return buf;
}

uint8_t *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s (missing golden or output file)", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  cr_assert_geq(n, 0);
  uint8_t *p = malloc(n ? (size_t)n : 1);
  cr_assert_not_null(p);
  cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *size = (size_t)n;
  return p;
}

const char *temp_dir(void) {
  static char buf[512];
  const char *base = getenv("TMPDIR");
  snprintf(buf, sizeof buf, "%s/qf_gguf_test.XXXXXX", base && *base ? base : "/tmp");
  cr_assert_not_null(mkdtemp(buf), "mkdtemp failed");
  return buf;
}

void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[1024];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}
