/*
 * Plugin loading and backend choice.
 *
 * qf_plugin_open: stat → dlopen(RTLD_NOW | RTLD_LOCAL) (dlerror() reported
 * verbatim) → dlsym(qf_plugin_init) → init(host) → descriptor checks (struct
 * sizes, ABI major equal, required slots present) → optional
 * qf_plugin_score(). The negotiated minor is min(host, plugin): the host only
 * touches vtable slots that fit in the plugin's declared struct_size.
 *
 * qf_plugin_choose: opens every build of a registry entry and keeps the
 * requested one (named backend) or the best-scoring one (auto). GPU builds
 * that score 0 are skipped with one INFO line naming why the CPU build runs.
 * A successfully initialised plugin is never dlclose'd: it may hold a GPU
 * context or threads.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qforge/qforge.h"

static qf_status qf__check_desc(const char *path, const qf_plugin_desc *d,
                                qf_error *err) {
  if (!d)
    return qf_errorf(err, QF_ERR_ABI, "load", "%s: qf_plugin_init returned no descriptor", path);
  if (d->struct_size < QF_STRUCT_SIZE_TO(qf_plugin_desc, vtable))
    return qf_errorf(err, QF_ERR_ABI, "load",
                     "%s: plugin descriptor is %zu bytes, expected at least %zu "
                     "(a corrupt or pre-1.0 plugin)",
                     path, d->struct_size, QF_STRUCT_SIZE_TO(qf_plugin_desc, vtable));
  if (d->abi_major != QF_ABI_MAJOR)
    return qf_errorf(err, QF_ERR_ABI, "load",
                     "%s: plugin '%s' was built for qforge ABI %u.%u but this qforge "
                     "speaks ABI %d.%d (major versions must match; rebuild the plugin)",
                     path, d->name ? d->name : "?", d->abi_major, d->abi_minor,
                     QF_ABI_MAJOR, QF_ABI_MINOR);
  if (!d->name || !*d->name)
    return qf_errorf(err, QF_ERR_ABI, "load", "%s: plugin descriptor has no name", path);
  if (!d->quant_methods || !d->quant_methods[0])
    return qf_errorf(err, QF_ERR_ABI, "load",
                     "%s: plugin '%s' declares no quant_methods", path, d->name);
  if (d->backend < QF_BACKEND_CPU || d->backend > QF_BACKEND_HIP)
    return qf_errorf(err, QF_ERR_ABI, "load",
                     "%s: plugin '%s' declares unknown backend %d (expected 1=cpu, "
                     "2=cuda, 3=hip)", path, d->name, (int)d->backend);
  const qf_quantizer_vtable *vt = d->vtable;
  if (!vt)
    return qf_errorf(err, QF_ERR_ABI, "load", "%s: plugin '%s' has no vtable", path, d->name);
  if (vt->struct_size < QF_STRUCT_SIZE_TO(qf_quantizer_vtable, linear_forward))
    return qf_errorf(err, QF_ERR_ABI, "load",
                     "%s: plugin '%s' vtable is %zu bytes, expected at least %zu",
                     path, d->name, vt->struct_size,
                     QF_STRUCT_SIZE_TO(qf_quantizer_vtable, linear_forward));
  const char *missing = NULL;
  if (!vt->create) missing = "create";
  else if (!vt->destroy) missing = "destroy";
  else if (!vt->validate_environment) missing = "validate_environment";
  else if (!vt->param_needs_quantization) missing = "param_needs_quantization";
  else if (!vt->get_config_json) missing = "get_config_json";
  if (missing)
    return qf_errorf(err, QF_ERR_ABI, "load",
                     "%s: plugin '%s' leaves the required slot '%s' NULL", path,
                     d->name, missing);
  return QF_OK;
}

qf_status qf_plugin_open(const char *path, qf_plugin **out, qf_error *err) {
  *out = NULL;
  struct stat sb;
  if (!path || !*path)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "load", "empty plugin path");
  if (stat(path, &sb) != 0)
    return qf_errorf(err, QF_ERR_NOT_FOUND, "load", "%s: cannot open plugin: %s", path,
                     strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "load", "%s: not a regular file", path);
  dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    return qf_errorf(err, QF_ERR_ENVIRONMENT, "load", "%s: dlopen failed: %s", path,
                     e ? e : "unknown error");
  }
  dlerror();
  qf_plugin_init_fn init = (qf_plugin_init_fn)(uintptr_t)dlsym(h, QF_PLUGIN_INIT_SYMBOL);
  if (!init) {
    const char *e = dlerror();
    qf_errorf(err, QF_ERR_ABI, "load",
              "%s: not a qforge plugin: no '%s' symbol (%s)", path,
              QF_PLUGIN_INIT_SYMBOL, e ? e : "symbol is NULL");
    dlclose(h);
    return QF_ERR_ABI;
  }
  const qf_plugin_desc *desc = NULL;
  qf_error perr;
  qf_error_clear(&perr);
  qf_status st = init(qf_host_table(), &desc, &perr);
  if (st != QF_OK) {
    return qf_errorf(err, st == QF_ERR_ABI ? QF_ERR_ABI : QF_ERR_ENVIRONMENT, "load",
                     "%s: qf_plugin_init failed (%s): %s", path, qf_status_name(st),
                     perr.message[0] ? perr.message : "no message");
  }
  st = qf__check_desc(path, desc, err);
  if (st != QF_OK) return st;
  int score = 1;
  qf_plugin_score_fn sc = (qf_plugin_score_fn)(uintptr_t)dlsym(h, QF_PLUGIN_SCORE_SYMBOL);
  if (sc) score = sc();
  if (score < 0) score = 0; /* a negative score means unusable too */
  qf_plugin *p = calloc(1, sizeof *p);
  if (!p) return qf_errorf(err, QF_ERR_NO_MEMORY, "load", "out of memory");
  p->path = strdup(path);
  p->desc = desc;
  p->score = score;
  p->backend = desc->backend;
  unsigned host_minor = QF_ABI_MINOR;
  p->abi_minor = (uint16_t)(desc->abi_minor < host_minor ? desc->abi_minor : host_minor);
  *out = p;
  return QF_OK;
}

