/*
 * qf_quantize_folder (see qforge/quantize.h): the lifecycle over a float HF
 * folder into a new one, zero-shot (streamed tensor by tensor) or calibrated
 * (forward order, block by block, with the runtime's sequential capture as
 * the plugin's qf_calib).
 */
#include <cblas.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model_internal.h"
#include "qforge/plugin_util.h"
#include "qforge/qforge.h"

/* Dequantized weights of already-quantized linears, served to the runtime
 * so the next block sees the quantized block's outputs. Only the current
 * and the previous block are kept. */
typedef struct qf__override {
  char *name;
  float *w;
  int64_t n, k;
  int layer;
} qf__override;

typedef struct qf__qctx {
  const qf_quantize_request *req;
  qf_st_writer *writer;
  qf_progress *bar;
  qf_rt_model *rt;
  int calibrated, sequential_quantized;
  int cur_layer;
  qf__override *ov;
  size_t n_ov, cap_ov;
  uint64_t bytes_out;
  size_t quantized;
  json_t *metrics;    /* {tensor: {metric: value}} in report order */
  double block_sum;   /* metrics summed over the current block */
  int block_count;
} qf__qctx;

static void qf__metric(void *user, const char *tensor, const char *metric, double value) {
  qf__qctx *c = user;
  json_t *t = json_object_get(c->metrics, tensor);
  if (!t) {
    t = json_object();
    json_object_set_new(c->metrics, tensor, t);
  }
  json_object_set_new(t, metric, json_real(value));
  c->block_sum += value;
  c->block_count++;
}

/* One line per finished block with its summed reported losses. */
static void qf__block_line(qf__qctx *c, int layer) {
  if (layer >= 0 && c->block_count > 0)
    qf_log(QF_LOG_INFO, "block %d: %d layers quantized, reported loss %.6g", layer,
           c->block_count, c->block_sum);
  c->block_sum = 0;
  c->block_count = 0;
}

static void qf__ov_drop_before(qf__qctx *c, int layer) {
  size_t j = 0;
  for (size_t i = 0; i < c->n_ov; i++) {
    if (c->ov[i].layer < layer) {
      free(c->ov[i].name);
      free(c->ov[i].w);
    } else {
      c->ov[j++] = c->ov[i];
    }
  }
  c->n_ov = j;
}

static qf_status qf__hook(void *user, qf_rt_model *m, const char *name, const float *x,
                          int64_t M, int64_t K, float *y, int64_t N, qf_error *err) {
  qf__qctx *c = user;
  for (size_t i = 0; i < c->n_ov; i++) {
    if (strcmp(c->ov[i].name, name)) continue;
    if (c->ov[i].k != K || c->ov[i].n != N)
      return qf_errorf(err, QF_ERR_INTERNAL, "quantize", "'%s': override shape mismatch", name);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)N, (blasint)K,
                1.0f, x, (blasint)K, c->ov[i].w, (blasint)K, 0.0f, y, (blasint)N);
    return QF_OK;
  }
  return qf_rt_linear_float(NULL, m, name, x, M, K, y, N, err);
}

static qf_status qf__write_sink(void *user, const char *name, const DLTensor *t, qf_error *err) {
  qf__qctx *c = user;
  uint64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
  qf_dtype dt = qf_dtype_from_dl(t->dtype);
  c->bytes_out += qf_dtype_size(dt) * n;
  return qf_st_writer_add(c->writer, name, dt, t->ndim, t->shape,
                          (const char *)t->data + t->byte_offset, err);
}

/* Write every kept output and drop them (block boundary / end). */
static qf_status qf__flush(qf__qctx *c, qf_model *model, qf_error *err) {
  for (size_t i = 0; i < qf_model_output_count(model); i++) {
    const qf_tensor_info *ti = qf_model_output_at(model, i);
    qf_status st = qf__write_sink(c, ti->name, &ti->tensor, err);
    if (st != QF_OK) return st;
  }
  qf_model_clear_outputs(model);
  return QF_OK;
}

static int qf__layer_of(const char *name) {
  int layer;
  qf_rt_module mod;
  if (qf_rt_parse_linear_name(name, &layer, &mod)) return layer;
  const char *p = strstr(name, "layers.");
  return p ? atoi(p + 7) : -1;
}

