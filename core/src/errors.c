/*
 * Status names, the core's error helpers and error formatting.
 */
#include <stdio.h>
#include <string.h>

#include "qforge/qforge.h"

const char *qf_status_name(qf_status s) {
  switch (s) {
    case QF_OK: return "ok";
    case QF_ERR_INVALID_ARGUMENT: return "invalid-argument";
    case QF_ERR_UNSUPPORTED: return "unsupported";
    case QF_ERR_NO_MEMORY: return "no-memory";
    case QF_ERR_IO: return "io";
    case QF_ERR_FORMAT: return "format";
    case QF_ERR_ENVIRONMENT: return "environment";
    case QF_ERR_ABI: return "abi";
    case QF_ERR_NOT_FOUND: return "not-found";
    case QF_ERR_NUMERIC: return "numeric";
    case QF_ERR_INTERNAL: return "internal";
  }
  return "unknown";
}

void qf_error_clear(qf_error *err) {
  if (!err) return;
  memset(err, 0, sizeof *err);
  err->struct_size = sizeof *err;
}

qf_status qf_errorf(qf_error *err, qf_status code, const char *op,
                    const char *fmt, ...) {
  if (!err) return code;
  err->struct_size = sizeof *err;
  err->code = code;
  snprintf(err->plugin, sizeof err->plugin, "qforge");
  snprintf(err->op, sizeof err->op, "%s", op ? op : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return code;
}

void qf_error_prefix(qf_error *err, const char *fmt, ...) {
  if (!err) return;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char old[QF_ERROR_MESSAGE_MAX];
  snprintf(old, sizeof old, "%s", err->message);
  snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
}

const char *qf_error_format(const qf_error *err, char *buf, size_t n) {
  if (!buf || n == 0) return buf;
  if (!err) {
    snprintf(buf, n, "(no error)");
    return buf;
  }
  if (err->plugin[0] && err->op[0])
    snprintf(buf, n, "%s: %s: %s", err->plugin, err->op, err->message);
  else if (err->plugin[0])
    snprintf(buf, n, "%s: %s", err->plugin, err->message);
  else
    snprintf(buf, n, "%s", err->message);
  return buf;
}
