/*
 * The AWQ side of the CPU forward: unpacking GEMM zero words and repacking
 * a GEMM-layout module into the shared integer kernels' layout
 * (qf_intq_qmat, see plugins/common/intq/intq.h). The GEMM words hold the
 * integer of column 8c + m at bit 4·reverse_order[m]; they are unpacked to
 * one byte per weight ([k][n], the kernel's strided source), zero points
 * become float true zeros (no GPTQ v1 offset) and groups are contiguous
 * runs of g inputs, so the kernel's dequantization scale · (q − zero) is
 * exactly AWQ's (q − zero) · scale.
 */
#include <stdlib.h>

#include "cpu_kernels.h"
#include "qforge/plugin_util.h"

#define PLUGIN "awq"

/* Column 8c+m of a GEMM word sits at bit 4·reverse_order[m]. */
static const int shift_of_col[8] = {0, 16, 4, 20, 8, 24, 12, 28};

void qf_awq_cpu_unpack_zeros(const int32_t *qzeros, int64_t n, int64_t k,
                             int64_t g, int32_t *zeros) {
  const int64_t nc = n / 8, ng = k / g;
  for (int64_t gi = 0; gi < ng; gi++)
    for (int64_t c = 0; c < nc; c++) {
      const uint32_t w = (uint32_t)qzeros[gi * nc + c];
      for (int m = 0; m < 8; m++)
        zeros[gi * n + c * 8 + m] = (int32_t)((w >> shift_of_col[m]) & 15u);
    }
}

qf_status qf_awq_cpu_prepare(const qf_awq_cpu_weights *w, qf_intq_qmat **out,
                             qf_error *err) {
  *out = NULL;
  if (!w || !w->qweight || !w->zeros || !w->scales || w->n <= 0 || w->k <= 0 ||
      w->g <= 0 || w->n % 8 || w->k % w->g)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "prepare",
                   "an AWQ module needs GEMM words, zeros and scales, "
                   "outputs a multiple of 8 and inputs a multiple of the "
                   "group size");
  const int64_t n = w->n, k = w->k, nc = n / 8, ng = k / w->g;
  uint8_t *q = malloc((size_t)(k * n));
  float *z = malloc((size_t)(ng * n) * sizeof *z);
  if (!q || !z) {
    free(q);
    free(z);
    return qf_fail(err, QF_ERR_NO_MEMORY, PLUGIN, "prepare",
                   "cannot unpack a %lldx%lld module", (long long)n,
                   (long long)k);
  }
  for (int64_t kk = 0; kk < k; kk++) {
    const int32_t *row = w->qweight + kk * nc;
    uint8_t *dst = q + kk * n;
    for (int64_t c = 0; c < nc; c++) {
      const uint32_t word = (uint32_t)row[c];
      for (int m = 0; m < 8; m++)
        dst[c * 8 + m] = (uint8_t)((word >> shift_of_col[m]) & 15u);
    }
  }
  qf_status st = QF_OK;
  for (int64_t i = 0; i < ng * n && st == QF_OK; i++) {
    if (w->zeros[i] < 0 || w->zeros[i] > 15)
      st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, PLUGIN, "prepare",
                   "zero point %d of group %lld, output %lld is outside "
                   "0..15", (int)w->zeros[i], (long long)(i / n),
                   (long long)(i % n));
    z[i] = (float)w->zeros[i];
  }
  if (st == QF_OK) {
    const qf_intq_qmat_src src = {
        .bits = 4, .rows = n, .cols = k, .ngroups = ng, .q = q,
        .q_stride_k = n, .q_stride_n = 1, .g_idx = NULL, .scales = w->scales,
        .zeros = z, .bias = w->bias, .plugin = PLUGIN};
    st = qf_intq_qmat_new(&src, out, err);
  }
  free(q);
  free(z);
  return st;
}
