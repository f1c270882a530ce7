/*
 * Small file utilities of the core: reading a whole file, writing one
 * atomically (temp file in the same folder + fsync + rename + fsync of the
 * folder), and the private helpers behind that protocol (io_internal.h) that
 * the safetensors writer reuses, plus the `OUT.partial-XXXXXX` folder protocol
 * that quantize and convert use so no half-written output folder is left under
 * its final name. Every failure becomes a qf_error naming the
 * path, the operation and the system's reason; nothing here aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "io_internal.h"

#define QF__OP "file"

static qf_status sys_err(qf_error *err, const char *path, const char *what,
                         int e) {
  return qf_errorf(err, e == ENOMEM ? QF_ERR_NO_MEMORY : QF_ERR_IO, QF__OP,
                   "%s: %s: %s", path, what, strerror(e));
}

char *qf__path_join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  int slash = la > 0 && a[la - 1] != '/';
  char *p = malloc(la + (size_t)slash + lb + 1);
  if (!p) return NULL;
  memcpy(p, a, la);
  if (slash) p[la] = '/';
  memcpy(p + la + (size_t)slash, b, lb + 1);
  return p;
}

char *qf__path_dirname(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--; /* trailing slashes */
  while (n > 0 && path[n - 1] != '/') n--; /* the last component */
  while (n > 1 && path[n - 1] == '/') n--; /* the separator(s) */
  if (n == 0) return strdup(".");
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, path, n);
  d[n] = '\0';
  return d;
}

/* Six characters from [A-Za-z0-9], different on every call of the process
 * and unlikely to repeat across processes. */
static void temp_suffix(char out[7]) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  static _Atomic uint64_t counter;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
               ((uint64_t)getpid() << 17) ^
               (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
  /* splitmix64 finaliser */
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  for (int i = 0; i < 6; i++) {
    out[i] = alphabet[x % 62];
    x /= 62;
  }
  out[6] = '\0';
}

int qf__open_temp_beside(const char *final_path, char **tmp_out,
                         qf_error *err) {
  size_t n = strlen(final_path);
  char *tmp = malloc(n + sizeof ".tmp.XXXXXX");
  if (!tmp) {
    qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", final_path);
    return -1;
  }
  for (int attempt = 0; attempt < 100; attempt++) {
    char suffix[7];
    temp_suffix(suffix);
    snprintf(tmp, n + sizeof ".tmp.XXXXXX", "%s.tmp.%s", final_path, suffix);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      *tmp_out = tmp;
      return fd;
    }
    if (errno != EEXIST) {
      sys_err(err, tmp, "cannot create temporary file", errno);
      free(tmp);
      return -1;
    }
  }
  qf_errorf(err, QF_ERR_IO, QF__OP,
            "%s: cannot create a temporary file beside it (100 names taken)",
            final_path);
  free(tmp);
  return -1;
}

int qf__open_anon_temp(const char *dir, qf_error *err) {
#ifdef O_TMPFILE
  int tfd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (tfd >= 0) return tfd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL &&
      errno != ENOENT) {
    sys_err(err, dir, "cannot create temporary data file", errno);
    return -1;
  }
#endif
  char *base = qf__path_join(dir, ".qforge-data");
  if (!base) {
    qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", dir);
    return -1;
  }
  size_t n = strlen(base) + sizeof ".tmp.XXXXXX";
  char *tmp = malloc(n);
  if (!tmp) {
    free(base);
    qf_errorf(err, QF_ERR_NO_MEMORY, QF__OP, "%s: out of memory", dir);
    return -1;
  }
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    char suffix[7];
    temp_suffix(suffix);
    snprintf(tmp, n, "%s.tmp.%s", base, suffix);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0)
    sys_err(err, dir, "cannot create temporary data file", errno);
  else
    unlink(tmp); /* anonymous from now on */
  free(tmp);
  free(base);
  return fd;
}

qf_status qf__write_all(int fd, const void *data, size_t n, const char *what,
                        qf_error *err) {
  const unsigned char *p = data;
  while (n > 0) {
    size_t chunk = n > (1u << 30) ? (1u << 30) : n;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return sys_err(err, what, "write failed", errno);
    }
    if (w == 0) return sys_err(err, what, "write failed", EIO);
    p += w;
    n -= (size_t)w;
  }
  return QF_OK;
}

qf_status qf__copy_fd(int in_fd, uint64_t len, int out_fd, const char *what,
                      qf_error *err) {
  off_t in_off = 0;
  int use_cfr = 1;
  while (len > 0 && use_cfr) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
    ssize_t c = copy_file_range(in_fd, &in_off, out_fd, NULL, chunk, 0);
    if (c < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
          errno == EOPNOTSUPP || errno == EBADF || errno == EPERM) {
        use_cfr = 0; /* fall back to plain reads and writes */
        break;
      }
      return sys_err(err, what, "copying tensor data failed", errno);
    }
    if (c == 0) return sys_err(err, what, "tensor data ended early", EIO);
    len -= (uint64_t)c;
  }
  if (len == 0) return QF_OK;
  size_t bufsz = 1u << 20;
  unsigned char *buf = malloc(bufsz);
  if (!buf) return sys_err(err, what, "copying tensor data", ENOMEM);
  qf_status st = QF_OK;
  while (len > 0 && st == QF_OK) {
    size_t want = len < bufsz ? (size_t)len : bufsz;
    ssize_t r = pread(in_fd, buf, want, in_off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      st = sys_err(err, what, "reading temporary tensor data failed",
                   r < 0 ? errno : EIO);
      break;
    }
    st = qf__write_all(out_fd, buf, (size_t)r, what, err);
    in_off += r;
    len -= (uint64_t)r;
  }
  free(buf);
  return st;
}

