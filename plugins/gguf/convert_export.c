/*
 * convert_export.c — writing GGUF files: an HF checkpoint to GGUF (what
 * convert_hf_to_gguf.py followed by llama-quantize produce) and a GGUF to
 * another file type (llama-quantize on a GGUF input).
 *
 * Both build a plan first — the llama.cpp name, output type (file type +
 * per-tensor policy, spec gguf_ggml.md §5.3), shape and importance vector of
 * every tensor — so that every tensor info and offset is known before a
 * byte of data is written. Tensors are ordered as llama-quantize emits them
 * (global tensors first, then by layer, each group by name). Data is then
 * produced one tensor at a time: source rows are converted (and, for the
 * llama Q/K projections, permuted) in bounded chunks, quantized on
 * n_threads, and streamed to a temporary file that is fsync'ed and renamed
 * over the output at the end, so memory stays bounded by one tensor and a
 * failure leaves no file behind.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_plugin.h"
#include "gguf_quants.h"
#include "qforge/plugin_util.h"

#define FAIL(err, code, ...) qf_fail(err, code, QF_GGUF_PLUGIN, "export", __VA_ARGS__)

typedef struct qf__plan {
  char name[QF_GGUF_MAX_NAME + 1];
  const qf_gguf_src_tensor *src; /* HF source (export) */
  const qf_gguf_tensor *gsrc;    /* GGUF source (requantize) */
  const float *generated;        /* computed tensor (rope_freqs), F32 */
  int type;
  uint32_t n_dims;
  int64_t ne[4];
  int64_t rows, cols;
  int64_t qk_heads;
  int64_t mat_rows;     /* rows per importance slice (3-D experts); = rows otherwise */
  const float *imatrix; /* cols × (rows / mat_rows) values, or NULL */
  int copy;             /* requantize: bytes unchanged */
  int layer;
} qf__plan;

