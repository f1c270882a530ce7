/*
 * The plugin registry: where registry files are looked for, how they are
 * read and merged, and lookups by scheme name or quant_method. The YAML
 * itself is parsed and checked in registry_schema.c.
 *
 * Search order (qf_registry_load): the explicit path, else
 * $QFORGE_REGISTRY, else $XDG_CONFIG_HOME/qforge/registry.yaml
 * ($HOME/.config when XDG_CONFIG_HOME is unset or not absolute) when that
 * file exists, else <libdir>/../share/qforge/registry.yaml beside the
 * loaded libqforge (build tree or relocated install) when it exists, else
 * the installed QF_INSTALL_PREFIX/QF_REGISTRY_SUBDIR/registry.yaml. An explicit or $QFORGE_REGISTRY path that cannot be read is
 * an error, never a silent fall-through. Environment variables are read with
 * secure_getenv. Then every `*.yaml` in the registry.d folder beside the
 * chosen file (names not starting with '.') is merged in strcmp order.
 *
 * Merging: an entry whose name already exists replaces the earlier one
 * (logged at INFO) and moves to the end, so entries stay in order of
 * precedence; qf_registry_find_method therefore scans from the end and the
 * latest file serving a method wins. Adding a file is all-or-nothing: on
 * error the registry is left as it was.
 *
 * Messages always start with the file path as it was given (or as
 * "<dir>/registry.d/<name>" for drop-ins); relative build paths resolve
 * against the registry file's folder (made absolute with realpath when it
 * exists, else against the working directory).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qforge/qforge.h"
#include "registry_internal.h"

#ifndef QF_INSTALL_PREFIX
#define QF_INSTALL_PREFIX "/usr/local"
#endif
#ifndef QF_REGISTRY_SUBDIR
#define QF_REGISTRY_SUBDIR "share/qforge"
#endif

#define QF__REG_MAX_FILE_BYTES (256 * 1024) /* far above any real registry */


/* ------------------------------------------------------------ backends */

/* Static string; "unknown" for a value outside the enum. */
const char *qf_backend_name(qf_backend b) {
  switch (b) {
    case QF_BACKEND_CPU: return "cpu";
    case QF_BACKEND_CUDA: return "cuda";
    case QF_BACKEND_HIP: return "hip";
  }
  return "unknown";
}

/* Exact lower-case names only; 0 for anything else (NULL included). */
qf_backend qf_backend_parse(const char *s) {
  if (!s) return (qf_backend)0;
  if (!strcmp(s, "cpu")) return QF_BACKEND_CPU;
  if (!strcmp(s, "cuda")) return QF_BACKEND_CUDA;
  if (!strcmp(s, "hip")) return QF_BACKEND_HIP;
  return (qf_backend)0;
}

/* ------------------------------------------------------------ helpers */

static qf_status qf__reg_oom(qf_error *err, const char *file) {
  return qf_errorf(err, QF_ERR_NO_MEMORY, "registry",
                   "%s: out of memory while reading the registry",
                   file ? file : "registry");
}

/* Folder part of `path` (".", "/" or the text before the last slash);
 * caller frees. */
static char *qf__dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  while (slash > path && slash[-1] == '/') slash--;
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* Absolute form of the folder holding `path`; caller frees. */
static char *qf__abs_dir_of(const char *path) {
  char *dir = qf__dir_of(path);
  if (!dir) return NULL;
  char *abs = realpath(dir, NULL);
  if (!abs) {
    if (dir[0] == '/') return dir;
    char *cwd = getcwd(NULL, 0);
    if (cwd && asprintf(&abs, "%s/%s", cwd, dir) < 0) abs = NULL;
    free(cwd);
  }
  free(dir);
  return abs;
}

