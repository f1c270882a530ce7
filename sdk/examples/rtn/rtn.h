/*
 * Round-to-nearest (RTN) per-group integer quantization — the algorithm and
 * storage layout of the SDK's example scheme, as pure functions.
 *
 * A weight W [N, K] (rows = output features) is cut into groups of
 * `group_size` consecutive columns per row (the last group may be shorter;
 * group_size -1 = one group per row). Per group:
 *   symmetric (absmax): zero = 2^(b-1), scale = absmax / (2^(b-1) - 1)
 *   asymmetric (min/max): scale = (max - min) / (2^b - 1),
 *                         zero = clamp(rne(-min / scale), 0, 2^b - 1)
 *   q = clamp(rne(x / scale) + zero, 0, 2^b - 1);   x' = scale · (q - zero)
 * Storage: q as unsigned codes, one per byte for 8 bits, two per byte for 4
 * bits (even column in the low nibble); scales float32 [N, G]; zeros uint8
 * [N, G] (asymmetric only).
 */
#ifndef QF_RTN_H
#define QF_RTN_H

#include <stddef.h>
#include <stdint.h>

typedef struct qf_rtn_params {
  int bits;       /* 4 or 8 */
  int group_size; /* > 0, or -1 for a whole row */
  int sym;        /* 1 = absmax, 0 = min/max with zero point */
} qf_rtn_params;

/* Groups per row. */
int64_t qf_rtn_groups(const qf_rtn_params *p, int64_t cols);
/* Bytes of packed codes per row. */
int64_t qf_rtn_row_bytes(const qf_rtn_params *p, int64_t cols);

/* Quantize rows × cols floats. codes: rows × row_bytes; scales, zeros:
 * rows × groups (zeros may be NULL when sym). All caller-owned. */
void qf_rtn_quantize(const qf_rtn_params *p, const float *w, int64_t rows,
                     int64_t cols, uint8_t *codes, float *scales,
                     uint8_t *zeros);
/* Dequantize one row into out[cols]. */
void qf_rtn_dequantize_row(const qf_rtn_params *p, const uint8_t *codes,
                           const float *scales, const uint8_t *zeros,
                           int64_t cols, float *out);

#endif /* QF_RTN_H */
