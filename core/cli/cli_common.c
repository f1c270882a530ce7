/*
 * Helpers shared by the qforge sub-commands: error printing and exit codes,
 * registry + plugin selection, reading raw files and JSON arguments.
 */
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

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

qf_status qf_cli_plugin_for_file(const qf_cli_plugin_opts *o, const char *path,
                                 qf_registry **reg, qf_plugin **plugin,
                                 qf_error *err) {
  *reg = NULL;
  *plugin = NULL;
  qf_status st = qf_registry_load(o->registry, reg, err);
  if (st != QF_OK) return st;
  qf_backend_choice choice = qf_backend_choice_from_env();
  if (o->backend && qf_backend_choice_parse(o->backend) >= 0)
    choice = (qf_backend_choice)qf_backend_choice_parse(o->backend);
  for (size_t i = 0; i < (*reg)->n_entries; i++) {
    qf_plugin *p = NULL;
    qf_error e;
    qf_error_clear(&e);
    if (qf_plugin_choose(&(*reg)->entries[i], choice, &p, NULL, NULL, &e) != QF_OK) continue;
    if (qf_plugin_owns_file(p, path)) {
      *plugin = p;
      return QF_OK;
    }
    qf_plugin_release(p);
  }
  qf_registry_free(*reg);
  *reg = NULL;
  return qf_errorf(err, QF_ERR_NOT_FOUND, "plugins",
                   "%s: no registered scheme reads this kind of file", path);
}

qf_status qf_cli_st_sink(void *user, const char *name, const DLTensor *t, qf_error *err) {
  return qf_st_writer_add(user, name, qf_dtype_from_dl(t->dtype), t->ndim, t->shape,
                          (const char *)t->data + t->byte_offset, err);
}

qf_status qf_cli_import_container(qf_plugin *plugin, const char *config_json,
                                  const char *in_path, const char *out_dir, int force,
                                  qf_error *err) {
  char tmp[4096];
  qf_status st = qf_partial_dir_begin(out_dir, force, "convert", tmp, sizeof tmp, err);
  if (st != QF_OK) return st;
  qf_st_writer *w = NULL;
  qf_model *m = NULL;
  st = qf_st_writer_new(tmp, 4096ull << 20, &w, err);
  if (st == QF_OK) st = qf_model_new_empty("{}", &m, err);
  if (st == QF_OK) {
    qf_model_set_sink(m, qf_cli_st_sink, w);
    st = qf_run_container(plugin, QF_CONTAINER_IMPORT, config_json, m, in_path, NULL, NULL, err);
  }
  if (st == QF_OK) {
    st = qf_st_writer_finish(w, err);
    w = NULL;
  }
  if (st == QF_OK) {
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", tmp);
    const char *cfg = qf_model_config(m);
    st = qf_write_file_atomic(p, cfg, strlen(cfg), err);
  }
  if (st == QF_OK) st = qf_partial_dir_commit(tmp, out_dir, force, "convert", err);
  if (w) qf_st_writer_abort(w);
  qf_model_free(m);
  if (tmp[0]) qf_remove_tree(tmp);
  return st;
}

char *qf_cli_config_with_tokenizer(const char *config_json, const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  if (access(path, R_OK) != 0) return NULL;
  json_error_t je;
  json_t *j = json_loads(config_json ? config_json : "{}", 0, &je);
  if (!j || json_object_get(j, "tokenizer_json")) {
    json_decref(j);
    return NULL;
  }
  json_object_set_new(j, "tokenizer_json", json_string(path));
  char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(j);
  return text;
}
