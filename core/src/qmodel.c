/*
 * Opening a (possibly quantized) HF folder for inference: the registry picks
 * the plugin for quantization_config.quant_method, the pre-quantized
 * lifecycle runs over the checkpoint, and the runtime's linear hook sends
 * each linear whose weight is not a float tensor to the plugin's
 * linear_forward. Float linears (lm_head, skipped modules) stay on the
 * runtime's own path; biases are added here for them.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "qforge/plugin_util.h"
#include "qforge/qforge.h"
#include "qforge/qmodel.h"

struct qf_qmodel {
  qf_checkpoint *ckpt;
  qf_rt_model *rt;
  qf_registry *reg;
  qf_plugin *plugin;
  qf_model *model;
  qf_session *session;
};

static int qf__is_float_tensor(const qf_st_tensor *t) {
  return t && (t->dtype == QF_DTYPE_F32 || t->dtype == QF_DTYPE_F16 || t->dtype == QF_DTYPE_BF16);
}

static qf_status qf__qmodel_linear(void *user, qf_rt_model *rt, const char *name, const float *x,
                                   int64_t M, int64_t K, float *y, int64_t N, qf_error *err) {
  qf_qmodel *m = user;
  const qf_st_tensor *w = qf_checkpoint_find(m->ckpt, name);
  if (qf__is_float_tensor(w) || (!w && !strcmp(name, "lm_head.weight"))) {
    qf_status st = qf_rt_linear_float(NULL, rt, name, x, M, K, y, N, err);
    if (st != QF_OK) return st;
    char bias[512];
    size_t l = strlen(name);
    if (l > 6 && !strcmp(name + l - 6, "weight")) {
      snprintf(bias, sizeof bias, "%.*sbias", (int)(l - 6), name);
      if (qf_checkpoint_find(m->ckpt, bias)) {
        const float *b;
        int64_t n;
        if ((st = qf_rt_tensor_f32(rt, bias, &b, &n, err)) != QF_OK) return st;
        for (int64_t i = 0; i < M; i++)
          for (int64_t j = 0; j < N && j < n; j++) y[i * N + j] += b[j];
      }
    }
    return QF_OK;
  }
  int64_t xs[2] = {M, K}, ys[2] = {M, N};
  DLTensor xt = qf_f32_tensor((void *)x, 2, xs), yt = qf_f32_tensor(y, 2, ys);
  qf_error perr;
  qf_error_clear(&perr);
  qf_status st = m->plugin->desc->vtable->linear_forward(m->session->q, m->model, name, &xt, &yt,
                                                        &perr);
  if (st != QF_OK && err) {
    *err = perr;
    if (!err->plugin[0]) snprintf(err->plugin, sizeof err->plugin, "%s", m->plugin->desc->name);
    if (!err->op[0]) snprintf(err->op, sizeof err->op, "linear_forward");
  }
  return st;
}

void qf_qmodel_free(qf_qmodel *m) {
  if (!m) return;
  qf_rt_free(m->rt);
  qf_session_free(m->session);
  qf_model_free(m->model);
  qf_plugin_release(m->plugin);
  qf_registry_free(m->reg);
  qf_checkpoint_close(m->ckpt);
  free(m);
}

qf_status qf_qmodel_open(const char *dir, const char *registry, qf_backend_choice backend,
                         const qf_rt_options *opt, qf_qmodel **out, qf_error *err) {
  *out = NULL;
  qf_qmodel *m = calloc(1, sizeof *m);
  if (!m) return qf_errorf(err, QF_ERR_NO_MEMORY, "open", "out of memory");
  json_t *cfg = NULL;
  char *qtext = NULL;
  qf_status st = qf_checkpoint_open(dir, &m->ckpt, err);
  if (st != QF_OK) goto fail;
  const char *ctext = qf_checkpoint_config_json(m->ckpt);
  json_error_t je;
  cfg = ctext ? json_loads(ctext, 0, &je) : NULL;
  json_t *qc = cfg ? json_object_get(cfg, "quantization_config") : NULL;
  if (qc) {
    const char *method = json_string_value(json_object_get(qc, "quant_method"));
    if (!method) {
      st = qf_errorf(err, QF_ERR_FORMAT, "open",
                     "%s/config.json: quantization_config has no string 'quant_method'", dir);
      goto fail;
    }
    if ((st = qf_registry_load(registry, &m->reg, err)) != QF_OK) goto fail;
    const qf_registry_entry *e = qf_registry_find_method(m->reg, method);
    if (!e) e = qf_registry_find(m->reg, method);
    if (!e) {
      st = qf_errorf(err, QF_ERR_NOT_FOUND, "open",
                     "%s: quant_method '%s' is not served by any registered scheme", dir, method);
      goto fail;
    }
    if ((st = qf_plugin_choose(e, backend, &m->plugin, NULL, NULL, err)) != QF_OK) goto fail;
    if (!m->plugin->desc->vtable->linear_forward) {
      st = qf_errorf(err, QF_ERR_UNSUPPORTED, "open", "scheme '%s' cannot run linear layers",
                     m->plugin->desc->name);
      goto fail;
    }
    if ((st = qf_model_new(m->ckpt, &m->model, err)) != QF_OK) goto fail;
    qtext = json_dumps(qc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    qf_run_options ro = {0};
    ro.struct_size = sizeof ro;
    ro.pre_quantized = 1;
    ro.config_json = qtext;
    if ((st = qf_run_lifecycle(m->plugin, m->model, &ro, &m->session, err)) != QF_OK) goto fail;
  }
  if ((st = qf_rt_new(m->ckpt, opt, &m->rt, err)) != QF_OK) goto fail;
  if (m->plugin) qf_rt_set_linear(m->rt, qf__qmodel_linear, m, QF_RT_LINEAR_ADDS_BIAS);
  json_decref(cfg);
  free(qtext);
  *out = m;
  return QF_OK;
fail:
  json_decref(cfg);
  free(qtext);
  qf_qmodel_free(m);
  return st;
}

qf_rt_model *qf_qmodel_runtime(qf_qmodel *m) { return m->rt; }
const qf_plugin *qf_qmodel_plugin(const qf_qmodel *m) { return m->plugin; }

uint64_t qf_qmodel_bytes(const qf_qmodel *m) {
  uint64_t n = 0;
  for (size_t i = 0; i < qf_checkpoint_count(m->ckpt); i++) n += qf_checkpoint_at(m->ckpt, i)->nbytes;
  return n;
}
