/*
 * test_raw.c — `qforge raw quantize|dequantize --method gguf` against the
 * golden vectors made with ggml ($QF_GOLDEN_DIR/gguf/manifest.tsv): the
 * emitted "weight" tensor must be exactly ggml's blocks (with and without an
 * importance vector), "weight.ggml_type" the type id, and dequantization
 * ggml's floats bit for bit.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_quants.h"
#include "gp_util.h"

/* Types checked through the CLI (a few per family keeps the suite quick). */
static const char *const k_types[] = {"q4_0", "q5_1",   "q8_0",  "q2_K", "q4_K",
                                      "q6_K", "iq4_xs", "tq2_0", "bf16"};

static int wanted(const char *type) {
  for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
    if (!strcmp(type, k_types[i])) return 1;
  return 0;
}

static void check_row(const char *golden, const char *line, int *checked) {
  char type[32], cas[32], imat[8], input[128], ifile[128], qfile[128], dfile[128];
  int id;
  long rows, cols;
  if (sscanf(line, "%31s %d %31s %ld %ld %7s %127s %127s %127s %127s", type, &id, cas, &rows, &cols,
             imat, input, ifile, qfile, dfile) != 10)
    return;
  if (strcmp(cas, "gauss") != 0 || !wanted(type)) return;
  char d[4096], out[4200];
  gp_tmpdir(d, sizeof d);
  snprintf(out, sizeof out, "%s/q", d);
  char imarg[512] = "";
  if (!strcmp(imat, "yes")) snprintf(imarg, sizeof imarg, "--imatrix '%s/%s'", golden, ifile);
  int rc = gp_cli(d, NULL, 0,
                  "raw quantize --method gguf --config '{\"type\": \"%s\"}' --rows %ld --cols %ld "
                  "--in '%s/%s' %s --out '%s'",
                  type, rows, cols, golden, input, imarg, out);
  cr_assert_eq(rc, 0, "%s (imatrix %s): %s", type, imat, gp_stderr(d));
  char p[4400], g[4400];
  size_t n1 = 0, n2 = 0;
  snprintf(p, sizeof p, "%s/weight.u8", out);
  snprintf(g, sizeof g, "%s/%s", golden, qfile);
  uint8_t *got = gp_read(p, &n1), *exp = gp_read(g, &n2);
  cr_assert(got && exp, "missing %s or %s", p, g);
  cr_expect(n1 == n2 && !memcmp(got, exp, n1), "%s (imatrix %s): blocks differ from ggml", type,
            imat);
  free(got);
  free(exp);
  snprintf(p, sizeof p, "%s/weight.ggml_type.i32", out);
  int32_t *tid = gp_read(p, &n1);
  cr_expect(tid && n1 == 4 && *tid == id, "%s: weight.ggml_type", type);
  free(tid);
  /* and back */
  char deq[4400];
  snprintf(deq, sizeof deq, "%s/deq.f32", d);
  rc = gp_cli(d, NULL, 0, "raw dequantize --method gguf --in '%s' --out '%s'", out, deq);
  cr_assert_eq(rc, 0, "%s dequantize: %s", type, gp_stderr(d));
  snprintf(g, sizeof g, "%s/%s", golden, dfile);
  float *a = gp_read(deq, &n1), *b = gp_read(g, &n2);
  cr_assert(a && b);
  cr_expect(n1 == n2 && !memcmp(a, b, n1), "%s (imatrix %s): dequantized floats differ", type,
            imat);
  free(a);
  free(b);
  (*checked)++;
  qf_remove_tree(d); /* kept when a check fails, for a look */
}

Test(raw, golden_vectors) {
  const char *root = getenv("QF_GOLDEN_DIR");
  cr_assert(root && *root, "QF_GOLDEN_DIR is not set");
  char golden[4096], man[4200];
  snprintf(golden, sizeof golden, "%s/gguf", root);
  snprintf(man, sizeof man, "%s/manifest.tsv", golden);
  char *text = gp_read(man, NULL);
  cr_assert(text, "golden manifest %s is missing", man);
  int checked = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, "type\t", 5) != 0) check_row(golden, line, &checked);
  free(text);
  cr_expect_geq(checked, 14, "only %d golden rows checked", checked);
}
