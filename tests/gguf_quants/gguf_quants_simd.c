/* gguf_quants_simd.c — the AVX2 kernels must produce the scalar reference's exact bytes.
 *
 * Purpose: fuzz qf_gguf_quants' SIMD paths against its scalar reference on random inputs of
 * several distributions (gaussian, heavy-tailed with spikes, per-block magnitudes spanning
 * 1e-6..1e4, small integers with exact ties, sparse blocks with zeros and repeated values,
 * subnormals, and NaN/Inf sprinkled in) for every type that has a SIMD kernel: quantized
 * bytes must be identical (with and without an imatrix) and dequantized floats identical bit
 * for bit. On a CPU without AVX2 the tests pass vacuously and say so.
 */
#include "gq_common.h"

enum { DIST_GAUSS, DIST_HEAVY, DIST_SCALES, DIST_INTS, DIST_SPARSE, DIST_TINY, DIST_NONFINITE,
       DIST_COUNT };
static const char *dist_name[DIST_COUNT] = {"gauss", "heavy", "scales", "ints",
                                            "sparse", "tiny", "nonfinite"};

static void fill(float *x, int64_t n, int dist, gq_rng *rng) {
    for (int64_t i = 0; i < n; ++i) {
        float v = gq_gauss(rng);
        switch (dist) {
        case DIST_GAUSS: v *= 0.02f; break;
        case DIST_HEAVY: v = v * 0.01f * (gq_uniform(rng) < 0.01f ? 40.f : 1.f) / (0.2f + gq_uniform(rng)); break;
        case DIST_SCALES: v *= powf(10.f, (float)((i / 32) % 11) - 6.f); break;
        case DIST_INTS: v = (float)((int)(gq_uniform(rng) * 17.f) - 8) * 0.5f; break;
        case DIST_SPARSE: {
            const float u = gq_uniform(rng);
            v = u < 0.5f ? 0.f : (u < 0.75f ? 0.125f : v);
            if ((i / 256) % 3 == 0) v = 0.f;
            if ((i / 32) % 7 == 1) v = 1.0f;
            break;
        }
        case DIST_TINY: v *= 1e-39f; break;
        case DIST_NONFINITE: {
            const float u = gq_uniform(rng);
            if (u < 0.002f) v = NAN;
            else if (u < 0.004f) v = INFINITY;
            else if (u < 0.006f) v = -INFINITY;
            else if (u < 0.008f) v = 70000.f;
            break;
        }
        }
        x[i] = v;
    }
}

/* Same bits, except that any two NaNs match: which NaN payload / sign a NaN operand
 * propagates depends on the compiler's operand order for commutative float ops. */
static int same_float_bits(uint32_t a, uint32_t b) {
    const int nan_a = (a & 0x7fffffffu) > 0x7f800000u, nan_b = (b & 0x7fffffffu) > 0x7f800000u;
    return a == b || (nan_a && nan_b);
}

static void compare_type(int type, int with_imatrix) {
    if (!qf_gguf_isa_supported(QF_GGUF_ISA_AVX2)) {
        cr_log_warn("AVX2 not available: SIMD comparison skipped for %s", qf_gguf_type_name(type));
        return;
    }
    const int64_t nrows = 4, ncols = 2048;
    const size_t qbytes = (size_t)nrows * qf_gguf_row_size(type, ncols);
    float *x = malloc((size_t)(nrows * ncols) * sizeof(float));
    float *imat = malloc((size_t)ncols * sizeof(float));
    uint8_t *qs = malloc(qbytes), *qv = malloc(qbytes);
    float *ds = malloc((size_t)(nrows * ncols) * sizeof(float));
    float *dv = malloc((size_t)(nrows * ncols) * sizeof(float));
    gq_rng rng = {0x9E3779B97F4A7C15ULL ^ (uint64_t)type};
    for (int iter = 0; iter < 6; ++iter) {
        for (int dist = 0; dist < DIST_COUNT; ++dist) {
            fill(x, nrows * ncols, dist, &rng);
            for (int64_t c = 0; c < ncols; ++c) imat[c] = 0.1f + gq_uniform(&rng) * gq_uniform(&rng) * 10.f;
            const float *im = with_imatrix ? imat : NULL;
            const size_t a = qf_gguf_quantize_rows_isa(type, QF_GGUF_ISA_SCALAR, x, qs, nrows, ncols, im);
            const size_t b = qf_gguf_quantize_rows_isa(type, QF_GGUF_ISA_AVX2, x, qv, nrows, ncols, im);
            cr_assert_eq(a, qbytes);
            cr_assert_eq(b, qbytes);
            char what[128];
            snprintf(what, sizeof what, "%s %s iter %d%s", qf_gguf_type_name(type), dist_name[dist],
                     iter, with_imatrix ? " imatrix" : "");
            if (!gq_expect_same_blocks(what, type, ncols, qs, qv, qbytes)) goto done;
            cr_assert_eq(qf_gguf_dequantize_rows_isa(type, QF_GGUF_ISA_SCALAR, qs, ds, nrows, ncols), 0);
            cr_assert_eq(qf_gguf_dequantize_rows_isa(type, QF_GGUF_ISA_AVX2, qs, dv, nrows, ncols), 0);
            if (memcmp(ds, dv, (size_t)(nrows * ncols) * sizeof(float)) != 0) {
                for (int64_t i = 0; i < nrows * ncols; ++i) {
                    uint32_t us, uv;
                    memcpy(&us, &ds[i], 4);
                    memcpy(&uv, &dv[i], 4);
                    if (!same_float_bits(us, uv)) {
                        cr_expect_fail("%s dequantize: element %lld scalar 0x%08x avx2 0x%08x", what,
                                       (long long)i, us, uv);
                        goto done;
                    }
                }
            }
        }
    }
done:
    free(x);
    free(imat);
    free(qs);
    free(qv);
    free(ds);
    free(dv);
}