static int qf__plan_cmp(const void *a, const void *b) {
  const qf__plan *x = a, *y = b;
  if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int qf__is_float_type(int t) {
  return t == QF_GGUF_TYPE_F32 || t == QF_GGUF_TYPE_F16 || t == QF_GGUF_TYPE_BF16;
}

/* Output type of a weight that llama-quantize would quantize. */
static int qf__choose_type(const qf_gguf_export_opts *o, const char *name, int64_t ne0,
                           const qf_gguf_policy_ctx *ctx) {
  int t;
  if (qf__is_float_type(o->ftype->base_type) && o->pure_type < 0) return o->ftype->base_type;
  if (o->pure_type >= 0)
    t = qf_gguf_fallback_type(o->pure_type, ne0);
  else
    t = qf_gguf_policy_type(o->ftype, name, ne0, ctx);
  if (o->token_embd_type >= 0 && !strcmp(name, "token_embd.weight")) t = o->token_embd_type;
  if (o->output_type >= 0 &&
      (!strcmp(name, "output.weight") || (!ctx->has_output && !strcmp(name, "token_embd.weight"))))
    t = o->output_type;
  return t;
}

/* Attach the importance vector of `p` (if any) and check the imatrix rules. */
static qf_status qf__plan_imatrix(qf__plan *p, const qf_gguf_export_opts *o,
                                  const qf_gguf_imatrix *im, const qf_gguf_env *env,
                                  qf_error *err) {
  const qf_gguf_imatrix_entry *e = im ? qf_gguf_imatrix_find(im, p->name) : NULL;
  if (e && !qf__is_float_type(p->type)) {
    int64_t n_mat = p->rows / p->mat_rows;
    if (e->ne0 != p->cols || (e->n_mat != 1 && e->n_mat != n_mat))
      return FAIL(err, QF_ERR_INVALID_ARGUMENT,
                  "%s: imatrix entry '%s' has %lld x %lld values but tensor '%s' needs rows of "
                  "%lld (x %lld matrices): imatrix size mismatch",
                  o->imatrix_file, p->name, (long long)e->ne0, (long long)e->n_mat, p->name,
                  (long long)p->cols, (long long)n_mat);
    if (e->n_mat == 1) p->mat_rows = p->rows;
    p->imatrix = e->values;
  } else if (im && !qf__is_float_type(p->type) && strcmp(p->name, "token_embd.weight") != 0) {
    qf_gguf_logf(env, QF_LOG_WARN, "%s: no importance data for '%s'", o->imatrix_file, p->name);
  }
  if (!p->imatrix && qf_gguf_type_needs_imatrix(p->type, o->ftype, p->name))
    return FAIL(err, QF_ERR_INVALID_ARGUMENT,
                "tensor '%s': type %s needs an importance matrix (give imatrix_file / --imatrix)",
                p->name, qf_gguf_type_name(p->type));
  return QF_OK;
}

static qf_status qf__check_type(const qf__plan *p, qf_error *err) {
  if (p->type < 0)
    return FAIL(err, QF_ERR_UNSUPPORTED,
                "tensor '%s': row length %lld fits no block size of the chosen type and "
                "llama-quantize has no fallback for it",
                p->name, (long long)p->cols);
  if (!p->copy && !qf_gguf_can_quantize(p->type))
    return FAIL(err, QF_ERR_UNSUPPORTED,
                "tensor '%s': ggml type %s cannot be produced by this "
                "build (no quantizer)",
                p->name, qf_gguf_type_name(p->type));
  if (qf_gguf_row_size(p->type, p->cols) == 0)
    return FAIL(err, QF_ERR_INVALID_ARGUMENT,
                "tensor '%s': row length %lld is not a multiple of "
                "the %s block size %lld",
                p->name, (long long)p->cols, qf_gguf_type_name(p->type),
                (long long)qf_gguf_blck_size(p->type));
  return QF_OK;
}

/* One source row as floats. */
static void qf__src_row(const qf__plan *p, int64_t row, float *dst) {
  const qf_gguf_src_tensor *s = p->src;
  const int64_t c = p->cols;
  if (s->type == QF_GGUF_TYPE_F32) {
    memcpy(dst, (const float *)s->data + row * c, (size_t)c * sizeof(float));
  } else if (s->type == QF_GGUF_TYPE_F16) {
    const uint16_t *h = (const uint16_t *)s->data + row * c;
    for (int64_t i = 0; i < c; i++) dst[i] = qf_f16_to_f32(h[i]);
  } else {
    const uint16_t *h = (const uint16_t *)s->data + row * c;
    for (int64_t i = 0; i < c; i++) dst[i] = qf_bf16_to_f32(h[i]);
  }
}

/* Produce and stream the bytes of one planned tensor. */
static qf_status qf__emit(qf_gguf_writer *w, const qf__plan *p, const qf_gguf_env *env,
                          qf_error *err) {
  if (p->copy) return qf_gguf_writer_write_tensor_data(w, p->gsrc->data, p->gsrc->nbytes, err);
  const size_t rs = qf_gguf_row_size(p->type, p->cols);
  const size_t total = rs * (size_t)p->rows;
  uint8_t *out = malloc(total ? total : 1);
  int64_t chunk = ((int64_t)1 << 22) / p->cols;
  if (chunk < 1) chunk = 1;
  if (chunk > p->mat_rows) chunk = p->mat_rows;
  float *buf = malloc((size_t)(chunk * p->cols) * sizeof(float));
  qf_status st = QF_OK;
  if (!out || !buf) {
    st = FAIL(err, QF_ERR_NO_MEMORY, "out of memory for tensor '%s' (%zu bytes)", p->name, total);
    goto out;
  }
  const size_t src_rs = p->gsrc ? qf_gguf_row_size(p->gsrc->type, p->cols) : 0;
  for (int64_t m0 = 0; m0 < p->rows; m0 += p->mat_rows) {
    const float *imat = p->imatrix ? p->imatrix + (m0 / p->mat_rows) * p->cols : NULL;
    if (p->imatrix && p->mat_rows == p->rows) imat = p->imatrix;
    for (int64_t r0 = m0; r0 < m0 + p->mat_rows; r0 += chunk) {
      int64_t n = m0 + p->mat_rows - r0 < chunk ? m0 + p->mat_rows - r0 : chunk;
      if (p->generated) {
        memcpy(buf, p->generated + r0 * p->cols, (size_t)(n * p->cols) * sizeof(float));
      } else if (p->gsrc) {
        if (qf_gguf_dequantize_mt(p->gsrc->type,
                                  (const uint8_t *)p->gsrc->data + (size_t)r0 * src_rs, buf, n,
                                  p->cols, env->n_threads) != 0) {
          st = FAIL(err, QF_ERR_FORMAT, "tensor '%s': cannot dequantize its %s data", p->name,
                    qf_gguf_type_name(p->gsrc->type));
          goto out;
        }
      } else {
        for (int64_t r = 0; r < n; r++)
          qf__src_row(p, p->qk_heads ? qf_gguf_qk_src_row(r0 + r, p->rows, p->qk_heads, 1) : r0 + r,
                      buf + r * p->cols);
      }
      if (qf_gguf_quantize_mt(p->type, buf, out + (size_t)r0 * rs, n, p->cols, imat,
                              env->n_threads) != rs * (size_t)n) {
        st = FAIL(err, QF_ERR_INTERNAL, "tensor '%s': quantizing %lld rows of %lld to %s failed",
                  p->name, (long long)n, (long long)p->cols, qf_gguf_type_name(p->type));
        goto out;
      }
    }
  }
  st = qf_gguf_writer_write_tensor_data(w, out, total, err);
out:
  free(buf);
  free(out);
  return st;
}

/* Shared tail: KVs are set; declare tensors, stream them, publish. */
static qf_status qf__write(qf_gguf_writer *w, qf__plan *plan, size_t n, const qf_gguf_env *env,
                           const char *out_path, qf_error *err) {
  qf_status st;
  for (size_t i = 0; i < n; i++)
    if ((st = qf_gguf_writer_add_tensor(w, plan[i].name, plan[i].type, plan[i].n_dims, plan[i].ne,
                                        NULL, err)) != QF_OK)
      return st;
  if ((st = qf_gguf_writer_begin(w, out_path, err)) != QF_OK) return st;
  for (size_t i = 0; i < n; i++) {
    if ((st = qf__emit(w, &plan[i], env, err)) != QF_OK) {
      qf_gguf_writer_abort(w);
      return st;
    }
    if (env->progress) env->progress(env->user, "gguf", i + 1, n);
  }
  return qf_gguf_writer_finish(w, err);
}

static qf_status qf__imatrix_kvs(qf_gguf_writer *w, const qf_gguf_export_opts *o,
                                 const qf_gguf_imatrix *im, qf_error *err) {
  if (!im) return QF_OK;
  qf_status st;
  if ((st = qf_gguf_writer_set_str(w, "quantize.imatrix.file", o->imatrix_file, err))) return st;
  if (qf_gguf_imatrix_dataset_count(im) > 0 &&
      (st = qf_gguf_writer_set_str(w, "quantize.imatrix.dataset", qf_gguf_imatrix_dataset(im, 0),
                                   err)))
    return st;
  if ((st = qf_gguf_writer_set_i32(w, "quantize.imatrix.entries_count",
                                   (int32_t)qf_gguf_imatrix_count(im), err)))
    return st;
  if (qf_gguf_imatrix_chunk_count(im) > 0 &&
      (st = qf_gguf_writer_set_i32(w, "quantize.imatrix.chunks_count",
                                   (int32_t)qf_gguf_imatrix_chunk_count(im), err)))
    return st;
  return QF_OK;
}

static qf_status qf__tail_kvs(qf_gguf_writer *w, const qf_gguf_export_opts *o, qf_error *err) {
  qf_status st =
      qf_gguf_writer_set_u32(w, "general.quantization_version", QF_GGUF_QNT_VERSION, err);
  if (st == QF_OK) st = qf_gguf_writer_set_u32(w, "general.file_type", (uint32_t)o->ftype->id, err);
  return st;
}

/* llama3 rope scaling: the converter stores per-frequency factors as the
 * rope_freqs tensor (computed in float32 like its torch code). */
static float *qf__llama3_rope_freqs(const qf_gguf_hparams *hp, int64_t *n_out) {
  int64_t dim = hp->head_dim, n = dim / 2;
  float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
  if (!f) return NULL;
  const double pi = 3.14159265358979323846;
  double old_ctx = hp->rope_orig_ctx > 0 ? (double)hp->rope_orig_ctx : 8192.0;
  double lo = hp->rope_low_freq, hi = hp->rope_high_freq, factor = hp->rope_factor;
  double low_wl = old_ctx / lo, high_wl = old_ctx / hi;
  for (int64_t i = 0; i < n; i++) {
    float freq = 1.0f / powf(hp->rope_theta, (float)(2 * i) / (float)dim);
    double wl = 2.0 * pi / freq;
    if (wl < high_wl)
      f[i] = 1.0f;
    else if (wl > low_wl)
      f[i] = (float)factor;
    else {
      double smooth = (old_ctx / wl - lo) / (hi - lo);
      f[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
    }
  }
  *n_out = n;
  return f;
}

qf_status qf_gguf_export_hf(const qf_gguf_export_opts *o, const qf_gguf_env *env,
                            const char *config_json, const qf_gguf_src_tensor *t, size_t n,
                            const char *out_path, qf_error *err) {
  qf_gguf_hparams hp;
  qf_status st = qf_gguf_hparams_from_hf(config_json, "config.json", &hp, err);
  if (st != QF_OK) return st;
  qf_gguf_imatrix *im = NULL;
  qf_gguf_writer *w = NULL;
  float *rope = NULL;
  qf__plan *plan = calloc(n + 1, sizeof *plan);
  if (!plan) return FAIL(err, QF_ERR_NO_MEMORY, "out of memory planning %zu tensors", n);
  if (o->imatrix_file && (st = qf_gguf_imatrix_load(o->imatrix_file, &im, err)) != QF_OK) goto out;
  qf_gguf_policy_ctx ctx = {hp.arch, hp.n_layer, hp.n_head, hp.n_head_kv, 0, 0, im != NULL};
  for (size_t i = 0; i < n; i++)
    if (!strcmp(t[i].name, "lm_head.weight")) ctx.has_output = 1;
  size_t np = 0;
  for (size_t i = 0; i < n; i++) {
    qf__plan *p = &plan[np];
    int r = qf_gguf_name_hf_to_gguf(t[i].name, p->name, sizeof p->name);
    if (r < 0) continue; /* dropped by llama.cpp's converter */
    if (r == 0) {
      st = FAIL(err, QF_ERR_UNSUPPORTED, "tensor '%s' has no llama.cpp name for architecture '%s'",
                t[i].name, hp.arch_name);
      goto out;
    }
    if (t[i].ndim < 1 || t[i].ndim > 2) {
      st = FAIL(err, QF_ERR_UNSUPPORTED, "tensor '%s' has %d dimensions (1 or 2 expected)",
                t[i].name, t[i].ndim);
      goto out;
    }
    p->src = &t[i];
    p->n_dims = (uint32_t)t[i].ndim;
    p->ne[0] = t[i].shape[t[i].ndim - 1];
    p->ne[1] = t[i].ndim == 2 ? t[i].shape[0] : 1;
    p->ne[2] = p->ne[3] = 1;
    p->cols = p->ne[0];
    p->rows = p->mat_rows = p->ne[1];
    p->layer = qf_gguf_name_layer(p->name);
    size_t nl = strlen(p->name);
    int weight2d = t[i].ndim == 2 && nl > 7 && !strcmp(p->name + nl - 7, ".weight") &&
                   !strstr(p->name, "_norm.weight");
    p->type = weight2d ? qf__choose_type(o, p->name, p->cols, &ctx) : QF_GGUF_TYPE_F32;
    if ((st = qf__check_type(p, err)) != QF_OK) goto out;
    if ((st = qf__plan_imatrix(p, o, im, env, err)) != QF_OK) goto out;
    p->qk_heads = qf_gguf_qk_heads(p->name, &hp);
    if (p->qk_heads && p->rows % (2 * p->qk_heads) != 0) {
      st = FAIL(err, QF_ERR_FORMAT, "tensor '%s' has %lld rows, not a multiple of 2 x %lld heads",
                t[i].name, (long long)p->rows, (long long)p->qk_heads);
      goto out;
    }
    np++;
  }
  if (!strcmp(hp.rope_type, "llama3") && hp.arch == QF_GGUF_ARCH_LLAMA) {
    int64_t nf = 0;
    if (!(rope = qf__llama3_rope_freqs(&hp, &nf))) {
      st = FAIL(err, QF_ERR_NO_MEMORY, "out of memory");
      goto out;
    }
    qf__plan *p = &plan[np++];
    snprintf(p->name, sizeof p->name, "rope_freqs.weight");
    p->generated = rope;
    p->type = QF_GGUF_TYPE_F32;
    p->n_dims = 1;
    p->ne[0] = p->cols = nf;
    p->ne[1] = p->ne[2] = p->ne[3] = 1;
    p->rows = p->mat_rows = 1;
    p->layer = -1;
  }
  qsort(plan, np, sizeof *plan, qf__plan_cmp);
  if ((st = qf_gguf_writer_create(&w, err)) || (st = qf_gguf_write_hparams(w, &hp, err))) goto out;
  if (o->tokenizer_json && (st = qf_gguf_write_tokenizer(w, o->tokenizer_json, &hp, env, err)))
    goto out;
  if ((st = qf__imatrix_kvs(w, o, im, err)) || (st = qf__tail_kvs(w, o, err))) goto out;
  st = qf__write(w, plan, np, env, out_path, err);
out:
  qf_gguf_writer_free(w);
  qf_gguf_imatrix_free(im);
  free(rope);
  free(plan);
  return st;
}

/* Tensors llama-quantize never quantizes. */
static int qf__requant_candidate(const qf_gguf_tensor *t) {
  size_t l = strlen(t->name);
  if (l < 6 || strcmp(t->name + l - 6, "weight") != 0) return 0;
  uint32_t nd = 0;
  for (uint32_t d = 0; d < 4; d++)
    if (t->ne[d] != 1) nd = d + 1;
  if (nd < 2) return 0;
  static const char *const never[] = {"_norm.weight", "ffn_gate_inp.weight", "pos_embd",
                                      "token_types",  "ssm_conv1d",          "attn_rel_b"};
  for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
    if (strstr(t->name, never[i])) return 0;
  return 1;
}

qf_status qf_gguf_requantize(const qf_gguf_export_opts *o, const qf_gguf_env *env,
                             const char *in_path, const char *out_path, qf_error *err) {
  qf_gguf_file *f = NULL;
  qf_gguf_imatrix *im = NULL;
  qf_gguf_writer *w = NULL;
  qf__plan *plan = NULL;
  qf_gguf_hparams hp;
  qf_status st = qf_gguf_open(in_path, &f, err);
  if (st != QF_OK) return st;
  if ((st = qf_gguf_hparams_from_gguf(f, &hp, err)) != QF_OK) goto out;
  size_t n = qf_gguf_tensor_count(f);
  plan = calloc(n + 1, sizeof *plan);
  if (!plan) {
    st = FAIL(err, QF_ERR_NO_MEMORY, "out of memory");
    goto out;
  }
  if (o->imatrix_file && (st = qf_gguf_imatrix_load(o->imatrix_file, &im, err)) != QF_OK) goto out;
  qf_gguf_policy_ctx ctx = {hp.arch,     hp.n_layer,
                            hp.n_head,   hp.n_head_kv,
                            hp.n_expert, qf_gguf_find_tensor(f, "output.weight") != NULL,
                            im != NULL};
  int warned = 0;
  for (size_t i = 0; i < n; i++) {
    const qf_gguf_tensor *g = qf_gguf_tensor_at(f, i);
    qf__plan *p = &plan[i];
    snprintf(p->name, sizeof p->name, "%s", g->name);
    p->gsrc = g;
    p->n_dims = g->n_dims;
    memcpy(p->ne, g->ne, sizeof p->ne);
    p->cols = g->ne[0];
    p->rows = g->ne[1] * g->ne[2] * g->ne[3];
    p->mat_rows = g->ne[2] > 1 ? g->ne[1] : p->rows;
    p->layer = qf_gguf_name_layer(g->name);
    p->type = qf__requant_candidate(g) ? qf__choose_type(o, g->name, p->cols, &ctx) : g->type;
    p->copy = p->type == g->type;
    if ((st = qf__check_type(p, err)) != QF_OK) goto out;
    if (p->copy) continue;
    if (!qf_gguf_can_dequantize(g->type)) {
      st = FAIL(err, QF_ERR_UNSUPPORTED,
                "%s: tensor '%s' is %s, which cannot be dequantized to "
                "requantize it",
                in_path, g->name, qf_gguf_type_name(g->type));
      goto out;
    }
    if (!qf__is_float_type(g->type) && !warned++)
      qf_gguf_logf(env, QF_LOG_WARN,
                   "%s: requantizing already quantized tensors (first: '%s', %s) "
                   "compounds their error",
                   in_path, g->name, qf_gguf_type_name(g->type));
    if ((st = qf__plan_imatrix(p, o, im, env, err)) != QF_OK) goto out;
  }
  qsort(plan, n, sizeof *plan, qf__plan_cmp);
  if ((st = qf_gguf_writer_create(&w, err)) || (st = qf_gguf_writer_copy_kvs(w, f, err))) goto out;
  qf_gguf_writer_remove_key(w, "split.no");
  qf_gguf_writer_remove_key(w, "split.count");
  qf_gguf_writer_remove_key(w, "split.tensors.count");
  if ((st = qf__imatrix_kvs(w, o, im, err)) || (st = qf__tail_kvs(w, o, err))) goto out;
  st = qf__write(w, plan, n, env, out_path, err);
out:
  qf_gguf_writer_free(w);
  qf_gguf_imatrix_free(im);
  free(plan);
  qf_gguf_close(f);
  return st;
}
