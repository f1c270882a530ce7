/*
 * Helpers shared by the core_io suites: per-test scratch folders (under
 * QF_BUILD_DIR, else TMPDIR), raw safetensors files built byte by byte for
 * the malformed-header cases, folder listings for the atomicity checks and a
 * deterministic byte pattern for tensor contents.
 */
#ifndef QF_IO_TEST_UTIL_H
#define QF_IO_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh folder; malloc'ed path, removed with iot_rmtree. */
char *iot_mkdtemp(void);
/* rm -r (files and folders below, then the folder). */
void iot_rmtree(const char *path);
/* "dir/name" (malloc'ed). */
char *iot_join(const char *dir, const char *name);
/* Write exactly these bytes. Returns 0 on success. */
int iot_write_bytes(const char *path, const void *data, size_t n);
/* Write a safetensors file: 8-byte LE `hlen`, then `header` (strlen bytes,
 * whatever hlen says), then `data_len` bytes of data. */
int iot_write_st(const char *path, uint64_t hlen, const char *header,
                 size_t data_len);
/* Same with hlen = strlen(header). */
int iot_write_st_auto(const char *path, const char *header, size_t data_len);
/* Number of entries in a folder (without . and ..), -1 on error. */
int iot_count_entries(const char *dir);
/* 1 if some entry of dir contains `needle` in its name. */
int iot_has_entry_containing(const char *dir, const char *needle);
/* Read a whole file (malloc'ed, NUL-terminated). NULL on error. */
char *iot_read_all(const char *path, size_t *n);
/* Deterministic pattern: byte j of tensor `seed`. */
void iot_fill(void *buf, size_t n, unsigned seed);

#endif
