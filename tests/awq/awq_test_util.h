/*
 * Helpers shared by the AWQ test files: a deterministic random generator,
 * golden-vector loading (a missing golden file fails the test, it never
 * skips) and small matrix utilities.
 */
#ifndef QF_AWQ_TEST_UTIL_H
#define QF_AWQ_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct awq_rng {
  uint64_t s;
} awq_rng;

float awq_rng_uniform(awq_rng *r);            /* (0, 1) */
float awq_rng_gauss(awq_rng *r);              /* N(0, 1) */

/* One case of golden/awq/manifest.json. */
typedef struct awq_golden_case {
  char name[16];
  int64_t n, k, g;
} awq_golden_case;

/* Reads the manifest (fails the current test when absent or malformed).
 * Returns the number of cases written into `cases` (at most `max`). */
size_t awq_golden_cases(awq_golden_case *cases, size_t max);

/* Reads <golden>/awq/<case>.<suffix>, which must hold exactly `bytes`
 * bytes; fails the current test otherwise. Caller frees. */
void *awq_golden_read(const char *case_name, const char *suffix, size_t bytes);

/* Naive y [m, n] = x [m, k] · wᵀ [n, k] accumulated in double. */
void awq_matmul_ref(const float *x, const float *w, int64_t m, int64_t n,
                    int64_t k, float *y);

#endif
