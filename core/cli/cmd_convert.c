/*
 * `qforge convert IN -o OUT`: between an HF model folder and a container
 * format a plugin owns (GGUF): a container file → an HF folder (dequantized
 * safetensors with HF names + config.json, the path transformers takes when
 * it loads GGUF), or an HF folder → a container file (float or quantized
 * with --type).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void qf__convert_usage(FILE *f) {
  fprintf(f,
          "usage: qforge convert IN -o OUT [--type T] [--to SCHEME] [--config JSON] [--force]\n"
          "                      [--registry FILE] [--backend B]\n\n"
          "  in.gguf -o DIR        GGUF → HF folder (dequantized safetensors + config.json)\n"
          "  DIR -o out.gguf       HF folder → GGUF (--type F16 by default; any file type of\n"
          "                        `qforge quantize --method gguf --type`)\n"
          "  DIR --to gptq -o DIR2  a quantized HF folder re-expressed in another scheme's\n"
          "                        layout without requantizing (AWQ → GPTQ)\n\n"
          "  --type T        GGUF file type for HF → GGUF (F32, F16, BF16, Q8_0, Q4_K_M, …)\n"
          "  --config JSON   extra quantizer config fields\n"
          "  --force         replace OUT if it exists\n");
}

/* A quantized HF folder → another scheme's layout (convert_format). */
static int qf__convert_layout(const qf_cli_plugin_opts *po, const char *in, const char *out,
                              const char *to, int force) {
  qf_error err;
  qf_error_clear(&err);
  qf_checkpoint *ck = NULL;
  qf_registry *reg = NULL;
  qf_plugin *p = NULL;
  qf_model *min = NULL, *mout = NULL;
  qf_st_writer *w = NULL;
  char *qtext = NULL, *newcfg = NULL, tmp[4096] = "";
  json_t *cfg = NULL;
  qf_status st = qf_checkpoint_open(in, &ck, &err);
  if (st == QF_OK) {
    json_error_t je;
    const char *ct = qf_checkpoint_config_json(ck);
    cfg = ct ? json_loads(ct, 0, &je) : NULL;
    json_t *qc = cfg ? json_object_get(cfg, "quantization_config") : NULL;
    const char *m = qc ? json_string_value(json_object_get(qc, "quant_method")) : NULL;
    if (!m)
      st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "convert",
                     "%s/config.json has no quantization_config.quant_method: --to converts "
                     "quantized checkpoints", in);
    else {
      qtext = json_dumps(qc, JSON_COMPACT | JSON_PRESERVE_ORDER);
      st = qf_cli_load_plugin(po, m, &reg, &p, &err);
    }
  }
  if (st == QF_OK) st = qf_partial_dir_begin(out, force, "convert", tmp, sizeof tmp, &err);
  if (st == QF_OK) st = qf_st_writer_new(tmp, 4096ull << 20, &w, &err);
  if (st == QF_OK) st = qf_model_new(ck, &min, &err);
  if (st == QF_OK) st = qf_model_new_empty("{}", &mout, &err);
  if (st == QF_OK) {
    qf_model_set_sink(mout, qf_cli_st_sink, w);
    st = qf_run_convert_format(p, qtext, min, to, mout, &newcfg, &err);
  }
  if (st == QF_OK) {
    st = qf_st_writer_finish(w, &err);
    w = NULL;
  }
  if (st == QF_OK) st = qf_write_hf_config(qf_checkpoint_config_json(ck), newcfg, tmp, &err);
  if (st == QF_OK) st = qf_copy_side_files(qf_checkpoint_dir(ck), tmp, &err);
  if (st == QF_OK) st = qf_partial_dir_commit(tmp, out, force, "convert", &err);
  if (st == QF_OK) {
    fprintf(stderr, "qforge: %s: %s re-expressed as %s in %s\n", p->desc->name, in, to, out);
  } else {
    qf_cli_print_error(&err);
  }
  if (w) qf_st_writer_abort(w);
  if (tmp[0]) qf_remove_tree(tmp);
  qf_model_free(mout);
  qf_model_free(min);
  free(newcfg);
  free(qtext);
  json_decref(cfg);
  qf_plugin_release(p);
  qf_registry_free(reg);
  qf_checkpoint_close(ck);
  return qf_cli_exit_code(st);
}

