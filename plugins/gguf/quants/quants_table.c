/* quants_table.c — the ggml type table and the public entry points of qf_gguf_quants.
 *
 * Purpose: one row per ggml_type id (name, block size, bytes per block, activation partner)
 * with the scalar and, where one exists, AVX2 quantize / dequantize kernels and the scalar
 * dot product; the name lookup; the size checks; and qf_gguf_quantize_rows /
 * qf_gguf_dequantize_rows, which validate their arguments and dispatch to the kernel of the
 * chosen instruction set. The AUTO choice is made once per process (AVX2 when the CPU has
 * AVX2+FMA+F16C and QF_FORCE_SCALAR is not set to a non-empty value other than "0").
 */
#include "quants_internal.h"
#include "dot_ref.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct {
    qf_gguf_type_info info;
    qf_gguf_quant_fn quant;          /* scalar quantizer, NULL if unsupported */
    qf_gguf_quant_fn quant_avx2;     /* optional SIMD quantizer */
    qf_gguf_dequant_fn dequant;      /* scalar dequantizer, NULL if unsupported */
    qf_gguf_dequant_fn dequant_avx2; /* optional SIMD dequantizer */
    qf_gguf_dot_fn dot;              /* scalar reference dot product, NULL if none */
} type_entry;

static void quantize_f32(const float *src, void *dst, int64_t nrows, int64_t ncols,
                         const float *imatrix) {
    (void)imatrix;
    memcpy(dst, src, (size_t)(nrows * ncols) * sizeof(float));
}

static void dequantize_f32(const void *src, float *dst, int64_t k) {
    memcpy(dst, src, (size_t)k * sizeof(float));
}

/* T(id, name, blck, bytes, quantized, vec_dot_type, needs_imatrix, can_q, can_dq,
 *   quant, quant_avx2, dequant, dequant_avx2, dot) */
#define T(ID, NAME, BLCK, SIZE, QUANT, VDT, IMAT, CQ, CDQ, Q, QA, DQ, DQA, DOT)              \
    [QF_GGUF_TYPE_##ID] = {.info = {.id = QF_GGUF_TYPE_##ID, .name = NAME, .blck_size = BLCK, \
                                    .type_size = SIZE, .is_quantized = QUANT,               \
                                    .can_quantize = CQ, .can_dequantize = CDQ,              \
                                    .needs_imatrix = IMAT, .vec_dot_type = VDT},            \
                           .quant = Q, .quant_avx2 = QA, .dequant = DQ, .dequant_avx2 = DQA, \
                           .dot = DOT}

