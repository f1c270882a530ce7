/* gguf_quants_api.c — the type table, argument checking and dot products of qf_gguf_quants.
 *
 * Purpose: check the ggml type table (ids, names in ggml spelling, case-insensitive lookup,
 * block sizes and bytes per block against ggml's type_traits, removed ids rejected), row
 * sizes, the refusal of bad arguments (unknown type, ncols not a multiple of the block,
 * imatrix-requiring types without one, dequantize-only types), the activation quantizers, and
 * that every reference dot product agrees with a float dot product of the dequantized weight
 * and dequantized activation rows.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "gq_common.h"

Test(gguf_types, table_matches_ggml) {
    static const struct { int id; const char *name; int64_t blck; size_t size; } t[] = {
        {0, "f32", 1, 4},          {1, "f16", 1, 2},        {2, "q4_0", 32, 18},
        {3, "q4_1", 32, 20},       {6, "q5_0", 32, 22},     {7, "q5_1", 32, 24},
        {8, "q8_0", 32, 34},       {9, "q8_1", 32, 36},     {10, "q2_K", 256, 84},
        {11, "q3_K", 256, 110},    {12, "q4_K", 256, 144},  {13, "q5_K", 256, 176},
        {14, "q6_K", 256, 210},    {15, "q8_K", 256, 292},  {16, "iq2_xxs", 256, 66},
        {17, "iq2_xs", 256, 74},   {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},
        {20, "iq4_nl", 32, 18},    {21, "iq3_s", 256, 110}, {22, "iq2_s", 256, 82},
        {23, "iq4_xs", 256, 136},  {24, "i8", 1, 1},        {25, "i16", 1, 2},
        {26, "i32", 1, 4},         {27, "i64", 1, 8},       {28, "f64", 1, 8},
        {29, "iq1_m", 256, 56},    {30, "bf16", 1, 2},      {34, "tq1_0", 256, 54},
        {35, "tq2_0", 256, 66},    {39, "mxfp4", 32, 17},   {40, "nvfp4", 64, 36},
        {41, "q1_0", 128, 18},     {42, "q2_0", 64, 18},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; ++i) {
        const qf_gguf_type_info *info = qf_gguf_type_get(t[i].id);
        cr_assert_not_null(info, "type %d missing", t[i].id);
        cr_expect_str_eq(info->name, t[i].name);
        cr_expect_eq(info->blck_size, t[i].blck, "%s block size", t[i].name);
        cr_expect_eq(info->type_size, t[i].size, "%s type size", t[i].name);
        cr_expect_eq(qf_gguf_type_from_name(t[i].name), t[i].id);
    }
    static const int removed[] = {4, 5, 31, 32, 33, 36, 37, 38, 43, -1, 1000};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; ++i) {
        cr_expect_null(qf_gguf_type_get(removed[i]), "id %d should be rejected", removed[i]);
        cr_expect_eq(qf_gguf_blck_size(removed[i]), 0);
        cr_expect_eq(qf_gguf_row_size(removed[i], 256), 0);
    }
}

Test(gguf_types, name_lookup) {
    cr_expect_eq(qf_gguf_type_from_name("Q4_K"), QF_GGUF_TYPE_Q4_K);
    cr_expect_eq(qf_gguf_type_from_name("q4_k"), QF_GGUF_TYPE_Q4_K);
    cr_expect_eq(qf_gguf_type_from_name("IQ4_NL"), QF_GGUF_TYPE_IQ4_NL);
    cr_expect_eq(qf_gguf_type_from_name("MXFP4"), QF_GGUF_TYPE_MXFP4);
    cr_expect_eq(qf_gguf_type_from_name("BF16"), QF_GGUF_TYPE_BF16);
    cr_expect_eq(qf_gguf_type_from_name("q4_k_m"), -1);
    cr_expect_eq(qf_gguf_type_from_name("q4"), -1);
    cr_expect_eq(qf_gguf_type_from_name(""), -1);
    cr_expect_eq(qf_gguf_type_from_name(NULL), -1);
    cr_expect_str_eq(qf_gguf_type_name(QF_GGUF_TYPE_Q6_K), "q6_K");
}

Test(gguf_types, row_size) {
    cr_expect_eq(qf_gguf_row_size(QF_GGUF_TYPE_Q4_0, 4096), 4096 / 32 * 18);
    cr_expect_eq(qf_gguf_row_size(QF_GGUF_TYPE_Q4_K, 4096), 16 * 144);
    cr_expect_eq(qf_gguf_row_size(QF_GGUF_TYPE_Q4_K, 100), 0);
    cr_expect_eq(qf_gguf_row_size(QF_GGUF_TYPE_F32, 3), 12);
    cr_expect_eq(qf_gguf_row_size(QF_GGUF_TYPE_BF16, 0), 0);
    cr_expect_eq(qf_gguf_row_size(QF_GGUF_TYPE_Q8_0, -32), 0);
}

Test(gguf_types, capabilities) {
    static const int quant[] = {0, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23, 30, 34, 35, 39};
    for (size_t i = 0; i < sizeof quant / sizeof quant[0]; ++i) {
        cr_expect(qf_gguf_can_quantize(quant[i]), "%s should quantize", qf_gguf_type_name(quant[i]));
        cr_expect(qf_gguf_can_dequantize(quant[i]));
    }
    static const int deq_only[] = {16, 17, 18, 19, 21, 22, 29};
    for (size_t i = 0; i < sizeof deq_only / sizeof deq_only[0]; ++i) {
        cr_expect_not(qf_gguf_can_quantize(deq_only[i]));
        cr_expect(qf_gguf_can_dequantize(deq_only[i]));
    }
    cr_expect(qf_gguf_type_get(QF_GGUF_TYPE_IQ2_XXS)->needs_imatrix);
    cr_expect_not(qf_gguf_type_get(QF_GGUF_TYPE_Q4_K)->needs_imatrix);
    cr_expect_eq(qf_gguf_type_get(QF_GGUF_TYPE_Q4_1)->vec_dot_type, QF_GGUF_TYPE_Q8_1);
    cr_expect_eq(qf_gguf_type_get(QF_GGUF_TYPE_IQ4_NL)->vec_dot_type, QF_GGUF_TYPE_Q8_0);
    cr_expect_eq(qf_gguf_type_get(QF_GGUF_TYPE_TQ2_0)->vec_dot_type, QF_GGUF_TYPE_Q8_K);
}

Test(gguf_types, bad_arguments) {
    float x[512] = {0};
    uint8_t q[2048];
    float y[512];
    cr_expect_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_K, x, q, 1, 100, NULL), 0);
    cr_expect_eq(qf_gguf_quantize_rows(4, x, q, 1, 32, NULL), 0);
    cr_expect_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_IQ2_S, x, q, 1, 256, NULL), 0);
    cr_expect_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_0, x, q, -1, 32, NULL), 0);
    cr_expect_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_0, NULL, q, 1, 32, NULL), 0);
    cr_expect_eq(qf_gguf_quantize_rows_isa(QF_GGUF_TYPE_Q4_0, 99, x, q, 1, 32, NULL), 0);
    cr_expect_eq(qf_gguf_dequantize_rows(QF_GGUF_TYPE_Q4_0, q, y, 1, 33), -1);
    cr_expect_eq(qf_gguf_dequantize_rows(QF_GGUF_TYPE_Q8_1, q, y, 1, 32), -1);
    cr_expect_eq(qf_gguf_dequantize_rows(QF_GGUF_TYPE_I32, q, y, 1, 32), -1);
    cr_expect_eq(qf_gguf_quantize_rows(QF_GGUF_TYPE_Q4_0, x, q, 2, 256, NULL), 2 * 8 * 18);
    float out;
    cr_expect_eq(qf_gguf_vec_dot(QF_GGUF_TYPE_Q4_K, 100, q, q, &out), -1);
    cr_expect_eq(qf_gguf_vec_dot(QF_GGUF_TYPE_Q8_K, 256, q, q, &out), -1);
}

/* QF_FORCE_SCALAR=1 makes AUTO resolve to the scalar kernels (Criterion runs every test in
 * its own process, so the once-per-process choice has not been made yet). */
