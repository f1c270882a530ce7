/*
 * Helpers shared by the Criterion suites: opening a built plugin from
 * QF_PLUGIN_DIR (set by ctest, see cmake/QforgeTesting.cmake) and adding a
 * borrowed float32 input to a model. Header-only and static inline, so a
 * suite only includes it; every failure is a Criterion assertion.
 */
#ifndef QF_TEST_UTIL_H
#define QF_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "qforge/plugin_util.h"
#include "qforge/qforge.h"

/* Open <QF_PLUGIN_DIR>/<file> (e.g. "bnb-cpu.so"); the caller releases it
 * with qf_plugin_release. */
static inline qf_plugin *qf_test_open_plugin(const char *file) {
  const char *dir = getenv("QF_PLUGIN_DIR");
  cr_assert(dir && *dir, "QF_PLUGIN_DIR is not set");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_open(path, &p, &err), QF_OK, "%s: %s", path, err.message);
  return p;
}

/* Add `data` (float32, aliased: it must outlive the model) as input `name`. */
static inline void qf_test_add_f32(qf_model *m, const char *name, float *data, int ndim,
                                   int64_t *shape) {
  DLTensor t = qf_f32_tensor(data, ndim, shape);
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_model_add_input(m, name, &t, &err), QF_OK, "%s", err.message);
}

#endif /* QF_TEST_UTIL_H */
