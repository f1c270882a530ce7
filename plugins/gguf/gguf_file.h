/*
 * gguf_file.h — reading and writing GGUF (version 2 and 3) files, in plain C.
 *
 * Purpose: the on-disk container of llama.cpp models. The reader maps a file
 * (or borrows a memory buffer), checks every rule of the format before it
 * trusts a byte (magic, version, counts against the file size, string and
 * array limits, tensor names, shapes, ggml type ids, offsets, alignment,
 * overlapping data, duplicate keys and names) and then exposes the key/value
 * metadata and the tensor directory without copying the data. The writer
 * builds a file in the strict layout llama.cpp requires (KVs in insertion
 * order, tensor infos, padded data at running offsets) and publishes it
 * atomically (temporary file, fsync, rename). Nothing here knows the plugin
 * ABI; errors are reported through the SDK's qf_error with the file name, the
 * byte offset and the field.
 *
 * Threading: a qf_gguf_file is immutable after open and may be read from any
 * number of threads. A qf_gguf_writer is used by one thread at a time.
 * All multi-byte values are little-endian in files; the typed accessors decode
 * them, so callers never cast raw pointers.
 */
#ifndef QF_GGUF_FILE_H
#define QF_GGUF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ constants */

#define QF_GGUF_MAGIC "GGUF"
#define QF_GGUF_VERSION 3u
#define QF_GGUF_DEFAULT_ALIGNMENT 32u
#define QF_GGUF_MAX_DIMS 4
/* Tensor names are at most 63 bytes (ggml's GGML_MAX_NAME is 64 with NUL). */
#define QF_GGUF_MAX_NAME 63
/* Limits of ggml's reader (gguf.cpp): 1 GiB strings, 2^30 array elements. */
#define QF_GGUF_MAX_STRING (1024ull * 1024 * 1024)
#define QF_GGUF_MAX_ARRAY (1024ull * 1024 * 1024)
/* Keys longer than this are refused (ggml has no smaller limit; real keys are
 * a few dozen bytes). */
#define QF_GGUF_MAX_KEY 65535
#define QF_GGUF_KEY_ALIGNMENT "general.alignment"

/* GGUF metadata value types (gguf_type); the numbering is the file's. */
typedef enum qf_gguf_vtype {
  QF_GGUF_VT_UINT8 = 0,
  QF_GGUF_VT_INT8 = 1,
  QF_GGUF_VT_UINT16 = 2,
  QF_GGUF_VT_INT16 = 3,
  QF_GGUF_VT_UINT32 = 4,
  QF_GGUF_VT_INT32 = 5,
  QF_GGUF_VT_FLOAT32 = 6,
  QF_GGUF_VT_BOOL = 7,
  QF_GGUF_VT_STRING = 8,
  QF_GGUF_VT_ARRAY = 9,
  QF_GGUF_VT_UINT64 = 10,
  QF_GGUF_VT_INT64 = 11,
  QF_GGUF_VT_FLOAT64 = 12,
  QF_GGUF_VT_COUNT = 13
} qf_gguf_vtype;

/* Name of a value type as gguf.cpp prints it ("u32", "str", "arr", ...);
 * "?" for an unknown id. Static storage. */
const char *qf_gguf_vtype_name(int32_t vtype);

/* Bytes of one scalar of a fixed-size value type; 0 for STRING, ARRAY and
 * unknown ids. */
size_t qf_gguf_vtype_size(int32_t vtype);

/* ------------------------------------------------------------ ggml types */

/* What the container needs to know about a ggml tensor type id: its name
 * (ggml_type_name, e.g. "q4_K"), elements per block and bytes per block.
 * Returns 1 for a type a file may hold; 0 for a removed id (4, 5, 31-33,
 * 36-38: *name is still set, block and size are 0) and -1 for an id this
 * build does not know (negative or newer than the table; *name = NULL).
 * Any output pointer may be NULL. */
int qf_gguf_ggml_type_info(int32_t type, const char **name, int64_t *block, size_t *type_size);

/* Number of ggml type ids the table knows (ids 0 .. count-1). */
int32_t qf_gguf_ggml_type_count(void);

/* Id of a ggml type name (case-insensitive, e.g. "Q4_K"); -1 if unknown. */
int32_t qf_gguf_ggml_type_from_name(const char *name);

/* Bytes of a tensor of `type` with dims ne[0..3]. Returns 0 and sets *nbytes
 * when the type is usable, ne[0] is a multiple of its block size, every ne is
 * >= 0 and both the element count and the byte count fit in int64; returns
 * -1 otherwise. */
int qf_gguf_tensor_nbytes(int32_t type, const int64_t ne[QF_GGUF_MAX_DIMS], uint64_t *nbytes);

/* ------------------------------------------------------------ reader */

typedef struct qf_gguf_file qf_gguf_file;