void qf_plugin_release(qf_plugin *p) {
  if (!p) return;
  free(p->path);
  free(p);
}

int qf_backend_choice_parse(const char *s) {
  if (!s) return -1;
  if (!strcmp(s, "auto")) return QF_BACKEND_AUTO;
  if (!strcmp(s, "cpu")) return QF_CHOOSE_CPU;
  if (!strcmp(s, "cuda")) return QF_CHOOSE_CUDA;
  if (!strcmp(s, "hip")) return QF_CHOOSE_HIP;
  return -1;
}

qf_backend_choice qf_backend_choice_from_env(void) {
  const char *s = getenv("QFORGE_BACKEND");
  if (!s || !*s) return QF_BACKEND_AUTO;
  int c = qf_backend_choice_parse(s);
  if (c < 0) {
    qf_log(QF_LOG_WARN, "QFORGE_BACKEND='%s' is not one of auto, cpu, cuda, hip; using auto", s);
    return QF_BACKEND_AUTO;
  }
  return (qf_backend_choice)c;
}

static const char *qf__why_zero(qf_backend b) {
  return b == QF_BACKEND_CUDA ? "no CUDA device or runtime"
                              : b == QF_BACKEND_HIP ? "no HIP device or runtime"
                                                    : "unusable here";
}

