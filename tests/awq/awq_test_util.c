/*
 * Implementation of the AWQ test helpers (see awq_test_util.h).
 */
#include "awq_test_util.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float awq_rng_uniform(awq_rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return (float)(((double)(r->s >> 11) + 0.5) / 9007199254740992.0);
}

float awq_rng_gauss(awq_rng *r) {
  const double u = awq_rng_uniform(r), v = awq_rng_uniform(r);
  return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static const char *golden_dir(void) {
  const char *d = getenv("QF_GOLDEN_DIR");
  cr_assert(d && *d, "QF_GOLDEN_DIR is not set: the golden vectors are required");
  return d;
}

size_t awq_golden_cases(awq_golden_case *cases, size_t max) {
  char path[4096];
  snprintf(path, sizeof path, "%s/awq/manifest.json", golden_dir());
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  cr_assert(root, "cannot read %s: %s", path, je.text);
  json_t *arr = json_object_get(root, "cases");
  cr_assert(json_is_array(arr) && json_array_size(arr) > 0, "%s: no cases", path);
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(arr) && n < max; i++) {
    json_t *c = json_array_get(arr, i);
    const char *name = json_string_value(json_object_get(c, "name"));
    cr_assert(name && strlen(name) < sizeof cases[n].name, "%s: case %zu has no name", path, i);
    snprintf(cases[n].name, sizeof cases[n].name, "%s", name);
    cases[n].n = json_integer_value(json_object_get(c, "rows_out"));
    cases[n].k = json_integer_value(json_object_get(c, "cols_in"));
    cases[n].g = json_integer_value(json_object_get(c, "group_size"));
    cr_assert(cases[n].n > 0 && cases[n].k > 0 && cases[n].g > 0, "%s: bad shape in case %s",
              path, name);
    cr_assert_eq(json_integer_value(json_object_get(c, "w_bit")), 4);
    cr_assert(json_is_true(json_object_get(c, "zero_point")));
    n++;
  }
  json_decref(root);
  return n;
}

void *awq_golden_read(const char *case_name, const char *suffix, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/awq/%s.%s", golden_dir(), case_name, suffix);
  FILE *f = fopen(path, "rb");
  cr_assert(f, "missing golden file %s", path);
  void *buf = malloc(bytes ? bytes : 1);
  cr_assert(buf);
  size_t got = fread(buf, 1, bytes, f);
  int extra = fgetc(f);
  fclose(f);
  cr_assert(got == bytes && extra == EOF, "%s: expected exactly %zu bytes", path, bytes);
  return buf;
}

void awq_matmul_ref(const float *x, const float *w, int64_t m, int64_t n,
                    int64_t k, float *y) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0.0;
      for (int64_t c = 0; c < k; c++) acc += (double)x[i * k + c] * (double)w[j * k + c];
      y[i * n + j] = (float)acc;
    }
}