/* A borrowed byte string; NOT NUL-terminated (GGUF strings carry a length). */
typedef struct qf_gguf_string {
  const char *data;
  uint64_t len;
} qf_gguf_string;

/* One decoded scalar. Which member is valid follows the value type. */
typedef union qf_gguf_value {
  uint8_t u8;
  int8_t i8;
  uint16_t u16;
  int16_t i16;
  uint32_t u32;
  int32_t i32;
  float f32;
  bool b;
  uint64_t u64;
  int64_t i64;
  double f64;
  qf_gguf_string str;
} qf_gguf_value;

/* One key/value record, owned by the file (valid until qf_gguf_close). */
typedef struct qf_gguf_kv {
  const char *key;            /* NUL-terminated */
  qf_gguf_vtype type;         /* QF_GGUF_VT_ARRAY for arrays */
  qf_gguf_vtype elem_type;    /* element type of an array; == type for scalars */
  uint64_t n;                 /* elements: 1 for a scalar */
  uint64_t offset;            /* file offset of the record (its key length) */
  uint64_t value_offset;      /* file offset of the first element's bytes */
  uint64_t value_nbytes;      /* bytes of all elements (strings: length fields too) */
  const uint8_t *value;       /* raw little-endian bytes, unaligned; borrowed */
  const qf_gguf_string *strs; /* STRING scalar or array: n strings; else NULL */
} qf_gguf_kv;

