/*
 * `qforge quantize MODEL_DIR --method NAME -o OUT_DIR`: a float HF model
 * folder through a scheme's lifecycle into a new HF folder (safetensors,
 * sharded above --shard-size, plus config.json with quantization_config and
 * the tokenizer files). Tensors stream from the mmap'ed input to the writer,
 * so memory stays bounded by the largest tensor. Output is built in a
 * sibling `OUT_DIR.partial-XXXXXX` folder and renamed into place only when
 * complete: a failure never leaves a half-written OUT_DIR.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "quant_flags.h"

static void qf__quantize_usage(FILE *f) {
  fprintf(f,
          "usage: qforge quantize MODEL_DIR --method NAME [--config JSON | scheme flags]\n"
          "                       -o OUT_DIR [--calib FILE] [--shard-size MB] [--force]\n"
          "                       [--registry FILE] [--backend B] [--json]\n"
          "       qforge quantize MODEL_DIR --method gguf --type Q4_K_M [--imatrix F] -o out.gguf\n"
          "       qforge quantize in.gguf --method gguf --type Q4_K_M -o out.gguf\n\n"
          "Quantize a float HF model folder (config.json + safetensors) with a scheme, into\n"
          "an HF folder, or into the scheme's own file format when OUT has its extension.\n\n"
          "  --method NAME       scheme or quant_method: rtn, gptq, awq, bitsandbytes|bnb, gguf…\n"
          "  --config JSON       quantization_config fields (override the flags below)\n");
  qf_quant_flags_help(f);
  fprintf(f,
          "  --calib FILE        calibration tokens (.u32, .npy, JSON) for GPTQ/AWQ\n"
          "  --shard-size MB     shard the output above this size (default 4096, 0 = never)\n"
          "  --force             replace OUT_DIR if it exists\n"
          "  --json              print a JSON summary on stdout\n");
}

typedef struct qf__qz_ctx {
  qf_st_writer *writer;
  qf_progress *bar;
  uint64_t bytes_out;
} qf__qz_ctx;

static qf_status qf__sink(void *user, const char *name, const DLTensor *t, qf_error *err) {
  qf__qz_ctx *c = user;
  qf_dtype dt = qf_dtype_from_dl(t->dtype);
  uint64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
  c->bytes_out += qf_dtype_size(dt) * n;
  return qf_st_writer_add(c->writer, name, dt, t->ndim, t->shape,
                          (const char *)t->data + t->byte_offset, err);
}

static void qf__on_tensor(void *user, size_t done, size_t total, const char *name) {
  qf__qz_ctx *c = user;
  (void)total;
  (void)name;
  qf_progress_update(c->bar, done);
}

/* Copy the tokenizer and generation files a loader expects beside the
 * weights. Missing files are fine. */
static qf_status qf__copy_side_files(const char *src, const char *dst, qf_error *err) {
  static const char *const names[] = {"tokenizer.json", "tokenizer_config.json",
                                      "special_tokens_map.json", "generation_config.json",
                                      "tokenizer.model", "vocab.json", "merges.txt"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char sp[4096], dp[4096];
    snprintf(sp, sizeof sp, "%s/%s", src, names[i]);
    if (access(sp, R_OK) != 0) continue;
    char *buf = NULL;
    size_t n = 0;
    qf_status st = qf_read_file(sp, &buf, &n, err);
    if (st != QF_OK) return st;
    snprintf(dp, sizeof dp, "%s/%s", dst, names[i]);
    st = qf_write_file_atomic(dp, buf, n, err);
    free(buf);
    if (st != QF_OK) return st;
  }
  return QF_OK;
}

static qf_status qf__write_config(const char *in_cfg, const char *qcfg, const char *dir,
                                  qf_error *err) {
  json_error_t je;
  json_t *cfg = json_loads(in_cfg ? in_cfg : "{}", 0, &je);
  if (!cfg) cfg = json_object();
  json_t *q = json_loads(qcfg ? qcfg : "{}", 0, &je);
  if (!q)
    return qf_errorf(err, QF_ERR_INTERNAL, "quantize",
                     "the plugin's get_config_json returned invalid JSON: %s", je.text);
  json_object_set_new(cfg, "quantization_config", q);
  char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(cfg);
  if (!text) return qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  size_t len = strlen(text);
  char *withnl = realloc(text, len + 2);
  if (withnl) {
    text = withnl;
    text[len++] = '\n';
    text[len] = '\0';
  }
  qf_status st = qf_write_file_atomic(path, text, len, err);
  free(text);
  return st;
}