qf_status qf_plugin_choose(const qf_registry_entry *entry,
                           qf_backend_choice choice, qf_plugin **out,
                           qf_build_report *reports, size_t *n_reports,
                           qf_error *err) {
  *out = NULL;
  qf_plugin *loaded[3] = {NULL, NULL, NULL};
  qf_build_report local[3];
  qf_build_report *rep = reports ? reports : local;
  size_t nb = entry->n_builds < 3 ? entry->n_builds : 3;
  for (size_t i = 0; i < nb; i++) {
    const qf_registry_build *b = &entry->builds[i];
    memset(&rep[i], 0, sizeof rep[i]);
    rep[i].backend = b->backend;
    rep[i].path = b->path;
    rep[i].score = -1;
    if (choice != QF_BACKEND_AUTO && (int)b->backend != (int)choice) {
      snprintf(rep[i].error, sizeof rep[i].error, "not requested");
      continue;
    }
    qf_error e;
    qf_error_clear(&e);
    if (qf_plugin_open(b->path, &loaded[i], &e) != QF_OK) {
      snprintf(rep[i].error, sizeof rep[i].error, "%s", e.message);
      continue;
    }
    if (loaded[i]->backend != b->backend) {
      snprintf(rep[i].error, sizeof rep[i].error,
               "%s: registry lists it as a %s build but the plugin says %s", b->path,
               qf_backend_name(b->backend), qf_backend_name(loaded[i]->backend));
      qf_plugin_release(loaded[i]);
      loaded[i] = NULL;
      continue;
    }
    rep[i].loaded = 1;
    rep[i].score = loaded[i]->score;
    snprintf(rep[i].abi, sizeof rep[i].abi, "%u.%u", loaded[i]->desc->abi_major,
             loaded[i]->desc->abi_minor);
  }
  if (n_reports) *n_reports = nb;

  int best = -1;
  if (choice == QF_BACKEND_AUTO) {
    for (size_t i = 0; i < nb; i++)
      if (loaded[i] && loaded[i]->score > 0 &&
          (best < 0 || loaded[i]->score > loaded[best]->score))
        best = (int)i;
  } else {
    for (size_t i = 0; i < nb; i++)
      if ((int)entry->builds[i].backend == (int)choice) best = (int)i;
    if (best < 0) {
      qf_errorf(err, QF_ERR_NOT_FOUND, "choose",
                "scheme '%s' has no %s build in the registry (%s)", entry->name,
                qf_backend_name((qf_backend)choice), entry->source ? entry->source : "?");
      goto fail;
    }
    if (!loaded[best]) {
      qf_errorf(err, QF_ERR_ENVIRONMENT, "choose", "the %s build of '%s' cannot be used: %s",
                qf_backend_name((qf_backend)choice), entry->name, rep[best].error);
      goto fail;
    }
    if (loaded[best]->score <= 0) {
      qf_errorf(err, QF_ERR_ENVIRONMENT, "choose",
                "the %s build of '%s' loads but scores 0 on this machine (%s)",
                qf_backend_name((qf_backend)choice), entry->name,
                qf__why_zero((qf_backend)choice));
      goto fail;
    }
  }
  if (best < 0) {
    char why[1024] = "";
    for (size_t i = 0; i < nb; i++) {
      size_t l = strlen(why);
      snprintf(why + l, sizeof why - l, "%s%s: %s", l ? "; " : "",
               qf_backend_name(rep[i].backend),
               rep[i].loaded ? "scores 0" : rep[i].error);
    }
    qf_errorf(err, QF_ERR_ENVIRONMENT, "choose", "no usable build of '%s' (%s)", entry->name,
              why);
    goto fail;
  }
  if (choice == QF_BACKEND_AUTO) {
    char skipped[512] = "";
    for (size_t i = 0; i < nb; i++) {
      if ((int)i == best || rep[i].backend == QF_BACKEND_CPU) continue;
      size_t l = strlen(skipped);
      const char *why = !rep[i].loaded          ? "does not load"
                        : rep[i].score == 0     ? qf__why_zero(rep[i].backend)
                                                : "scores lower";
      snprintf(skipped + l, sizeof skipped - l, "%s%s: %s%s", l ? "; " : "",
               qf_backend_name(rep[i].backend), why,
               rep[i].loaded && rep[i].score == 0 ? ", score 0" : "");
    }
    if (skipped[0])
      qf_log(QF_LOG_INFO, "%s: using the %s build (%s)", entry->name,
             qf_backend_name(rep[best].backend), skipped);
  }
  for (size_t i = 0; i < nb; i++)
    if ((int)i != best) qf_plugin_release(loaded[i]);
  *out = loaded[best];
  return QF_OK;
fail:
  for (size_t i = 0; i < nb; i++) qf_plugin_release(loaded[i]);
  return err ? err->code : QF_ERR_ENVIRONMENT;
}
