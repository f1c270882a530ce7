/*
 * libqforge public host API — umbrella header.
 *
 * A host application includes this one header. It brings in the ABI types
 * (qforge/plugin.h: qf_status, qf_error, DLPack), the error/log/progress
 * utilities below, and the module headers: dtypes, checkpoint I/O
 * (safetensors + config.json), the plugin registry and loader, the host-side
 * model object and the lifecycle driver.
 *
 * Ownership convention for every function in these headers: an object
 * returned through `**out` belongs to the caller and is released with the
 * matching *_free / *_close; `const char *` results are borrowed and live as
 * long as the object they came from, unless stated otherwise.
 */
#ifndef QFORGE_QFORGE_H
#define QFORGE_QFORGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qforge/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define QF_API __attribute__((visibility("default")))
#define QF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QF_API
#define QF_PRINTF(a, b)
#endif

#define QF_VERSION_STRING "0.1.0"

/* ---- errors ---- */

/* Short stable name of a status ("invalid-argument", …). Static string. */
QF_API const char *qf_status_name(qf_status s);
/* Reset an error object (code QF_OK, empty strings). */
QF_API void qf_error_clear(qf_error *err);
/* Fill `err` (may be NULL) as the core ("qforge") failing in `op`; returns
 * `code`. Messages name the file, the field and what was expected. */
QF_API qf_status qf_errorf(qf_error *err, qf_status code, const char *op,
                           const char *fmt, ...) QF_PRINTF(4, 5);
/* Prefix the message already in `err` with "prefix: " (e.g. a file name). */
QF_API void qf_error_prefix(qf_error *err, const char *fmt, ...) QF_PRINTF(2, 3);
/* "plugin: op: message" into buf (always NUL-terminated). Returns buf. */
QF_API const char *qf_error_format(const qf_error *err, char *buf, size_t n);

/* ---- logging ---- */

/* Lines at or above `level` go to the sink (default: stderr, level INFO;
 * QFORGE_LOG=debug|info|warn|error overrides the default). */
QF_API void qf_log_set_level(qf_log_level level);
QF_API qf_log_level qf_log_get_level(void);
typedef void (*qf_log_sink_fn)(void *user, qf_log_level level,
                               const char *line);
/* Replace the sink (NULL restores stderr). `user` is passed back. */
QF_API void qf_log_set_sink(qf_log_sink_fn fn, void *user);
QF_API void qf_log(qf_log_level level, const char *fmt, ...) QF_PRINTF(2, 3);
QF_API void qf_logv(qf_log_level level, const char *who, const char *fmt,
                    va_list ap);

/* ---- metrics plugins report (host->report_metric) ---- */

typedef void (*qf_metric_sink_fn)(void *user, const char *tensor,
                                  const char *metric, double value);
/* Route reported metrics to `fn` (NULL: only a debug log line). Process-wide;
 * the quantize driver sets it for the length of a run. */
QF_API void qf_set_metric_sink(qf_metric_sink_fn fn, void *user);

/* ---- progress ---- */

/* A progress bar on stderr, drawn only when stderr is a terminal (or when
 * QFORGE_PROGRESS=1); otherwise silent. Shows done/total, rate and ETA. */
typedef struct qf_progress qf_progress;
QF_API qf_progress *qf_progress_new(const char *label, uint64_t total);
QF_API void qf_progress_update(qf_progress *p, uint64_t done);
QF_API void qf_progress_set_label(qf_progress *p, const char *label);
/* Finish the bar (newline) and free it. NULL is a no-op. */
QF_API void qf_progress_done(qf_progress *p);

#ifdef __cplusplus
}
#endif

#include "qforge/dtype.h"
#include "qforge/safetensors.h"
#include "qforge/registry.h"
#include "qforge/loader.h"
#include "qforge/model.h"
#include "qforge/lifecycle.h"
#include "qforge/runtime.h"
#include "qforge/qmodel.h"
#include "qforge/quantize.h"

#endif /* QFORGE_QFORGE_H */
