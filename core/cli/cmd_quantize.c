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
          "  --calib FILE        calibration data for GPTQ/AWQ: token ids (.u32, .npy, JSON)\n"
          "                      or text (encoded with MODEL_DIR's tokenizer.json)\n"
          "  --calib-len N       calibration window length in tokens (default 512)\n"
          "  --calib-seqs N      calibration windows used (default 128)\n"
          "  --shard-size MB     shard the output above this size (default 4096, 0 = never)\n"
          "  --force             replace OUT_DIR if it exists\n"
          "  --report FILE       write the per-layer metrics plugins report (GPTQ's loss…)\n"
          "                      as JSON {tensor: {metric: value}}\n"
          "  --json              print a JSON summary on stdout\n");
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
    char *with_tok = st == QF_OK ? qf_cli_config_with_tokenizer(cfg_text, in) : NULL;
    if (with_tok) {
      free(cfg_text);
      cfg_text = with_tok;
    }
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
  enum { O_CALIB = 1000, O_SHARD, O_FORCE, O_JSON, O_REG, O_BACKEND, O_CONFIG, O_CLEN, O_CSEQ, O_REPORT };
  struct option opts[64];
  size_t no = 0;
  opts[no++] = (struct option){"method", required_argument, 0, 'm'};
  opts[no++] = (struct option){"output", required_argument, 0, 'o'};
  opts[no++] = (struct option){"config", required_argument, 0, O_CONFIG};
  opts[no++] = (struct option){"calib", required_argument, 0, O_CALIB};
  opts[no++] = (struct option){"calib-len", required_argument, 0, O_CLEN};
  opts[no++] = (struct option){"calib-seqs", required_argument, 0, O_CSEQ};
  opts[no++] = (struct option){"shard-size", required_argument, 0, O_SHARD};
  opts[no++] = (struct option){"force", no_argument, 0, O_FORCE};
  opts[no++] = (struct option){"report", required_argument, 0, O_REPORT};
  opts[no++] = (struct option){"json", no_argument, 0, O_JSON};
  opts[no++] = (struct option){"registry", required_argument, 0, O_REG};
  opts[no++] = (struct option){"backend", required_argument, 0, O_BACKEND};
  opts[no++] = (struct option){"help", no_argument, 0, 'h'};
  no += qf_quant_flags_options(opts + no, 64 - no - 1);
  opts[no] = (struct option){0, 0, 0, 0};

  const char *method = NULL, *out_dir = NULL, *config = NULL, *calib_file = NULL, *report = NULL;
  double shard_mb = 4096;
  long long calib_len = 0, calib_seqs = 0;
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
      case O_CLEN: calib_len = strtoll(optarg, NULL, 10); break;
      case O_CSEQ: calib_seqs = strtoll(optarg, NULL, 10); break;
      case O_SHARD: shard_mb = strtod(optarg, NULL); break;
      case O_FORCE: force = 1; break;
      case O_REPORT: report = optarg; break;
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
  if (!qf_cli_is_dir(in_dir) || qf__output_is_container(&po, method, out_dir))
    return qf__quantize_container(&po, method, &flags, config, in_dir, out_dir, force, as_json);
  qf_error err;
  qf_error_clear(&err);
  qf_registry *reg = NULL;
  qf_plugin *plugin = NULL;
  char *cfg_text = NULL;
  qf_quantize_result res;
  memset(&res, 0, sizeof res);
  qf_status st = qf_cli_load_plugin(&po, method, &reg, &plugin, &err);
  if (st == QF_OK) st = qf_quant_flags_config(&flags, plugin->desc->name, config, &cfg_text, &err);
  if (st == QF_OK) {
    qf_quantize_request req = {0};
    req.struct_size = sizeof req;
    req.plugin = plugin;
    req.config_json = cfg_text;
    req.in_dir = in_dir;
    req.out_dir = out_dir;
    req.calib_path = calib_file;
    req.calib_seq_len = calib_len;
    req.calib_max_seqs = calib_seqs;
    req.shard_bytes = (uint64_t)(shard_mb * 1048576.0);
    req.force = force;
    req.progress = 1;
    st = qf_quantize_folder(&req, &res, &err);
  }
  if (st == QF_OK && report && res.metrics_json)
    st = qf_write_file_atomic(report, res.metrics_json, strlen(res.metrics_json), &err);
  if (st == QF_OK) {
    if (as_json) {
      json_t *j = json_object();
      json_object_set_new(j, "method", json_string(plugin->desc->name));
      json_object_set_new(j, "backend", json_string(qf_backend_name(plugin->backend)));
      json_object_set_new(j, "output", json_string(out_dir));
      json_object_set_new(j, "tensors_in", json_integer((json_int_t)res.tensors_in));
      json_object_set_new(j, "tensors_quantized", json_integer((json_int_t)res.tensors_quantized));
      json_object_set_new(j, "bytes_in", json_integer((json_int_t)res.bytes_in));
      json_object_set_new(j, "bytes_out", json_integer((json_int_t)res.bytes_out));
      json_object_set_new(j, "seconds", json_real(res.seconds));
      json_error_t je;
      json_t *q = res.config_json ? json_loads(res.config_json, 0, &je) : NULL;
      json_object_set_new(j, "quantization_config", q ? q : json_null());
      json_t *mj = res.metrics_json ? json_loads(res.metrics_json, 0, &je) : NULL;
      json_object_set_new(j, "layers", mj ? mj : json_object());
      qf_cli_print_json(j);
    } else {
      fprintf(stderr, "qforge: %s: %zu of %zu tensors quantized, %.1f MiB -> %.1f MiB in %.2f s, "
              "written to %s\n", plugin->desc->name, res.tensors_quantized, res.tensors_in,
              (double)res.bytes_in / 1048576.0, (double)res.bytes_out / 1048576.0, res.seconds,
              out_dir);
    }
  } else {
    qf_cli_print_error(&err);
  }
  qf_quantize_result_clear(&res);
  free(cfg_text);
  qf_plugin_release(plugin);
  qf_registry_free(reg);
  return qf_cli_exit_code(st);
}
