/*
 * AWQ → GPTQ without requantizing (the convert_format slot): the two layouts
 * hold the same integers and scales and differ only in packing and in the
 * zero-point convention (see qf_awq_gemm_to_gptq in pack.c). Every AWQ GEMM
 * module becomes qweight [k/8, n] / qzeros [k/g, n/8] (v1: zero − 1) /
 * scales [k/g, n] / g_idx [k]; every other tensor is emitted unchanged. The
 * new quantization_config is GPTQConfig's (asymmetric, no act-order,
 * checkpoint_format "gptq").
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "plugin_internal.h"

static qf_status qf__emit(qf_quantizer *q, qf_model *out, const char *prefix, const char *leaf,
                          void *data, DLDataType dt, int ndim, int64_t *shape, qf_error *err) {
  char name[QF_AWQ_NAME_MAX + 16];
  snprintf(name, sizeof name, "%s%s", prefix, leaf);
  DLTensor t = qf_cpu_tensor(data, dt, ndim, shape);
  return q->host->model_put_tensor(out, name, &t, err);
}

/* Convert one module whose tensors are validated in t[] (qweight, qzeros,
 * scales, bias). */
static qf_status qf__convert_module(qf_quantizer *q, qf_model *out, const char *prefix,
                                    qf_tensor_info t[4], const qf_awq_module_shape *sh,
                                    qf_error *err) {
  const int64_t n = sh->n, k = sh->k, g = sh->g, groups = sh->groups;
  int32_t *qw = malloc((size_t)(k / 8 * n) * sizeof *qw);
  int32_t *qz = malloc((size_t)(groups * (n / 8)) * sizeof *qz + 4);
  int32_t *gi = malloc((size_t)k * sizeof *gi);
  qf_status st = QF_OK;
  if (!qw || !qz || !gi) {
    st = qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, "convert_format", "out of memory");
    goto out;
  }
  st = qf_awq_gemm_to_gptq((const int32_t *)t[0].tensor.data, (const int32_t *)t[1].tensor.data,
                           n, k, g, 1, qw, qz, gi);
  if (st != QF_OK) {
    st = qf_fail(err, st, QF_AWQ_PLUGIN, "convert_format",
                 "module '%s' cannot be expressed in the GPTQ layout (in_features %lld must be a "
                 "multiple of 8)", prefix, (long long)k);
    goto out;
  }
  int64_t s_qw[2] = {k / 8, n}, s_qz[2] = {groups, n / 8}, s_gi[1] = {k};
  DLDataType i32 = qf_dl_dtype(kDLInt, 32);
  if ((st = qf__emit(q, out, prefix, "qweight", qw, i32, 2, s_qw, err)) != QF_OK) goto out;
  if ((st = qf__emit(q, out, prefix, "qzeros", qz, i32, 2, s_qz, err)) != QF_OK) goto out;
  if ((st = q->host->model_put_tensor(out, t[2].name, &t[2].tensor, err)) != QF_OK) goto out;
  if ((st = qf__emit(q, out, prefix, "g_idx", gi, i32, 1, s_gi, err)) != QF_OK) goto out;
out:
  free(qw);
  free(qz);
  free(gi);
  return st;
}

static char *qf__gptq_config(const qf_quantizer *q) {
  json_t *j = json_object();
  json_object_set_new(j, "quant_method", json_string("gptq"));
  json_object_set_new(j, "bits", json_integer(q->cfg.bits));
  json_object_set_new(j, "group_size", json_integer(q->cfg.group_size));
  json_object_set_new(j, "desc_act", json_false());
  json_object_set_new(j, "sym", json_false());
  json_object_set_new(j, "damp_percent", json_real(0.01));
  json_object_set_new(j, "static_groups", json_false());
  json_object_set_new(j, "true_sequential", json_true());
  json_object_set_new(j, "checkpoint_format", json_string("gptq"));
  json_t *skip = json_array();
  for (size_t i = 0; i < q->cfg.n_not_convert; i++)
    json_array_append_new(skip, json_string(q->cfg.not_convert[i]));
  json_object_set_new(j, "modules_to_not_convert", skip);
  char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(j);
  return text;
}

qf_status qf__awq_convert_format(qf_quantizer *q, const qf_model *in, qf_model *out,
                                 const char *target, char **out_config_json, qf_error *err) {
  if (!target || strcmp(target, "gptq"))
    return qf_fail(err, QF_ERR_UNSUPPORTED, QF_AWQ_PLUGIN, "convert_format",
                   "AWQ checkpoints convert to: gptq (asked for '%s')", target ? target : "");
  if (q->cfg.layout != QF_AWQ_LAYOUT_GEMM)
    return qf_fail(err, QF_ERR_UNSUPPORTED, QF_AWQ_PLUGIN, "convert_format",
                   "only the GEMM layout (version \"gemm\") converts to GPTQ, this checkpoint is "
                   "\"%s\"", q->cfg.version);
  const size_t n = q->host->model_tensor_count(in);
  for (size_t i = 0; i < n; i++) {
    qf_tensor_info ti;
    qf_status st = qf_host_tensor_at(q->host, in, i, &ti, err);
    if (st != QF_OK) return st;
    char prefix[QF_AWQ_NAME_MAX];
    if (qf_strip_suffix(ti.name, "qweight", prefix, sizeof prefix)) {
      qf_tensor_info t[4];
      qf_awq_module_shape sh;
      if ((st = qf__awq_load_module(q, in, prefix, "convert_format", t, &sh, err)) != QF_OK ||
          (st = qf__convert_module(q, out, prefix, t, &sh, err)) != QF_OK)
        return st;
      continue;
    }
    /* qzeros / scales of a module are emitted with its qweight */
    if (qf_strip_suffix(ti.name, "qzeros", prefix, sizeof prefix) ||
        qf_strip_suffix(ti.name, "scales", prefix, sizeof prefix)) {
      char qn[QF_AWQ_NAME_MAX + 16];
      qf_tensor_info qt;
      qf_error e;
      snprintf(qn, sizeof qn, "%sqweight", prefix);
      if (q->host->model_find_tensor(in, qn, &qt, &e) == QF_OK) continue;
    }
    if ((st = q->host->model_put_tensor(out, ti.name, &ti.tensor, err)) != QF_OK) return st;
  }
  char *text = qf__gptq_config(q);
  if (!text) return qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, "convert_format", "out of memory");
  *out_config_json = qf_host_strdup(q->host, text);
  free(text);
  return *out_config_json ? QF_OK
                          : qf_fail(err, QF_ERR_NO_MEMORY, QF_AWQ_PLUGIN, "convert_format",
                                    "out of memory");
}