qf_status qf__fsync_close(int fd, const char *what, qf_error *err) {
  qf_status st = QF_OK;
  if (fsync(fd) != 0) st = sys_err(err, what, "fsync failed", errno);
  if (close(fd) != 0 && st == QF_OK)
    st = sys_err(err, what, "close failed", errno);
  return st;
}

qf_status qf__fsync_parent(const char *path, qf_error *err) {
  char *dir = qf__path_dirname(path);
  if (!dir) return sys_err(err, path, "fsync of folder", ENOMEM);
  qf_status st = QF_OK;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    st = sys_err(err, dir, "cannot open folder to fsync it", errno);
  } else {
    /* some file systems cannot fsync folders (EINVAL): nothing to do then */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
      st = sys_err(err, dir, "fsync of folder failed", errno);
    close(fd);
  }
  free(dir);
  return st;
}

qf_status qf__mkdir_p(const char *dir, qf_error *err) {
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) return QF_OK;
    return qf_errorf(err, QF_ERR_IO, QF__OP,
                     "%s: exists and is not a folder", dir);
  }
  char *p = strdup(dir);
  if (!p) return sys_err(err, dir, "mkdir", ENOMEM);
  size_t n = strlen(p);
  qf_status st = QF_OK;
  for (size_t i = 1; i <= n && st == QF_OK; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char saved = p[i];
    p[i] = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      st = sys_err(err, p, "cannot create folder", errno);
    else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
      st = qf_errorf(err, QF_ERR_IO, QF__OP, "%s: exists and is not a folder",
                     p);
    p[i] = saved;
  }
  free(p);
  return st;
}

qf_status qf_write_file_atomic(const char *path, const void *data, size_t n,
                               qf_error *err) {
  if (!path || (!data && n > 0))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_write_file_atomic: path and data are required");
  char *tmp = NULL;
  int fd = qf__open_temp_beside(path, &tmp, err);
  if (fd < 0) return err ? err->code : QF_ERR_IO;
  qf_status st = qf__write_all(fd, data, n, tmp, err);
  if (st == QF_OK) {
    st = qf__fsync_close(fd, tmp, err);
  } else {
    close(fd);
  }
  if (st == QF_OK && rename(tmp, path) != 0)
    st = sys_err(err, path, "cannot rename temporary file into place", errno);
  if (st != QF_OK) {
    unlink(tmp);
  } else {
    st = qf__fsync_parent(path, err);
  }
  free(tmp);
  return st;
}

qf_status qf_read_file(const char *path, char **out, size_t *n,
                       qf_error *err) {
  if (out) *out = NULL;
  if (n) *n = 0;
  if (!path || !out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, QF__OP,
                     "qf_read_file: path and out are required");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return qf_errorf(err, e == ENOENT ? QF_ERR_NOT_FOUND : QF_ERR_IO, QF__OP,
                     "%s: cannot open: %s", path, strerror(e));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return sys_err(err, path, "cannot stat", e);
  }
  if (S_ISDIR(sb.st_mode)) {
    close(fd);
    return qf_errorf(err, QF_ERR_IO, QF__OP, "%s: is a folder, not a file",
                     path);
  }
  size_t cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1
                                                     : 4096;
  size_t len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return sys_err(err, path, "cannot read", ENOMEM);
  }
  for (;;) {
    if (len + 1 >= cap) { /* grow: the file may be larger than stat said */
      size_t ncap = cap * 2;
      char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
      if (!nb) {
        free(buf);
        close(fd);
        return sys_err(err, path, "cannot read", ENOMEM);
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(buf);
      close(fd);
      return sys_err(err, path, "read failed", e);
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  *out = buf;
  if (n) *n = len;
  return QF_OK;
}

qf_status qf_mkdir_p(const char *dir, qf_error *err) { return qf__mkdir_p(dir, err); }

void qf_remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char *p = qf__path_join(dir, e->d_name);
      if (!p) continue;
      struct stat sb;
      if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
        qf_remove_tree(p);
      else
        unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

qf_status qf_partial_dir_begin(const char *out_dir, int force, const char *op, char *tmp,
                               size_t cap, qf_error *err) {
  if (cap) tmp[0] = '\0';
  if (access(out_dir, F_OK) == 0 && !force)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, op,
                     "%s already exists (use --force to replace it)", out_dir);
  int fits = (size_t)snprintf(tmp, cap, "%s.partial-XXXXXX", out_dir) < cap;
  if (!fits || !mkdtemp(tmp)) {
    int e = fits ? errno : ENAMETOOLONG;
    if (cap) tmp[0] = '\0';
    return qf_errorf(err, QF_ERR_IO, op, "%s: cannot create a folder beside it: %s", out_dir,
                     strerror(e));
  }
  return QF_OK;
}

qf_status qf_partial_dir_commit(char *tmp, const char *out_dir, int force, const char *op,
                                qf_error *err) {
  if (force && access(out_dir, F_OK) == 0) qf_remove_tree(out_dir);
  if (rename(tmp, out_dir) != 0)
    return qf_errorf(err, QF_ERR_IO, op, "cannot move the result into %s: %s", out_dir,
                     strerror(errno));
  tmp[0] = '\0';
  return QF_OK;
}
