/*
 * Implementation of the core_io test helpers (see io_test_util.h). Scratch
 * folders go under QF_BUILD_DIR (set by ctest) so nothing machine-specific
 * is written into the tests.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "io_test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *iot_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) abort();
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

char *iot_mkdtemp(void) {
  const char *base = getenv("QF_BUILD_DIR");
  if (!base || !*base) base = getenv("TMPDIR");
  if (!base || !*base) base = P_tmpdir;
  char *tmpl = iot_join(base, "qf-core-io-XXXXXX");
  if (!mkdtemp(tmpl)) {
    perror("mkdtemp");
    abort();
  }
  return tmpl;
}

void iot_rmtree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *de;
      while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = iot_join(path, de->d_name);
        iot_rmtree(p);
        free(p);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

int iot_write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = n == 0 || fwrite(data, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int iot_write_st(const char *path, uint64_t hlen, const char *header,
                 size_t data_len) {
  size_t hl = strlen(header);
  size_t total = 8 + hl + data_len;
  unsigned char *buf = calloc(1, total);
  if (!buf) return -1;
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
  memcpy(buf + 8, header, hl);
  iot_fill(buf + 8 + hl, data_len, 99);
  int rc = iot_write_bytes(path, buf, total);
  free(buf);
  return rc;
}

int iot_write_st_auto(const char *path, const char *header, size_t data_len) {
  return iot_write_st(path, strlen(header), header, data_len);
}

int iot_count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  closedir(d);
  return n;
}

int iot_has_entry_containing(const char *dir, const char *needle) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int hit = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strstr(de->d_name, needle)) hit = 1;
  closedir(d);
  return hit;
}

char *iot_read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += r;
    if (cap - len - 1 == 0) {
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        buf = NULL;
      }
      buf = nb;
    }
  }
  fclose(f);
  if (!buf) return NULL;
  buf[len] = '\0';
  if (n) *n = len;
  return buf;
}

void iot_fill(void *buf, size_t n, unsigned seed) {
  unsigned char *p = buf;
  uint32_t x = seed * 2654435761u + 12345u;
  for (size_t j = 0; j < n; j++) {
    x = x * 1664525u + 1013904223u;
    p[j] = (unsigned char)(x >> 24);
  }
}