#define SIMD_TEST(T)                                                                          \
    Test(gguf_simd, T, .timeout = 120) { compare_type(qf_gguf_type_from_name(#T), 0); }       \
    Test(gguf_simd, T##_imatrix, .timeout = 120) { compare_type(qf_gguf_type_from_name(#T), 1); }

SIMD_TEST(f16)
SIMD_TEST(bf16)
SIMD_TEST(q4_0)
SIMD_TEST(q8_0)
SIMD_TEST(q4_1)
SIMD_TEST(q5_0)
SIMD_TEST(q5_1)
SIMD_TEST(mxfp4)
SIMD_TEST(tq1_0)
SIMD_TEST(tq2_0)
SIMD_TEST(q2_K)
SIMD_TEST(q3_K)
SIMD_TEST(q5_K)
SIMD_TEST(iq4_nl)
SIMD_TEST(iq4_xs)
SIMD_TEST(q4_K)
SIMD_TEST(q6_K)

/* Odd shapes (one block per row, many short rows, IQ4_NL tails shorter than a vector),
 * with and without an imatrix, for every type that has a SIMD quantizer. */
Test(gguf_simd, shapes) {
    if (!qf_gguf_isa_supported(QF_GGUF_ISA_AVX2)) return;
    static const int types[] = {QF_GGUF_TYPE_F16,  QF_GGUF_TYPE_BF16, QF_GGUF_TYPE_Q4_0,
                                QF_GGUF_TYPE_Q4_1, QF_GGUF_TYPE_Q5_0, QF_GGUF_TYPE_Q5_1,
                                QF_GGUF_TYPE_MXFP4,
                                QF_GGUF_TYPE_Q8_0, QF_GGUF_TYPE_Q2_K, QF_GGUF_TYPE_Q3_K,
                                QF_GGUF_TYPE_Q4_K, QF_GGUF_TYPE_Q5_K, QF_GGUF_TYPE_Q6_K,
                                QF_GGUF_TYPE_IQ4_NL, QF_GGUF_TYPE_IQ4_XS};
    gq_rng rng = {12345};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
        const int type = types[t];
        const int64_t blck = qf_gguf_blck_size(type) > 1 ? qf_gguf_blck_size(type) : 8;
        const int64_t shapes[][2] = {{1, blck}, {7, blck}, {3, 3 * blck}, {2, 11 * blck}, {1, 1}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
            const int64_t nr = shapes[s][0], nc = shapes[s][1];
            if (nc % qf_gguf_blck_size(type)) continue;
            const size_t qb = (size_t)nr * qf_gguf_row_size(type, nc);
            float *x = malloc((size_t)(nr * nc) * sizeof(float));
            float *im = malloc((size_t)nc * sizeof(float));
            uint8_t *a = malloc(qb), *b = malloc(qb);
            for (int with_im = 0; with_im < 2; ++with_im) {
                fill(x, nr * nc, (int)(s % DIST_COUNT), &rng);
                for (int64_t c = 0; c < nc; ++c) im[c] = gq_uniform(&rng) * 4.f;
                const float *imp = with_im ? im : NULL;
                cr_assert_eq(qf_gguf_quantize_rows_isa(type, QF_GGUF_ISA_SCALAR, x, a, nr, nc, imp), qb);
                cr_assert_eq(qf_gguf_quantize_rows_isa(type, QF_GGUF_ISA_AVX2, x, b, nr, nc, imp), qb);
                char what[96];
                snprintf(what, sizeof what, "%s %lldx%lld%s", qf_gguf_type_name(type), (long long)nr,
                         (long long)nc, with_im ? " imatrix" : "");
                gq_expect_same_blocks(what, type, nc, a, b, qb);
            }
            free(x);
            free(im);
            free(a);
            free(b);
        }
    }
}

/* Every one of the 65536 fp16 and bf16 bit patterns decodes identically on both paths, and
 * the fp32 -> fp16 / bf16 conversions agree on special and boundary values. */
Test(gguf_simd, half_exhaustive) {
    if (!qf_gguf_isa_supported(QF_GGUF_ISA_AVX2)) return;
    uint16_t *h = malloc(65536 * sizeof(uint16_t));
    uint32_t *a = malloc(65536 * sizeof(float)), *b = malloc(65536 * sizeof(float));
    for (uint32_t i = 0; i < 65536; ++i) h[i] = (uint16_t)i;
    static const int types[] = {QF_GGUF_TYPE_F16, QF_GGUF_TYPE_BF16};
    for (int t = 0; t < 2; ++t) {
        cr_assert_eq(qf_gguf_dequantize_rows_isa(types[t], QF_GGUF_ISA_SCALAR, h, (float *)a, 1, 65536), 0);
        cr_assert_eq(qf_gguf_dequantize_rows_isa(types[t], QF_GGUF_ISA_AVX2, h, (float *)b, 1, 65536), 0);
        for (uint32_t i = 0; i < 65536; ++i) {
            if (a[i] != b[i]) {
                cr_expect_fail("%s 0x%04x: scalar 0x%08x avx2 0x%08x", qf_gguf_type_name(types[t]), i, a[i], b[i]);
                break;
            }
        }
    }
    /* fp32 patterns around every fp16 / bf16 rounding boundary plus specials */
    const int64_t n = 1 << 16;
    uint32_t *f = malloc((size_t)n * 4);
    gq_rng rng = {99};
    for (int64_t i = 0; i < n; ++i) {
        uint32_t u = (uint32_t)gq_next(&rng);
        switch (i % 8) {
        case 0: u = (u & 0xFFFFE000u) | 0x00001000u; break;  /* fp16 ties */
        case 1: u = (u & 0xFFFF0000u) | 0x00008000u; break;  /* bf16 ties */
        case 2: u = (u & 0x80000000u) | (0x33000000u + (u & 0x01FFFFFFu)); break; /* fp16 subnormal range */
        case 3: u = (u & 0x80000000u) | (0x477FE000u + (u & 0x3FFFu)); break; /* near 65504 */
        case 4: u = (u & 0x807FFFFFu) | 0x7F800000u; break; /* inf / NaN payloads */
        default: break;
        }
        f[i] = u;
    }
    for (int t = 0; t < 2; ++t) {
        cr_assert_gt(qf_gguf_quantize_rows_isa(types[t], QF_GGUF_ISA_SCALAR, (float *)f, h, 1, n, NULL), 0);
        uint16_t *h2 = malloc((size_t)n * 2);
        cr_assert_gt(qf_gguf_quantize_rows_isa(types[t], QF_GGUF_ISA_AVX2, (float *)f, h2, 1, n, NULL), 0);
        gq_expect_same_blocks(qf_gguf_type_name(types[t]), types[t], n, (uint8_t *)h, (uint8_t *)h2, (size_t)n * 2);
        free(h2);
    }
    free(f);
    free(h);
    free(a);
    free(b);
}

/* Arbitrary bytes (every scale, level and fp16 pattern, NaN and Inf scales included) must
 * dequantize to the same bits on both paths, for every dequantizable type. */
Test(gguf_simd, dequantize_random_bytes) {
    if (!qf_gguf_isa_supported(QF_GGUF_ISA_AVX2)) return;
    const int64_t nr = 3, nc = 1024;
    uint8_t *q = malloc(8 * (size_t)(nr * nc));
    uint32_t *a = malloc(sizeof(float) * (size_t)(nr * nc)), *b = malloc(sizeof(float) * (size_t)(nr * nc));
    gq_rng rng = {2718281828ULL};
    for (int t = 0; t < QF_GGUF_TYPE_COUNT; ++t) {
        if (!qf_gguf_can_dequantize(t)) continue;
        const size_t nbytes = (size_t)nr * qf_gguf_row_size(t, nc);
        for (int iter = 0; iter < 8; ++iter) {
            for (size_t i = 0; i < nbytes; ++i) q[i] = (uint8_t)gq_next(&rng);
            cr_assert_eq(qf_gguf_dequantize_rows_isa(t, QF_GGUF_ISA_SCALAR, q, (float *)a, nr, nc), 0);
            cr_assert_eq(qf_gguf_dequantize_rows_isa(t, QF_GGUF_ISA_AVX2, q, (float *)b, nr, nc), 0);
            for (int64_t i = 0; i < nr * nc; ++i) {
                if (!same_float_bits(a[i], b[i])) {
                    cr_expect_fail("%s random bytes: element %lld scalar 0x%08x avx2 0x%08x",
                                   qf_gguf_type_name(t), (long long)i, a[i], b[i]);
                    iter = 8;
                    break;
                }
            }
        }
    }
    free(q);
    free(a);
    free(b);
}
