/*
 * Shared pieces of the `qforge` command: exit codes, the sub-command
 * signature, plugin selection from the registry, and small file helpers.
 */
#ifndef QF_CLI_H
#define QF_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "qforge/qforge.h"

/* Exit codes (documented in `qforge --help`). */
enum {
  QF_EXIT_OK = 0,
  QF_EXIT_FAILURE = 1, /* the operation failed (quantization, I/O…) */
  QF_EXIT_USAGE = 2,   /* bad command line */
  QF_EXIT_INPUT = 3,   /* bad input: malformed file, config or data */
  QF_EXIT_PLUGIN = 4   /* registry or plugin problem */
};

/* Options every command that loads a plugin accepts. */
typedef struct qf_cli_plugin_opts {
  const char *registry; /* --registry */
  const char *backend;  /* --backend */
} qf_cli_plugin_opts;

typedef int (*qf_cli_cmd_fn)(int argc, char **argv);

int qf_cmd_plugins(int argc, char **argv);
int qf_cmd_inspect(int argc, char **argv);
int qf_cmd_quantize(int argc, char **argv);
int qf_cmd_raw(int argc, char **argv);
int qf_cmd_convert(int argc, char **argv);
int qf_cmd_eval(int argc, char **argv);
int qf_cmd_demo(int argc, char **argv);
int qf_cmd_imatrix(int argc, char **argv);

/* Print "qforge: error: <formatted err>" to stderr. */
void qf_cli_print_error(const qf_error *err);
/* Map a status to the exit code the CLI documents. */
int qf_cli_exit_code(qf_status st);

/* Load the registry and choose the build serving `method` (a scheme name
 * or a quant_method value). On success *reg and *plugin belong to the
 * caller. */
qf_status qf_cli_load_plugin(const qf_cli_plugin_opts *o, const char *method,
                             qf_registry **reg, qf_plugin **plugin,
                             qf_error *err);

/* Find the plugin that owns `path` as a container (by extension, e.g.
 * .gguf). QF_ERR_NOT_FOUND if none does. */
qf_status qf_cli_plugin_for_file(const qf_cli_plugin_opts *o, const char *path,
                                 qf_registry **reg, qf_plugin **plugin,
                                 qf_error *err);

/* A qf_model sink that appends each output tensor to the qf_st_writer
 * `user` (data copied; the writer stays the caller's). */
qf_status qf_cli_st_sink(void *user, const char *name, const DLTensor *t, qf_error *err);

/* Import a container file into an HF folder (`out_dir`, built beside it and
 * renamed into place). `config_json` is the quantizer config. */
qf_status qf_cli_import_container(qf_plugin *plugin, const char *config_json,
                                  const char *in_path, const char *out_dir,
                                  int force, qf_error *err);

/* The config text with "tokenizer_json": "<dir>/tokenizer.json" added when
 * that file exists (container exports carry the tokenizer); NULL when there
 * is nothing to add. Caller frees. */
char *qf_cli_config_with_tokenizer(const char *config_json, const char *dir);

/* Read a whole raw little-endian file expected to hold exactly `expect`
 * bytes (0 = any size). Caller frees *out. */
qf_status qf_cli_read_raw(const char *path, size_t expect, void **out,
                          size_t *n, qf_error *err);
/* Parse a JSON object given on the command line; error names `what`. */
qf_status qf_cli_parse_json_object(const char *text, const char *what,
                                   json_t **out, qf_error *err);
/* Is `path` a directory? */
int qf_cli_is_dir(const char *path);

/* The `--json` printer: dumps, adds a newline, frees. */
void qf_cli_print_json(json_t *j);

#endif /* QF_CLI_H */
