/*
 * convert_import.c — a GGUF file as a Hugging Face checkpoint, the way
 * transformers loads a GGUF (spec hf_quantizer.md §5): llama.cpp names
 * mapped back to HF names, tensors dequantized to float (F32; F16 / BF16
 * tensors keep their type; 1-D tensors such as norms are always F32), the Q
 * and K rows of the llama architecture un-permuted, and a config.json built
 * from the metadata. Optionally quantized 2-D weights keep their ggml blocks
 * (U8 rows + "<name>.ggml_type"), which is this plugin's own pre-quantized
 * checkpoint layout. Tensors are produced one at a time (memory bounded by
 * one tensor); rope_freqs (derived from rope scaling) is not an HF tensor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_plugin.h"
#include "gguf_quants.h"
#include "qforge/plugin_util.h"

#define FAIL(err, code, ...) qf_fail(err, code, QF_GGUF_PLUGIN, "import", __VA_ARGS__)

/* HF shape of a GGUF tensor: ne reversed, trailing 1s beyond n_dims dropped. */
static int qf__hf_shape(const qf_gguf_tensor *t, int64_t shape[4]) {
  int nd = (int)(t->n_dims ? t->n_dims : 1);
  for (int d = 0; d < nd; d++) shape[d] = t->ne[nd - 1 - d];
  return nd;
}

/* Rows of `src` (row_bytes each) reordered by the reverse Q/K permutation. */
static void qf__unpermute(const uint8_t *src, uint8_t *dst, int64_t rows, size_t row_bytes,
                          int64_t heads) {
  for (int64_t r = 0; r < rows; r++)
    memcpy(dst + (size_t)r * row_bytes,
           src + (size_t)qf_gguf_qk_src_row(r, rows, heads, 0) * row_bytes, row_bytes);
}

static qf_status qf__import_one(const qf_gguf_file *f, const qf_gguf_tensor *t,
                                const qf_gguf_hparams *hp, int keep_quantized,
                                const qf_gguf_env *env, qf_gguf_put_fn put, void *user,
                                qf_error *err) {
  char hf[256];
  if (!strcmp(t->name, "rope_freqs.weight")) {
    qf_gguf_logf(env, QF_LOG_DEBUG, "%s: skipping rope_freqs.weight (derived from rope scaling)",
                 qf_gguf_path(f));
    return QF_OK;
  }
  if (qf_gguf_name_gguf_to_hf(t->name, hf, sizeof hf) != 1) {
    qf_gguf_logf(env, QF_LOG_WARN, "%s: tensor '%s' has no Hugging Face name for '%s'; skipped",
                 qf_gguf_path(f), t->name, hp->arch_name);
    return QF_OK;
  }
  const qf_gguf_type_info *ti = qf_gguf_type_get(t->type);
  if (!ti || !ti->can_dequantize)
    return FAIL(err, QF_ERR_UNSUPPORTED,
                "%s: tensor '%s' has ggml type %d (%s), which this plugin "
                "cannot dequantize",
                qf_gguf_path(f), t->name, t->type, ti ? ti->name : "unknown");
  int64_t shape[4];
  int nd = qf__hf_shape(t, shape);
  const int64_t cols = t->ne[0], rows = qf_gguf_tensor_nelements(t) / (cols ? cols : 1);
  const int64_t heads = qf_gguf_qk_heads(t->name, hp);
  if (heads && rows % (2 * heads) != 0)
    return FAIL(err, QF_ERR_FORMAT,
                "%s: tensor '%s' has %lld rows, not a multiple of 2 x %lld heads", qf_gguf_path(f),
                t->name, (long long)rows, (long long)heads);
  const size_t rs = qf_gguf_row_size(t->type, cols);
  const uint8_t *data = t->data;
  uint8_t *perm = NULL;
  void *out = NULL;
  qf_status st = QF_OK;
  if (heads) {
    if (!(perm = malloc((size_t)t->nbytes + 1)))
      return FAIL(err, QF_ERR_NO_MEMORY, "out of memory for tensor '%s'", t->name);
    qf__unpermute(t->data, perm, rows, rs, heads);
    data = perm;
  }
  int quantized = ti->is_quantized;
  if (keep_quantized && quantized && nd == 2) {
    int64_t qshape[2] = {rows, (int64_t)rs}, tshape[1] = {1};
    int32_t type = t->type;
    char tname[300];
    snprintf(tname, sizeof tname, "%s.ggml_type", hf);
    if ((st = put(user, hf, "U8", 2, qshape, data, err)) == QF_OK)
      st = put(user, tname, "I32", 1, tshape, &type, err);
  } else if (nd >= 2 && (t->type == QF_GGUF_TYPE_F16 || t->type == QF_GGUF_TYPE_BF16 ||
                         t->type == QF_GGUF_TYPE_F32)) {
    st = put(user, hf,
             t->type == QF_GGUF_TYPE_F16    ? "F16"
             : t->type == QF_GGUF_TYPE_BF16 ? "BF16"
                                            : "F32",
             nd, shape, data, err);
  } else {
    out = malloc((size_t)(rows * cols) * sizeof(float) + 1);
    if (!out) {
      st = FAIL(err, QF_ERR_NO_MEMORY, "out of memory dequantizing '%s'", t->name);
    } else if (qf_gguf_dequantize_mt(t->type, data, out, rows, cols, env->n_threads) != 0) {
      st = FAIL(err, QF_ERR_FORMAT, "%s: tensor '%s' (%s, %lld x %lld) cannot be dequantized",
                qf_gguf_path(f), t->name, ti->name, (long long)rows, (long long)cols);
    } else {
      st = put(user, hf, "F32", nd, shape, out, err);
    }
  }
  free(out);
  free(perm);
  return st;
}

