/*
 * Entry points shared by registry.c (search, merge, lookups) and
 * registry_schema.c (YAML parsing and the schema check).
 */
#ifndef QF_REGISTRY_INTERNAL_H
#define QF_REGISTRY_INTERNAL_H

#include "qforge/qforge.h"

/* Parse one registry text from `file` (for messages); relative build paths
 * resolve against `base_dir`. On success *out is a malloc'ed array of *n_out
 * entries owned by the caller (clear each, then free). */
qf_status qf__registry_parse(const char *text, size_t len, const char *file,
                             const char *base_dir, qf_registry_entry **out,
                             size_t *n_out, qf_error *err);
/* Free what an entry owns (not the entry itself). */
void qf__registry_entry_clear(qf_registry_entry *e);

#endif /* QF_REGISTRY_INTERNAL_H */
