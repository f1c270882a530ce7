/*
 * gguf_index.c — name → record index for GGUF keys and tensor names.
 *
 * Purpose: constant-time lookup of a key or tensor name among the records of
 * an open file, and detection of duplicates while building it. Open
 * addressing with linear probing over FNV-1a hashes; the table borrows the
 * records (each starts with its NUL-terminated name pointer).
 */
#include <stdlib.h>
#include <string.h>

#include "gguf_internal.h"

uint64_t qf__gguf_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 1099511628211ull;
  }
  return h;
}

static const char *name_at(const void *base, size_t stride, size_t i) {
  const char *const *pp = (const char *const *)(const void *)((const char *)base + i * stride);
  return *pp;
}

int qf__gguf_index_build(qf__gguf_index *ix, const void *base, size_t stride, size_t n,
                         size_t *dup_at, size_t *dup_of) {
  ix->slots = NULL;
  ix->cap = 0;
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  ix->slots = calloc(cap, sizeof *ix->slots);
  if (!ix->slots) return -1;
  ix->cap = cap;
  for (size_t i = 0; i < n; i++) {
    const char *name = name_at(base, stride, i);
    size_t s = (size_t)qf__gguf_hash(name) & (cap - 1);
    while (ix->slots[s]) {
      size_t j = ix->slots[s] - 1;
      if (strcmp(name_at(base, stride, j), name) == 0) {
        if (dup_at) *dup_at = i;
        if (dup_of) *dup_of = j;
        return 1;
      }
      s = (s + 1) & (cap - 1);
    }
    ix->slots[s] = i + 1;
  }
  return 0;
}

long long qf__gguf_index_find(const qf__gguf_index *ix, const void *base, size_t stride,
                              const char *name) {
  if (!ix->slots || !name) return -1;
  size_t s = (size_t)qf__gguf_hash(name) & (ix->cap - 1);
  while (ix->slots[s]) {
    size_t j = ix->slots[s] - 1;
    if (strcmp(name_at(base, stride, j), name) == 0) return (long long)j;
    s = (s + 1) & (ix->cap - 1);
  }
  return -1;
}

void qf__gguf_index_free(qf__gguf_index *ix) {
  free(ix->slots);
  ix->slots = NULL;
  ix->cap = 0;
}
