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
          "usage: qforge convert IN -o OUT [--type T] [--config JSON] [--force]\n"
          "                      [--registry FILE] [--backend B]\n\n"
          "  in.gguf -o DIR        GGUF → HF folder (dequantized safetensors + config.json)\n"
          "  DIR -o out.gguf       HF folder → GGUF (--type F16 by default; any file type of\n"
          "                        `qforge quantize --method gguf --type`)\n\n"
          "  --type T        GGUF file type for HF → GGUF (F32, F16, BF16, Q8_0, Q4_K_M, …)\n"
          "  --config JSON   extra quantizer config fields\n"
          "  --force         replace OUT if it exists\n");
}

int qf_cmd_convert(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"type", required_argument, 0, 't'},
                                       {"config", required_argument, 0, 'c'},
                                       {"force", no_argument, 0, 'f'},
                                       {"registry", required_argument, 0, 'r'},
                                       {"backend", required_argument, 0, 'b'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *out = NULL, *type = NULL, *config = NULL;
  int force = 0, c;
  qf_cli_plugin_opts po = {0};
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:t:c:fr:b:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': out = optarg; break;
      case 't': type = optarg; break;
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
