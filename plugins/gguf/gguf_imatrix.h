/*
 * gguf_imatrix.h — reading llama.cpp importance-matrix (imatrix) files.
 *
 * Purpose: turn an imatrix file, in either of its two formats, into one
 * importance vector per weight tensor, computed exactly as llama-quantize
 * does before it hands them to the quantizers (spec gguf_ggml.md §5.2):
 *  - GGUF form (`imatrix.gguf`, the default since mid-2025): tensors
 *    `<W>.in_sum2` (F32, ne = [n_in, n_mat]) and `<W>.counts` (F32, n_mat),
 *    optionally `<W>.in_sum`; value = in_sum2 / count per matrix, 1.0 where a
 *    matrix saw no data. Keys imatrix.datasets, imatrix.chunk_count and
 *    imatrix.chunk_size are required, as llama-quantize requires them.
 *  - legacy `.dat`: int32 entry count, then per entry name, ncall and values
 *    stored as mean·ncall; value = stored / ncall when ncall > 0. An optional
 *    trailer holds the chunk count and the dataset name.
 * A file that starts with the GGUF magic is read as GGUF, anything else as
 * legacy (llama.cpp falls back the same way). Entries come sorted by name.
 */
#ifndef QF_GGUF_IMATRIX_H
#define QF_GGUF_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_gguf_imatrix_entry {
  const char *name;         /* weight tensor name, e.g. "blk.0.ffn_up.weight" */
  int64_t n;                /* number of values = ne0 * n_mat */
  int64_t ne0;              /* values per matrix (the weight's ne[0]) */
  int64_t n_mat;            /* matrices (experts for 3-D weights; 1 for dense and legacy) */
  const float *values;      /* n importance values (mean squared activation) */
  const float *activations; /* n mean activations (GGUF in_sum), or NULL */
  const int64_t *counts;    /* n_mat counts (legacy: the single ncall) */
} qf_gguf_imatrix_entry;

typedef struct qf_gguf_imatrix qf_gguf_imatrix;

/* Load `path`. On success *out is owned by the caller (qf_gguf_imatrix_free).
 * Errors name the file, the offset or entry, and the field: QF_ERR_IO,
 * QF_ERR_FORMAT, QF_ERR_NO_MEMORY. */
qf_status qf_gguf_imatrix_load(const char *path, qf_gguf_imatrix **out, qf_error *err);

/* Same over a buffer (borrowed during the call only); `name` for messages. */
qf_status qf_gguf_imatrix_load_memory(const void *data, size_t size, const char *name,
                                      qf_gguf_imatrix **out, qf_error *err);

void qf_gguf_imatrix_free(qf_gguf_imatrix *m); /* NULL is ignored */

/* 1 for the legacy .dat format, 0 for GGUF. */
int qf_gguf_imatrix_is_legacy(const qf_gguf_imatrix *m);
/* imatrix.chunk_count (legacy: the trailer's chunk count, 0 if absent). */
uint32_t qf_gguf_imatrix_chunk_count(const qf_gguf_imatrix *m);
/* imatrix.chunk_size (legacy: 0). */
uint32_t qf_gguf_imatrix_chunk_size(const qf_gguf_imatrix *m);
size_t qf_gguf_imatrix_dataset_count(const qf_gguf_imatrix *m);
const char *qf_gguf_imatrix_dataset(const qf_gguf_imatrix *m, size_t i); /* borrowed */

size_t qf_gguf_imatrix_count(const qf_gguf_imatrix *m);
/* Borrowed until qf_gguf_imatrix_free; NULL when out of range / absent. */
const qf_gguf_imatrix_entry *qf_gguf_imatrix_at(const qf_gguf_imatrix *m, size_t i);
const qf_gguf_imatrix_entry *qf_gguf_imatrix_find(const qf_gguf_imatrix *m, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* QF_GGUF_IMATRIX_H */
