/*
 * What activation-aware methods need from a calibration capture (GPTQ/AWQ
 * spec §4.2–4.3): the input features of a block's linear sites over all
 * calibration tokens, and forwards of a block part — attention (o_proj of
 * attention of the ATTN_IN input), MLP (down of SwiGLU of the MLP_IN input)
 * or the whole block — with float weights except for trial weights given as
 * overrides, plus the mean squared error of such a trial against the float
 * output (cached per block and part), which is AWQ's scale-search loss.
 * The ABI ops at the end expose these to plugins (calib_inputs,
 * calib_part_forward, calib_block_forward = the BLOCK part).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture_internal.h"

#define OP "calibration"

/* calib_part_forward's parts are the capture's. */
_Static_assert(QF_CALIB_PART_ATTN == (int)QF_CAPTURE_PART_ATTN &&
                   QF_CALIB_PART_MLP == (int)QF_CAPTURE_PART_MLP &&
                   QF_CALIB_PART_BLOCK == (int)QF_CAPTURE_PART_BLOCK,
               "QF_CALIB_PART_* must match qf_capture_part");

qf_status qf_capture_inputs(qf_capture *c, int layer, qf_rt_site site,
                            const float **x, int64_t *T, int64_t *K,
                            qf_error *err) {
  if (!c || !x || (unsigned)site >= QF_RT_SITE_COUNT)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_inputs needs a capture, a site and outputs");
  qf_status st = qf_capture_seek(c, layer, err);
  if (st) return st;
  qf__cap_site *t = &c->site[site];
  if (!t->inputs_valid) {
    if (!t->inputs &&
        !(t->inputs = malloc((size_t)(c->T * t->K) * sizeof(float))))
      return qf_errorf(err, QF_ERR_NO_MEMORY, OP,
                       "out of memory for %" PRId64 " x %" PRId64
                       " input features", c->T, t->K);
    if ((st = qf__cap_pass(c, 0, 1u << site, site, err))) return st;
    t->inputs_valid = 1;
  }
  *x = t->inputs;
  if (T) *T = c->T;
  if (K) *K = t->K;
  return QF_OK;
}

qf_status qf_capture_block_input(qf_capture *c, int layer, const float **x,
                                 int64_t *T, qf_error *err) {
  if (!c || !x)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_block_input needs a capture and an output");
  qf_status st = qf_capture_seek(c, layer, err);
  if (st) return st;
  *x = c->x;
  if (T) *T = c->T;
  return QF_OK;
}

/* Does a trial touch the attention half of a block (then the whole block
 * must be recomputed)? */
static int touches_attention(const qf_rt_override *ov, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int layer;
    qf_rt_module mod;
    if (!ov[i].name) continue;
    if (qf_rt_parse_linear_name(ov[i].name, &layer, &mod) && mod <= QF_RT_O)
      return 1;
    if (strstr(ov[i].name, ".input_layernorm.")) return 1;
  }
  return 0;
}

/* c->mid = x + attention(x) of `layer` with float weights (the residual
 * stream entering the MLP half), cached per block. */
static qf_status ensure_mid(qf_capture *c, int layer, qf_error *err) {
  if (c->mid_layer == layer) return QF_OK;
  size_t n_all = (size_t)(c->T * c->H);
  if (!c->mid && !(c->mid = malloc(n_all * sizeof(float))))
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  memcpy(c->mid, c->x, n_all * sizeof(float));
  /* stopping once the MLP input was observed leaves x + attention(x) in
   * the block's buffer (the residual is added before post_attention
   * normalisation) */
  qf_rt_block_opts o = {sizeof o, NULL, NULL, QF_RT_SITE_MLP_IN, 1, NULL, 0};
  int64_t s0 = 0, n = 0, len = 0, row0 = 0;
  qf_status st = QF_OK;
  while (!st && qf__cap_next_batch(c, &s0, &n, &len, &row0))
    st = qf_rt_block(c->m, layer, c->mid + row0 * c->H, n, len, &o, err);
  if (!st) c->mid_layer = layer;
  return st;
}

