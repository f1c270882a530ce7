/* gguf_quants_golden.c — qf_gguf_quants against ggml's own outputs (golden vectors).
 *
 * Purpose: for every row of golden/gguf/manifest.tsv (ggml_quantize_chunk and to_float run
 * by ggml itself on deterministic inputs), check that qf_gguf_quantize_rows reproduces the
 * `.q` bytes exactly (reporting the first differing block) for every type this library can
 * quantize, and that qf_gguf_dequantize_rows reproduces the `.deq.f32` bit patterns exactly
 * (NaN-safe: compared as integers) for every type. One Criterion test per ggml type, plus a
 * test that every manifest row belongs to a covered type. Both the scalar and the AVX2 path
 * (when the CPU has it) are checked.
 */
#include "gq_common.h"

typedef struct {
    char type[32];
    int type_id;
    char kase[32];
    int64_t rows, cols;
    int imat;
    char input[128], imatrix[128], quantized[128], dequantized[128];
} gq_row;

/* Parses the manifest into a malloc'd array (caller frees); fails the test on errors. */
static gq_row *load_manifest(const char *dir, size_t *count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "cannot open %s", path);
    size_t cap = 256, n = 0;
    gq_row *rows = calloc(cap, sizeof *rows);
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        ++lineno;
        if (lineno == 1) continue; /* header */
        if (line[0] == '\n' || line[0] == 0) continue;
        if (n == cap) {
            cap *= 2;
            rows = realloc(rows, cap * sizeof *rows);
        }
        gq_row *r = &rows[n];
        char imat[8];
        long long nr, nc;
        const int got = sscanf(line, "%31s %d %31s %lld %lld %7s %127s %127s %127s %127s", r->type,
                               &r->type_id, r->kase, &nr, &nc, imat, r->input, r->imatrix,
                               r->quantized, r->dequantized);
        cr_assert_eq(got, 10, "manifest line %d: expected 10 columns", lineno);
        r->rows = nr;
        r->cols = nc;
        r->imat = strcmp(imat, "yes") == 0;
        ++n;
    }
    fclose(f);
    *count = n;
    return rows;
}

static void *load(const char *dir, const char *name, size_t expect_size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t size = 0;
    void *buf = gq_read_file(path, &size);
    cr_assert(buf != NULL, "cannot read golden file %s", path);
    cr_assert_eq(size, expect_size, "%s: %zu bytes, expected %zu", path, size, expect_size);
    return buf;
}

static int check_row(const char *dir, const gq_row *r, int isa) {
    const int t = r->type_id;
    const size_t nelem = (size_t)(r->rows * r->cols);
    const size_t qbytes = (size_t)r->rows * qf_gguf_row_size(t, r->cols);
    float *input = load(dir, r->input, nelem * sizeof(float));
    float *imatrix = r->imat ? load(dir, r->imatrix, (size_t)r->cols * sizeof(float)) : NULL;
    uint8_t *expq = load(dir, r->quantized, qbytes);
    uint32_t *expd = load(dir, r->dequantized, nelem * sizeof(float));
    int ok = 1;
    char what[256];

    if (qf_gguf_can_quantize(t)) {
        uint8_t *q = malloc(qbytes);
        memset(q, 0xA5, qbytes);
        const size_t wrote = qf_gguf_quantize_rows_isa(t, isa, input, q, r->rows, r->cols, imatrix);
        cr_expect_eq(wrote, qbytes, "%s: quantize returned %zu, expected %zu", r->quantized,
                     wrote, qbytes);
        snprintf(what, sizeof what, "%s (%s) quantize", r->quantized,
                 isa == QF_GGUF_ISA_AVX2 ? "avx2" : "scalar");
        ok &= gq_expect_same_blocks(what, t, r->cols, expq, q, qbytes);
        free(q);
    }

    uint32_t *deq = malloc(nelem * sizeof(float));
    const int rc = qf_gguf_dequantize_rows_isa(t, isa, expq, (float *)deq, r->rows, r->cols);
    cr_expect_eq(rc, 0, "%s: dequantize failed", r->dequantized);
    if (rc == 0) {
        for (size_t i = 0; i < nelem; ++i) {
            if (deq[i] != expd[i]) {
                float fe, fg;
                memcpy(&fe, &expd[i], 4);
                memcpy(&fg, &deq[i], 4);
                cr_expect_fail("%s (%s): element %zu (row %zu col %zu) expected 0x%08x (%g) got "
                               "0x%08x (%g)",
                               r->dequantized, isa == QF_GGUF_ISA_AVX2 ? "avx2" : "scalar", i,
                               i / (size_t)r->cols, i % (size_t)r->cols, expd[i], (double)fe,
                               deq[i], (double)fg);
                ok = 0;
                break;
            }
        }
    } else {
        ok = 0;
    }
    free(deq);
    free(input);
    free(imatrix);
    free(expq);
    free(expd);
    return ok;
}