/* One tensor-info record, owned by the file. */
typedef struct qf_gguf_tensor {
  const char *name;             /* NUL-terminated, at most 63 bytes */
  int32_t type;                 /* ggml type id */
  uint32_t n_dims;              /* as stored (0..4); ne[] beyond it are 1 */
  int64_t ne[QF_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension */
  uint64_t offset;              /* relative to the data section, as stored */
  uint64_t nbytes;              /* exact size of the data (no padding) */
  uint64_t info_offset;         /* file offset of the tensor-info record */
  const void *data;             /* borrowed: file start + data_offset + offset */
} qf_gguf_tensor;

/* Map `path` read-only and validate it completely. On success *out is a new
 * file the caller owns and releases with qf_gguf_close; the tensor data stays
 * mapped (not copied) until then. On failure *out is NULL, err names the
 * file, byte offset and field; status QF_ERR_IO (cannot open/map) or
 * QF_ERR_FORMAT (malformed), QF_ERR_NO_MEMORY. */
qf_status qf_gguf_open(const char *path, qf_gguf_file **out, qf_error *err);

/* Same over a caller's buffer: `data` is borrowed and must outlive the file;
 * `name` (copied) is used in messages. */
qf_status qf_gguf_open_memory(const void *data, size_t size, const char *name, qf_gguf_file **out,
                              qf_error *err);

/* Release a file from qf_gguf_open*; NULL is ignored. Every pointer obtained
 * from the file becomes invalid. */
void qf_gguf_close(qf_gguf_file *f);

/* File-level facts (borrowed / plain values). */
const char *qf_gguf_path(const qf_gguf_file *f);
uint32_t qf_gguf_version(const qf_gguf_file *f);
uint64_t qf_gguf_file_size(const qf_gguf_file *f);
const void *qf_gguf_file_data(const qf_gguf_file *f); /* whole file, borrowed */
/* `general.alignment` (or 32 when absent). */
uint32_t qf_gguf_alignment(const qf_gguf_file *f);
/* Alignment the data layout actually uses. Equal to qf_gguf_alignment except
 * for files written by ggml's C writer after setting general.alignment on a
 * fresh context: gguf.cpp keeps laying the file out at 32 while storing the
 * key. The reader accepts such a file only when it is not valid at the
 * declared value and is exactly what that writer produces at 32 (running
 * padded offsets, file size = data offset + padded sizes, zero padding), so a
 * damaged file is never reinterpreted; qf_gguf_layout_note then explains it. */
uint32_t qf_gguf_data_alignment(const qf_gguf_file *f);
const char *qf_gguf_layout_note(const qf_gguf_file *f); /* NULL if none */
/* File offset of the data section. */
uint64_t qf_gguf_data_offset(const qf_gguf_file *f);
/* 1 when the offsets are the running sum of the sizes padded to the data
 * alignment, in info order (what llama.cpp's loader demands, together with a
 * data alignment equal to the declared one: see qf_gguf_layout_note); 0 when
 * the file is valid but its tensors are placed freely. */
int qf_gguf_is_strict_layout(const qf_gguf_file *f);

/* Key/value records in file order. */
size_t qf_gguf_kv_count(const qf_gguf_file *f);
const qf_gguf_kv *qf_gguf_kv_at(const qf_gguf_file *f, size_t i); /* NULL if out of range */
const qf_gguf_kv *qf_gguf_find_kv(const qf_gguf_file *f, const char *key); /* NULL if absent */

/* Element i (< kv->n) of a record, decoded (BOOL: byte != 0). For STRING the
 * value borrows the file. Out-of-range i gives an all-zero value. */
qf_gguf_value qf_gguf_kv_elem(const qf_gguf_kv *kv, uint64_t i);

/* Copy the elements of a numeric or BOOL array (or scalar) into `dst` as host
 * values (bool as one byte 0/1); needs dst_size >= n * element size. Returns
 * 0, or -1 for STRING records or a short buffer. */
int qf_gguf_kv_copy(const qf_gguf_kv *kv, void *dst, size_t dst_size);

/* Typed getters by key. QF_ERR_NOT_FOUND when the key is absent,
 * QF_ERR_FORMAT when it has another type (exact match, as llama.cpp wants);
 * err names file, offset and both types. Strings are borrowed. */
qf_status qf_gguf_get_u8(const qf_gguf_file *f, const char *key, uint8_t *out, qf_error *err);
qf_status qf_gguf_get_i8(const qf_gguf_file *f, const char *key, int8_t *out, qf_error *err);
qf_status qf_gguf_get_u16(const qf_gguf_file *f, const char *key, uint16_t *out, qf_error *err);
qf_status qf_gguf_get_i16(const qf_gguf_file *f, const char *key, int16_t *out, qf_error *err);
qf_status qf_gguf_get_u32(const qf_gguf_file *f, const char *key, uint32_t *out, qf_error *err);
qf_status qf_gguf_get_i32(const qf_gguf_file *f, const char *key, int32_t *out, qf_error *err);
qf_status qf_gguf_get_f32(const qf_gguf_file *f, const char *key, float *out, qf_error *err);
qf_status qf_gguf_get_bool(const qf_gguf_file *f, const char *key, bool *out, qf_error *err);
qf_status qf_gguf_get_u64(const qf_gguf_file *f, const char *key, uint64_t *out, qf_error *err);
qf_status qf_gguf_get_i64(const qf_gguf_file *f, const char *key, int64_t *out, qf_error *err);
qf_status qf_gguf_get_f64(const qf_gguf_file *f, const char *key, double *out, qf_error *err);
qf_status qf_gguf_get_str(const qf_gguf_file *f, const char *key, qf_gguf_string *out,
                          qf_error *err);
/* An array whose elements have type `elem_type`; *out borrows the record. */
qf_status qf_gguf_get_arr(const qf_gguf_file *f, const char *key, qf_gguf_vtype elem_type,
                          const qf_gguf_kv **out, qf_error *err);

/* Tensor directory in file (info) order. */
size_t qf_gguf_tensor_count(const qf_gguf_file *f);
const qf_gguf_tensor *qf_gguf_tensor_at(const qf_gguf_file *f, size_t i); /* NULL if out of range */
const qf_gguf_tensor *qf_gguf_find_tensor(const qf_gguf_file *f, const char *name);
int64_t qf_gguf_tensor_nelements(const qf_gguf_tensor *t);

/* ------------------------------------------------------------ writer */

typedef struct qf_gguf_writer qf_gguf_writer;

/* New empty writer (no keys, no tensors), owned by the caller; release with
 * qf_gguf_writer_free. QF_ERR_NO_MEMORY on failure. */
qf_status qf_gguf_writer_create(qf_gguf_writer **out, qf_error *err);

/* Release a writer; an unfinished streamed file is removed. NULL is ignored. */
void qf_gguf_writer_free(qf_gguf_writer *w);

/* Set a key. As gguf.cpp's gguf_set_val_*: an existing key is removed first,
 * so a re-set key moves to the end of the order. Keys must be non-empty,
 * without NUL bytes, at most QF_GGUF_MAX_KEY bytes. `general.alignment` may
 * only be set with set_u32 to a non-zero power of two. Keys are copied.
 * QF_ERR_INVALID_ARGUMENT for a bad key/value, QF_ERR_NO_MEMORY. */
qf_status qf_gguf_writer_set_u8(qf_gguf_writer *w, const char *key, uint8_t v, qf_error *err);
qf_status qf_gguf_writer_set_i8(qf_gguf_writer *w, const char *key, int8_t v, qf_error *err);
qf_status qf_gguf_writer_set_u16(qf_gguf_writer *w, const char *key, uint16_t v, qf_error *err);
qf_status qf_gguf_writer_set_i16(qf_gguf_writer *w, const char *key, int16_t v, qf_error *err);
qf_status qf_gguf_writer_set_u32(qf_gguf_writer *w, const char *key, uint32_t v, qf_error *err);
qf_status qf_gguf_writer_set_i32(qf_gguf_writer *w, const char *key, int32_t v, qf_error *err);
qf_status qf_gguf_writer_set_f32(qf_gguf_writer *w, const char *key, float v, qf_error *err);
qf_status qf_gguf_writer_set_bool(qf_gguf_writer *w, const char *key, bool v, qf_error *err);
qf_status qf_gguf_writer_set_u64(qf_gguf_writer *w, const char *key, uint64_t v, qf_error *err);
qf_status qf_gguf_writer_set_i64(qf_gguf_writer *w, const char *key, int64_t v, qf_error *err);
qf_status qf_gguf_writer_set_f64(qf_gguf_writer *w, const char *key, double v, qf_error *err);
/* NUL-terminated string value (copied). */
qf_status qf_gguf_writer_set_str(qf_gguf_writer *w, const char *key, const char *s, qf_error *err);
/* Byte string of `len` bytes (may contain NUL; copied). */
qf_status qf_gguf_writer_set_strn(qf_gguf_writer *w, const char *key, const char *s, size_t len,
                                  qf_error *err);
/* Array of `n` host values of a fixed-size element type (BOOL: one byte each,
 * written as 0/1); copied. STRING and ARRAY element types are refused
 * (no nested arrays). n may be 0 (gguf-py's writer refuses empty arrays, the
 * C reader and writer accept them). */
qf_status qf_gguf_writer_set_arr(qf_gguf_writer *w, const char *key, qf_gguf_vtype elem_type,
                                 const void *data, size_t n, qf_error *err);
/* Array of `n` NUL-terminated strings (copied). */
qf_status qf_gguf_writer_set_arr_str(qf_gguf_writer *w, const char *key, const char *const *strs,
                                     size_t n, qf_error *err);
/* Array of `n` byte strings (copied). */
qf_status qf_gguf_writer_set_arr_strn(qf_gguf_writer *w, const char *key,
                                      const qf_gguf_string *strs, size_t n, qf_error *err);
/* Copy one record of a reader (value copied, BOOL normalised to 0/1). */
qf_status qf_gguf_writer_set_kv(qf_gguf_writer *w, const qf_gguf_kv *kv, qf_error *err);
/* Copy every record of `src` in its order, as gguf_set_kv does (keys already
 * set in `w` move to the end). For requantization: copy, then re-set
 * general.quantization_version / general.file_type so they come last. */
qf_status qf_gguf_writer_copy_kvs(qf_gguf_writer *w, const qf_gguf_file *src, qf_error *err);
/* Remove a key; returns 1 if it was present, 0 if not. */
int qf_gguf_writer_remove_key(qf_gguf_writer *w, const char *key);
size_t qf_gguf_writer_kv_count(const qf_gguf_writer *w);
const char *qf_gguf_writer_kv_key(const qf_gguf_writer *w,
                                  size_t i); /* borrowed; NULL if out of range */

/* Declare a tensor (appended in info order). name: 1..63 bytes, no NUL,
 * unique; n_dims 1..4 (written as given); ne[0] a multiple of the type's
 * block size. `data` (nbytes of the tensor) is borrowed until the file is
 * written; it may be NULL when the data will be streamed with
 * qf_gguf_writer_write_tensor_data. QF_ERR_INVALID_ARGUMENT naming the tensor. */
qf_status qf_gguf_writer_add_tensor(qf_gguf_writer *w, const char *name, int32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    qf_error *err);
size_t qf_gguf_writer_tensor_count(const qf_gguf_writer *w);

/* Write the whole file to `path` atomically: `<path>.tmp.XXXXXX` in the same
 * folder, fsync, rename over `path`, fsync of the folder. Every tensor must
 * have data. On failure no file is left at `path` (an old one is untouched)
 * and the temporary file is removed. QF_ERR_IO naming the path and the errno
 * text, QF_ERR_INVALID_ARGUMENT if a tensor lacks data. The writer stays
 * usable (its keys and tensors are unchanged). */
qf_status qf_gguf_writer_write_file(qf_gguf_writer *w, const char *path, qf_error *err);

/* Streaming for large outputs: begin writes the header, KVs, tensor infos
 * and padding to the temporary file (after which keys and tensors are frozen);
 * write_tensor_data appends the data of the next tensor in info order
 * (exactly its nbytes) plus zero padding; finish checks that every tensor was
 * written, then fsyncs and renames. On any failure the temporary file is
 * removed and the writer returns to the unfrozen state. abort removes the
 * temporary file explicitly. */
qf_status qf_gguf_writer_begin(qf_gguf_writer *w, const char *path, qf_error *err);
qf_status qf_gguf_writer_write_tensor_data(qf_gguf_writer *w, const void *data, size_t nbytes,
                                           qf_error *err);
qf_status qf_gguf_writer_finish(qf_gguf_writer *w, qf_error *err);
void qf_gguf_writer_abort(qf_gguf_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* QF_GGUF_FILE_H */
