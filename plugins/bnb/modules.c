/*
 * Module-level rules of the bitsandbytes quantizers that need no ABI:
 * checkpoint name handling (weight name -> module prefix), which modules
 * stay unconverted (transformers' replace_with_bnb_linear substring rule,
 * embeddings), and the full set of arrays a 4-bit module emits (packed
 * weight, absmax or its double-quantized codes, nested absmax, the
 * quant_state JSON) from one float weight. plugin.c turns these into
 * host tensors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"

int qf_bnb_weight_prefix(const char *name, char *prefix, size_t size) {
  if (!name || !size) return 0;
  if (strcmp(name, "weight") == 0) {
    prefix[0] = '\0';
    return 1;
  }
  size_t n = strlen(name), s = strlen(".weight");
  if (n <= s || strcmp(name + n - s, ".weight") != 0 || n - s + 2 > size)
    return 0;
  memcpy(prefix, name, n - s + 1); /* keep the '.' */
  prefix[n - s + 1] = '\0';
  return 1;
}

void qf_bnb_module_of(const char *prefix, char *mod, size_t size) {
  snprintf(mod, size, "%s", prefix);
  size_t n = strlen(mod);
  if (n && mod[n - 1] == '.') mod[n - 1] = '\0';
}

int qf_bnb_module_skipped(const char *mod, char *const *skip, size_t n_skip) {
  const char *last = strrchr(mod, '.');
  last = last ? last + 1 : mod;
  for (size_t i = 0; i < n_skip; i++) {
    const char *k = skip[i];
    size_t kl = strlen(k);
    if (strcmp(mod, k) == 0 || strcmp(last, k) == 0) return 1;
    if (kl == 0) continue;
    for (const char *p = strstr(mod, k); p; p = strstr(p + 1, k))
      if (p[kl] == '.') return 1;
  }
  return 0;
}

int qf_bnb_is_embedding(const char *mod) {
  const char *last = strrchr(mod, '.');
  last = last ? last + 1 : mod;
  return strstr(last, "embed") != NULL || strcmp(last, "wte") == 0 ||
         strcmp(last, "wpe") == 0;
}

void qf_bnb_q4_free(qf_bnb_q4 *q) {
  if (!q) return;
  free(q->packed);
  free(q->absmax);
  free(q->codes);
  free(q->nested_absmax);
  q->packed = NULL;
  q->absmax = NULL;
  q->codes = NULL;
  q->nested_absmax = NULL;
}

int qf_bnb_q4_make(qf_bnb_qtype t, int64_t bs, int double_quant,
                   const float *w, int64_t n, const char *dtype_name, int ndim,
                   const int64_t *shape, int64_t storage, qf_bnb_q4 *out,
                   char *msg, size_t msg_size) {
  memset(out, 0, sizeof *out);
  if (storage < 1) storage = 1;
  out->bytes = qf_bnb_packed_bytes(n);
  if (out->bytes % storage != 0) {
    snprintf(msg, msg_size,
             "%lld elements do not fill whole quant_storage units of %lld "
             "bytes (need a multiple of %lld elements)",
             (long long)n, (long long)storage, (long long)(2 * storage));
    return -1;
  }
  if (ndim < 1 || ndim > 8) {
    snprintf(msg, msg_size, "expected 1 to 8 dims, found %d", ndim);
    return -1;
  }
  out->nb = qf_bnb_nblocks(n, bs);
  out->nnb = qf_bnb_nblocks(out->nb, QF_BNB_NESTED_BLOCKSIZE);
  out->packed = (uint8_t *)malloc((size_t)out->bytes + 1);
  out->absmax = (float *)malloc((size_t)(out->nb + 1) * sizeof(float));
  if (double_quant) {
    out->codes = (uint8_t *)malloc((size_t)out->nb + 1);
    out->nested_absmax = (float *)malloc((size_t)(out->nnb + 1) * sizeof(float));
  }
  if (!out->packed || !out->absmax ||
      (double_quant && (!out->codes || !out->nested_absmax))) {
    snprintf(msg, msg_size, "out of memory");
    return -2;
  }
  qf_bnb_quantize_4bit(t, w, n, bs, out->packed, out->absmax);
  qf_bnb_qmeta *m = &out->meta;
  m->qtype = t;
  m->blocksize = bs;
  snprintf(m->dtype, sizeof m->dtype, "%s", dtype_name);
  m->ndim = ndim;
  for (int i = 0; i < ndim; i++) m->shape[i] = shape[i];
  if (double_quant) {
    m->nested = 1;
    m->nested_blocksize = QF_BNB_NESTED_BLOCKSIZE;
    qf_bnb_double_quant(out->absmax, out->nb, out->codes, out->nested_absmax,
                        &m->nested_offset);
  }
  out->json_len = qf_bnb_qmeta_to_json(m, out->json, sizeof out->json);
  if (out->json_len < 0) {
    snprintf(msg, msg_size, "quant_state JSON does not fit");
    return -1;
  }
  return 0;
}
