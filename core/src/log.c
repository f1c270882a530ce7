/*
 * Logging: one line per message to a replaceable sink (stderr by default),
 * filtered by level. QFORGE_LOG=debug|info|warn|error sets the initial level.
 * Thread-safe: the sink is called under a mutex so lines never interleave.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qforge/qforge.h"

static pthread_mutex_t qf__log_lock = PTHREAD_MUTEX_INITIALIZER;
static int qf__log_level = -1; /* -1: not yet read from the environment */
static qf_log_sink_fn qf__log_sink;
static void *qf__log_user;

static int qf__log_level_from_env(void) {
  const char *s = getenv("QFORGE_LOG");
  if (!s || !*s) return QF_LOG_INFO;
  if (!strcasecmp(s, "debug")) return QF_LOG_DEBUG;
  if (!strcasecmp(s, "info")) return QF_LOG_INFO;
  if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return QF_LOG_WARN;
  if (!strcasecmp(s, "error")) return QF_LOG_ERROR;
  return QF_LOG_INFO;
}

void qf_log_set_level(qf_log_level level) { qf__log_level = (int)level; }

qf_log_level qf_log_get_level(void) {
  if (qf__log_level < 0) qf__log_level = qf__log_level_from_env();
  return (qf_log_level)qf__log_level;
}

void qf_log_set_sink(qf_log_sink_fn fn, void *user) {
  pthread_mutex_lock(&qf__log_lock);
  qf__log_sink = fn;
  qf__log_user = user;
  pthread_mutex_unlock(&qf__log_lock);
}

static const char *qf__level_tag(qf_log_level l) {
  switch (l) {
    case QF_LOG_DEBUG: return "debug";
    case QF_LOG_INFO: return "info";
    case QF_LOG_WARN: return "warning";
    case QF_LOG_ERROR: return "error";
  }
  return "log";
}

void qf_logv(qf_log_level level, const char *who, const char *fmt,
             va_list ap) {
  if ((int)level < (int)qf_log_get_level()) return;
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  char line[2200];
  snprintf(line, sizeof line, "qforge: %s%s%s: %s", who ? who : "",
           who ? ": " : "", qf__level_tag(level), msg);
  pthread_mutex_lock(&qf__log_lock);
  if (qf__log_sink) {
    qf__log_sink(qf__log_user, level, line);
  } else {
    fprintf(stderr, "%s\n", line);
  }
  pthread_mutex_unlock(&qf__log_lock);
}

void qf_log(qf_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  qf_logv(level, NULL, fmt, ap);
  va_end(ap);
}
