/*
 * gguf_types.c — the ggml tensor-type table the GGUF container needs.
 *
 * Purpose: for every ggml_type id (ggml.h, spec gguf_ggml.md §2.1) its name,
 * elements per block and bytes per block, so the reader can check shapes and
 * sizes and the writer can compute offsets, without depending on the
 * quantization library. Removed ids keep their historic name with block size 0
 * (ggml rejects them the same way). Also the GGUF metadata value-type names
 * and sizes.
 */
#include <ctype.h>
#include <string.h>

#include "gguf_file.h"

typedef struct qf__gguf_type_row {
  const char *name;
  int64_t block;
  size_t size;
} qf__gguf_type_row;

static const qf__gguf_type_row k_types[] = {
    [0] = {"f32", 1, 4},         [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},      [4] = {"q4_2", 0, 0},        [5] = {"q4_3", 0, 0},
    [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},      [8] = {"q8_0", 32, 34},
    [9] = {"q8_1", 32, 36},      [10] = {"q2_K", 256, 84},    [11] = {"q3_K", 256, 110},
    [12] = {"q4_K", 256, 144},   [13] = {"q5_K", 256, 176},   [14] = {"q6_K", 256, 210},
    [15] = {"q8_K", 256, 292},   [16] = {"iq2_xxs", 256, 66}, [17] = {"iq2_xs", 256, 74},
    [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},   [20] = {"iq4_nl", 32, 18},
    [21] = {"iq3_s", 256, 110},  [22] = {"iq2_s", 256, 82},   [23] = {"iq4_xs", 256, 136},
    [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},        [26] = {"i32", 1, 4},
    [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},        [29] = {"iq1_m", 256, 56},
    [30] = {"bf16", 1, 2},       [31] = {"q4_0_4_4", 0, 0},   [32] = {"q4_0_4_8", 0, 0},
    [33] = {"q4_0_8_8", 0, 0},   [34] = {"tq1_0", 256, 54},   [35] = {"tq2_0", 256, 66},
    [36] = {"iq4_nl_4_4", 0, 0}, [37] = {"iq4_nl_4_8", 0, 0}, [38] = {"iq4_nl_8_8", 0, 0},
    [39] = {"mxfp4", 32, 17},    [40] = {"nvfp4", 64, 36},    [41] = {"q1_0", 128, 18},
    [42] = {"q2_0", 64, 18},
};

#define K_NTYPES ((int32_t)(sizeof k_types / sizeof k_types[0]))

int32_t qf_gguf_ggml_type_count(void) { return K_NTYPES; }

int qf_gguf_ggml_type_info(int32_t type, const char **name, int64_t *block, size_t *type_size) {
  if (type < 0 || type >= K_NTYPES) {
    if (name) *name = NULL;
    if (block) *block = 0;
    if (type_size) *type_size = 0;
    return -1;
  }
  const qf__gguf_type_row *r = &k_types[type];
  if (name) *name = r->name;
  if (block) *block = r->block;
  if (type_size) *type_size = r->size;
  return r->block > 0 ? 1 : 0;
}

int32_t qf_gguf_ggml_type_from_name(const char *name) {
  if (!name) return -1;
  for (int32_t i = 0; i < K_NTYPES; i++) {
    const char *a = k_types[i].name, *b = name;
    if (k_types[i].block == 0) continue;
    while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b)) {
      a++;
      b++;
    }
    if (*a == '\0' && *b == '\0') return i;
  }
  return -1;
}

int qf_gguf_tensor_nbytes(int32_t type, const int64_t ne[QF_GGUF_MAX_DIMS], uint64_t *nbytes) {
  int64_t block;
  size_t size;
  if (qf_gguf_ggml_type_info(type, NULL, &block, &size) != 1) return -1;
  for (int i = 0; i < QF_GGUF_MAX_DIMS; i++)
    if (ne[i] < 0) return -1;
  if (ne[0] % block != 0) return -1;
  /* bytes = ne0/block * size * ne1 * ne2 * ne3; the element count and the
   * byte count must both stay representable as int64 (as ggml demands). */
  uint64_t elems = (uint64_t)ne[0], blocks = (uint64_t)(ne[0] / block);
  if (blocks > (uint64_t)INT64_MAX / size) return -1;
  uint64_t bytes = blocks * size;
  for (int i = 1; i < QF_GGUF_MAX_DIMS; i++) {
    uint64_t d = (uint64_t)ne[i];
    if (d != 0 && elems > (uint64_t)INT64_MAX / d) return -1;
    if (d != 0 && bytes > (uint64_t)INT64_MAX / d) return -1;
    elems *= d;
    bytes *= d;
  }
  if (nbytes) *nbytes = bytes;
  return 0;
}

static const char *const k_vtype_names[QF_GGUF_VT_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
static const size_t k_vtype_sizes[QF_GGUF_VT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *qf_gguf_vtype_name(int32_t vtype) {
  return vtype >= 0 && vtype < QF_GGUF_VT_COUNT ? k_vtype_names[vtype] : "?";
}

size_t qf_gguf_vtype_size(int32_t vtype) {
  return vtype >= 0 && vtype < QF_GGUF_VT_COUNT ? k_vtype_sizes[vtype] : 0;
}