int qf_cmd_convert(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"type", required_argument, 0, 't'},
                                       {"to", required_argument, 0, 'T'},
                                       {"config", required_argument, 0, 'c'},
                                       {"force", no_argument, 0, 'f'},
                                       {"registry", required_argument, 0, 'r'},
                                       {"backend", required_argument, 0, 'b'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *out = NULL, *type = NULL, *config = NULL, *to = NULL;
  int force = 0, c;
  qf_cli_plugin_opts po = {0};
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:t:T:c:fr:b:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': out = optarg; break;
      case 't': type = optarg; break;
      case 'T': to = optarg; break;
      case 'c': config = optarg; break;
      case 'f': force = 1; break;
      case 'r': po.registry = optarg; break;
      case 'b': po.backend = optarg; break;
      case 'h': qf__convert_usage(stdout); return QF_EXIT_OK;
      default: qf__convert_usage(stderr); return QF_EXIT_USAGE;
    }
  }
  if (optind != argc - 1 || !out) {
    qf__convert_usage(stderr);
    return QF_EXIT_USAGE;
  }
  const char *in = argv[optind];
  if (to) return qf__convert_layout(&po, in, out, to, force);
  qf_error err;
  qf_error_clear(&err);
  qf_registry *reg = NULL;
  qf_plugin *plugin = NULL;
  qf_status st;
  json_t *cfg = NULL;
  if (config && (st = qf_cli_parse_json_object(config, "--config", &cfg, &err)) != QF_OK) goto fail;
  if (!cfg) cfg = json_object();
  if (!qf_cli_is_dir(in)) {
    /* container → HF folder */
    if ((st = qf_cli_plugin_for_file(&po, in, &reg, &plugin, &err)) != QF_OK) goto fail;
    char *text = json_dumps(cfg, JSON_COMPACT);
    st = qf_cli_import_container(plugin, text, in, out, force, &err);
    free(text);
    if (st != QF_OK) goto fail;
    fprintf(stderr, "qforge: %s: %s converted to %s\n", plugin->desc->name, in, out);
  } else {
    /* HF folder → container */
    if ((st = qf_cli_plugin_for_file(&po, out, &reg, &plugin, &err)) != QF_OK) goto fail;
    json_object_set_new(cfg, "type", json_string(type ? type : "F16"));
    if (!force && access(out, F_OK) == 0) {
      st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "convert",
                     "%s already exists (use --force to replace it)", out);
      goto fail;
    }
    qf_checkpoint *ck = NULL;
    qf_model *m = NULL;
    if ((st = qf_checkpoint_open(in, &ck, &err)) != QF_OK) goto fail;
    if ((st = qf_model_new(ck, &m, &err)) != QF_OK) {
      qf_checkpoint_close(ck);
      goto fail;
    }
    char *text = json_dumps(cfg, JSON_COMPACT);
    char *with_tok = qf_cli_config_with_tokenizer(text, in);
    if (with_tok) {
      free(text);
      text = with_tok;
    }
    st = qf_run_container(plugin, QF_CONTAINER_EXPORT, text, m, NULL, out, NULL, &err);
    free(text);
    qf_model_free(m);
    qf_checkpoint_close(ck);
    if (st != QF_OK) goto fail;
    fprintf(stderr, "qforge: %s: %s converted to %s\n", plugin->desc->name, in, out);
  }
  json_decref(cfg);
  qf_plugin_release(plugin);
  qf_registry_free(reg);
  return QF_EXIT_OK;
fail:
  qf_cli_print_error(&err);
  json_decref(cfg);
  qf_plugin_release(plugin);
  qf_registry_free(reg);
  return qf_cli_exit_code(st);
}