/* Is OUT a file the scheme owns as a container (e.g. gguf → out.gguf)? */
static int qf__output_is_container(const qf_cli_plugin_opts *po, const char *method,
                                   const char *out) {
  qf_registry *reg = NULL;
  qf_plugin *p = NULL;
  qf_error e;
  if (qf_cli_load_plugin(po, method, &reg, &p, &e) != QF_OK) return 0;
  int owns = qf_plugin_owns_file(p, out);
  qf_plugin_release(p);
  qf_registry_free(reg);
  return owns;
}

/* Container output: HF folder → out.gguf, or in.gguf → out.gguf (requantize:
 * the config names the source, the plugin streams it). */
static int qf__quantize_container(const qf_cli_plugin_opts *po, const char *method,
                                  const qf_quant_flags *flags, const char *config,
                                  const char *in, const char *out, int force, int as_json) {
  qf_error err;
  qf_error_clear(&err);
  qf_registry *reg = NULL;
  qf_plugin *p = NULL;
  qf_checkpoint *ck = NULL;
  qf_model *m = NULL;
  char *cfg_text = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  qf_status st = qf_cli_load_plugin(po, method, &reg, &p, &err);
  if (st == QF_OK && !qf_plugin_owns_file(p, out))
    st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "quantize",
                   "%s: scheme '%s' writes no such file; give an output name with its extension",
                   out, p->desc->name);
  if (st == QF_OK) st = qf_quant_flags_config(flags, p->desc->name, config, &cfg_text, &err);
  if (st == QF_OK && !force && access(out, F_OK) == 0)
    st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "quantize",
                   "%s already exists (use --force to replace it)", out);
  if (st == QF_OK && !qf_cli_is_dir(in)) {
    json_error_t je;
    json_t *j = json_loads(cfg_text, 0, &je);
    json_object_set_new(j, "requantize_from", json_string(in));
    free(cfg_text);
    cfg_text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
  } else if (st == QF_OK) {
    st = qf_checkpoint_open(in, &ck, &err);
    if (st == QF_OK) st = qf_model_new(ck, &m, &err);
  }
  if (st == QF_OK)
    st = qf_run_container(p, QF_CONTAINER_EXPORT, cfg_text, m, NULL, out, NULL, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  if (st == QF_OK) {
    struct stat sb;
    long long bytes = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
    if (as_json) {
      json_t *j = json_object();
      json_object_set_new(j, "method", json_string(p->desc->name));
      json_object_set_new(j, "output", json_string(out));
      json_object_set_new(j, "bytes_out", json_integer(bytes));
      json_object_set_new(j, "seconds", json_real(secs));
      qf_cli_print_json(j);
    } else {
      fprintf(stderr, "qforge: %s: wrote %s (%.1f MiB) in %.2f s\n", p->desc->name, out,
              (double)bytes / 1048576.0, secs);
    }
  } else {
    qf_cli_print_error(&err);
  }
  free(cfg_text);
  qf_model_free(m);
  qf_checkpoint_close(ck);
  qf_plugin_release(p);
  qf_registry_free(reg);
  return qf_cli_exit_code(st);
}

