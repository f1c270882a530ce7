/*
 * Loading plugin builds: dlopen (RTLD_NOW | RTLD_LOCAL) with dlerror()
 * reported verbatim, the qf_plugin_init handshake (ABI major must match; an
 * older minor is served by the fields its structs declare), scoring, and the
 * choice among a scheme's cpu/cuda/hip builds.
 *
 * Backend choice: QF_BACKEND_AUTO (default; QFORGE_BACKEND=auto) keeps the
 * highest score among the builds that load; a named backend (API/CLI
 * override, or QFORGE_BACKEND=cpu|cuda|hip) takes that build and fails
 * clearly if it can't load or scores 0. A GPU build that scores 0 (no
 * runtime or no device) is skipped in auto mode with one INFO line saying
 * why, and the CPU build is used.
 *
 * Loaded plugins are never dlclose'd (a GPU context may still be alive);
 * qf_plugin_release frees only the host-side record.
 */
#ifndef QFORGE_LOADER_H
#define QFORGE_LOADER_H

#include "qforge/plugin.h"
#include "qforge/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

typedef enum qf_backend_choice {
  QF_BACKEND_AUTO = 0,
  QF_CHOOSE_CPU = QF_BACKEND_CPU,
  QF_CHOOSE_CUDA = QF_BACKEND_CUDA,
  QF_CHOOSE_HIP = QF_BACKEND_HIP
} qf_backend_choice;

typedef struct qf_plugin {
  char *path;
  const qf_plugin_desc *desc;  /* static data of the .so */
  int score;                   /* qf_plugin_score(), 1 if not exported */
  qf_backend backend;
  uint16_t abi_minor;          /* negotiated minor = min(host, plugin) */
} qf_plugin;

/* Threads plugins may use (host->n_threads); 0 = QFORGE_THREADS or all cores. */
QF_API void qf_set_threads(int n);

/* The host table handed to every plugin (static, lives forever). */
QF_API const qf_host *qf_host_table(void);

/* Open one build and run the handshake. Errors: file missing, dlerror()
 * text, missing qf_plugin_init, init failure, ABI mismatch, descriptor not
 * sane (struct_size, name, vtable and its required slots). */
QF_API qf_status qf_plugin_open(const char *path, qf_plugin **out,
                                qf_error *err);
QF_API void qf_plugin_release(qf_plugin *p);

/* Parse QFORGE_BACKEND / --backend text ("auto", "cpu", "cuda", "hip");
 * returns -1 if unknown. */
QF_API int qf_backend_choice_parse(const char *s);
/* Choice from the environment (QFORGE_BACKEND), AUTO if unset. An invalid
 * value is logged and treated as AUTO. */
QF_API qf_backend_choice qf_backend_choice_from_env(void);

/* One line of the choice report for `qforge plugins`. */
typedef struct qf_build_report {
  qf_backend backend;
  const char *path;
  int loaded;          /* 1 if dlopen + handshake succeeded */
  int score;           /* -1 if not loaded */
  char abi[16];        /* "1.0" as declared by the plugin, "" if unknown */
  char error[QF_ERROR_MESSAGE_MAX]; /* why it did not load, "" if it did */
} qf_build_report;

/* Choose a build of `entry`. *out gets the chosen plugin (caller releases);
 * `reports` (may be NULL) receives one line per build in registry order
 * (array of at least 3). */
QF_API qf_status qf_plugin_choose(const qf_registry_entry *entry,
                                  qf_backend_choice choice, qf_plugin **out,
                                  qf_build_report *reports, size_t *n_reports,
                                  qf_error *err);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_LOADER_H */
