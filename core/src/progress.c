/*
 * A progress bar on stderr: label, bar, done/total, rate and ETA, redrawn at
 * most ~10 times a second. Drawn only when stderr is a terminal (or
 * QFORGE_PROGRESS=1 forces it); otherwise every call is a cheap no-op, so
 * logs and CI output stay clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qforge/qforge.h"

struct qf_progress {
  char label[64];
  uint64_t total;
  uint64_t done;
  double start;
  double last_draw;
  int enabled;
};

static double qf__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int qf__progress_enabled(void) {
  const char *f = getenv("QFORGE_PROGRESS");
  if (f && *f) return strcmp(f, "0") != 0;
  return isatty(STDERR_FILENO);
}

qf_progress *qf_progress_new(const char *label, uint64_t total) {
  qf_progress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  p->total = total;
  p->start = qf__now();
  p->enabled = qf__progress_enabled();
  return p;
}

static void qf__draw(qf_progress *p, int final) {
  double now = qf__now();
  if (!final && now - p->last_draw < 0.1) return;
  p->last_draw = now;
  double frac = p->total ? (double)p->done / (double)p->total : 0.0;
  if (frac > 1.0) frac = 1.0;
  char bar[31];
  int fill = (int)(frac * 30.0);
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
  bar[30] = '\0';
  double el = now - p->start;
  double rate = el > 0 ? (double)p->done / el : 0.0;
  double eta = rate > 0 && p->total > p->done ? (double)(p->total - p->done) / rate : 0.0;
  fprintf(stderr, "\r%-20s [%s] %llu/%llu  %.1f/s  %s %.0fs\033[K", p->label, bar,
          (unsigned long long)p->done, (unsigned long long)p->total, rate,
          final ? "took" : "eta", final ? el : eta);
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

void qf_progress_update(qf_progress *p, uint64_t done) {
  if (!p) return;
  p->done = done;
  if (p->enabled) qf__draw(p, 0);
}

void qf_progress_set_label(qf_progress *p, const char *label) {
  if (!p) return;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
}

void qf_progress_done(qf_progress *p) {
  if (!p) return;
  if (p->enabled) qf__draw(p, 1);
  free(p);
}