/* Whole file into a NUL-terminated buffer (caller frees). */
static qf_status qf__read_file(const char *path, char **text, size_t *len,
                               qf_error *err) {
  *text = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  int e = 0;
  if (fd < 0 || fstat(fd, &sb) != 0) e = errno;
  else if (S_ISDIR(sb.st_mode)) e = EISDIR;
  if (e) {
    if (fd >= 0) close(fd);
    return qf_errorf(err, QF_ERR_IO, "registry",
                     "%s: cannot read registry file: %s", path, strerror(e));
  }
  if (S_ISREG(sb.st_mode) && sb.st_size > QF__REG_MAX_FILE_BYTES) {
    close(fd);
    return qf_errorf(err, QF_ERR_FORMAT, "registry",
                     "%s: registry file is too large (%lld bytes; the limit "
                     "is %d)",
                     path, (long long)sb.st_size, QF__REG_MAX_FILE_BYTES);
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    if (n == cap) {
      if (cap >= QF__REG_MAX_FILE_BYTES) {
        free(buf);
        close(fd);
        return qf_errorf(err, QF_ERR_FORMAT, "registry",
                         "%s: registry file is too large (more than %d bytes)",
                         path, QF__REG_MAX_FILE_BYTES);
      }
      cap *= 2;
      char *nb = realloc(buf, cap + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      e = errno;
      free(buf);
      close(fd);
      return qf_errorf(err, QF_ERR_IO, "registry",
                       "%s: cannot read registry file: %s", path, strerror(e));
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (!buf) return qf__reg_oom(err, path);
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return QF_OK;
}

/* Move parsed entries into `reg` (all-or-nothing). Takes ownership of
 * `entries` in every case. */
static qf_status qf__merge(qf_registry *reg, qf_registry_entry *entries,
                           size_t n, const char *file, qf_error *err) {
  char *fcopy = strdup(file);
  qf_registry_entry *ne =
      realloc(reg->entries, (reg->n_entries + n + 1) * sizeof *ne);
  if (ne) reg->entries = ne;
  char **nf = realloc(reg->files, (reg->n_files + 1) * sizeof *nf);
  if (nf) reg->files = nf;
  if (!fcopy || !ne || !nf) {
    free(fcopy);
    for (size_t i = 0; i < n; i++) qf__registry_entry_clear(&entries[i]);
    free(entries);
    return qf__reg_oom(err, file);
  }
  reg->files[reg->n_files++] = fcopy;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < reg->n_entries; j++) {
      qf_registry_entry *old = &reg->entries[j];
      if (strcmp(old->name, entries[i].name) != 0) continue;
      qf_log(QF_LOG_INFO, "registry: %s: plugin '%s' replaces the one from %s",
             entries[i].source, entries[i].name, old->source);
      qf__registry_entry_clear(old);
      memmove(old, old + 1, (reg->n_entries - j - 1) * sizeof *old);
      reg->n_entries--;
      break;
    }
    reg->entries[reg->n_entries++] = entries[i];
  }
  free(entries);
  return QF_OK;
}

/* ------------------------------------------------------------ public API */

/* An empty registry owned by the caller (qf_registry_free); NULL on OOM. */
qf_registry *qf_registry_new(void) { return calloc(1, sizeof(qf_registry)); }

/* Frees the registry, its entries and strings. NULL is a no-op. */
void qf_registry_free(qf_registry *reg) {
  if (!reg) return;
  for (size_t i = 0; i < reg->n_entries; i++)
    qf__registry_entry_clear(&reg->entries[i]);
  free(reg->entries);
  for (size_t i = 0; i < reg->n_files; i++) free(reg->files[i]);
  free(reg->files);
  free(reg);
}

/* `text` is borrowed (need not be NUL-terminated); the registry copies
 * everything it keeps. `virtual_path` names the text in messages and its
 * folder is the base of relative build paths. All-or-nothing. */
qf_status qf_registry_add_string(qf_registry *reg, const char *text,
                                 size_t len, const char *virtual_path,
                                 qf_error *err) {
  const char *file = virtual_path && *virtual_path ? virtual_path : "<string>";
  if (!reg || (!text && len))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "registry",
                     "%s: qf_registry_add_string needs a registry and text",
                     file);
  char *base = qf__abs_dir_of(file);
  if (!base) return qf__reg_oom(err, file);
  qf_registry_entry *entries = NULL;
  size_t n = 0;
  qf_status st =
      qf__registry_parse(text ? text : "", len, file, base, &entries, &n, err);
  free(base);
  if (st != QF_OK) return st;
  return qf__merge(reg, entries, n, file, err);
}

/* Reads `path` (borrowed) and merges it, all-or-nothing; no drop-ins. */
qf_status qf_registry_add_file(qf_registry *reg, const char *path,
                               qf_error *err) {
  if (!reg || !path || !*path)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "registry",
                     "qf_registry_add_file needs a registry and a path");
  char *text = NULL;
  size_t len = 0;
  qf_status st = qf__read_file(path, &text, &len, err);
  if (st != QF_OK) return st;
  st = qf_registry_add_string(reg, text, len, path, err);
  free(text);
  return st;
}

/* Borrowed pointer into `reg`, valid until the registry changes. */
const qf_registry_entry *qf_registry_find(const qf_registry *reg,
                                          const char *name) {
  if (!reg || !name) return NULL;
  for (size_t i = 0; i < reg->n_entries; i++)
    if (!strcmp(reg->entries[i].name, name)) return &reg->entries[i];
  return NULL;
}

/* Borrowed, as above; the latest entry serving `method` wins. */
const qf_registry_entry *qf_registry_find_method(const qf_registry *reg,
                                                 const char *method) {
  if (!reg || !method) return NULL;
  for (size_t i = reg->n_entries; i-- > 0;) {
    const qf_registry_entry *e = &reg->entries[i];
    for (size_t j = 0; j < e->n_quant_methods; j++)
      if (!strcmp(e->quant_methods[j], method)) return e;
  }
  return NULL;
}

