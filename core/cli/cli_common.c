/*
 * Helpers shared by the qforge sub-commands: error printing and exit codes,
 * registry + plugin selection, reading raw files and JSON arguments.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void qf_cli_print_error(const qf_error *err) {
  char buf[QF_ERROR_MESSAGE_MAX + 256];
  fprintf(stderr, "qforge: error: %s\n", qf_error_format(err, buf, sizeof buf));
}

int qf_cli_exit_code(qf_status st) {
  switch (st) {
    case QF_OK: return QF_EXIT_OK;
    case QF_ERR_INVALID_ARGUMENT:
    case QF_ERR_FORMAT:
    case QF_ERR_NOT_FOUND: return QF_EXIT_INPUT;
    case QF_ERR_ABI:
    case QF_ERR_ENVIRONMENT: return QF_EXIT_PLUGIN;
    default: return QF_EXIT_FAILURE;
  }
}

qf_status qf_cli_load_plugin(const qf_cli_plugin_opts *o, const char *method,
                             qf_registry **reg, qf_plugin **plugin,
                             qf_error *err) {
  *reg = NULL;
  *plugin = NULL;
  qf_status st = qf_registry_load(o->registry, reg, err);
  if (st != QF_OK) return st;
  const qf_registry_entry *e = qf_registry_find(*reg, method);
  if (!e) e = qf_registry_find_method(*reg, method);
  if (!e) {
    char names[512] = "";
    for (size_t i = 0; i < (*reg)->n_entries; i++) {
      size_t l = strlen(names);
      snprintf(names + l, sizeof names - l, "%s%s", l ? ", " : "", (*reg)->entries[i].name);
    }
    qf_errorf(err, QF_ERR_NOT_FOUND, "plugins",
              "no registered scheme serves method '%s' (registered: %s; registry: %s)",
              method, names[0] ? names : "none",
              (*reg)->n_files ? (*reg)->files[0] : "?");
    qf_registry_free(*reg);
    *reg = NULL;
    return QF_ERR_NOT_FOUND;
  }
  qf_backend_choice choice = qf_backend_choice_from_env();
  if (o->backend) {
    int c = qf_backend_choice_parse(o->backend);
    if (c < 0) {
      qf_registry_free(*reg);
      *reg = NULL;
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "plugins",
                       "--backend '%s' is not one of auto, cpu, cuda, hip", o->backend);
    }
    choice = (qf_backend_choice)c;
  }
  st = qf_plugin_choose(e, choice, plugin, NULL, NULL, err);
  if (st != QF_OK) {
    qf_registry_free(*reg);
    *reg = NULL;
  }
  return st;
}

qf_status qf_cli_read_raw(const char *path, size_t expect, void **out,
                          size_t *n, qf_error *err) {
  char *buf = NULL;
  size_t len = 0;
  qf_status st = qf_read_file(path, &buf, &len, err);
  if (st != QF_OK) return st;
  if (expect && len != expect) {
    free(buf);
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "read",
                     "%s: holds %zu bytes, expected %zu (check --rows/--cols)", path, len,
                     expect);
  }
  *out = buf;
  if (n) *n = len;
  return QF_OK;
}

qf_status qf_cli_parse_json_object(const char *text, const char *what,
                                   json_t **out, qf_error *err) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "config",
                     "%s is not valid JSON: %s (line %d, column %d)", what, je.text, je.line,
                     je.column);
  if (!json_is_object(j)) {
    json_decref(j);
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "config", "%s must be a JSON object", what);
  }
  *out = j;
  return QF_OK;
}

int qf_cli_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

void qf_cli_print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s) {
    puts(s);
    free(s);
  }
  json_decref(j);
}
