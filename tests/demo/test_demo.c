/*
 * `qforge demo --json --out DIR` end to end: every scheme quantizes the
 * generated model and is evaluated against it; GPTQ and AWQ beat plain
 * round-to-nearest on KL divergence, 8-bit schemes are near lossless, and an
 * AWQ checkpoint re-expressed as GPTQ (`qforge convert --to gptq`) evaluates
 * identically through the GPTQ plugin's kernels.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static json_t *run_json(const char *fmt, ...) {
  char args[2048], cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "'%s' %s 2>>'%s/stderr.txt'", getenv("QF_CLI"), args, dir);
  FILE *f = popen(cmd, "r");
  cr_assert(f);
  static char out[1 << 20];
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  int st = pclose(f);
  cr_assert_eq(st, 0, "`qforge %s` failed (status %d); stderr in %s/stderr.txt", args, st, dir);
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  cr_assert(j, "not JSON: %s\n%s", je.text, out);
  return j;
}

static json_t *row(json_t *results, const char *method) {
  size_t i;
  json_t *r;
  json_array_foreach(results, i, r) {
    if (!strcmp(json_string_value(json_object_get(r, "method")), method)) return r;
  }
  cr_assert_fail("no row for %s", method);
  return NULL;
}

static double num(json_t *r, const char *k) {
  json_t *v = json_object_get(r, k);
  cr_assert(json_is_number(v), "%s missing in %s", k,
            json_string_value(json_object_get(r, "method")));
  return json_number_value(v);
}

Test(demo, every_scheme_quantizes_and_evaluates, .timeout = 1400) {
  snprintf(dir, sizeof dir, "/tmp/qf_demo_XXXXXX");
  cr_assert(mkdtemp(dir));
  json_t *j = run_json("demo --json --out '%s'", dir);
  json_t *res = json_object_get(j, "results");
  static const char *const all[] = {"float (bf16)", "rtn-int4 g128", "gptq-int4 g128",
                                    "awq-int4 g128", "bnb-nf4", "bnb-int8", "gguf-q4_k_m",
                                    "gguf-q8_0"};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    json_t *r = row(res, all[i]);
    cr_assert_null(json_object_get(r, "error"), "%s: %s", all[i],
                   json_string_value(json_object_get(r, "error")));
    cr_assert_gt(num(r, "ppl"), 1.0);
    cr_assert_gt(num(r, "bytes"), 0);
  }
  double kld_rtn = num(row(res, "rtn-int4 g128"), "kld");
  cr_assert_lt(num(row(res, "gptq-int4 g128"), "kld"), kld_rtn, "GPTQ must beat RTN");
  cr_assert_lt(num(row(res, "awq-int4 g128"), "kld"), kld_rtn, "AWQ must beat RTN");
  cr_assert_lt(num(row(res, "bnb-int8"), "kld"), 0.01);
  cr_assert_lt(num(row(res, "gguf-q8_0"), "kld"), 0.01);
  cr_assert_lt(num(row(res, "gguf-q4_k_m"), "bits_per_weight"),
               num(row(res, "gguf-q8_0"), "bits_per_weight"));
  json_decref(j);

  /* AutoGPTQ's quantize_config.json beside the GPTQ checkpoint */
  char qc_path[600];
  snprintf(qc_path, sizeof qc_path, "%s/gptq-int4-g128/quantize_config.json", dir);
  json_error_t je;
  json_t *qc = json_load_file(qc_path, 0, &je);
  cr_assert(qc, "%s: %s", qc_path, je.text);
  cr_assert_eq(json_integer_value(json_object_get(qc, "bits")), 4);
  cr_assert_eq(json_integer_value(json_object_get(qc, "group_size")), 128);
  cr_assert_str_eq(json_string_value(json_object_get(qc, "checkpoint_format")), "gptq");
  json_decref(qc);

  /* AWQ → GPTQ layout, evaluated through the GPTQ plugin: same numbers */
  j = run_json("convert '%s/awq-int4-g128' --to gptq -o '%s/awq-as-gptq' && "
               "'%s' eval '%s/awq-as-gptq' --reference '%s/float' --tokens '%s/float/eval.npy' "
               "--ctx 256 --max-seqs 4 --json",
               dir, dir, getenv("QF_CLI"), dir, dir, dir);
  json_t *a = run_json("eval '%s/awq-int4-g128' --reference '%s/float' --tokens "
                       "'%s/float/eval.npy' --ctx 256 --max-seqs 4 --json", dir, dir, dir);
  cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "gptq");
  cr_assert_str_eq(json_string_value(json_object_get(a, "method")), "awq");
  cr_assert_float_eq(num(j, "kld"), num(a, "kld"), 1e-6 * (1 + num(a, "kld")));
  cr_assert_float_eq(num(j, "ppl"), num(a, "ppl"), 1e-4 * num(a, "ppl"));
  json_decref(a);
  json_decref(j);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(demo, imatrix_from_calibration_feeds_gguf, .timeout = 600) {
  snprintf(dir, sizeof dir, "/tmp/qf_imat_XXXXXX");
  cr_assert(mkdtemp(dir));
  json_t *j = run_json("demo --json --out '%s' --only rtn-int4", dir);
  json_decref(j);
  j = run_json("imatrix '%s/float' --calib '%s/float/calib.npy' --calib-len 256 -o '%s/im.dat' "
               "&& '%s' quantize '%s/float' --method gguf --type IQ4_XS --imatrix '%s/im.dat' "
               "-o '%s/iq4.gguf' --json",
               dir, dir, dir, getenv("QF_CLI"), dir, dir, dir);
  cr_assert_gt(num(j, "bytes_out"), 0);
  json_decref(j);
  j = run_json("inspect '%s/iq4.gguf' --json", dir);
  json_t *md = json_object_get(j, "metadata");
  /* 6 blocks x 7 linears, one chunk per calibration window */
  cr_assert_eq(json_integer_value(json_object_get(md, "quantize.imatrix.entries_count")), 42);
  cr_assert_eq(json_integer_value(json_object_get(md, "general.file_type")), 30, "IQ4_XS");
  json_decref(j);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}
