/*
 * gguf_internal.h — private structures shared by the GGUF reader files.
 *
 * Purpose: the layout of qf_gguf_file (filled by gguf_read.c, queried by
 * gguf_kv.c) and the small open-addressing name index used for keys and
 * tensor names. Not part of the plugin's interface.
 */
#ifndef QF_GGUF_INTERNAL_H
#define QF_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gguf_file.h"

/* Name → index map over borrowed NUL-terminated names (open addressing,
 * capacity a power of two, at most half full). */
typedef struct qf__gguf_index {
  size_t *slots; /* record index + 1; 0 = empty */
  size_t cap;
} qf__gguf_index;

uint64_t qf__gguf_hash(const char *s);
/* Build over `n` records whose name pointer sits at `base + i*stride`.
 * Returns 0, -1 on allocation failure, or 1 when two names are equal:
 * *dup_at = the later record, *dup_of = the earlier one. */
int qf__gguf_index_build(qf__gguf_index *ix, const void *base, size_t stride, size_t n,
                         size_t *dup_at, size_t *dup_of);
/* Index of `name`, or -1. */
long long qf__gguf_index_find(const qf__gguf_index *ix, const void *base, size_t stride,
                              const char *name);
void qf__gguf_index_free(qf__gguf_index *ix);

struct qf_gguf_file {
  char *path;          /* name used in messages (owned) */
  const uint8_t *base; /* mapping or borrowed buffer */
  size_t size;
  int mapped; /* munmap on close */
  uint32_t version;
  uint32_t alignment;      /* declared (general.alignment) or 32 */
  uint32_t data_alignment; /* alignment the layout uses */
  uint64_t data_offset;
  int strict_layout;
  char *note; /* layout note (owned) or NULL */

  qf_gguf_kv *kvs;
  size_t n_kv;
  qf_gguf_tensor *tensors;
  size_t n_tensors;
  qf_gguf_string *strs; /* pool behind every kv->strs */
  size_t n_strs;
  char *names;  /* arena of NUL-terminated keys */
  char *tnames; /* arena of NUL-terminated tensor names */
  qf__gguf_index kv_index;
  qf__gguf_index tensor_index;
};

/* Little-endian decoders over unaligned bytes. */
static inline uint16_t qf__rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t qf__rd_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t qf__rd_u64(const uint8_t *p) {
  return (uint64_t)qf__rd_u32(p) | ((uint64_t)qf__rd_u32(p + 4) << 32);
}

#endif /* QF_GGUF_INTERNAL_H */
