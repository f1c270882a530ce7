/*
 * The plugin registry: YAML files that list, per scheme, the quant_method
 * values it serves and its candidate builds (cpu / cuda / hip .so paths).
 *
 * Parsed with libyaml's document API and checked against a schema: unknown
 * keys, wrong types, duplicate keys, unknown backends, a bad `abi`, empty
 * files, multiple documents, aliases and excessive nesting are errors
 * reported as "file:line:col: message". Relative build paths resolve against
 * the registry file's folder.
 *
 * Search order (qf_registry_load): the explicit path, else $QFORGE_REGISTRY,
 * else $XDG_CONFIG_HOME/qforge/registry.yaml (~/.config when unset), else the
 * installed share/qforge/registry.yaml. Then every `*.yaml` in the registry.d folder beside
 * the chosen file is merged in sorted order; an entry whose name already
 * exists replaces the earlier one (logged at INFO).
 *
 * Format:
 *   abi: 1
 *   plugins:
 *     - name: gguf                 # [a-z0-9_-]+, required
 *       description: "…"           # optional string
 *       quant_methods: [gguf]      # optional, default [name]
 *       builds:                    # required, at least one of cpu/cuda/hip
 *         cpu: lib/qforge/gguf-cpu.so
 */
#ifndef QFORGE_REGISTRY_H
#define QFORGE_REGISTRY_H

#include <stddef.h>
#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

#define QF_REGISTRY_ABI 1

typedef struct qf_registry_build {
  qf_backend backend;
  char *path;        /* absolute (resolved) path of the .so */
  char *source;      /* "file:line:col" of the entry, for messages */
} qf_registry_build;

typedef struct qf_registry_entry {
  char *name;
  char *description;        /* may be NULL */
  char **quant_methods;     /* n_quant_methods strings */
  size_t n_quant_methods;
  qf_registry_build builds[3];
  size_t n_builds;
  char *source;             /* "file:line:col" of the entry */
} qf_registry_entry;

typedef struct qf_registry {
  qf_registry_entry *entries;
  size_t n_entries;
  char **files;             /* registry files read, in order */
  size_t n_files;
} qf_registry;

/* Load with the search order above (`explicit_path` may be NULL). On error
 * nothing is returned and err says "file:line:col: …". */
QF_API qf_status qf_registry_load(const char *explicit_path, qf_registry **out,
                                  qf_error *err);
/* Parse one file and merge its entries into `reg` (no drop-ins). */
QF_API qf_status qf_registry_add_file(qf_registry *reg, const char *path,
                                      qf_error *err);
/* Parse YAML text as if it came from `virtual_path` (tests). */
QF_API qf_status qf_registry_add_string(qf_registry *reg, const char *text,
                                        size_t len, const char *virtual_path,
                                        qf_error *err);
QF_API qf_registry *qf_registry_new(void);
QF_API void qf_registry_free(qf_registry *reg);
/* Entry by scheme name or by quant_method; NULL if none. */
QF_API const qf_registry_entry *qf_registry_find(const qf_registry *reg,
                                                 const char *name);
QF_API const qf_registry_entry *qf_registry_find_method(const qf_registry *reg,
                                                        const char *method);
/* "cpu" / "cuda" / "hip"; parse returns 0 if unknown. */
QF_API const char *qf_backend_name(qf_backend b);
QF_API qf_backend qf_backend_parse(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_REGISTRY_H */
