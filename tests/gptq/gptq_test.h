/*
 * Shared helpers of the GPTQ test suites: locating the golden folder
 * (QF_GOLDEN_DIR; a missing folder or file fails the test, never skips
 * it), reading raw little-endian arrays, the golden manifest, and a small
 * deterministic random generator for synthetic layers.
 */
#ifndef QF_GPTQ_TEST_H
#define QF_GPTQ_TEST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Path of a file in the golden gptq folder (static buffer per call site
 * is avoided: the caller passes one). Fails the test when QF_GOLDEN_DIR is
 * not set. */
static inline void gq_path(char *buf, size_t n, const char *file) {
  const char *d = getenv("QF_GOLDEN_DIR");
  cr_assert(d && *d, "QF_GOLDEN_DIR is not set: the golden vectors are "
                     "required (they live in shared/golden)");
  snprintf(buf, n, "%s/gptq/%s", d, file);
}

/* Read a whole golden file; asserts its size when `expect` > 0. The buffer
 * is malloc'ed (caller frees). */
static inline void *gq_read(const char *file, size_t expect, size_t *size) {
  char path[4096];
  gq_path(path, sizeof path, file);
  FILE *f = fopen(path, "rb");
  cr_assert(f, "golden file %s is missing", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  cr_assert(len >= 0);
  void *buf = malloc((size_t)len + 1);
  cr_assert(buf);
  cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  if (expect) cr_assert_eq((size_t)len, expect, "%s: %ld bytes, expected %zu",
                           path, len, expect);
  if (size) *size = (size_t)len;
  return buf;
}

static inline json_t *gq_manifest(void) {
  size_t n;
  char *text = gq_read("manifest.json", 0, &n);
  text[n] = '\0';
  json_error_t je;
  json_t *root = json_loads(text, 0, &je);
  free(text);
  cr_assert(root, "manifest.json: %s", je.text);
  json_t *cases = json_object_get(root, "cases");
  cr_assert(json_is_array(cases) && json_array_size(cases) > 0,
            "manifest.json has no cases");
  return root;
}

/* xorshift64* uniform in [0, 1) and a Box-Muller normal. */
static inline double gq_rand(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static inline float gq_normal(uint64_t *s) {
  double u = gq_rand(s), v = gq_rand(s);
  if (u < 1e-300) u = 1e-300;
  return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

#endif /* QF_GPTQ_TEST_H */
