/*
 * Loading bitsandbytes checkpoint tensors into kernel-ready weights, with
 * the checks QuantState.from_dict / Int8Params loading imply (spec 6.1,
 * 6.3, 5.3): exactly one packed quant_state per 4-bit weight, the key set
 * under `<prefix>weight.`, dtypes and shapes of weight / absmax / quant_map
 * / nested_absmax / nested_quant_map against the JSON, the older
 * transposed [1, B] weight layout, any quant_storage dtype, and 8-bit
 * weight / SCB / weight_format. Every rejection names the tensor and says
 * what was expected. Tensors are found through a caller callback so the
 * same code serves the plugin (host model) and the tests (plain arrays).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"

static int64_t numel(const DLTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

static const void *tdata(const DLTensor *t) {
  return t->data ? (const char *)t->data + t->byte_offset : NULL;
}

/* "float16 [8, 1]" */
static void describe(const DLTensor *t, char *buf, size_t size) {
  const char *dn = qf_bnb_dtype_name(t->dtype);
  size_t o = (size_t)snprintf(buf, size, "%s [", dn ? dn : "unknown-dtype");
  for (int i = 0; i < t->ndim && o < size; i++)
    o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "",
                          (long long)t->shape[i]);
  if (o < size) snprintf(buf + o, size - o, "]");
}

static int is_dtype(const DLTensor *t, uint8_t code, uint8_t bits) {
  return t->dtype.code == code && t->dtype.bits == bits && t->dtype.lanes == 1;
}

/* A 1-D tensor of `n` elements of the given dtype (a [n, 1] or [1, n]
 * view is accepted too: torch state dicts sometimes keep it). */
static int check_vec(const char *name, const DLTensor *t, uint8_t code,
                     uint8_t bits, int64_t n, char *msg, size_t msg_size) {
  int shape_ok = (t->ndim == 1 && t->shape[0] == n) ||
                 (t->ndim == 2 && numel(t) == n &&
                  (t->shape[0] == 1 || t->shape[1] == 1));
  if (!is_dtype(t, code, bits) || !shape_ok || !tdata(t)) {
    char have[96];
    describe(t, have, sizeof have);
    DLDataType want = {code, bits, 1};
    qf__bnb_set_msg(msg, msg_size, "tensor '%s': expected %s [%lld], found %s%s", name,
            qf_bnb_dtype_name(want), (long long)n, have,
            tdata(t) ? "" : " without data");
    return -1;
  }
  return 0;
}

static int find(qf_bnb_find_fn fn, void *user, const char *prefix,
                const char *suffix, char *name, size_t name_size,
                DLTensor *out) {
  snprintf(name, name_size, "%s%s", prefix, suffix);
  memset(out, 0, sizeof *out);
  return fn(user, name, out);
}

void qf_bnb_w4_free(qf_bnb_w4 *w) {
  if (!w) return;
  free(w->absmax);
  w->absmax = NULL;
}

