/*
 * Golden vectors (golden/bnb, produced by bitsandbytes' own CUDA code
 * pickers compiled for the CPU): every manifest row must match byte for
 * byte — packed 4-bit weights, absmax, double-quant codes, nested absmax
 * and offset, int8 weights and SCB — and dequantization (scalar and SIMD)
 * must reproduce the .deq.f32 files bit for bit.
 */
#include "bnb_test_util.h"

static tu_row g_rows[64];
static int g_n;

static void load_manifest(void) { g_n = tu_manifest(g_rows, 64); }

static int same_bytes(const void *a, const void *b, size_t n, size_t *first) {
  const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) {
      *first = i;
      return 0;
    }
  return 1;
}

static void check_file(const char *prefix, const char *suffix, const void *got,
                       size_t n) {
  char name[256];
  size_t gn, at = 0;
  snprintf(name, sizeof name, "%s.%s", prefix, suffix);
  void *want = tu_golden(name, &gn);
  cr_expect_eq(gn, n, "%s: %zu bytes, produced %zu", name, gn, n);
  if (gn == n)
    cr_expect(same_bytes(got, want, n, &at), "%s differs first at byte %zu",
              name, at);
  free(want);
}

Test(bnb_golden, four_bit_rows_byte_exact, .init = load_manifest) {
  int checked = 0;
  for (int r = 0; r < g_n; r++) {
    tu_row *row = &g_rows[r];
    if (strcmp(row->scheme, "4bit") != 0) continue;
    int64_t n = row->rows * row->cols;
    float *x = tu_input(row->cas, (size_t)n);
    qf_bnb_qtype t = (qf_bnb_qtype)qf_bnb_qtype_parse(row->qtype);
    int64_t nb = qf_bnb_nblocks(n, row->bs);
    uint8_t *packed = malloc((size_t)qf_bnb_packed_bytes(n));
    float *absmax = malloc((size_t)nb * 4);
    qf_bnb_quantize_4bit(t, x, n, row->bs, packed, absmax);
    float *deq = malloc((size_t)n * 4);
    if (!row->dq) {
      check_file(row->prefix, "weight.u8", packed, (size_t)qf_bnb_packed_bytes(n));
      check_file(row->prefix, "absmax.f32", absmax, (size_t)nb * 4);
      for (int isa = QF_BNB_ISA_SCALAR; isa <= QF_BNB_ISA_AVX2; isa++) {
        qf_bnb_dequant4((qf_bnb_isa)isa, t, packed, absmax, row->bs, 0, n, deq);
        check_file(row->prefix, "deq.f32", deq, (size_t)n * 4);
      }
    } else {
      uint8_t *codes = malloc((size_t)nb);
      int64_t nnb = qf_bnb_nblocks(nb, 256);
      float *nested = malloc((size_t)nnb * 4), off, *den = malloc((size_t)nb * 4);
      qf_bnb_double_quant(absmax, nb, codes, nested, &off);
      check_file(row->prefix, "absmax.u8", codes, (size_t)nb);
      check_file(row->prefix, "nested_absmax.f32", nested, (size_t)nnb * 4);
      check_file(row->prefix, "offset.f32", &off, 4);
      /* the loader uses the stored offset, so dequantize with it */
      char name[256];
      snprintf(name, sizeof name, "%s.offset.f32", row->prefix);
      float *goff = (float *)tu_golden(name, NULL);
      qf_bnb_double_dequant(qf_bnb_dynamic_map(), codes, nested, 256, goff[0],
                            nb, den);
      free(goff);
      for (int isa = QF_BNB_ISA_SCALAR; isa <= QF_BNB_ISA_AVX2; isa++) {
        qf_bnb_dequant4((qf_bnb_isa)isa, t, packed, den, row->bs, 0, n, deq);
        check_file(row->prefix, "deq.f32", deq, (size_t)n * 4);
      }
      free(codes);
      free(nested);
      free(den);
    }
    free(deq);
    free(packed);
    free(absmax);
    free(x);
    checked++;
  }
  cr_expect_eq(checked, 28, "4-bit rows checked: %d", checked);
}

Test(bnb_golden, int8_rows_byte_exact, .init = load_manifest) {
  int checked = 0;
  for (int r = 0; r < g_n; r++) {
    tu_row *row = &g_rows[r];
    if (strcmp(row->scheme, "int8") != 0) continue;
    int64_t n = row->rows * row->cols;
    float *x = tu_input(row->cas, (size_t)n);
    int8_t *cb = malloc((size_t)n);
    float *scb = malloc((size_t)row->rows * 4);
    int64_t bad = -1;
    cr_assert_eq(qf_bnb_int8_quantize_weight(x, row->rows, row->cols, cb, scb, &bad), 0);
    check_file(row->prefix, "weight.i8", cb, (size_t)n);
    check_file(row->prefix, "SCB.f32", scb, (size_t)row->rows * 4);
    free(cb);
    free(scb);
    free(x);
    checked++;
  }
  cr_expect_eq(checked, 4, "int8 rows checked: %d", checked);
}

/* The golden dequantization of the stored files alone (loader view):
 * de-nest with the stored map and offset, dequantize, compare bits. */
Test(bnb_golden, dequantize_from_stored_files, .init = load_manifest) {
  for (int r = 0; r < g_n; r++) {
    tu_row *row = &g_rows[r];
    if (strcmp(row->scheme, "4bit") != 0) continue;
    int64_t n = row->rows * row->cols, nb = qf_bnb_nblocks(n, row->bs);
    char name[256], base[256];
    /* the dq rows share the plain row's packed weight */
    snprintf(base, sizeof base, "%s", row->prefix);
    if (row->dq) base[strlen(base) - 3] = '\0';
    snprintf(name, sizeof name, "%s.weight.u8", base);
    uint8_t *packed = (uint8_t *)tu_golden(name, NULL);
    float *absmax;
    if (row->dq) {
      snprintf(name, sizeof name, "%s.absmax.u8", row->prefix);
      uint8_t *codes = (uint8_t *)tu_golden(name, NULL);
      snprintf(name, sizeof name, "%s.nested_absmax.f32", row->prefix);
      float *nested = (float *)tu_golden(name, NULL);
      snprintf(name, sizeof name, "%s.offset.f32", row->prefix);
      float *off = (float *)tu_golden(name, NULL);
      absmax = malloc((size_t)nb * 4);
      qf_bnb_double_dequant(qf_bnb_dynamic_map(), codes, nested, 256, off[0], nb,
                            absmax);
      free(codes);
      free(nested);
      free(off);
    } else {
      snprintf(name, sizeof name, "%s.absmax.f32", row->prefix);
      absmax = (float *)tu_golden(name, NULL);
    }
    float *deq = malloc((size_t)n * 4);
    qf_bnb_dequant4(QF_BNB_ISA_AUTO, (qf_bnb_qtype)qf_bnb_qtype_parse(row->qtype),
                    packed, absmax, row->bs, 0, n, deq);
    check_file(row->prefix, "deq.f32", deq, (size_t)n * 4);
    free(deq);
    free(absmax);
    free(packed);
  }
}
