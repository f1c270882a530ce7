/*
 * Scheme flags of `qforge quantize` (--bits, --group-size, --nf4, --type …)
 * and their translation into a quantization_config JSON object for the
 * chosen scheme, merged with --config (whose keys win).
 */
#ifndef QF_QUANT_FLAGS_H
#define QF_QUANT_FLAGS_H

#include <getopt.h>
#include <stdio.h>

#include "qforge/qforge.h"

typedef struct qf_quant_flags {
  int bits, group_size, sym, desc_act, blocksize;  /* -1 = not given */
  double damp_percent;                              /* < 0 = not given */
  const char *bnb_kind;                             /* "nf4", "fp4", "int8" */
  int double_quant;
  const char *compute_dtype, *gguf_type, *imatrix;
} qf_quant_flags;

void qf_quant_flags_init(qf_quant_flags *f);
/* Append the flag options to `opts` (at most `room`); returns the count. */
size_t qf_quant_flags_options(struct option *opts, size_t room);
/* Take one parsed option; 0 if it was a scheme flag, -1 otherwise. */
int qf_quant_flags_take(qf_quant_flags *f, int code, const char *arg);
void qf_quant_flags_help(FILE *f);
/* Build the config JSON text for `scheme` (malloc'ed into *out). */
qf_status qf_quant_flags_config(const qf_quant_flags *f, const char *scheme,
                                const char *config_json, char **out,
                                qf_error *err);

#endif /* QF_QUANT_FLAGS_H */
