/*
 * qforge-plugin-check: runs any plugin build through the lifecycle contract
 * of plugin.h and reports one line per check, then "N passed, M failed".
 *
 *   1. load + handshake (the loader's checks: ABI, struct sizes, required
 *      slots) and descriptor sanity (capability flags match the slots, the
 *      example config parses);
 *   2. bad configs (not JSON, not an object) are rejected with a message;
 *   3. the lifecycle in order on a generated 64×256 Gaussian weight, with a
 *      Hessian and an importance vector available for calibrated schemes;
 *   4. quantize → dequantize within the scheme's declared error;
 *   5. the pre-quantized load path reproduces the same dequantization;
 *   6. linear_forward equals dequantize-then-matmul.
 * A GPU build on a machine without its device scores 0: the functional
 * checks are skipped and the report says so.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/plugin_util.h"
#include "qforge/qforge.h"

static int qf__passed, qf__failed, qf__skipped, qf__json;
static json_t *qf__results;

static void qf__report(int ok, const char *check, const char *fmt, ...) {
  char detail[1200] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
  }
  if (ok > 0) qf__passed++;
  else if (ok == 0) qf__failed++;
  else qf__skipped++;
  const char *tag = ok > 0 ? "ok" : ok == 0 ? "FAIL" : "skip";
  if (qf__json) {
    json_t *r = json_object();
    json_object_set_new(r, "check", json_string(check));
    json_object_set_new(r, "result", json_string(tag));
    json_object_set_new(r, "detail", json_string(detail));
    json_array_append_new(qf__results, r);
  } else {
    printf("%-4s %s%s%s\n", tag, check, detail[0] ? ": " : "", detail);
  }
}

/* Deterministic Gaussian numbers (xorshift + Box-Muller). */
static uint64_t qf__rng = 0x9E3779B97F4A7C15ull;
static double qf__uniform(void) {
  qf__rng ^= qf__rng << 13;
  qf__rng ^= qf__rng >> 7;
  qf__rng ^= qf__rng << 17;
  return ((double)(qf__rng >> 11) + 0.5) / 9007199254740992.0;
}
static float qf__gauss(void) {
  return (float)(sqrt(-2.0 * log(qf__uniform())) * cos(6.283185307179586 * qf__uniform()));
}

#define ROWS 64
#define COLS 256
#define NTOK 512
#define WNAME "model.layers.0.mlp.up_proj.weight"

static void qf__bad_configs(const qf_plugin *p) {
  static const char *const bad[] = {"this is not json", "[1, 2, 3]", "null"};
  const qf_quantizer_vtable *vt = p->desc->vtable;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    qf_quantizer *q = NULL;
    qf_error err;
    qf_error_clear(&err);
    qf_status st = vt->create(qf_host_table(), bad[i], 0, &q, &err);
    char check[96];
    snprintf(check, sizeof check, "create rejects config %s", bad[i]);
    if (st == QF_OK) {
      vt->destroy(q);
      qf__report(0, check, "accepted");
    } else {
      qf__report(err.message[0] != '\0', check, "%s", err.message[0] ? err.message : "no message");
    }
  }
}