qf_status qf_gguf_import(const char *in_path, int keep_quantized, const qf_gguf_env *env,
                         qf_gguf_put_fn put, void *user, char **config_json, qf_error *err) {
  qf_gguf_file *f = NULL;
  qf_status st = qf_gguf_open(in_path, &f, err);
  if (st != QF_OK) return st;
  qf_gguf_hparams hp;
  if ((st = qf_gguf_hparams_from_gguf(f, &hp, err)) != QF_OK) goto out;
  if (hp.arch == QF_GGUF_ARCH_UNKNOWN) {
    st = FAIL(err, QF_ERR_UNSUPPORTED,
              "%s: general.architecture is '%s'; this plugin converts "
              "'llama' (Llama, Mistral) and 'qwen2' to Hugging Face checkpoints",
              in_path, hp.arch_name);
    goto out;
  }
  /* torch_dtype: the type of the 2-D weights when they all share a float type */
  int n16 = 0, nbf = 0, nother = 0;
  size_t n = qf_gguf_tensor_count(f);
  for (size_t i = 0; i < n; i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
    if (t->n_dims < 2) continue;
    if (t->type == QF_GGUF_TYPE_F16)
      n16++;
    else if (t->type == QF_GGUF_TYPE_BF16)
      nbf++;
    else
      nother++;
  }
  const char *dtype = nother || (n16 && nbf) ? "float32"
                      : n16                  ? "float16"
                      : nbf                  ? "bfloat16"
                                             : "float32";
  for (size_t i = 0; i < n; i++) {
    if ((st = qf__import_one(f, qf_gguf_tensor_at(f, i), &hp, keep_quantized, env, put, user,
                             err)) != QF_OK)
      goto out;
    if (env->progress) env->progress(env->user, "gguf", i + 1, n);
  }
  int has_output = qf_gguf_find_tensor(f, "output.weight") != NULL;
  *config_json = qf_gguf_hf_config_json(f, &hp, dtype, has_output);
  if (!*config_json) st = FAIL(err, QF_ERR_NO_MEMORY, "out of memory building config.json");
out:
  qf_gguf_close(f);
  return st;
}