/* The MLP half only: y = h + mlp(post_attention_norm(h)), h cached. */
static qf_status block_from_mid(qf_capture *c, int layer,
                                const qf_rt_block_opts *o, float *y,
                                qf_error *err) {
  qf_status st = ensure_mid(c, layer, err);
  if (st) return st;
  char nm[96];
  snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight",
           layer);
  int64_t H = c->H, s0 = 0, n = 0, len = 0, row0 = 0;
  const float *w = qf__rt_override(o, nm);
  float *n2 = NULL;
  while (!st && qf__cap_next_batch(c, &s0, &n, &len, &row0)) {
    int64_t M = n * len;
    const float *h = c->mid + row0 * H;
    float *yo = y + row0 * H;
    const float *nw = w;
    free(n2);
    if (!(n2 = malloc((size_t)(M * H) * sizeof(float)))) {
      st = qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
      break;
    }
    if (!nw && (st = qf__rt_slot_f32(c->m, &c->m->layers[layer].norm2, &nw,
                                     err)))
      break;
    qf__rmsnorm(h, nw, M, H, c->m->cfg.rms_eps, n2);
    if ((st = qf_rt_mlp_part(c->m, layer, n2, M, yo, o, err))) break;
    for (int64_t i = 0; i < M * H; i++) yo[i] += h[i];
  }
  free(n2);
  return st;
}

qf_status qf_capture_part_forward(qf_capture *c, int layer,
                                  qf_capture_part part,
                                  const qf_rt_override *ov, size_t n_ov,
                                  float *y, qf_error *err) {
  if (!c || !y || (unsigned)part > QF_CAPTURE_PART_BLOCK)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_part_forward needs a capture, a part and an "
                     "output");
  qf_status st;
  const float *in = NULL;
  if (part == QF_CAPTURE_PART_ATTN)
    st = qf_capture_inputs(c, layer, QF_RT_SITE_ATTN_IN, &in, NULL, NULL, err);
  else if (part == QF_CAPTURE_PART_MLP)
    st = qf_capture_inputs(c, layer, QF_RT_SITE_MLP_IN, &in, NULL, NULL, err);
  else
    st = qf_capture_block_input(c, layer, &in, NULL, err);
  if (st) return st;
  qf_rt_block_opts o = {sizeof o, NULL, NULL, QF_RT_SITE_COUNT, 1, ov, n_ov};
  if (part == QF_CAPTURE_PART_BLOCK && !touches_attention(ov, n_ov))
    return block_from_mid(c, layer, &o, y, err);
  int64_t s0 = 0, n = 0, len = 0, row0 = 0, H = c->H;
  while (!st && qf__cap_next_batch(c, &s0, &n, &len, &row0)) {
    const float *xi = in + row0 * H;
    float *yo = y + row0 * H;
    if (part == QF_CAPTURE_PART_ATTN) {
      st = qf_rt_attn_part(c->m, layer, xi, n, len, yo, &o, err);
    } else if (part == QF_CAPTURE_PART_MLP) {
      st = qf_rt_mlp_part(c->m, layer, xi, n * len, yo, &o, err);
    } else {
      memcpy(yo, xi, (size_t)(n * len * H) * sizeof(float));
      st = qf_rt_block(c->m, layer, yo, n, len, &o, err);
    }
  }
  return st;
}

qf_status qf_capture_part_mse(qf_capture *c, int layer, qf_capture_part part,
                              const qf_rt_override *ov, size_t n_ov,
                              double *mse, qf_error *err) {
  if (!c || !mse || (unsigned)part > QF_CAPTURE_PART_BLOCK)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "qf_capture_part_mse needs a capture, a part and an "
                     "output");
  qf_status st = qf_capture_seek(c, layer, err);
  if (st) return st;
  size_t n = (size_t)(c->T * c->H);
  if (c->ref_layer[part] != layer) {
    if (!c->ref[part] && !(c->ref[part] = malloc(n * sizeof(float))))
      return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
    if ((st = qf_capture_part_forward(c, layer, part, NULL, 0, c->ref[part],
                                      err)))
      return st;
    c->ref_layer[part] = layer;
  }
  float *y = malloc(n * sizeof(float));
  if (!y) return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  st = qf_capture_part_forward(c, layer, part, ov, n_ov, y, err);
  if (!st) {
    double s = 0;
    const float *r = c->ref[part];
    for (size_t i = 0; i < n; i++) {
      double d = (double)y[i] - (double)r[i];
      s += d * d;
    }
    *mse = s / (double)n;
  }
  free(y);
  return st;
}

/* ---------------------------------------------------------------- ABI ops */

qf_status qf__cap_op_inputs(void *impl, const char *name, const float **x,
                            int64_t *tokens, int64_t *k, qf_error *err) {
  int layer;
  qf_rt_module mod;
  if (!name || !qf_rt_parse_linear_name(name, &layer, &mod))
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "no captured inputs for '%s' (only the linear layers of "
                     "decoder blocks)", name ? name : "(null)");
  return qf_capture_inputs(impl, layer, qf_rt_module_site(mod), x, tokens, k,
                           err);
}

