/*
 * pseudo_quantize_tensor edge cases: constant groups (AutoAWQ's clamped zero
 * point loses a positive constant), zero groups (zero stored as -0.0 as
 * torch does), a single spike, half-step ties (round half to even), the
 * symmetric mode, and bad input (NaN / inf / shapes) rejected.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "awq.h"

Test(awq_pq, constant_positive_group) {
  float w[8], d[8], s, z;
  for (int i = 0; i < 8; i++) w[i] = 0.0123f;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 8, 4, 1, d, &s, &z), QF_OK);
  cr_assert_eq(s, 1e-5f / 15.0f);
  cr_assert_eq(z, 0.0f);
  for (int i = 0; i < 8; i++) cr_assert_eq(d[i], 15.0f * s); /* 1e-5: AutoAWQ's quirk */
}

Test(awq_pq, constant_negative_group) {
  float w[8], d[8], s, z;
  for (int i = 0; i < 8; i++) w[i] = -2.0f;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 8, 4, 1, d, &s, &z), QF_OK);
  cr_assert_eq(z, 15.0f);
  for (int i = 0; i < 8; i++) cr_assert_eq(d[i], -15.0f * s);
}

Test(awq_pq, zero_group) {
  float w[16] = {0}, d[16], s[2], z[2];
  for (int i = 8; i < 16; i++) w[i] = (float)(i - 12); /* second group spans zero */
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 16, 8, 4, 1, d, s, z), QF_OK);
  cr_assert_eq(s[0], 1e-5f / 15.0f);
  cr_assert(z[0] == 0.0f && signbit(z[0]), "torch gives -0.0 for -round(0)");
  for (int i = 0; i < 8; i++) cr_assert(d[i] == 0.0f && !signbit(d[i]));
  /* second group: min -4, max 3 -> scale 7/15, zero rint(4/(7/15)) = 9 */
  cr_assert_eq(s[1], 7.0f / 15.0f);
  cr_assert_eq(z[1], 9.0f);
}

Test(awq_pq, one_spike) {
  float w[32] = {0}, d[32], s, z;
  w[17] = 1.0f;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 32, 32, 4, 1, d, &s, &z), QF_OK);
  cr_assert_eq(s, 1.0f / 15.0f);
  cr_assert_eq(z, 0.0f);
  for (int i = 0; i < 32; i++) cr_assert_eq(d[i], i == 17 ? 15.0f * (1.0f / 15.0f) : 0.0f);
  /* a negative spike in a positive group: the zero point takes it */
  float v[4] = {0.5f, 0.25f, -3.0f, 0.75f}, e[4];
  cr_assert_eq(qf_awq_pseudo_quantize(v, 1, 4, 4, 4, 1, e, &s, &z), QF_OK);
  cr_assert_eq(s, 3.75f / 15.0f);
  cr_assert_eq(e[2], -3.0f);
}

/* Half-step ties go to even: w/s = 2.5 -> 2, 3.5 -> 4. */
Test(awq_pq, ties_to_even) {
  float w[4] = {0.0f, 2.5f, 3.5f, 15.0f}, d[4], s, z;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 4, 4, 4, 1, d, &s, &z), QF_OK);
  cr_assert_eq(s, 1.0f);
  cr_assert_eq(d[1], 2.0f);
  cr_assert_eq(d[2], 4.0f);
  cr_assert_eq(d[3], 15.0f);
}

Test(awq_pq, whole_row_group_and_symmetric) {
  float w[8] = {-7, -3, 0, 1, 2, 3, 5, 7}, d[8], s;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, -1, 4, 0, d, &s, NULL), QF_OK);
  cr_assert_eq(s, 1.0f); /* absmax / 7 */
  for (int i = 0; i < 8; i++) cr_assert_eq(d[i], w[i]);
  float big[2] = {-8.0f, 7.0f};
  cr_assert_eq(qf_awq_pseudo_quantize(big, 1, 2, 2, 4, 0, d, &s, NULL), QF_OK);
  cr_assert_eq(s, 8.0f / 7.0f);
  cr_assert_eq(d[0], -7.0f * s); /* |w| <= absmax: level -8 is never reached */
  cr_assert_eq(d[1], 6.0f * s);
}

Test(awq_pq, bad_input) {
  float w[8] = {0}, d[8];
  w[3] = NAN;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 8, 4, 1, d, NULL, NULL), QF_ERR_NUMERIC);
  w[3] = INFINITY;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 8, 4, 1, d, NULL, NULL), QF_ERR_NUMERIC);
  w[3] = 3e38f;
  w[4] = -3e38f; /* range overflows float */
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 8, 4, 1, d, NULL, NULL), QF_ERR_NUMERIC);
  w[3] = w[4] = 0;
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 3, 4, 1, d, NULL, NULL), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_awq_pseudo_quantize(NULL, 1, 8, 8, 4, 1, d, NULL, NULL), QF_ERR_INVALID_ARGUMENT);
  cr_assert_eq(qf_awq_pseudo_quantize(w, 1, 8, 8, 1, 1, d, NULL, NULL), QF_ERR_INVALID_ARGUMENT);
}