int qf_bnb_load4(const char *prefix, qf_bnb_find_fn fn, void *user,
                 qf_bnb_w4 *out, char *msg, size_t msg_size) {
  memset(out, 0, sizeof *out);
  char name[1024], qs_name[1024];
  DLTensor qs, qs2, w, am, qm, nam, nqm;
  int has_nf4 = find(fn, user, prefix, QF_BNB_K_QSTATE "nf4", qs_name,
                     sizeof qs_name, &qs);
  int has_fp4 = find(fn, user, prefix, QF_BNB_K_QSTATE "fp4", name,
                     sizeof name, &qs2);
  if (has_nf4 && has_fp4) {
    qf__bnb_set_msg(msg, msg_size,
            "module '%s': both quant_state.bitsandbytes__nf4 and __fp4 are "
            "present; expected exactly one",
            prefix);
    return -1;
  }
  if (!has_nf4 && !has_fp4) {
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s" QF_BNB_K_QSTATE "nf4' (or __fp4) is missing: a 4-bit "
            "weight needs its packed quant_state",
            prefix);
    return -1;
  }
  if (has_fp4) {
    qs = qs2;
    snprintf(qs_name, sizeof qs_name, "%s", name);
  }
  if (!(is_dtype(&qs, kDLUInt, 8) || is_dtype(&qs, kDLInt, 8)) || qs.ndim != 1 ||
      !tdata(&qs)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s': expected a 1-D uint8 JSON blob",
            qs_name);
    return -1;
  }
  qf_bnb_qmeta *m = &out->meta;
  if (qf_bnb_qmeta_parse((const char *)tdata(&qs), (size_t)qs.shape[0],
                         qs_name, m, msg, msg_size))
    return -1;
  if ((m->qtype == QF_BNB_FP4) != has_fp4) {
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s': quant_type \"%s\" does not match the key suffix",
            qs_name, qf_bnb_qtype_name(m->qtype));
    return -1;
  }
  int64_t n = 1;
  for (int i = 0; i < m->ndim; i++) n *= m->shape[i];
  out->n = n;
  out->cols = m->shape[m->ndim - 1];
  out->rows = out->cols ? n / out->cols : 0;
  out->nblocks = qf_bnb_nblocks(n, m->blocksize);
  int64_t nb = out->nblocks;

  /* weight: (n+1)/2 packed bytes in any quant_storage dtype */
  if (!find(fn, user, prefix, QF_BNB_K_WEIGHT, name, sizeof name, &w)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s' is missing", name);
    return -1;
  }
  const char *sname = qf_bnb_dtype_name(w.dtype);
  int64_t need = qf_bnb_packed_bytes(n);
  int64_t wn = numel(&w);
  int64_t itemsize = sname ? (int64_t)qf_bnb_dtype_size(w.dtype) : 0;
  int layout_ok = w.ndim == 1 || (w.ndim == 2 && (w.shape[1] == 1 || w.shape[0] == 1));
  if (!sname || !layout_ok || !tdata(&w) || wn * itemsize < need ||
      wn * itemsize - need >= itemsize) {
    char have[96];
    describe(&w, have, sizeof have);
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s': expected %lld packed bytes as [B, 1] (or legacy "
            "[1, B]) of uint8/int8/float16/bfloat16/float32/float64 for "
            "shape with %lld elements, found %s",
            name, (long long)need, (long long)n, have);
    return -1;
  }
  out->packed = (const uint8_t *)tdata(&w);
  out->storage = w.dtype;

  if (!find(fn, user, prefix, QF_BNB_K_QMAP, name, sizeof name, &qm)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s' is missing", name);
    return -1;
  }
  if (check_vec(name, &qm, kDLFloat, 32, 16, msg, msg_size)) return -1;

  if (!find(fn, user, prefix, QF_BNB_K_ABSMAX, name, sizeof name, &am)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s' is missing", name);
    return -1;
  }
  char nname[1024];
  int nested = find(fn, user, prefix, QF_BNB_K_NABSMAX, nname, sizeof nname, &nam);
  if (!nested) {
    if (is_dtype(&am, kDLUInt, 8)) {
      qf__bnb_set_msg(msg, msg_size,
              "tensor '%s' is missing: '%s' is uint8 (double-quantized) and "
              "needs it",
              nname, name);
      return -1;
    }
    if (check_vec(name, &am, kDLFloat, 32, nb, msg, msg_size)) return -1;
    out->absmax = (float *)malloc((size_t)(nb ? nb : 1) * sizeof(float));
    if (!out->absmax) {
      qf__bnb_set_msg(msg, msg_size, "out of memory loading '%s'", name);
      return -1;
    }
    memcpy(out->absmax, tdata(&am), (size_t)nb * sizeof(float));
    return 0;
  }
  /* double-quantized statistics */
  if (check_vec(name, &am, kDLUInt, 8, nb, msg, msg_size)) return -1;
  if (!m->nested) {
    qf__bnb_set_msg(msg, msg_size,
            "tensor '%s': nested_blocksize / nested_dtype / nested_offset are "
            "required when '%s' exists",
            qs_name, nname);
    return -1;
  }
  int64_t nnb = qf_bnb_nblocks(nb, m->nested_blocksize);
  if (check_vec(nname, &nam, kDLFloat, 32, nnb, msg, msg_size)) return -1;
  if (!find(fn, user, prefix, QF_BNB_K_NQMAP, name, sizeof name, &nqm)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s' is missing", name);
    return -1;
  }
  if (check_vec(name, &nqm, kDLFloat, 32, 256, msg, msg_size)) return -1;
  float map[256];
  memcpy(map, tdata(&nqm), sizeof map);
  float *nested_absmax = (float *)malloc((size_t)(nnb ? nnb : 1) * sizeof(float));
  out->absmax = (float *)malloc((size_t)(nb ? nb : 1) * sizeof(float));
  if (!nested_absmax || !out->absmax) {
    free(nested_absmax);
    qf_bnb_w4_free(out);
    qf__bnb_set_msg(msg, msg_size, "out of memory loading '%s'", nname);
    return -1;
  }
  memcpy(nested_absmax, tdata(&nam), (size_t)nnb * sizeof(float));
  qf_bnb_double_dequant(map, (const uint8_t *)tdata(&am), nested_absmax,
                        m->nested_blocksize, m->nested_offset, nb, out->absmax);
  free(nested_absmax);
  return 0;
}

void qf_bnb_w8_free(qf_bnb_w8 *w) {
  if (!w) return;
  free(w->scb);
  w->scb = NULL;
}

