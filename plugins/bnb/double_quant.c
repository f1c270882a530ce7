/*
 * Double (nested) quantization of the 4-bit absmax vector (spec section 3):
 * the float32 offset is the mean of absmax (summed in double, rounded once
 * to float32, the value bitsandbytes stores in the checkpoint), the centred
 * absmax is quantized 8-bit blockwise (blocksize 256) with the signed
 * dynamic map, and de-nesting reproduces the two float32 roundings of
 * dequantize_blockwise followed by torch's float32 add. Built with
 * -ffp-contract=off so the de-nesting never fuses.
 */
#include <stdlib.h>

#include "bnb.h"

void qf_bnb_double_quant(const float *absmax, int64_t nb, uint8_t *codes,
                         float *nested_absmax, float *offset) {
  double sum = 0.0;
  for (int64_t b = 0; b < nb; b++) sum += (double)absmax[b];
  float off = nb > 0 ? (float)(sum / (double)nb) : 0.0f;
  *offset = off;
  const float *map = qf_bnb_dynamic_map();
  /* centre block by block to avoid a whole temporary copy */
  float chunk[QF_BNB_NESTED_BLOCKSIZE];
  for (int64_t c0 = 0; c0 < nb; c0 += QF_BNB_NESTED_BLOCKSIZE) {
    int64_t len = nb - c0 < QF_BNB_NESTED_BLOCKSIZE ? nb - c0
                                                     : QF_BNB_NESTED_BLOCKSIZE;
    for (int64_t j = 0; j < len; j++) chunk[j] = absmax[c0 + j] - off;
    qf_bnb_quantize_blockwise8(map, chunk, len, QF_BNB_NESTED_BLOCKSIZE,
                               codes + c0,
                               &nested_absmax[c0 / QF_BNB_NESTED_BLOCKSIZE]);
  }
}

void qf_bnb_double_dequant(const float map[256], const uint8_t *codes,
                           const float *nested_absmax, int64_t nested_bs,
                           float offset, int64_t nb, float *absmax) {
  for (int64_t b = 0; b < nb; b++) {
    float v = map[codes[b]] * nested_absmax[b / nested_bs];
    absmax[b] = v + offset;
  }
}