/* ------------------------------------------------------------ search */

static int qf__cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int qf__is_dropin_name(const char *n) {
  size_t l = strlen(n);
  return n[0] != '.' && l > 5 && !strcmp(n + l - 5, ".yaml");
}

/* Merge every `*.yaml` in <folder of main>/registry.d in strcmp order. A
 * missing folder is fine; an unreadable one is an error. */
static qf_status qf__add_dropins(qf_registry *reg, const char *main_path,
                                 qf_error *err) {
  char *dir = qf__dir_of(main_path), *ddir = NULL;
  if (!dir || asprintf(&ddir, "%s/registry.d", dir) < 0) {
    free(dir);
    return qf__reg_oom(err, main_path);
  }
  free(dir);
  DIR *d = opendir(ddir);
  if (!d) {
    int e = errno;
    qf_status st = QF_OK;
    if (e != ENOENT && e != ENOTDIR)
      st = qf_errorf(err, QF_ERR_IO, "registry",
                     "%s: cannot read drop-in folder: %s", ddir, strerror(e));
    free(ddir);
    return st;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  qf_status st = QF_OK;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!qf__is_dropin_name(de->d_name)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 8;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) {
        st = qf__reg_oom(err, ddir);
        break;
      }
      names = nn;
    }
    if (!(names[n] = strdup(de->d_name))) {
      st = qf__reg_oom(err, ddir);
      break;
    }
    n++;
  }
  closedir(d);
  if (st == QF_OK && n) qsort(names, n, sizeof *names, qf__cmp_str);
  for (size_t i = 0; i < n && st == QF_OK; i++) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", ddir, names[i]) < 0) {
      st = qf__reg_oom(err, ddir);
      break;
    }
    qf_log(QF_LOG_DEBUG, "registry: merging drop-in %s", p);
    st = qf_registry_add_file(reg, p, err);
    free(p);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  free(ddir);
  return st;
}

/* The registry file to read, per the search order; caller frees. */
static char *qf__choose_path(const char *explicit_path, const char **why) {
  if (explicit_path && *explicit_path) {
    *why = "explicit path";
    return strdup(explicit_path);
  }
  const char *env = secure_getenv("QFORGE_REGISTRY");
  if (env && *env) {
    *why = "QFORGE_REGISTRY";
    return strdup(env);
  }
  const char *xdg = secure_getenv("XDG_CONFIG_HOME");
  const char *home = secure_getenv("HOME");
  char *user = NULL;
  int r = -1;
  if (xdg && xdg[0] == '/')
    r = asprintf(&user, "%s/qforge/registry.yaml", xdg);
  else if (home && *home)
    r = asprintf(&user, "%s/.config/qforge/registry.yaml", home);
  if (r < 0) user = NULL;
  if (user && access(user, F_OK) == 0) {
    *why = "user configuration";
    return user;
  }
  free(user);
  /* The registry of the installation this libqforge belongs to, found from
   * the library's own location (<libdir>/../share/qforge/registry.yaml), so
   * a relocated install or the build tree finds its plugins. */
  Dl_info info;
  if (dladdr((void *)(uintptr_t)qf_registry_load, &info) && info.dli_fname) {
    char *libdir = qf__abs_dir_of(info.dli_fname);
    char *beside = NULL;
    if (libdir && asprintf(&beside, "%s/../" QF_REGISTRY_SUBDIR "/registry.yaml", libdir) < 0)
      beside = NULL;
    free(libdir);
    char *real = beside ? realpath(beside, NULL) : NULL;
    if (real) {
      free(beside);
      *why = "registry beside libqforge";
      return real;
    }
    free(beside);
  }
  *why = "installed registry";
  return strdup(QF_INSTALL_PREFIX "/" QF_REGISTRY_SUBDIR "/registry.yaml");
}

/* `explicit_path` is borrowed (NULL or "" = use the search order). On
 * success *out is a new registry owned by the caller (qf_registry_free); on
 * error *out is NULL and nothing leaks. */
qf_status qf_registry_load(const char *explicit_path, qf_registry **out,
                           qf_error *err) {
  if (!out)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "registry",
                     "qf_registry_load needs an output pointer");
  *out = NULL;
  const char *why = "";
  char *path = qf__choose_path(explicit_path, &why);
  qf_registry *reg = qf_registry_new();
  if (!path || !reg) {
    free(path);
    qf_registry_free(reg);
    return qf__reg_oom(err, NULL);
  }
  qf_log(QF_LOG_DEBUG, "registry: reading %s (%s)", path, why);
  qf_status st = qf_registry_add_file(reg, path, err);
  if (st == QF_OK) st = qf__add_dropins(reg, path, err);
  free(path);
  if (st != QF_OK) {
    qf_registry_free(reg);
    return st;
  }
  *out = reg;
  return QF_OK;
}