static qf_status qf__after_tensor(void *user, qf_session *s, qf_model *model, const char *name,
                                  int quantized, qf_error *err) {
  qf__qctx *c = user;
  if (quantized) c->quantized++;
  if (!c->calibrated) return QF_OK;
  const qf_quantizer_vtable *vt = s->plugin->desc->vtable;
  if (quantized && c->sequential_quantized && vt->dequantize) {
    int layer;
    qf_rt_module mod;
    qf_tensor_info ti;
    if (qf_rt_parse_linear_name(name, &layer, &mod) &&
        qf_model_input_at(model, 0, &ti, NULL) == QF_OK) {
      qf_tensor_info wi;
      qf_error e;
      if (qf_host_table()->model_find_tensor(model, name, &wi, &e) == QF_OK && wi.tensor.ndim == 2) {
        int64_t n = wi.tensor.shape[0], k = wi.tensor.shape[1];
        float *w = malloc((size_t)(n * k) * sizeof *w);
        if (!w) return qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
        int64_t shape[2] = {n, k};
        DLTensor out = qf_f32_tensor(w, 2, shape);
        qf_error perr;
        qf_error_clear(&perr);
        qf_status st = vt->dequantize(s->q, model, name, &out, &perr);
        if (st != QF_OK) {
          free(w);
          *err = perr;
          return st;
        }
        if (c->n_ov == c->cap_ov) {
          size_t cap = c->cap_ov ? c->cap_ov * 2 : 16;
          qf__override *o = realloc(c->ov, cap * sizeof *o);
          if (!o) {
            free(w);
            return qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
          }
          c->ov = o;
          c->cap_ov = cap;
        }
        c->ov[c->n_ov++] = (qf__override){strdup(name), w, n, k, layer};
      }
    }
  }
  /* flush at block boundaries: the outputs of finished blocks go to disk */
  int layer = qf__layer_of(name);
  if (layer != c->cur_layer) {
    qf__block_line(c, c->cur_layer);
    if (layer >= 0) qf__ov_drop_before(c, layer - 1);
    c->cur_layer = layer;
  }
  return QF_OK;
}

static void qf__on_tensor(void *user, size_t done, size_t total, const char *name) {
  qf__qctx *c = user;
  (void)total;
  qf_progress_update(c->bar, done);
  if (c->calibrated) {
    int layer = qf__layer_of(name);
    qf_progress_set_label(c->bar, layer >= 0 ? "quantize block" : "quantize");
  }
}

qf_status qf_copy_side_files(const char *src, const char *dst, qf_error *err) {
  static const char *const names[] = {"tokenizer.json", "tokenizer_config.json",
                                      "special_tokens_map.json", "generation_config.json",
                                      "tokenizer.model", "vocab.json", "merges.txt"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char sp[4096], dp[4096];
    snprintf(sp, sizeof sp, "%s/%s", src, names[i]);
    if (access(sp, R_OK) != 0) continue;
    char *buf = NULL;
    size_t n = 0;
    qf_status st = qf_read_file(sp, &buf, &n, err);
    if (st != QF_OK) return st;
    snprintf(dp, sizeof dp, "%s/%s", dst, names[i]);
    st = qf_write_file_atomic(dp, buf, n, err);
    free(buf);
    if (st != QF_OK) return st;
  }
  return QF_OK;
}

qf_status qf_write_hf_config(const char *in_cfg, const char *qcfg, const char *dir,
                             qf_error *err) {
  json_error_t je;
  json_t *cfg = json_loads(in_cfg ? in_cfg : "{}", 0, &je);
  if (!cfg) cfg = json_object();
  json_t *q = json_loads(qcfg ? qcfg : "{}", 0, &je);
  if (!q) {
    json_decref(cfg);
    return qf_errorf(err, QF_ERR_INTERNAL, "quantize",
                     "the plugin's get_config_json returned invalid JSON: %s", je.text);
  }
  json_object_set_new(cfg, "quantization_config", q);
  char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(cfg);
  if (!text) return qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  qf_status st = qf_write_file_atomic(path, text, strlen(text), err);
  free(text);
  return st;
}

/* The scheme's own extra files ({"name": {content}}), pretty-printed. Names
 * must be plain file names. */
