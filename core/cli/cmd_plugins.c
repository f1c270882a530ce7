/*
 * `qforge plugins`: every registered scheme, every build, whether it loads
 * (with the dlerror text if not), its ABI version and score, and which build
 * the backend choice picks. Text or --json.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void qf__plugins_usage(FILE *f) {
  fprintf(f,
          "usage: qforge plugins [--registry FILE] [--backend auto|cpu|cuda|hip] [--json]\n\n"
          "List every scheme of the registry with its cpu/cuda/hip builds: whether each\n"
          "loads (and why not), its ABI version and score, and the build that would be\n"
          "used. An invalid registry is an error naming the file and position.\n\n"
          "  --registry FILE   use this registry (default: QFORGE_REGISTRY, XDG, installed)\n"
          "  --backend B       pretend this backend was requested (default QFORGE_BACKEND)\n"
          "  --json            machine-readable output\n");
}

int qf_cmd_plugins(int argc, char **argv) {
  static const struct option opts[] = {{"registry", required_argument, 0, 'r'},
                                       {"backend", required_argument, 0, 'b'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *registry = NULL, *backend = NULL;
  int as_json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "r:b:jh", opts, NULL)) != -1) {
    switch (c) {
      case 'r': registry = optarg; break;
      case 'b': backend = optarg; break;
      case 'j': as_json = 1; break;
      case 'h': qf__plugins_usage(stdout); return QF_EXIT_OK;
      default: qf__plugins_usage(stderr); return QF_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "qforge plugins: unexpected argument '%s'\n", argv[optind]);
    return QF_EXIT_USAGE;
  }
  qf_backend_choice choice = qf_backend_choice_from_env();
  if (backend) {
    int b = qf_backend_choice_parse(backend);
    if (b < 0) {
      fprintf(stderr, "qforge plugins: --backend '%s' is not one of auto, cpu, cuda, hip\n",
              backend);
      return QF_EXIT_USAGE;
    }
    choice = (qf_backend_choice)b;
  }
  qf_error err;
  qf_error_clear(&err);
  qf_registry *reg = NULL;
  qf_status st = qf_registry_load(registry, &reg, &err);
  if (st != QF_OK) {
    qf_cli_print_error(&err);
    return QF_EXIT_PLUGIN;
  }
  json_t *jroot = json_object(), *jfiles = json_array(), *jplugins = json_array();
  for (size_t i = 0; i < reg->n_files; i++) json_array_append_new(jfiles, json_string(reg->files[i]));
  json_object_set_new(jroot, "registry_files", jfiles);
  json_object_set_new(jroot, "backend_requested",
                      json_string(choice == QF_BACKEND_AUTO ? "auto"
                                                            : qf_backend_name((qf_backend)choice)));
  if (!as_json) {
    printf("registry: %s", reg->n_files ? reg->files[0] : "(none)");
    for (size_t i = 1; i < reg->n_files; i++) printf(" + %s", reg->files[i]);
    printf("\n");
  }
  int any_unusable = 0;
  for (size_t i = 0; i < reg->n_entries; i++) {
    const qf_registry_entry *e = &reg->entries[i];
    qf_build_report rep[3];
    size_t nrep = 0;
    qf_plugin *chosen = NULL;
    qf_error cerr;
    qf_error_clear(&cerr);
    st = qf_plugin_choose(e, choice, &chosen, rep, &nrep, &cerr);
    json_t *jp = json_object(), *jb = json_array(), *jm = json_array();
    json_object_set_new(jp, "name", json_string(e->name));
    for (size_t m = 0; m < e->n_quant_methods; m++)
      json_array_append_new(jm, json_string(e->quant_methods[m]));
    json_object_set_new(jp, "quant_methods", jm);
    if (chosen && chosen->desc->description)
      json_object_set_new(jp, "description", json_string(chosen->desc->description));
    if (!as_json)
      printf("\n%s  [%s]%s%s\n", e->name, e->n_quant_methods ? e->quant_methods[0] : "",
             chosen && chosen->desc->description ? "  " : "",
             chosen && chosen->desc->description ? chosen->desc->description : "");
    for (size_t b = 0; b < nrep; b++) {
      json_t *x = json_object();
      json_object_set_new(x, "backend", json_string(qf_backend_name(rep[b].backend)));
      json_object_set_new(x, "path", json_string(rep[b].path));
      json_object_set_new(x, "loads", json_boolean(rep[b].loaded));
      json_object_set_new(x, "abi", rep[b].loaded ? json_string(rep[b].abi) : json_null());
      json_object_set_new(x, "score", rep[b].loaded ? json_integer(rep[b].score) : json_null());
      json_object_set_new(x, "error", rep[b].error[0] && !rep[b].loaded ? json_string(rep[b].error)
                                                                        : json_null());
      json_array_append_new(jb, x);
      if (!as_json) {
        int is_chosen = chosen && chosen->backend == rep[b].backend;
        if (rep[b].loaded)
          printf("  %s %-5s loads    abi %-5s score %-3d %s\n", is_chosen ? "*" : " ",
                 qf_backend_name(rep[b].backend), rep[b].abi, rep[b].score, rep[b].path);
        else
          printf("    %-5s %s  %s\n", qf_backend_name(rep[b].backend),
                 strcmp(rep[b].error, "not requested") ? "fails " : "skipped",
                 rep[b].error);
      }
    }
    json_object_set_new(jp, "builds", jb);
    if (chosen) {
      json_object_set_new(jp, "chosen", json_string(qf_backend_name(chosen->backend)));
    } else {
      char buf[QF_ERROR_MESSAGE_MAX + 256];
      json_object_set_new(jp, "chosen", json_null());
      json_object_set_new(jp, "error", json_string(qf_error_format(&cerr, buf, sizeof buf)));
      if (!as_json) printf("  %s\n", cerr.message);
      any_unusable = 1;
    }
    json_array_append_new(jplugins, jp);
    qf_plugin_release(chosen);
  }
  json_object_set_new(jroot, "plugins", jplugins);
  if (as_json)
    qf_cli_print_json(jroot);
  else
    json_decref(jroot);
  qf_registry_free(reg);
  return any_unusable ? QF_EXIT_PLUGIN : QF_EXIT_OK;
}