int qf_bnb_load8(const char *prefix, qf_bnb_find_fn fn, void *user,
                 qf_bnb_w8 *out, char *msg, size_t msg_size) {
  memset(out, 0, sizeof *out);
  char name[1024];
  DLTensor w, scb, wf;
  if (!find(fn, user, prefix, QF_BNB_K_WEIGHT, name, sizeof name, &w)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s' is missing", name);
    return -1;
  }
  if (!is_dtype(&w, kDLInt, 8) || w.ndim != 2 || !tdata(&w)) {
    char have[96];
    describe(&w, have, sizeof have);
    qf__bnb_set_msg(msg, msg_size, "tensor '%s': expected int8 [N, K] (LLM.int8 row "
            "format), found %s", name, have);
    return -1;
  }
  out->rows = w.shape[0];
  out->cols = w.shape[1];
  out->cb = (const int8_t *)tdata(&w);
  if (!find(fn, user, prefix, QF_BNB_K_SCB, name, sizeof name, &scb)) {
    qf__bnb_set_msg(msg, msg_size, "tensor '%s' is missing: an int8 weight needs its "
            "per-row scales", name);
    return -1;
  }
  if (check_vec(name, &scb, kDLFloat, 32, out->rows, msg, msg_size)) return -1;
  if (find(fn, user, prefix, QF_BNB_K_WFMT, name, sizeof name, &wf)) {
    const void *d = tdata(&wf);
    int64_t cnt = numel(&wf);
    long long fmt = -1;
    if (d && (wf.dtype.code == kDLUInt || wf.dtype.code == kDLInt) && cnt == 1) {
      switch (wf.dtype.bits) {
        case 8: fmt = wf.dtype.code == kDLInt ? *(const int8_t *)d : *(const uint8_t *)d; break;
        case 16: { int16_t v; memcpy(&v, d, 2); fmt = v; break; }
        case 32: { int32_t v; memcpy(&v, d, 4); fmt = v; break; }
        case 64: { int64_t v; memcpy(&v, d, 8); fmt = v; break; }
        default: break;
      }
    } else if (d && is_dtype(&wf, kDLUInt, 8) && wf.ndim == 1 && cnt == 3 &&
               memcmp(d, "row", 3) == 0) {
      fmt = 0; /* the old string form, stored as bytes */
    }
    if (fmt != 0) {
      static const char *const names[] = {"row", "col32", "col_turing",
                                          "col_ampere"};
      qf__bnb_set_msg(msg, msg_size,
              "tensor '%s': only the \"row\" format (0) is supported, found "
              "%s%s",
              name, fmt >= 1 && fmt <= 3 ? names[fmt] : "an unknown value",
              fmt >= 1 && fmt <= 3 ? " (a legacy GPU tile layout)" : "");
      return -1;
    }
  }
  out->scb = (float *)malloc((size_t)(out->rows ? out->rows : 1) * sizeof(float));
  if (!out->scb) {
    qf__bnb_set_msg(msg, msg_size, "out of memory loading '%s'", name);
    return -1;
  }
  memcpy(out->scb, tdata(&scb), (size_t)out->rows * sizeof(float));
  return 0;
}

static const char *const k_valid_qs_keys[] = {
    "absmax", "quant_map", "nested_absmax", "nested_quant_map", "quant_state",
    "quant_type", "blocksize", "dtype", "shape", "nested_blocksize",
    "nested_dtype", "nested_offset"};

int qf_bnb_check_stat_keys(const char *prefix, const char *const *names,
                           size_t n, char *msg, size_t msg_size) {
  char head[1024];
  snprintf(head, sizeof head, "%sweight.", prefix);
  size_t hl = strlen(head);
  int n_qs = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(names[i], head, hl) != 0) continue;
    const char *rest = names[i] + hl;
    const char *last = strrchr(rest, '.');
    last = last ? last + 1 : rest;
    if (strstr(rest, "quant_state")) {
      if (strcmp(last, "bitsandbytes__nf4") != 0 &&
          strcmp(last, "bitsandbytes__fp4") != 0) {
        qf__bnb_set_msg(msg, msg_size,
                "tensor '%s': a quant_state key must end in "
                "bitsandbytes__nf4 or bitsandbytes__fp4",
                names[i]);
        return -1;
      }
      n_qs++;
      continue;
    }
    int ok = 0;
    for (size_t k = 0; k < sizeof k_valid_qs_keys / sizeof k_valid_qs_keys[0]; k++)
      if (strcmp(last, k_valid_qs_keys[k]) == 0) ok = 1;
    if (!ok) {
      qf__bnb_set_msg(msg, msg_size,
              "tensor '%s' is not a QuantState component (expected absmax, "
              "quant_map, nested_absmax, nested_quant_map or quant_state)",
              names[i]);
      return -1;
    }
  }
  if (n_qs > 1) {
    qf__bnb_set_msg(msg, msg_size,
            "module '%s': %d quant_state tensors under '%s'; expected exactly "
            "one",
            prefix, n_qs, head);
    return -1;
  }
  return 0;
}
