/*
 * GPTQ's names for the shared CPU kernels of group-quantized integer
 * weights (plugins/common/intq/intq.h, static library qf_intq_kernels,
 * also used by the AWQ plugin). The kernels, their layout and their bytes
 * are the shared library's; this header only keeps the qf_gptq_qmat*
 * spellings used by the GPTQ plugin, its tests and its benchmark, and
 * reports errors under the plugin name "gptq" unless the source names
 * another one.
 */
#ifndef QF_GPTQ_INT_GEMV_H
#define QF_GPTQ_INT_GEMV_H

#include "intq.h"

typedef qf_intq_isa qf_gptq_isa;
#define QF_GPTQ_ISA_AUTO QF_INTQ_ISA_AUTO
#define QF_GPTQ_ISA_SCALAR QF_INTQ_ISA_SCALAR
#define QF_GPTQ_ISA_AVX2 QF_INTQ_ISA_AVX2

typedef qf_intq_qmat_src qf_gptq_qmat_src;
typedef qf_intq_qmat qf_gptq_qmat;

/* qf_intq_qmat_new with errors reported as "gptq" by default. */
static inline qf_status qf_gptq_qmat_new(const qf_gptq_qmat_src *src,
                                         qf_gptq_qmat **out, qf_error *err) {
  if (src && !src->plugin) {
    qf_gptq_qmat_src named = *src;
    named.plugin = "gptq";
    return qf_intq_qmat_new(&named, out, err);
  }
  return qf_intq_qmat_new(src, out, err);
}

static inline void qf_gptq_qmat_free(qf_gptq_qmat *m) { qf_intq_qmat_free(m); }
static inline size_t qf_gptq_qmat_bytes(const qf_gptq_qmat *m) {
  return qf_intq_qmat_bytes(m);
}
static inline int64_t qf_gptq_qmat_rows(const qf_gptq_qmat *m) {
  return qf_intq_qmat_rows(m);
}
static inline int64_t qf_gptq_qmat_cols(const qf_gptq_qmat *m) {
  return qf_intq_qmat_cols(m);
}
static inline qf_status qf_gptq_qmat_forward(const qf_gptq_qmat *m,
                                             const float *x, int64_t m_rows,
                                             float *y, int n_threads,
                                             qf_gptq_isa isa, qf_error *err) {
  return qf_intq_qmat_forward(m, x, m_rows, y, n_threads, isa, err);
}
static inline void qf_gptq_qmat_dequant(const qf_gptq_qmat *m, float *w) {
  qf_intq_qmat_dequant(m, w);
}
static inline int qf_gptq_cpu_has_avx2(void) { return qf_intq_cpu_has_avx2(); }

#endif /* QF_GPTQ_INT_GEMV_H */