/* Ids absent from this table (removed types) have blck_size 0 and are rejected. */
static const type_entry g_types[QF_GGUF_TYPE_COUNT] = {
    T(F32, "f32", 1, 4, false, QF_GGUF_TYPE_F32, false, true, true,
      quantize_f32, NULL,
      dequantize_f32, NULL,
      qf_gguf_dot_f32),
    T(F16, "f16", 1, 2, false, QF_GGUF_TYPE_F16, false, true, true,
      qf_gguf_quantize_f16, qf_gguf_quantize_f16_avx2,
      qf_gguf_dequantize_f16, qf_gguf_dequantize_f16_avx2,
      qf_gguf_dot_f16),
    T(Q4_0, "q4_0", 32, 18, true, QF_GGUF_TYPE_Q8_0, false, true, true,
      qf_gguf_quantize_q4_0, qf_gguf_quantize_q4_0_avx2,
      qf_gguf_dequantize_q4_0, qf_gguf_dequantize_q4_0_avx2,
      qf_gguf_dot_q4_0_q8_0),
    T(Q4_1, "q4_1", 32, 20, true, QF_GGUF_TYPE_Q8_1, false, true, true,
      qf_gguf_quantize_q4_1, qf_gguf_quantize_q4_1_avx2,
      qf_gguf_dequantize_q4_1, qf_gguf_dequantize_q4_1_avx2,
      qf_gguf_dot_q4_1_q8_1),
    T(Q5_0, "q5_0", 32, 22, true, QF_GGUF_TYPE_Q8_0, false, true, true,
      qf_gguf_quantize_q5_0, qf_gguf_quantize_q5_0_avx2,
      qf_gguf_dequantize_q5_0, qf_gguf_dequantize_q5_0_avx2,
      qf_gguf_dot_q5_0_q8_0),
    T(Q5_1, "q5_1", 32, 24, true, QF_GGUF_TYPE_Q8_1, false, true, true,
      qf_gguf_quantize_q5_1, qf_gguf_quantize_q5_1_avx2,
      qf_gguf_dequantize_q5_1, qf_gguf_dequantize_q5_1_avx2,
      qf_gguf_dot_q5_1_q8_1),
    T(Q8_0, "q8_0", 32, 34, true, QF_GGUF_TYPE_Q8_0, false, true, true,
      qf_gguf_quantize_q8_0, qf_gguf_quantize_q8_0_avx2,
      qf_gguf_dequantize_q8_0, qf_gguf_dequantize_q8_0_avx2,
      qf_gguf_dot_q8_0_q8_0),
    T(Q8_1, "q8_1", 32, 36, true, -1, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(Q2_K, "q2_K", 256, 84, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_q2_K, qf_gguf_quantize_q2_K_avx2,
      qf_gguf_dequantize_q2_K, qf_gguf_dequantize_q2_K_avx2,
      qf_gguf_dot_q2_K_q8_K),
    T(Q3_K, "q3_K", 256, 110, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_q3_K, qf_gguf_quantize_q3_K_avx2,
      qf_gguf_dequantize_q3_K, qf_gguf_dequantize_q3_K_avx2,
      qf_gguf_dot_q3_K_q8_K),
    T(Q4_K, "q4_K", 256, 144, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_q4_K, qf_gguf_quantize_q4_K_avx2,
      qf_gguf_dequantize_q4_K, qf_gguf_dequantize_q4_K_avx2,
      qf_gguf_dot_q4_K_q8_K),
    T(Q5_K, "q5_K", 256, 176, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_q5_K, qf_gguf_quantize_q5_K_avx2,
      qf_gguf_dequantize_q5_K, qf_gguf_dequantize_q5_K_avx2,
      qf_gguf_dot_q5_K_q8_K),
    T(Q6_K, "q6_K", 256, 210, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_q6_K, qf_gguf_quantize_q6_K_avx2,
      qf_gguf_dequantize_q6_K, qf_gguf_dequantize_q6_K_avx2,
      qf_gguf_dot_q6_K_q8_K),
    T(Q8_K, "q8_K", 256, 292, true, -1, false, false, true,
      NULL, NULL,
      qf_gguf_dequantize_q8_K, NULL,
      NULL),
    T(IQ2_XXS, "iq2_xxs", 256, 66, true, QF_GGUF_TYPE_Q8_K, true, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq2_xxs, NULL,
      qf_gguf_dot_iq2_xxs_q8_K),
    T(IQ2_XS, "iq2_xs", 256, 74, true, QF_GGUF_TYPE_Q8_K, true, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq2_xs, NULL,
      qf_gguf_dot_iq2_xs_q8_K),
    T(IQ3_XXS, "iq3_xxs", 256, 98, true, QF_GGUF_TYPE_Q8_K, false, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq3_xxs, NULL,
      qf_gguf_dot_iq3_xxs_q8_K),
    T(IQ1_S, "iq1_s", 256, 50, true, QF_GGUF_TYPE_Q8_K, true, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq1_s, NULL,
      qf_gguf_dot_iq1_s_q8_K),
    T(IQ4_NL, "iq4_nl", 32, 18, true, QF_GGUF_TYPE_Q8_0, false, true, true,
      qf_gguf_quantize_iq4_nl, qf_gguf_quantize_iq4_nl_avx2,
      qf_gguf_dequantize_iq4_nl, qf_gguf_dequantize_iq4_nl_avx2,
      qf_gguf_dot_iq4_nl_q8_0),
    T(IQ3_S, "iq3_s", 256, 110, true, QF_GGUF_TYPE_Q8_K, false, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq3_s, NULL,
      qf_gguf_dot_iq3_s_q8_K),
    T(IQ2_S, "iq2_s", 256, 82, true, QF_GGUF_TYPE_Q8_K, false, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq2_s, NULL,
      qf_gguf_dot_iq2_s_q8_K),
    T(IQ4_XS, "iq4_xs", 256, 136, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_iq4_xs, qf_gguf_quantize_iq4_xs_avx2,
      qf_gguf_dequantize_iq4_xs, qf_gguf_dequantize_iq4_xs_avx2,
      qf_gguf_dot_iq4_xs_q8_K),
    T(I8, "i8", 1, 1, false, -1, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(I16, "i16", 1, 2, false, -1, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(I32, "i32", 1, 4, false, -1, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(I64, "i64", 1, 8, false, -1, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(F64, "f64", 1, 8, false, -1, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(IQ1_M, "iq1_m", 256, 56, true, QF_GGUF_TYPE_Q8_K, false, false, true,
      NULL, NULL,
      qf_gguf_dequantize_iq1_m, NULL,
      qf_gguf_dot_iq1_m_q8_K),
    T(BF16, "bf16", 1, 2, false, QF_GGUF_TYPE_BF16, false, true, true,
      qf_gguf_quantize_bf16, qf_gguf_quantize_bf16_avx2,
      qf_gguf_dequantize_bf16, qf_gguf_dequantize_bf16_avx2,
      qf_gguf_dot_bf16),
    T(TQ1_0, "tq1_0", 256, 54, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_tq1_0, NULL,
      qf_gguf_dequantize_tq1_0, NULL,
      qf_gguf_dot_tq1_0_q8_K),
    T(TQ2_0, "tq2_0", 256, 66, true, QF_GGUF_TYPE_Q8_K, false, true, true,
      qf_gguf_quantize_tq2_0, NULL,
      qf_gguf_dequantize_tq2_0, NULL,
      qf_gguf_dot_tq2_0_q8_K),
    T(MXFP4, "mxfp4", 32, 17, true, QF_GGUF_TYPE_Q8_0, false, true, true,
      qf_gguf_quantize_mxfp4, qf_gguf_quantize_mxfp4_avx2,
      qf_gguf_dequantize_mxfp4, qf_gguf_dequantize_mxfp4_avx2,
      qf_gguf_dot_mxfp4_q8_0),
    T(NVFP4, "nvfp4", 64, 36, true, QF_GGUF_TYPE_Q8_0, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(Q1_0, "q1_0", 128, 18, true, QF_GGUF_TYPE_Q8_0, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
    T(Q2_0, "q2_0", 64, 18, true, QF_GGUF_TYPE_Q8_0, false, false, false,
      NULL, NULL,
      NULL, NULL,
      NULL),
};
#undef T

static atomic_int g_isa = 0; /* 0 = undecided, else QF_GGUF_ISA_SCALAR / QF_GGUF_ISA_AVX2 */

static const type_entry *entry(int type) {
    if (type < 0 || type >= QF_GGUF_TYPE_COUNT) return NULL;
    const type_entry *e = &g_types[type];
    return e->info.blck_size ? e : NULL;
}

static int resolve_isa(int isa) {
    if (isa != QF_GGUF_ISA_AUTO) return isa;
    int v = atomic_load_explicit(&g_isa, memory_order_relaxed);
    if (!v) {
        const char *force = getenv("QF_FORCE_SCALAR");
        const bool forced = force && force[0] && strcmp(force, "0") != 0;
        v = (!forced && qf_gguf_cpu_has_avx2()) ? QF_GGUF_ISA_AVX2 : QF_GGUF_ISA_SCALAR;
        atomic_store_explicit(&g_isa, v, memory_order_relaxed);
    }
    return v;
}

/* ---- public: type table -------------------------------------------------------------------- */

const qf_gguf_type_info *qf_gguf_type_get(int type) {
    const type_entry *e = entry(type);
    return e ? &e->info : NULL;
}

static int ascii_lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

int qf_gguf_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < QF_GGUF_TYPE_COUNT; ++t) {
        const type_entry *e = entry(t);
        if (!e) continue;
        const char *a = e->info.name, *b = name;
        while (*a && *b && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) {
            ++a;
            ++b;
        }
        if (!*a && !*b) return t;
    }
    return -1;
}

const char *qf_gguf_type_name(int type) {
    const type_entry *e = entry(type);
    return e ? e->info.name : NULL;
}

int64_t qf_gguf_blck_size(int type) {
    const type_entry *e = entry(type);
    return e ? e->info.blck_size : 0;
}

size_t qf_gguf_type_size(int type) {
    const type_entry *e = entry(type);
    return e ? e->info.type_size : 0;
}

size_t qf_gguf_row_size(int type, int64_t ncols) {
    const type_entry *e = entry(type);
    if (!e || ncols < 0 || ncols % e->info.blck_size) return 0;
    return (size_t)(ncols / e->info.blck_size) * e->info.type_size;
}

bool qf_gguf_can_quantize(int type) {
    const type_entry *e = entry(type);
    return e && e->info.can_quantize;
}

bool qf_gguf_can_dequantize(int type) {
    const type_entry *e = entry(type);
    return e && e->info.can_dequantize;
}

bool qf_gguf_isa_supported(int isa) {
    if (isa == QF_GGUF_ISA_AUTO || isa == QF_GGUF_ISA_SCALAR) return true;
    if (isa == QF_GGUF_ISA_AVX2) return qf_gguf_cpu_has_avx2();
    return false;
}

const char *qf_gguf_isa_name(void) {
    return resolve_isa(QF_GGUF_ISA_AUTO) == QF_GGUF_ISA_AVX2 ? "avx2" : "scalar";
}

/* ---- public: quantize / dequantize ----------------------------------------------------------- */

static bool sizes_ok(const type_entry *e, int64_t nrows, int64_t ncols) {
    if (nrows < 0 || ncols < 0 || ncols % e->info.blck_size) return false;
    /* refuse element counts whose byte sizes could overflow */
    if (ncols > 0 && nrows > INT64_MAX / 8 / ncols) return false;
    return true;
}

size_t qf_gguf_quantize_rows_isa(int type, int isa, const float *src, void *dst, int64_t nrows,
                                 int64_t ncols, const float *imatrix) {
    const type_entry *e = entry(type);
    if (!e || !e->quant || !sizes_ok(e, nrows, ncols)) return 0;
    if (e->info.needs_imatrix && !imatrix) return 0;
    isa = resolve_isa(isa);
    if (isa == QF_GGUF_ISA_AVX2 && !qf_gguf_cpu_has_avx2()) return 0;
    if (isa != QF_GGUF_ISA_SCALAR && isa != QF_GGUF_ISA_AVX2) return 0;
    if (nrows == 0 || ncols == 0) return 0;
    if (!src || !dst) return 0;
    qf_gguf_quant_fn fn = (isa == QF_GGUF_ISA_AVX2 && e->quant_avx2) ? e->quant_avx2 : e->quant;
    fn(src, dst, nrows, ncols, imatrix);
    return (size_t)nrows * qf_gguf_row_size(type, ncols);
}

size_t qf_gguf_quantize_rows(int type, const float *src, void *dst, int64_t nrows, int64_t ncols,
                             const float *imatrix) {
    return qf_gguf_quantize_rows_isa(type, QF_GGUF_ISA_AUTO, src, dst, nrows, ncols, imatrix);
}

int qf_gguf_dequantize_rows_isa(int type, int isa, const void *src, float *dst, int64_t nrows,
                                int64_t ncols) {
    const type_entry *e = entry(type);
    if (!e || !e->dequant || !sizes_ok(e, nrows, ncols)) return -1;
    isa = resolve_isa(isa);
    if (isa == QF_GGUF_ISA_AVX2 && !qf_gguf_cpu_has_avx2()) return -1;
    if (isa != QF_GGUF_ISA_SCALAR && isa != QF_GGUF_ISA_AVX2) return -1;
    if (nrows == 0 || ncols == 0) return 0;
    if (!src || !dst) return -1;
    qf_gguf_dequant_fn fn =
        (isa == QF_GGUF_ISA_AVX2 && e->dequant_avx2) ? e->dequant_avx2 : e->dequant;
    fn(src, dst, nrows * ncols);
    return 0;
}

int qf_gguf_dequantize_rows(int type, const void *src, float *dst, int64_t nrows, int64_t ncols) {
    return qf_gguf_dequantize_rows_isa(type, QF_GGUF_ISA_AUTO, src, dst, nrows, ncols);
}

/* ---- public: dot products -------------------------------------------------------------------- */

int qf_gguf_vec_dot(int type, int64_t n, const void *x, const void *y, float *out) {
    const type_entry *e = entry(type);
    if (!e || !e->dot || !out || n < 0 || !x || !y) return -1;
    const int vdt = e->info.vec_dot_type;
    const type_entry *ev = entry(vdt);
    if (!ev || n % e->info.blck_size || n % ev->info.blck_size) return -1;
    if (n > INT32_MAX) return -1;
    *out = e->dot((int)n, x, y);
    return 0;
}