static void run_type(const char *type) {
    char dir[4096];
    gq_golden_dir(dir, sizeof dir);
    size_t n = 0;
    gq_row *rows = load_manifest(dir, &n);
    int seen = 0, passed = 0;
    for (size_t i = 0; i < n; ++i) {
        if (strcmp(rows[i].type, type) != 0) continue;
        ++seen;
        cr_expect_eq(qf_gguf_type_from_name(rows[i].type), rows[i].type_id,
                     "type name %s does not map to id %d", rows[i].type, rows[i].type_id);
        int ok = check_row(dir, &rows[i], QF_GGUF_ISA_SCALAR);
        if (qf_gguf_isa_supported(QF_GGUF_ISA_AVX2)) {
            ok &= check_row(dir, &rows[i], QF_GGUF_ISA_AVX2);
        }
        passed += ok;
    }
    cr_log_info("golden %s: %d/%d rows pass (quantize %s)", type, passed, seen,
                qf_gguf_can_quantize(qf_gguf_type_from_name(type)) ? "checked" : "not provided");
    cr_expect_gt(seen, 0, "no manifest rows for type %s", type);
    free(rows);
}

#define GOLDEN(T) Test(gguf_golden, T, .timeout = 120) { run_type(#T); }

GOLDEN(f16)
GOLDEN(bf16)
GOLDEN(q4_0)
GOLDEN(q4_1)
GOLDEN(q5_0)
GOLDEN(q5_1)
GOLDEN(q8_0)
GOLDEN(q2_K)
GOLDEN(q3_K)
GOLDEN(q4_K)
GOLDEN(q5_K)
GOLDEN(q6_K)
GOLDEN(iq4_nl)
GOLDEN(iq4_xs)
GOLDEN(tq1_0)
GOLDEN(tq2_0)
GOLDEN(mxfp4)
GOLDEN(iq2_xxs)
GOLDEN(iq2_xs)
GOLDEN(iq2_s)
GOLDEN(iq3_xxs)
GOLDEN(iq3_s)
GOLDEN(iq1_s)
GOLDEN(iq1_m)

/* Every manifest row's type must be one of the types tested above. */
Test(gguf_golden, manifest_fully_covered) {
    static const char *covered[] = {"f16",   "bf16",   "q4_0",    "q4_1",   "q5_0",  "q5_1",
                                    "q8_0",  "q2_K",   "q3_K",    "q4_K",   "q5_K",  "q6_K",
                                    "iq4_nl", "iq4_xs", "tq1_0",  "tq2_0",  "mxfp4", "iq2_xxs",
                                    "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",  "iq1_s", "iq1_m"};
    char dir[4096];
    gq_golden_dir(dir, sizeof dir);
    size_t n = 0;
    gq_row *rows = load_manifest(dir, &n);
    cr_expect_gt(n, 0);
    for (size_t i = 0; i < n; ++i) {
        int found = 0;
        for (size_t j = 0; j < sizeof covered / sizeof covered[0]; ++j) {
            found |= strcmp(rows[i].type, covered[j]) == 0;
        }
        cr_expect(found, "manifest row %zu has untested type %s", i, rows[i].type);
    }
    free(rows);
}
