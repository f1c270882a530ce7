/*
 * gguf_test_util.h — helpers shared by the gguf_file test suites.
 *
 * Purpose: build GGUF byte images by hand (a growable little-endian byte
 * buffer with GGUF string / record helpers), locate the golden files, read
 * whole files, and make private temporary folders. Test-only code.
 */
#ifndef QF_GGUF_TEST_UTIL_H
#define QF_GGUF_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb {
  uint8_t *p;
  size_t n, cap;
} tb;

void tb_bytes(tb *b, const void *data, size_t n);
void tb_u8(tb *b, uint8_t v);
void tb_u16(tb *b, uint16_t v);
void tb_u32(tb *b, uint32_t v);
void tb_u64(tb *b, uint64_t v);
void tb_f32(tb *b, float v);
void tb_f64(tb *b, double v);
void tb_str(tb *b, const char *s); /* u64 length + bytes */
void tb_zeros(tb *b, size_t n);
void tb_pad(tb *b, size_t align); /* zero bytes up to a multiple of align */
void tb_free(tb *b);

/* Header: magic, version, tensor count, kv count. */
void tb_header(tb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
/* A u32 KV record. */
void tb_kv_u32(tb *b, const char *key, uint32_t v);
/* A tensor-info record with n_dims dims from ne. */
void tb_tensor(tb *b, const char *name, uint32_t n_dims, const int64_t *ne, int32_t type,
               uint64_t offset);

/* Golden folder (QF_GGUF_GOLDEN) joined with `name` under gguf-files/;
 * returns a static buffer. Fails the test (cr_assert) if QF_GOLDEN_DIR is unset. */
const char *golden_path(const char *name);
/* Whole file into a malloc'd buffer (*size set); fails the test if missing. */
uint8_t *read_all(const char *path, size_t *size);
/* A fresh private temporary folder (static buffer); fails the test on error. */
const char *temp_dir(void);
/* Remove a folder made by temp_dir and everything in it (flat). */
void remove_dir(const char *dir);

#endif