int qf_cmd_quantize(int argc, char **argv) {
  enum { O_CALIB = 1000, O_SHARD, O_FORCE, O_JSON, O_REG, O_BACKEND, O_CONFIG };
  struct option opts[64];
  size_t no = 0;
  opts[no++] = (struct option){"method", required_argument, 0, 'm'};
  opts[no++] = (struct option){"output", required_argument, 0, 'o'};
  opts[no++] = (struct option){"config", required_argument, 0, O_CONFIG};
  opts[no++] = (struct option){"calib", required_argument, 0, O_CALIB};
  opts[no++] = (struct option){"shard-size", required_argument, 0, O_SHARD};
  opts[no++] = (struct option){"force", no_argument, 0, O_FORCE};
  opts[no++] = (struct option){"json", no_argument, 0, O_JSON};
  opts[no++] = (struct option){"registry", required_argument, 0, O_REG};
  opts[no++] = (struct option){"backend", required_argument, 0, O_BACKEND};
  opts[no++] = (struct option){"help", no_argument, 0, 'h'};
  no += qf_quant_flags_options(opts + no, 64 - no - 1);
  opts[no] = (struct option){0, 0, 0, 0};

  const char *method = NULL, *out_dir = NULL, *config = NULL, *calib_file = NULL;
  double shard_mb = 4096;
  int force = 0, as_json = 0, c;
  qf_cli_plugin_opts po = {0};
  qf_quant_flags flags;
  qf_quant_flags_init(&flags);
  optind = 1;
  while ((c = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1) {
    switch (c) {
      case 'm': method = optarg; break;
      case 'o': out_dir = optarg; break;
      case O_CONFIG: config = optarg; break;
      case O_CALIB: calib_file = optarg; break;
      case O_SHARD: shard_mb = strtod(optarg, NULL); break;
      case O_FORCE: force = 1; break;
      case O_JSON: as_json = 1; break;
      case O_REG: po.registry = optarg; break;
      case O_BACKEND: po.backend = optarg; break;
      case 'h': qf__quantize_usage(stdout); return QF_EXIT_OK;
      default:
        if (qf_quant_flags_take(&flags, c, optarg) == 0) break;
        qf__quantize_usage(stderr);
        return QF_EXIT_USAGE;
    }
  }
  if (optind != argc - 1 || !method || !out_dir) {
    fprintf(stderr, "qforge quantize: MODEL_DIR, --method and -o OUT_DIR are required "
                    "(see --help)\n");
    return QF_EXIT_USAGE;
  }
  const char *in_dir = argv[optind];
  qf_error err;
  qf_error_clear(&err);
  if (!qf_cli_is_dir(in_dir) || qf__output_is_container(&po, method, out_dir))
    return qf__quantize_container(&po, method, &flags, config, in_dir, out_dir, force, as_json);
  qf_status st = QF_OK;
  qf_checkpoint *ck = NULL;
  qf_registry *reg = NULL;
  qf_plugin *plugin = NULL;
  qf_model *model = NULL;
  qf_session *s = NULL;
  char *cfg_text = NULL, tmp_dir[4096] = "";
  qf__qz_ctx ctx = {0};
  int rc = QF_EXIT_OK;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);

  if ((st = qf_checkpoint_open(in_dir, &ck, &err)) != QF_OK) goto fail;
  {
    json_error_t je;
    const char *ic = qf_checkpoint_config_json(ck);
    json_t *j = ic ? json_loads(ic, 0, &je) : NULL;
    json_t *qc = j ? json_object_get(j, "quantization_config") : NULL;
    if (qc) {
      const char *qm = json_string_value(json_object_get(qc, "quant_method"));
      st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "quantize",
                     "%s/config.json: the model is already quantized (quant_method '%s'); "
                     "quantize a float checkpoint", in_dir, qm ? qm : "?");
      json_decref(j);
      goto fail;
    }
    json_decref(j);
  }
  if ((st = qf_cli_load_plugin(&po, method, &reg, &plugin, &err)) != QF_OK) goto fail;
  if ((st = qf_quant_flags_config(&flags, plugin->desc->name, config, &cfg_text, &err)) != QF_OK)
    goto fail;
  if (calib_file || (plugin->desc->caps & QF_CAP_REQUIRES_CALIBRATION)) {
    st = qf_errorf(&err, QF_ERR_UNSUPPORTED, "quantize",
                   "scheme '%s' needs calibration through the model runtime, which this "
                   "build does not provide yet", plugin->desc->name);
    goto fail;
  }
  /* output folder: refuse to clobber unless --force */
  if (access(out_dir, F_OK) == 0 && !force) {
    st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "quantize",
                   "%s already exists (use --force to replace it)", out_dir);
    goto fail;
  }
  snprintf(tmp_dir, sizeof tmp_dir, "%s.partial-XXXXXX", out_dir);
  if (!mkdtemp(tmp_dir)) {
    st = qf_errorf(&err, QF_ERR_IO, "quantize", "%s: cannot create a folder beside it: %s",
                   out_dir, strerror(errno));
    tmp_dir[0] = '\0';
    goto fail;
  }
  if ((st = qf_st_writer_new(tmp_dir, (uint64_t)(shard_mb * 1048576.0), &ctx.writer, &err)) !=
      QF_OK)
    goto fail;
  if ((st = qf_model_new(ck, &model, &err)) != QF_OK) goto fail;
  qf_model_set_sink(model, qf__sink, &ctx);
  ctx.bar = qf_progress_new("quantize", qf_checkpoint_count(ck));
  qf_run_options opt = {0};
  opt.struct_size = sizeof opt;
  opt.config_json = cfg_text;
  opt.on_tensor = qf__on_tensor;
  opt.user = &ctx;
  st = qf_run_lifecycle(plugin, model, &opt, &s, &err);
  qf_progress_done(ctx.bar);
  ctx.bar = NULL;
  if (st != QF_OK) goto fail;
  st = qf_st_writer_finish(ctx.writer, &err);
  ctx.writer = NULL;
  if (st != QF_OK) goto fail;
  if ((st = qf__write_config(qf_checkpoint_config_json(ck), s->config_json, tmp_dir, &err)) != QF_OK)
    goto fail;
  if ((st = qf__copy_side_files(qf_checkpoint_dir(ck), tmp_dir, &err)) != QF_OK) goto fail;
  if (force && access(out_dir, F_OK) == 0) qf_cli_rm_rf(out_dir);
  if (rename(tmp_dir, out_dir) != 0) {
    st = qf_errorf(&err, QF_ERR_IO, "quantize", "cannot move the result into %s: %s", out_dir,
                   strerror(errno));
    goto fail;
  }
  tmp_dir[0] = '\0';
  clock_gettime(CLOCK_MONOTONIC, &t1);
  {
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    uint64_t in_bytes = 0;
    for (size_t i = 0; i < qf_checkpoint_count(ck); i++) in_bytes += qf_checkpoint_at(ck, i)->nbytes;
    if (as_json) {
      json_t *j = json_object();
      json_object_set_new(j, "method", json_string(plugin->desc->name));
      json_object_set_new(j, "backend", json_string(qf_backend_name(plugin->backend)));
      json_object_set_new(j, "output", json_string(out_dir));
      json_object_set_new(j, "tensors_in", json_integer((json_int_t)qf_checkpoint_count(ck)));
      json_object_set_new(j, "bytes_in", json_integer((json_int_t)in_bytes));
      json_object_set_new(j, "bytes_out", json_integer((json_int_t)ctx.bytes_out));
      json_object_set_new(j, "seconds", json_real(secs));
      json_error_t je;
      json_t *q = json_loads(s->config_json, 0, &je);
      json_object_set_new(j, "quantization_config", q ? q : json_null());
      qf_cli_print_json(j);
    } else {
      fprintf(stderr, "qforge: %s: %.1f MiB -> %.1f MiB in %.2f s, written to %s\n",
              plugin->desc->name, (double)in_bytes / 1048576.0,
              (double)ctx.bytes_out / 1048576.0, secs, out_dir);
    }
  }
  goto done;
fail:
  rc = qf_cli_exit_code(st);
  qf_cli_print_error(&err);
done:
  if (ctx.bar) qf_progress_done(ctx.bar);
  if (ctx.writer) qf_st_writer_abort(ctx.writer);
  if (tmp_dir[0]) qf_cli_rm_rf(tmp_dir);
  qf_session_free(s);
  qf_model_free(model);
  free(cfg_text);
  qf_plugin_release(plugin);
  qf_registry_free(reg);
  qf_checkpoint_close(ck);
  return rc;
}