static qf_status qf__write_plugin_files(const qf_session *s, const char *dir, qf_error *err) {
  if (!s->side_files_json) return QF_OK;
  json_error_t je;
  json_t *j = json_loads(s->side_files_json, 0, &je);
  if (!json_is_object(j)) {
    json_decref(j);
    return qf_errorf(err, QF_ERR_INTERNAL, "quantize",
                     "plugin '%s': get_side_files_json must return a JSON object",
                     s->plugin->desc->name);
  }
  const char *name;
  json_t *content;
  qf_status st = QF_OK;
  json_object_foreach(j, name, content) {
    if (!*name || strchr(name, '/') || !strcmp(name, "config.json") || name[0] == '.') {
      st = qf_errorf(err, QF_ERR_INTERNAL, "quantize",
                     "plugin '%s' asked to write '%s': only plain new file names are allowed",
                     s->plugin->desc->name, name);
      break;
    }
    char *text = json_dumps(content, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    st = text ? qf_write_file_atomic(path, text, strlen(text), err)
              : qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
    free(text);
    if (st != QF_OK) break;
  }
  json_decref(j);
  return st;
}

/* Forward order of the checkpoint's tensors (stable on equal ranks). */
static size_t *qf__forward_order(const qf_checkpoint *ck) {
  size_t n = qf_checkpoint_count(ck);
  size_t *o = malloc((n + 1) * sizeof *o);
  int64_t *r = malloc((n + 1) * sizeof *r);
  if (!o || !r) {
    free(o);
    free(r);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    o[i] = i;
    r[i] = qf_rt_forward_rank(qf_checkpoint_at(ck, i)->name);
  }
  for (size_t i = 1; i < n; i++) { /* insertion sort: stable, n is small */
    size_t v = o[i];
    size_t j = i;
    while (j > 0 && r[o[j - 1]] > r[v]) {
      o[j] = o[j - 1];
      j--;
    }
    o[j] = v;
  }
  free(r);
  return o;
}

static qf_status qf__open_calib(qf__qctx *c, const qf_checkpoint *ck, qf_calib **calib,
                                qf_error *err) {
  const qf_quantize_request *req = c->req;
  qf_tokenizer *tok = NULL;
  qf_token_set *raw = NULL, *win = NULL;
  qf_capture *cap = NULL;
  qf_status st = qf_rt_new(ck, NULL, &c->rt, err);
  if (st == QF_OK && !qf_tokens_path_is_ids(req->calib_path)) st = qf_tokenizer_load(req->in_dir, &tok, err);
  if (st == QF_OK) st = qf_tokens_load(req->calib_path, tok, &raw, err);
  if (st == QF_OK)
    st = qf_tokens_windows(raw, req->calib_seq_len > 0 ? req->calib_seq_len : 512,
                           req->calib_max_seqs > 0 ? req->calib_max_seqs : 128, &win, err);
  if (st == QF_OK && win->n_seq == 0)
    st = qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "quantize",
                   "%s: too few calibration tokens (%lld) for one window of %lld",
                   req->calib_path, (long long)qf_tokens_total(raw),
                   (long long)(req->calib_seq_len > 0 ? req->calib_seq_len : 512));
  if (st == QF_OK && qf_tokens_max_id(win) > qf_rt_get_config(c->rt)->vocab)
    st = qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "quantize",
                   "%s: token id %lld is outside the vocabulary (%lld)", req->calib_path,
                   (long long)qf_tokens_max_id(win) - 1, (long long)qf_rt_get_config(c->rt)->vocab);
  if (st == QF_OK) {
    qf_capture_options co;
    qf_capture_options_default(&co);
    co.mode = c->sequential_quantized ? QF_CAPTURE_QUANTIZED : QF_CAPTURE_FLOAT;
    st = qf_capture_new(c->rt, win, &co, &cap, err);
  }
  if (st == QF_OK) {
    st = qf_calib_new_capture(cap, calib, err);
    cap = NULL;
  }
  if (st == QF_OK && c->sequential_quantized) qf_rt_set_linear(c->rt, qf__hook, c, 0);
  qf_capture_free(cap);
  qf_tokens_free(win);
  qf_tokens_free(raw);
  qf_tokenizer_free(tok);
  return st;
}

