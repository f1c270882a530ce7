/*
 * Private file helpers shared by the checkpoint reader, the safetensors
 * writer and qf_write_file_atomic (implemented in fileutil.c). They wrap the
 * POSIX calls the atomic-write protocol needs — temp files beside a final
 * name, complete writes, directory fsync, `mkdir -p` — and turn failures into
 * qf_error messages that name the path and the operation. Not part of the
 * public API; names are qf__*.
 */
#ifndef QFORGE_IO_INTERNAL_H
#define QFORGE_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/qforge.h"

/* Create `<final_path>.tmp.XXXXXX` (O_EXCL, mode 0666 & ~umask) for writing.
 * Returns the fd and stores the malloc'ed temp path in *tmp_out (caller
 * frees), or -1 with err filled. */
int qf__open_temp_beside(const char *final_path, char **tmp_out,
                         qf_error *err);
/* An anonymous read/write temp file in `dir` (O_TMPFILE, or a named file
 * unlinked at once): nothing remains on disk once it is closed. Returns the
 * fd or -1 with err filled. */
int qf__open_anon_temp(const char *dir, qf_error *err);
/* write() until all `n` bytes are out (EINTR and short writes handled).
 * `what` names the file in the error message. */
qf_status qf__write_all(int fd, const void *data, size_t n, const char *what,
                        qf_error *err);
/* Append `len` bytes of `in_fd` starting at offset 0 to `out_fd`'s current
 * position (copy_file_range, falling back to pread/write). */
qf_status qf__copy_fd(int in_fd, uint64_t len, int out_fd, const char *what,
                      qf_error *err);
/* fsync + close; reports the first failure. The fd is closed either way. */
qf_status qf__fsync_close(int fd, const char *what, qf_error *err);
/* fsync the folder holding `path` so a rename in it is durable. */
qf_status qf__fsync_parent(const char *path, qf_error *err);
/* Create `dir` and its missing parents (mode 0777 & ~umask). */
qf_status qf__mkdir_p(const char *dir, qf_error *err);
/* How a JSON value reads in an error message ("an object", "a list", …),
 * for the checkpoint and safetensors readers (implemented in checkpoint.c). */
struct json_t;
const char *qf__json_kind(const struct json_t *v);
/* "a/b" (no doubled slash). malloc'ed; NULL on out-of-memory. */
char *qf__path_join(const char *a, const char *b);
/* The folder of `path` ("." when it has none). malloc'ed; NULL on OOM. */
char *qf__path_dirname(const char *path);

#endif /* QFORGE_IO_INTERNAL_H */
