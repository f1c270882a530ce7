/* gq_common.h — helpers shared by the qf_gguf_quants test files.
 *
 * Purpose: reading whole binary files, locating the golden folder (from QF_GGUF_GOLDEN or,
 * normally, $QF_GOLDEN_DIR/gguf — a missing folder is a failure, never a skip), a
 * deterministic random generator for the fuzz tests, and a byte-exact comparison of two
 * quantized buffers that names the first differing block (row, block, hex of both).
 */
#ifndef GQ_COMMON_H
#define GQ_COMMON_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_quants.h"

/* Reads a whole file; returns a malloc'd buffer (caller frees) and its size, or NULL. */
static inline void *gq_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    const long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *size = (size_t)n;
    return buf;
}

/* The gguf golden folder into buf; fails the running test when it cannot be found. */
static inline void gq_golden_dir(char *buf, size_t cap) {
    const char *root = getenv("QF_GOLDEN_DIR");
    cr_assert(root && root[0], "QF_GOLDEN_DIR is not set: the golden vectors are required");
    snprintf(buf, cap, "%s/gguf", root);
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/manifest.tsv", buf);
    FILE *f = fopen(probe, "rb");
    cr_assert(f != NULL, "golden manifest %s is missing", probe);
    fclose(f);
}

/* xorshift64* — deterministic across platforms. */
typedef struct { uint64_t s; } gq_rng;
static inline uint64_t gq_next(gq_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}
static inline float gq_uniform(gq_rng *r) { return (float)((gq_next(r) >> 40) * (1.0 / 16777216.0)); }
static inline float gq_gauss(gq_rng *r) {
    float u1 = gq_uniform(r), u2 = gq_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Byte comparison of nrows rows of a quantized type; on mismatch fails with the first
 * differing block. Returns 1 when equal. */
static inline int gq_expect_same_blocks(const char *what, int type, int64_t ncols,
                                        const uint8_t *exp, const uint8_t *got, size_t nbytes) {
    if (memcmp(exp, got, nbytes) == 0) return 1;
    const size_t bsz = qf_gguf_type_size(type);
    const size_t row = qf_gguf_row_size(type, ncols);
    size_t off = 0;
    while (off < nbytes && exp[off] == got[off]) ++off;
    const size_t blk = off / bsz;
    const size_t r = (off / row), b = (off % row) / bsz;
    char he[2 * 320 + 1], hg[2 * 320 + 1];
    size_t lim = bsz > 320 ? 320 : bsz;
    for (size_t i = 0; i < lim; ++i) {
        snprintf(he + 2 * i, 3, "%02x", exp[blk * bsz + i]);
        snprintf(hg + 2 * i, 3, "%02x", got[blk * bsz + i]);
    }
    cr_expect_fail("%s: first difference at byte %zu = row %zu block %zu (byte %zu inside)\n"
                   "  expected %s\n  got      %s",
                   what, off, r, b, off % bsz, he, hg);
    return 0;
}

#endif /* GQ_COMMON_H */