qf_status qf_quantize_folder(const qf_quantize_request *req, qf_quantize_result *res,
                             qf_error *err) {
  memset(res, 0, sizeof *res);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  qf__qctx c;
  memset(&c, 0, sizeof c);
  c.req = req;
  c.cur_layer = -2;
  qf_checkpoint *ck = NULL;
  qf_model *model = NULL;
  qf_session *s = NULL;
  qf_calib *calib = NULL;
  size_t *order = NULL;
  char tmp[4096] = "";
  const qf_plugin_desc *d = req->plugin->desc;
  qf_status st = qf_checkpoint_open(req->in_dir, &ck, err);
  if (st != QF_OK) goto done;
  {
    json_error_t je;
    const char *ic = qf_checkpoint_config_json(ck);
    json_t *j = ic ? json_loads(ic, 0, &je) : NULL;
    json_t *qc = j ? json_object_get(j, "quantization_config") : NULL;
    if (qc) {
      const char *qm = json_string_value(json_object_get(qc, "quant_method"));
      st = qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "quantize",
                     "%s/config.json: the model is already quantized (quant_method '%s'); "
                     "quantize a float checkpoint", req->in_dir, qm ? qm : "?");
    }
    json_decref(j);
    if (st != QF_OK) goto done;
  }
  c.calibrated = req->calib_path != NULL;
  c.sequential_quantized = (d->caps & QF_CAP_CALIB_SEQUENTIAL_QUANTIZED) != 0;
  if (!c.calibrated && (d->caps & QF_CAP_REQUIRES_CALIBRATION)) {
    st = qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "quantize",
                   "scheme '%s' needs calibration data: give --calib FILE (token ids or text)",
                   d->name);
    goto done;
  }
  if ((st = qf_partial_dir_begin(req->out_dir, req->force, "quantize", tmp, sizeof tmp, err)) !=
      QF_OK)
    goto done;
  if ((st = qf_st_writer_new(tmp, req->shard_bytes, &c.writer, err)) != QF_OK) goto done;
  if ((st = qf_model_new(ck, &model, err)) != QF_OK) goto done;
  if (c.calibrated) {
    if ((st = qf__open_calib(&c, ck, &calib, err)) != QF_OK) goto done;
    if (!(order = qf__forward_order(ck))) {
      st = qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
      goto done;
    }
  } else {
    qf_model_set_sink(model, qf__write_sink, &c);
  }
  c.metrics = json_object();
  qf_set_metric_sink(qf__metric, &c);
  c.bar = req->progress ? qf_progress_new("quantize", qf_checkpoint_count(ck)) : NULL;
  qf_run_options opt = {0};
  opt.struct_size = sizeof opt;
  opt.config_json = req->config_json;
  opt.calib = calib;
  opt.on_tensor = qf__on_tensor;
  opt.after_tensor = qf__after_tensor;
  opt.user = &c;
  opt.order = order;
  opt.n_order = order ? qf_checkpoint_count(ck) : 0;
  st = qf_run_lifecycle(req->plugin, model, &opt, &s, err);
  qf_set_metric_sink(NULL, NULL);
  qf__block_line(&c, c.cur_layer);
  qf_progress_done(c.bar);
  c.bar = NULL;
  if (st != QF_OK) goto done;
  if (c.calibrated && (st = qf__flush(&c, model, err)) != QF_OK) goto done;
  st = qf_st_writer_finish(c.writer, err);
  c.writer = NULL;
  if (st != QF_OK) goto done;
  if ((st = qf_write_hf_config(qf_checkpoint_config_json(ck), s->config_json, tmp, err)) != QF_OK)
    goto done;
  if ((st = qf_copy_side_files(qf_checkpoint_dir(ck), tmp, err)) != QF_OK) goto done;
  if ((st = qf__write_plugin_files(s, tmp, err)) != QF_OK) goto done;
  if ((st = qf_partial_dir_commit(tmp, req->out_dir, req->force, "quantize", err)) != QF_OK)
    goto done;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  res->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  for (size_t i = 0; i < qf_checkpoint_count(ck); i++) res->bytes_in += qf_checkpoint_at(ck, i)->nbytes;
  res->bytes_out = c.bytes_out;
  res->tensors_in = qf_checkpoint_count(ck);
  res->tensors_quantized = c.quantized;
  res->config_json = s->config_json ? strdup(s->config_json) : NULL;
  res->metrics_json = json_dumps(c.metrics, JSON_COMPACT | JSON_PRESERVE_ORDER);
done:
  qf_set_metric_sink(NULL, NULL);
  json_decref(c.metrics);
  if (c.bar) qf_progress_done(c.bar);
  if (c.writer) qf_st_writer_abort(c.writer);
  if (tmp[0]) qf_remove_tree(tmp);
  qf__ov_drop_before(&c, 1 << 30);
  free(c.ov);
  free(order);
  qf_session_free(s);
  qf_calib_free(calib);
  qf_model_free(model);
  qf_rt_free(c.rt);
  qf_checkpoint_close(ck);
  return st;
}

void qf_quantize_result_clear(qf_quantize_result *r) {
  if (!r) return;
  free(r->config_json);
  free(r->metrics_json);
  memset(r, 0, sizeof *r);
}
