/*
 * The `qforge` command end to end with the RTN example plugin: help and
 * version, `plugins --json`, `raw quantize/dequantize`, `quantize` of a
 * generated HF folder (output re-read through the core), `inspect --json`,
 * and the documented exit codes on bad input — with no partial output left.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qforge/qforge.h"

static char tmpdir[256];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/qf_cli_XXXXXX");
  cr_assert(mkdtemp(tmpdir));
}

static void teardown(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  cr_assert(system(cmd) == 0);
}

TestSuite(cli, .init = setup, .fini = teardown);

/* Run the CLI with `args`; stdout captured into out (may be NULL). */
static int run(char *out, size_t n, const char *fmt, ...) {
  char args[2048], cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "'%s' %s 2>%s/stderr.txt", getenv("QF_CLI"), args, tmpdir);
  FILE *f = popen(cmd, "r");
  cr_assert(f, "cannot run %s", cmd);
  size_t got = 0;
  if (out) {
    got = fread(out, 1, n - 1, f);
    out[got] = '\0';
  } else {
    char sink[4096];
    while (fread(sink, 1, sizeof sink, f) > 0) {
    }
  }
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *err_text(void) {
  static char buf[8192];
  char p[512];
  snprintf(p, sizeof p, "%s/stderr.txt", tmpdir);
  FILE *f = fopen(p, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  buf[n] = '\0';
  if (f) fclose(f);
  return buf;
}

static void write_f32(const char *path, const float *v, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(v, sizeof(float), n, f), n);
  fclose(f);
}

Test(cli, help_and_version) {
  char out[8192];
  cr_assert_eq(run(out, sizeof out, "--help"), 0);
  cr_assert(strstr(out, "exit codes"), "%s", out);
  cr_assert_eq(run(out, sizeof out, "--version"), 0);
  cr_assert(strstr(out, "plugin ABI 1.1"), "%s", out);
  static const char *const cmds[] = {"plugins", "inspect", "quantize", "raw"};
  for (size_t i = 0; i < 4; i++) {
    cr_assert_eq(run(out, sizeof out, "%s --help", cmds[i]), 0, "%s --help", cmds[i]);
    cr_assert(strstr(out, "usage: qforge"), "%s", out);
  }
  cr_assert_eq(run(NULL, 0, "frobnicate"), 2);
}

Test(cli, plugins_json_lists_rtn) {
  char out[16384];
  cr_assert_eq(run(out, sizeof out, "plugins --json"), 0, "%s", err_text());
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  cr_assert(j, "%s", je.text);
  json_t *pl = json_object_get(j, "plugins");
  int found = 0;
  for (size_t i = 0; i < json_array_size(pl); i++) {
    json_t *p = json_array_get(pl, i);
    if (strcmp(json_string_value(json_object_get(p, "name")), "rtn")) continue;
    found = 1;
    cr_assert_str_eq(json_string_value(json_object_get(p, "chosen")), "cpu");
    json_t *b0 = json_array_get(json_object_get(p, "builds"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(b0, "abi")), "1.1");
    cr_assert(json_is_true(json_object_get(b0, "loads")));
  }
  cr_assert(found);
  json_decref(j);
}

Test(cli, invalid_registry_is_an_error_naming_the_file) {
  char p[512];
  snprintf(p, sizeof p, "%s/bad.yaml", tmpdir);
  FILE *f = fopen(p, "w");
  fputs("abi: 1\nplugins:\n  - nmae: x\n", f);
  fclose(f);
  cr_assert_eq(run(NULL, 0, "plugins --registry %s", p), 4);
  cr_assert(strstr(err_text(), "bad.yaml:3:5: unknown key 'nmae'"), "%s", err_text());
}