Test(gguf_types, force_scalar_env) {
    setenv("QF_FORCE_SCALAR", "1", 1);
    cr_expect_str_eq(qf_gguf_isa_name(), "scalar");
    cr_expect(qf_gguf_isa_supported(QF_GGUF_ISA_SCALAR));
}

/* AUTO (whatever it resolves to) gives the scalar bytes for every quantizable type. */
Test(gguf_types, auto_matches_scalar) {
    gq_rng rng = {31337};
    const int64_t nr = 2, nc = 512;
    float x[1024], im[512];
    for (int i = 0; i < 1024; ++i) x[i] = gq_gauss(&rng) * 0.1f;
    for (int i = 0; i < 512; ++i) im[i] = gq_uniform(&rng);
    uint8_t a[4096], b[4096];
    for (int t = 0; t < QF_GGUF_TYPE_COUNT; ++t) {
        if (!qf_gguf_can_quantize(t)) continue;
        for (int w = 0; w < 2; ++w) {
            const size_t n = qf_gguf_quantize_rows(t, x, a, nr, nc, w ? im : NULL);
            cr_assert_eq(n, (size_t)nr * qf_gguf_row_size(t, nc), "%s", qf_gguf_type_name(t));
            cr_assert_eq(qf_gguf_quantize_rows_isa(t, QF_GGUF_ISA_SCALAR, x, b, nr, nc, w ? im : NULL), n);
            gq_expect_same_blocks(qf_gguf_type_name(t), t, nc, b, a, n);
        }
    }
}