qf_status qf__cap_op_block_shape(void *impl, const char *name,
                                 int64_t *tokens, int64_t *hidden,
                                 qf_error *err) {
  qf_capture *c = impl;
  if (qf__rt_name_layer(name) < 0)
    return qf_errorf(err, QF_ERR_NOT_FOUND, OP,
                     "'%s' is not a tensor of a decoder block",
                     name ? name : "(null)");
  if (tokens) *tokens = c->T;
  if (hidden) *hidden = c->H;
  return QF_OK;
}

/* Elements a block tensor must have (from the checkpoint or the config). */
static int64_t expected_numel(qf_rt_model *m, const char *name) {
  qf__rt_slot *s = qf__rt_find_slot(m, name);
  if (s && s->t) {
    int64_t n = 1;
    for (int i = 0; i < s->t->ndim; i++) n *= s->t->shape[i];
    return n;
  }
  int layer;
  qf_rt_module mod;
  if (qf_rt_parse_linear_name(name, &layer, &mod)) {
    int64_t N = qf__rt_module_n(&m->cfg, mod);
    size_t l = strlen(name);
    return l > 5 && !strcmp(name + l - 5, ".bias")
               ? N
               : N * qf__rt_module_k(&m->cfg, mod);
  }
  return -1;
}

static qf_status to_f32(const DLTensor *t, const char *name, int64_t want,
                        float **out, qf_error *err) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  qf_dtype dt = qf_dtype_from_dl(t->dtype);
  if (t->device.device_type != kDLCPU || !t->data || t->dtype.lanes != 1 ||
      (dt != QF_DTYPE_F32 && dt != QF_DTYPE_F16 && dt != QF_DTYPE_BF16))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "trial weight '%s' must be a CPU f32/f16/bf16 tensor",
                     name);
  if (t->strides) {
    int64_t stride = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
      if (t->shape[i] > 1 && t->strides[i] != stride)
        return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                         "trial weight '%s' must be compact row-major", name);
      stride *= t->shape[i];
    }
  }
  if (want < 0 || n != want)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "trial weight '%s' has %" PRId64 " elements (expected %"
                     PRId64 ")", name, n, want);
  if (!(*out = malloc((size_t)(n ? n : 1) * sizeof(float))))
    return qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  qf_convert(*out, QF_DTYPE_F32, (const char *)t->data + t->byte_offset, dt,
             (size_t)n);
  return QF_OK;
}

qf_status qf__cap_op_part_forward(void *impl, const char *name, int part,
                                  const char *const *names,
                                  const DLTensor *weights, size_t n,
                                  float *out, qf_error *err) {
  qf_capture *c = impl;
  int layer = qf__rt_name_layer(name);
  if (part < QF_CALIB_PART_ATTN || part > QF_CALIB_PART_BLOCK)
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "calib_part_forward: part %d is not QF_CALIB_PART_ATTN, "
                     "_MLP or _BLOCK (0..2)", part);
  if (layer < 0 || !out || (n && (!names || !weights)))
    return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "calib_part_forward needs a block tensor name ('%s'), "
                     "trial tensors and an output", name ? name : "(null)");
  qf_rt_override *ov = calloc(n ? n : 1, sizeof *ov);
  float **bufs = calloc(n ? n : 1, sizeof *bufs);
  qf_status st = ov && bufs ? QF_OK
                            : qf_errorf(err, QF_ERR_NO_MEMORY, OP, "out of memory");
  for (size_t i = 0; !st && i < n; i++) {
    if (!names[i] || qf__rt_name_layer(names[i]) != layer) {
      st = qf_errorf(err, QF_ERR_INVALID_ARGUMENT, OP,
                     "trial tensor '%s' is not in block %d",
                     names[i] ? names[i] : "(null)", layer);
      break;
    }
    st = to_f32(&weights[i], names[i], expected_numel(c->m, names[i]),
                &bufs[i], err);
    ov[i].name = names[i];
    ov[i].w = bufs[i];
  }
  if (!st)
    st = qf_capture_part_forward(c, layer, (qf_capture_part)part, ov, n, out,
                                 err);
  for (size_t i = 0; bufs && i < n; i++) free(bufs[i]);
  free(bufs);
  free(ov);
  return st;
}

qf_status qf__cap_op_block_forward(void *impl, const char *name,
                                   const char *const *names,
                                   const DLTensor *weights, size_t n,
                                   float *out, qf_error *err) {
  return qf__cap_op_part_forward(impl, name, QF_CALIB_PART_BLOCK, names,
                                 weights, n, out, err);
}