Test(cli, raw_round_trip) {
  enum { R = 16, C = 64 };
  float w[R * C], back[R * C];
  for (int i = 0; i < R * C; i++) w[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 7));
  char in[512], out_dir[512], back_path[512], out[16384];
  snprintf(in, sizeof in, "%s/w.f32", tmpdir);
  snprintf(out_dir, sizeof out_dir, "%s/q", tmpdir);
  snprintf(back_path, sizeof back_path, "%s/back.f32", tmpdir);
  write_f32(in, w, R * C);
  cr_assert_eq(run(out, sizeof out,
                   "raw quantize --method rtn --config '{\"bits\":8,\"group_size\":32,"
                   "\"sym\":false}' --rows %d --cols %d --in %s --out %s --json",
                   R, C, in, out_dir),
               0, "%s", err_text());
  json_error_t je;
  json_t *man = json_loads(out, 0, &je);
  cr_assert(man, "%s", out);
  json_t *ts = json_object_get(man, "tensors");
  cr_assert_eq(json_array_size(ts), 3); /* qweight, scales, zeros */
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ts, 2), "file")), "zeros.u8");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(man, "config"), "bits")), 8);
  json_decref(man);
  cr_assert_eq(run(NULL, 0, "raw dequantize --method rtn --in %s --out %s", out_dir, back_path),
               0, "%s", err_text());
  FILE *f = fopen(back_path, "rb");
  cr_assert_eq(fread(back, sizeof(float), R * C, f), (size_t)(R * C));
  fclose(f);
  for (int r = 0; r < R; r++) {
    float lo = 0, hi = 0;
    for (int c = 0; c < 32; c++) {
      lo = fminf(lo, w[r * C + c]);
      hi = fmaxf(hi, w[r * C + c]);
    }
    float step = (hi - lo) / 255.0f;
    for (int c = 0; c < 32; c++)
      cr_assert_leq(fabsf(back[r * C + c] - w[r * C + c]), step * 0.5001f + 1e-7f);
  }
}

Test(cli, raw_input_errors) {
  char in[512];
  snprintf(in, sizeof in, "%s/w.f32", tmpdir);
  float w[10] = {0};
  write_f32(in, w, 10);
  cr_assert_eq(run(NULL, 0, "raw quantize --method rtn --rows 4 --cols 4 --in %s --out %s/o", in,
                   tmpdir), 3);
  cr_assert(strstr(err_text(), "holds 40 bytes, expected 64"), "%s", err_text());
  cr_assert_eq(run(NULL, 0, "raw quantize --method nosuch --rows 2 --cols 5 --in %s --out %s/o",
                   in, tmpdir), 3);
  cr_assert(strstr(err_text(), "no registered scheme serves method 'nosuch'"), "%s", err_text());
  cr_assert_eq(run(NULL, 0, "raw quantize --method rtn --config '{\"bits\": 5}' --rows 2 --cols 5 "
                   "--in %s --out %s/o", in, tmpdir), 3);
  cr_assert(strstr(err_text(), "rtn: create: quantization_config.bits must be the integer 4 or 8"),
            "%s", err_text());
  cr_assert_eq(run(NULL, 0, "raw quantize --method rtn --rows x"), 2);
}

/* A tiny HF folder: config.json + model.safetensors with one layer. */
static void make_model(const char *dir) {
  mkdir(dir, 0777);
  char p[600];
  snprintf(p, sizeof p, "%s/config.json", dir);
  FILE *f = fopen(p, "w");
  fputs("{\"model_type\": \"llama\", \"num_hidden_layers\": 1, \"hidden_size\": 64}\n", f);
  fclose(f);
  snprintf(p, sizeof p, "%s/tokenizer.json", dir);
  f = fopen(p, "w");
  fputs("{\"model\": {}}\n", f);
  fclose(f);
  qf_st_writer *w = NULL;
  qf_error err;
  cr_assert_eq(qf_st_writer_new(dir, 0, &w, &err), QF_OK, "%s", err.message);
  static float up[128 * 64], emb[32 * 64], norm[64];
  for (int i = 0; i < 128 * 64; i++) up[i] = cosf((float)i);
  for (int i = 0; i < 32 * 64; i++) emb[i] = 0.5f;
  for (int i = 0; i < 64; i++) norm[i] = 1.0f;
  int64_t su[2] = {128, 64}, se[2] = {32, 64}, sn[1] = {64};
  cr_assert_eq(qf_st_writer_add(w, "model.embed_tokens.weight", QF_DTYPE_F32, 2, se, emb, &err), QF_OK);
  cr_assert_eq(qf_st_writer_add(w, "model.layers.0.mlp.up_proj.weight", QF_DTYPE_F32, 2, su, up, &err), QF_OK);
  cr_assert_eq(qf_st_writer_add(w, "model.norm.weight", QF_DTYPE_F32, 1, sn, norm, &err), QF_OK);
  cr_assert_eq(qf_st_writer_finish(w, &err), QF_OK, "%s", err.message);
}

