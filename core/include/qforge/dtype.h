/*
 * Element types of checkpoints (safetensors names) and their mapping to
 * DLPack. f16/bf16 scalar conversions live in qforge/half.h (shared with
 * plugins); this header adds bulk conversion of whole buffers.
 */
#ifndef QFORGE_DTYPE_H
#define QFORGE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <dlpack/dlpack.h>
#include "qforge/half.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

typedef enum qf_dtype {
  QF_DTYPE_INVALID = 0,
  QF_DTYPE_F64, QF_DTYPE_F32, QF_DTYPE_F16, QF_DTYPE_BF16,
  QF_DTYPE_I64, QF_DTYPE_I32, QF_DTYPE_I16, QF_DTYPE_I8,
  QF_DTYPE_U64, QF_DTYPE_U32, QF_DTYPE_U16, QF_DTYPE_U8,
  QF_DTYPE_BOOL, QF_DTYPE_F8_E4M3, QF_DTYPE_F8_E5M2,
  QF_DTYPE_COUNT
} qf_dtype;

/* safetensors spelling ("F32", "BF16", "U8", …); "?" for invalid. */
QF_API const char *qf_dtype_name(qf_dtype t);
/* Parse a safetensors dtype name (exact, case-sensitive); INVALID if unknown. */
QF_API qf_dtype qf_dtype_from_name(const char *name);
/* Bytes per element (0 for invalid). */
QF_API size_t qf_dtype_size(qf_dtype t);
/* To/from DLPack. to_dl returns 0 on success, -1 if DLPack 0.6 cannot
 * express the type (bool and fp8 map to kDLUInt 8). */
QF_API int qf_dtype_to_dl(qf_dtype t, DLDataType *out);
QF_API qf_dtype qf_dtype_from_dl(DLDataType t);

/* Convert n elements between F32/F16/BF16 (any pair, RNE on narrowing).
 * Returns 0, or -1 if a type is not one of those three. */
QF_API int qf_convert(void *dst, qf_dtype dst_t, const void *src,
                      qf_dtype src_t, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_DTYPE_H */