int main(int argc, char **argv) {
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) qf__json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: qforge-plugin-check [--json] PLUGIN.so\n\n"
             "Run a plugin build through the qforge lifecycle contract (descriptor, bad\n"
             "configs, lifecycle order, quantize/dequantize round trip within the declared\n"
             "error, pre-quantized load, linear_forward vs dequantize+matmul).\n"
             "Exit status 0 when every check passes.\n");
      return 0;
    } else path = argv[i];
  }
  if (!path) {
    fprintf(stderr, "usage: qforge-plugin-check [--json] PLUGIN.so\n");
    return 2;
  }
  qf__results = json_array();
  qf_error err;
  qf_error_clear(&err);
  qf_plugin *p = NULL;
  qf_model *model = NULL, *model2 = NULL;
  qf_calib *calib = NULL;
  qf_session *s = NULL, *s2 = NULL;
  float *w = calloc(ROWS * COLS, sizeof *w), *x = calloc(NTOK * COLS, sizeof *x);
  float *h = calloc(COLS * COLS, sizeof *h), *imp = calloc(COLS, sizeof *imp);
  float *deq = calloc(ROWS * COLS, sizeof *deq), *deq2 = calloc(ROWS * COLS, sizeof *deq2);
  float *y = calloc(8 * ROWS, sizeof *y), *yref = calloc(8 * ROWS, sizeof *yref);
  if (!w || !x || !h || !imp || !deq || !deq2 || !y || !yref) return 1;

  if (qf_plugin_open(path, &p, &err) != QF_OK) {
    qf__report(0, "load and handshake", "%s", err.message);
    goto end;
  }
  const qf_plugin_desc *d = p->desc;
  const qf_quantizer_vtable *vt = d->vtable;
  qf__report(1, "load and handshake", "%s %s, ABI %u.%u, %s build, score %d", d->name,
             d->version ? d->version : "?", d->abi_major, d->abi_minor,
             qf_backend_name(d->backend), p->score);
  int caps_ok = (!(d->caps & QF_CAP_DEQUANTIZE) || vt->dequantize) &&
                (!(d->caps & QF_CAP_LINEAR_FORWARD) || vt->linear_forward);
  qf__report(caps_ok, "capability flags match the slots", NULL);
  json_error_t je;
  json_t *ex = d->example_config_json ? json_loads(d->example_config_json, 0, &je) : NULL;
  qf__report(ex && json_is_object(ex), "example config is a JSON object", "%s",
             d->example_config_json ? d->example_config_json : "(none)");
  json_decref(ex);
  qf__bad_configs(p);
  if (p->score <= 0) {
    qf__report(-1, "functional checks",
               "this %s build scores 0 here (no device or runtime): not run on this machine",
               qf_backend_name(d->backend));
    goto end;
  }

  /* data: Gaussian weight with a few large columns; calibration inputs */
  for (int i = 0; i < ROWS * COLS; i++) w[i] = 0.02f * qf__gauss();
  for (int r = 0; r < ROWS; r++) w[r * COLS + 7] *= 8.0f;
  for (int i = 0; i < NTOK * COLS; i++) x[i] = qf__gauss();
  for (int a = 0; a < COLS; a++)
    for (int b = 0; b < COLS; b++) {
      double acc = 0;
      for (int t = 0; t < NTOK; t++) acc += (double)x[t * COLS + a] * x[t * COLS + b];
      h[a * COLS + b] = (float)(2.0 * acc / NTOK);
    }
  for (int a = 0; a < COLS; a++) imp[a] = h[a * COLS + a] / 2.0f;
  calib = qf_calib_new_static();
  qf_calib_static_set_hessian(calib, "*", h, COLS);
  qf_calib_static_set_importance(calib, "*", imp, COLS);

  int64_t wshape[2] = {ROWS, COLS};
  DLTensor wt = qf_f32_tensor(w, 2, wshape);
  qf_model_new_empty("{}", &model, &err);
  qf_model_add_input(model, WNAME, &wt, &err);
  qf_run_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.config_json = d->example_config_json ? d->example_config_json : "{}";
  opt.calib = calib;
  if (qf_run_lifecycle(p, model, &opt, &s, &err) != QF_OK) {
    char buf[1400];
    qf__report(0, "quantize lifecycle", "%s", qf_error_format(&err, buf, sizeof buf));
    goto end;
  }
  int quantized = qf_model_output_count(model) > 0;
  for (size_t i = 0; i < qf_model_output_count(model); i++)
    if (!strcmp(qf_model_output_at(model, i)->name, WNAME) &&
        qf_dtype_is_float(qf_model_output_at(model, i)->tensor.dtype))
      quantized = 0;
  qf__report(quantized, "quantize lifecycle", "%zu tensors emitted, config %s",
             qf_model_output_count(model), s->config_json ? s->config_json : "(none)");
  if (!vt->dequantize) {
    qf__report(-1, "round trip", "the plugin has no dequantize slot");
    goto end;
  }
  DLTensor dt = qf_f32_tensor(deq, 2, wshape);
  qf_error_clear(&err);
  if (vt->dequantize(s->q, model, WNAME, &dt, &err) != QF_OK) {
    qf__report(0, "dequantize", "%s", err.message);
    goto end;
  }
  double worst = 0;
  for (int r = 0; r < ROWS; r++) {
    float amax = 0;
    for (int c = 0; c < COLS; c++) amax = fmaxf(amax, fabsf(w[r * COLS + c]));
    for (int c = 0; c < COLS; c++) {
      double e = fabs((double)deq[r * COLS + c] - w[r * COLS + c]) / (amax > 0 ? amax : 1);
      if (e > worst || isnan(deq[r * COLS + c])) worst = isnan(deq[r * COLS + c]) ? INFINITY : e;
    }
  }
  if (d->declared_rel_error > 0)
    qf__report(worst <= d->declared_rel_error, "round trip within the declared error",
               "worst |w - w'| / row absmax = %.5f, declared %.5f", worst, d->declared_rel_error);
  else
    qf__report(worst < 0.5, "round trip (no declared error; sanity bound 0.5)",
               "worst |w - w'| / row absmax = %.5f", worst);

  /* pre-quantized load path: the emitted tensors as a checkpoint */
  qf_model_new_empty("{}", &model2, &err);
  for (size_t i = 0; i < qf_model_output_count(model); i++) {
    const qf_tensor_info *ti = qf_model_output_at(model, i);
    qf_model_add_input(model2, ti->name, &ti->tensor, &err);
  }
  qf_run_options opt2 = opt;
  opt2.pre_quantized = 1;
  opt2.calib = NULL;
  opt2.config_json = s->config_json;
  if (qf_run_lifecycle(p, model2, &opt2, &s2, &err) != QF_OK) {
    char buf[1400];
    qf__report(0, "pre-quantized load lifecycle", "%s", qf_error_format(&err, buf, sizeof buf));
  } else {
    DLTensor dt2 = qf_f32_tensor(deq2, 2, wshape);
    qf_error_clear(&err);
    qf_status st = vt->dequantize(s2->q, model2, WNAME, &dt2, &err);
    qf__report(st == QF_OK && !memcmp(deq, deq2, sizeof(float) * ROWS * COLS),
               "pre-quantized load dequantizes identically", "%s",
               st == QF_OK ? "" : err.message);
  }
  if (!vt->linear_forward) {
    qf__report(-1, "linear_forward", "the plugin has no linear_forward slot");
    goto end;
  }
  for (int m = 1; m <= 8; m *= 8) {
    int64_t xs[2] = {m, COLS}, ys[2] = {m, ROWS};
    DLTensor xt = qf_f32_tensor(x, 2, xs), yt = qf_f32_tensor(y, 2, ys);
    qf_error_clear(&err);
    qf_status st = vt->linear_forward(s->q, model, WNAME, &xt, &yt, &err);
    if (st != QF_OK) {
      qf__report(0, "linear_forward", "batch %d: %s", m, err.message);
      continue;
    }
    double ymax = 0, diff = 0;
    for (int i = 0; i < m; i++)
      for (int n = 0; n < ROWS; n++) {
        double acc = 0;
        for (int k = 0; k < COLS; k++) acc += (double)x[i * COLS + k] * deq[n * COLS + k];
        yref[i * ROWS + n] = (float)acc;
        ymax = fmax(ymax, fabs(acc));
        diff = fmax(diff, fabs(acc - y[i * ROWS + n]));
      }
    char check[64];
    snprintf(check, sizeof check, "linear_forward == dequantize+matmul (batch %d)", m);
    qf__report(diff <= 2e-2 * ymax + 1e-6, check, "max |y - y_ref| = %.3g (max |y_ref| %.3g)",
               diff, ymax);
  }
end:
  if (qf__json) {
    json_t *root = json_object();
    json_object_set_new(root, "plugin", json_string(path));
    json_object_set_new(root, "checks", qf__results);
    json_object_set_new(root, "passed", json_integer(qf__passed));
    json_object_set_new(root, "failed", json_integer(qf__failed));
    json_object_set_new(root, "skipped", json_integer(qf__skipped));
    char *t = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (t) puts(t);
    free(t);
    json_decref(root);
  } else {
    json_decref(qf__results);
    printf("%s: %d passed, %d failed, %d skipped\n", path, qf__passed, qf__failed, qf__skipped);
  }
  qf_session_free(s2);
  qf_session_free(s);
  qf_model_free(model2);
  qf_model_free(model);
  qf_calib_free(calib);
  qf_plugin_release(p);
  free(w); free(x); free(h); free(imp); free(deq); free(deq2); free(y); free(yref);
  return qf__failed ? 1 : 0;
}