Test(cli, quantize_model_folder) {
  char src[512], dst[512], out[65536];
  snprintf(src, sizeof src, "%s/model", tmpdir);
  snprintf(dst, sizeof dst, "%s/model-rtn", tmpdir);
  make_model(src);
  cr_assert_eq(run(out, sizeof out, "quantize %s --method rtn --bits 4 --group-size 32 -o %s --json",
                   src, dst), 0, "%s", err_text());
  json_error_t je;
  json_t *sum = json_loads(out, 0, &je);
  cr_assert(sum, "%s", out);
  cr_assert_str_eq(json_string_value(json_object_get(sum, "method")), "rtn");
  json_decref(sum);
  qf_checkpoint *ck = NULL;
  qf_error err;
  cr_assert_eq(qf_checkpoint_open(dst, &ck, &err), QF_OK, "%s", err.message);
  cr_assert_not_null(qf_checkpoint_find(ck, "model.layers.0.mlp.up_proj.qweight"));
  cr_assert_not_null(qf_checkpoint_find(ck, "model.layers.0.mlp.up_proj.scales"));
  cr_assert_null(qf_checkpoint_find(ck, "model.layers.0.mlp.up_proj.weight"));
  const qf_st_tensor *e = qf_checkpoint_find(ck, "model.embed_tokens.weight");
  cr_assert(e && e->dtype == QF_DTYPE_F32, "embeddings pass through unchanged");
  json_t *cfg = json_loads(qf_checkpoint_config_json(ck), 0, &je);
  json_t *qc = json_object_get(cfg, "quantization_config");
  cr_assert_str_eq(json_string_value(json_object_get(qc, "quant_method")), "rtn");
  cr_assert_eq(json_integer_value(json_object_get(qc, "group_size")), 32);
  cr_assert_eq(json_integer_value(json_object_get(cfg, "hidden_size")), 64);
  json_decref(cfg);
  qf_checkpoint_close(ck);
  char tok[600];
  snprintf(tok, sizeof tok, "%s/tokenizer.json", dst);
  cr_assert_eq(access(tok, R_OK), 0, "tokenizer copied");
  /* inspect sees the quantization_config */
  cr_assert_eq(run(out, sizeof out, "inspect %s --json", dst), 0, "%s", err_text());
  json_t *ins = json_loads(out, 0, &je);
  cr_assert(ins, "%s", je.text);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ins, "quantization_config"),
                                                     "quant_method")), "rtn");
  cr_assert_eq(json_integer_value(json_object_get(ins, "tensor_count")), 4);
  json_decref(ins);
  /* quantizing again into the same folder is refused; a quantized model too */
  cr_assert_eq(run(NULL, 0, "quantize %s --method rtn -o %s", src, dst), 3);
  cr_assert(strstr(err_text(), "already exists (use --force"), "%s", err_text());
  char dst2[600];
  snprintf(dst2, sizeof dst2, "%s/again", tmpdir);
  cr_assert_eq(run(NULL, 0, "quantize %s --method rtn -o %s", dst, dst2), 3);
  cr_assert(strstr(err_text(), "already quantized (quant_method 'rtn')"), "%s", err_text());
}

Test(cli, failed_quantize_leaves_nothing_behind) {
  char src[512], dst[512];
  snprintf(src, sizeof src, "%s/model", tmpdir);
  snprintf(dst, sizeof dst, "%s/out", tmpdir);
  make_model(src);
  cr_assert_eq(run(NULL, 0, "quantize %s --method rtn --config '{\"bits\": 3}' -o %s", src, dst), 3);
  cr_assert_neq(access(dst, F_OK), 0, "no output folder after a failure");
  char cmd[700], out[256];
  snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c partial || true", tmpdir);
  FILE *f = popen(cmd, "r");
  cr_assert(fgets(out, sizeof out, f));
  pclose(f);
  cr_assert_eq(atoi(out), 0, "no partial folder left");
}

Test(cli, inspect_errors) {
  cr_assert_eq(run(NULL, 0, "inspect %s/does-not-exist", tmpdir), 3);
  cr_assert(strstr(err_text(), "does-not-exist"), "%s", err_text());
}
