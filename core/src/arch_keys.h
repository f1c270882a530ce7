/*
 * The parameter names a float model of the checkpoint's architecture
 * expects (what transformers' model.state_dict() would list before any
 * quantizer touched it), for the key negotiation of the load path, plus a
 * tiny string set.
 */
#ifndef QF_ARCH_KEYS_H
#define QF_ARCH_KEYS_H

#include "qforge/qforge.h"

typedef struct qf__keyset {
  char **keys;
  size_t n, cap;
} qf__keyset;

int qf__keyset_add(qf__keyset *s, const char *key);
int qf__keyset_has(const qf__keyset *s, const char *key);
void qf__keyset_free(qf__keyset *s);

/* Llama-family configs (model_type llama, mistral, qwen2) enumerate their
 * parameters from config.json; any other architecture expects exactly the
 * checkpoint's own keys (nothing missing, nothing unexpected). */
qf_status qf__expected_keys(const qf_model *model, qf__keyset *out,
                            qf_error *err);

#endif /* QF_ARCH_KEYS_H */
