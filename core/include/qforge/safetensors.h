/*
 * Checkpoint I/O: safetensors files (mmap'ed, header parsed with jansson and
 * validated), HF model folders (config.json + one file or shards with
 * model.safetensors.index.json), and a streaming, atomic safetensors writer
 * that shards above a size limit.
 *
 * Reading never copies tensor data: qf_st_tensor.data points into the map.
 * Writing streams tensor data to a temporary file per shard, so memory stays
 * bounded by one tensor; finish() writes header + data to `<name>.tmp.*`,
 * fsyncs and renames, so a crash or error never leaves a partial file under
 * the final name.
 */
#ifndef QFORGE_SAFETENSORS_H
#define QFORGE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "qforge/plugin.h"
#include "qforge/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

#define QF_MAX_DIMS 8

/* One tensor of an opened file. Lives as long as its file/checkpoint. */
typedef struct qf_st_tensor {
  const char *name;
  qf_dtype dtype;
  int ndim;
  int64_t shape[QF_MAX_DIMS];
  uint64_t nbytes;
  const void *data;      /* into the mmap; read-only */
  const char *file;      /* path of the file holding it */
} qf_st_tensor;

/* ---- one .safetensors file ---- */

typedef struct qf_st_file qf_st_file;

/* mmap and validate `path`: 8-byte header length within the file and
 * ≤ 100 MB, header is a JSON object, every entry has a known dtype, a shape
 * of non-negative ints (≤ QF_MAX_DIMS), data_offsets [begin, end] with
 * end - begin == numel × dtype size, in range, and the tensors tile the data
 * section in order without gaps or overlaps; `__metadata__` holds only
 * strings. Errors name the file and the tensor/field. */
QF_API qf_status qf_st_open(const char *path, qf_st_file **out, qf_error *err);
QF_API void qf_st_close(qf_st_file *f);
QF_API size_t qf_st_count(const qf_st_file *f);
/* Tensors in data-offset order. */
QF_API const qf_st_tensor *qf_st_at(const qf_st_file *f, size_t i);
QF_API const qf_st_tensor *qf_st_find(const qf_st_file *f, const char *name);
/* A `__metadata__` string value, or NULL. */
QF_API const char *qf_st_metadata(const qf_st_file *f, const char *key);
/* Enumerate `__metadata__`: the number of keys and the i-th key (header
 * order; NULL past the end). Strings live as long as the file. */
QF_API size_t qf_st_metadata_count(const qf_st_file *f);
QF_API const char *qf_st_metadata_key(const qf_st_file *f, size_t i);

/* ---- an HF model folder (or a single file) ---- */

typedef struct qf_checkpoint qf_checkpoint;

/* `path` is a folder (config.json optional; model.safetensors, or the
 * index + shards) or a single .safetensors file. The index's weight_map
 * must name existing shards and every tensor must be in its shard. */
QF_API qf_status qf_checkpoint_open(const char *path, qf_checkpoint **out,
                                    qf_error *err);
QF_API void qf_checkpoint_close(qf_checkpoint *c);
QF_API size_t qf_checkpoint_count(const qf_checkpoint *c);
/* Tensors in a stable order: shard by shard, each in data order. */
QF_API const qf_st_tensor *qf_checkpoint_at(const qf_checkpoint *c, size_t i);
QF_API const qf_st_tensor *qf_checkpoint_find(const qf_checkpoint *c,
                                              const char *name);
/* config.json text (NULL if the folder has none / path was a file). */
QF_API const char *qf_checkpoint_config_json(const qf_checkpoint *c);
/* The folder (or the file's folder). */
QF_API const char *qf_checkpoint_dir(const qf_checkpoint *c);

/* ---- writer ---- */

typedef struct qf_st_writer qf_st_writer;

/* Write into `out_dir` (created if missing). Output is
 * `<out_dir>/model.safetensors`, or, when the data exceeds
 * `shard_limit_bytes` (0 = never shard), `model-0000i-of-0000n.safetensors`
 * plus `model.safetensors.index.json`. Metadata {"format": "pt"} is written
 * unless set otherwise. */
QF_API qf_status qf_st_writer_new(const char *out_dir,
                                  uint64_t shard_limit_bytes,
                                  qf_st_writer **out, qf_error *err);
/* Single-file variant: exactly `path`, never sharded. */
QF_API qf_status qf_st_writer_new_file(const char *path, qf_st_writer **out,
                                       qf_error *err);
QF_API qf_status qf_st_writer_set_metadata(qf_st_writer *w, const char *key,
                                           const char *value, qf_error *err);
/* Append a tensor (data copied out before returning). Duplicate names are an
 * error. */
QF_API qf_status qf_st_writer_add(qf_st_writer *w, const char *name,
                                  qf_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data,
                                  qf_error *err);
/* Write everything atomically and free the writer (also on failure). */
QF_API qf_status qf_st_writer_finish(qf_st_writer *w, qf_error *err);
/* Drop everything written so far (temp files removed) and free. */
QF_API void qf_st_writer_abort(qf_st_writer *w);

/* ---- small file utilities shared by the core ---- */

/* Write `n` bytes to `path` atomically (temp in the same folder, fsync,
 * rename, fsync of the folder). */
QF_API qf_status qf_write_file_atomic(const char *path, const void *data,
                                      size_t n, qf_error *err);
/* Create a folder and its parents (like mkdir -p). */
QF_API qf_status qf_mkdir_p(const char *dir, qf_error *err);
/* Remove a folder tree, best effort (used to drop partial outputs). */
QF_API void qf_remove_tree(const char *dir);
/* A whole output folder, all or nothing. qf_partial_dir_begin refuses an
 * existing `out_dir` unless `force`, then creates the sibling folder
 * `out_dir.partial-XXXXXX` and writes its path into `tmp` (`cap` bytes; ""
 * on failure, when nothing was created). qf_partial_dir_commit (with `force`,
 * first dropping an existing `out_dir`) renames `tmp` onto `out_dir` and sets
 * `tmp` to "" on success; on failure `tmp` stays for the caller to remove with
 * qf_remove_tree. `op` names the operation in error messages. */
QF_API qf_status qf_partial_dir_begin(const char *out_dir, int force, const char *op,
                                      char *tmp, size_t cap, qf_error *err);
QF_API qf_status qf_partial_dir_commit(char *tmp, const char *out_dir, int force,
                                       const char *op, qf_error *err);
/* Read a whole file into a NUL-terminated malloc'ed buffer (caller frees). */
QF_API qf_status qf_read_file(const char *path, char **out, size_t *n,
                              qf_error *err);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_SAFETENSORS_H */