/* Q8_K: d*q reproduces x to within half a step, and the bsums are the group sums. */
Test(gguf_activations, q8_K_bsums) {
    gq_rng rng = {77};
    float x[512];
    for (int i = 0; i < 512; ++i) x[i] = gq_gauss(&rng);
    uint8_t buf[2 * 292];
    qf_gguf_quantize_row_q8_K(x, buf, 512);
    for (int b = 0; b < 2; ++b) {
        float d;
        memcpy(&d, buf + 292 * b, 4);
        const int8_t *qs = (const int8_t *)(buf + 292 * b + 4);
        int16_t bs[16];
        memcpy(bs, buf + 292 * b + 260, sizeof bs);
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int i = 0; i < 16; ++i) s += qs[16 * j + i];
            cr_expect_eq(bs[j], s);
        }
        for (int i = 0; i < 256; ++i) cr_expect_leq(fabsf(d * qs[i] - x[256 * b + i]), fabsf(d) * 0.5001f);
    }
}

/* Every reference dot product against a float dot of the dequantized rows. */
Test(gguf_dot, matches_dequantized) {
    const int64_t n = 1024;
    gq_rng rng = {4242};
    float *w = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float));
    float *wd = malloc(n * sizeof(float)), *ad = malloc(n * sizeof(float));
    uint8_t *wq = malloc(8 * n), *aq = malloc(8 * n);
    for (int64_t i = 0; i < n; ++i) {
        w[i] = gq_gauss(&rng) * 0.05f;
        a[i] = gq_gauss(&rng);
    }
    for (int t = 0; t < QF_GGUF_TYPE_COUNT; ++t) {
        const qf_gguf_type_info *info = qf_gguf_type_get(t);
        if (!info || !info->can_dequantize || info->vec_dot_type < 0) continue;
        const int vt = info->vec_dot_type;
        if (info->can_quantize) {
            cr_assert_gt(qf_gguf_quantize_rows(t, w, wq, 1, n, NULL), 0, "%s", info->name);
        } else {
            /* lattice types: random but valid-ish blocks (small fp16 scales) */
            const size_t rb = qf_gguf_row_size(t, n);
            for (size_t i = 0; i < rb; ++i) wq[i] = (uint8_t)gq_next(&rng);
            const size_t bs = info->type_size;
            for (size_t b = 0; b < rb / bs; ++b) {
                if (t == QF_GGUF_TYPE_IQ1_M) {
                    uint8_t *sc = wq + b * bs + 48;
                    for (int k = 0; k < 4; ++k) sc[2 * k + 1] &= 0x0F; /* d top nibbles = 0 */
                    sc[7] |= 0x20;                                     /* d = small normal */
                } else {
                    const uint16_t h = 0x2000; /* ~0.0078 */
                    memcpy(wq + b * bs, &h, 2);
                }
            }
        }
        cr_assert_eq(qf_gguf_dequantize_rows(t, wq, wd, 1, n), 0, "%s", info->name);
        if (vt == QF_GGUF_TYPE_Q8_0) qf_gguf_quantize_row_q8_0(a, aq, n);
        else if (vt == QF_GGUF_TYPE_Q8_1) qf_gguf_quantize_row_q8_1(a, aq, n);
        else if (vt == QF_GGUF_TYPE_Q8_K) qf_gguf_quantize_row_q8_K(a, aq, n);
        else cr_assert_gt(qf_gguf_quantize_rows(vt, a, aq, 1, n, NULL), 0);
        if (vt == QF_GGUF_TYPE_Q8_K) {
            for (int64_t b = 0; b < n / 256; ++b) {
                float d;
                memcpy(&d, aq + 292 * b, 4);
                for (int i = 0; i < 256; ++i) ad[256 * b + i] = d * ((int8_t *)(aq + 292 * b + 4))[i];
            }
        } else if (vt == QF_GGUF_TYPE_Q8_1) {
            /* block_q8_1 = d, s, qs[32]: decode as the q8_0 block (d, qs[32]) */
            for (int64_t b = 0; b < n / 32; ++b) {
                uint8_t tmp[34];
                memcpy(tmp, aq + 36 * b, 2);
                memcpy(tmp + 2, aq + 36 * b + 4, 32);
                cr_assert_eq(qf_gguf_dequantize_rows(QF_GGUF_TYPE_Q8_0, tmp, ad + 32 * b, 1, 32), 0);
            }
        } else {
            cr_assert_eq(qf_gguf_dequantize_rows(vt, aq, ad, 1, n), 0);
        }
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
            ref += (double)wd[i] * ad[i];
            mag += fabs((double)wd[i] * ad[i]);
        }
        float got = 0;
        cr_assert_eq(qf_gguf_vec_dot(t, n, wq, aq, &got), 0, "%s", info->name);
        cr_expect_leq(fabs(got - ref), 1e-4 * mag + 1e-6, "%s: vec_dot %g vs dequantized %g",
                      info->name, (double)got, ref);
    }
    free(w);
    free(a);
    free(wd);
    free(ad);
    free(wq);
    free(aq);
}
