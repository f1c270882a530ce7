/*
 * Layout of the calibration capture shared by calib_capture.c (sequential
 * block walk, GPTQ Hessians, importance, the qf_calib wrapper) and
 * calib_awq.c (input features and block-part forwards with trial weights).
 */
#ifndef QF_CAPTURE_INTERNAL_H
#define QF_CAPTURE_INTERNAL_H

#include "rt_internal.h"

typedef struct qf__cap_site {
  int valid;          /* Hessian / importance accumulated at this layer */
  int64_t K;
  float *h;           /* running H, upper triangle (row-major) */
  float *hfull;       /* symmetrised copy handed out */
  int64_t nsamples;   /* sequences added */
  double *imp;        /* Σ x² per column */
  int64_t imp_tokens;
  float *impf;        /* mean handed out */
  float *scaled;      /* one sequence scaled by sqrt(2/n) */
  size_t scaled_n;
  float *inputs;      /* captured inputs [T, K] */
  int inputs_valid;
} qf__cap_site;

struct qf_capture {
  qf_rt_model *m;
  qf_capture_options o;
  qf_token_set *tok;
  int64_t T, H;
  int layer;          /* current block, -1 before the first */
  float *x;           /* [T, H] input of block `layer` */
  qf__cap_site site[QF_RT_SITE_COUNT];
  float *ref[3];      /* float outputs of the parts at ref_layer */
  int ref_layer[3];
  float *mid;         /* [T, H] x + attention(x) of block mid_layer */
  int mid_layer;
};

/* One forward batch: sequences [s0, s0 + n) of equal length len, rows
 * [row0, row0 + n·len) of the token matrix. Returns 0 when done. */
int qf__cap_next_batch(const qf_capture *c, int64_t *s0, int64_t *n,
                       int64_t *len, int64_t *row0);
/* Bit masks of sites: accumulate Hessian/importance (want_h) and/or store
 * inputs (want_in) while running the current block on every batch up to
 * site `stop` (QF_RT_SITE_COUNT: the whole block, results written back into
 * c->x). */
qf_status qf__cap_pass(qf_capture *c, unsigned want_h, unsigned want_in,
                       qf_rt_site stop, qf_error *err);

/* The ABI 1.1 calib ops (calib_awq.c); impl is the capture. */
qf_status qf__cap_op_inputs(void *impl, const char *name, const float **x,
                            int64_t *tokens, int64_t *k, qf_error *err);
qf_status qf__cap_op_block_forward(void *impl, const char *name,
                                   const char *const *names,
                                   const DLTensor *weights, size_t n,
                                   float *out, qf_error *err);
qf_status qf__cap_op_part_forward(void *impl, const char *name, int part,
                                  const char *const *names,
                                  const DLTensor *weights, size_t n,
                                  float *out, qf_error *err);
qf_status qf__cap_op_block_shape(void *impl, const char *name,
                                 int64_t *tokens, int64_t *hidden,
                                 qf_error *err);

#endif /* QF_CAPTURE_INTERNAL_H */
