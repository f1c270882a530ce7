/*
 * gguf_quant_bench — throughput of qf_gguf_quants, per ggml type.
 *
 * For every type the library can quantize: quantize throughput (MB/s of float32 input) with
 * the scalar reference and with the dispatched kernels (AVX2 where present), on 1 and 2
 * threads (rows split evenly), without and with an importance matrix; and dequantize
 * throughput (GB/s of float32 output) scalar vs dispatched on one thread, also as a fraction
 * of the measured memcpy bandwidth. Input: 256 rows x 4096 gaussian values with rare spikes.
 *
 *   gguf_quant_bench [--json] [--quick] [type ...]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "gguf_quants.h"

enum { NROWS = 256, NCOLS = 4096 };

typedef struct {
    int type, isa;
    const float *src, *imatrix;
    uint8_t *dst;
    int64_t row0, nrows;
} job;

static void *run_job(void *p) {
    const job *j = p;
    const size_t rs = qf_gguf_row_size(j->type, NCOLS);
    qf_gguf_quantize_rows_isa(j->type, j->isa, j->src + j->row0 * NCOLS, j->dst + j->row0 * rs,
                              j->nrows, NCOLS, j->imatrix);
    return NULL;
}

/* one full quantization of the matrix on nthreads threads; returns seconds */
static double quantize_once(int type, int isa, int nthreads, const float *src, const float *im,
                            uint8_t *dst) {
    job jobs[2];
    pthread_t th[2];
    const double t0 = qf_bench_now();
    for (int t = 0; t < nthreads; ++t) {
        jobs[t] = (job){type, isa, src, im, dst, (int64_t)NROWS * t / nthreads,
                        (int64_t)NROWS * (t + 1) / nthreads - (int64_t)NROWS * t / nthreads};
        if (t) pthread_create(&th[t], NULL, run_job, &jobs[t]);
    }
    run_job(&jobs[0]);
    for (int t = 1; t < nthreads; ++t) pthread_join(th[t], NULL);
    return qf_bench_now() - t0;
}

static double best_of(double budget, int type, int isa, int nthreads, const float *src,
                      const float *im, uint8_t *dst) {
    double best = 1e30, spent = 0;
    int reps = 0;
    while (reps < 2 || (spent < budget && reps < 50)) {
        const double t = quantize_once(type, isa, nthreads, src, im, dst);
        if (t < best) best = t;
        spent += t;
        ++reps;
    }
    return best;
}

static double dequant_best(double budget, int type, int isa, const uint8_t *q, float *out) {
    double best = 1e30, spent = 0;
    int reps = 0;
    while (reps < 3 || (spent < budget && reps < 200)) {
        const double t0 = qf_bench_now();
        qf_gguf_dequantize_rows_isa(type, isa, q, out, NROWS, NCOLS);
        const double t = qf_bench_now() - t0;
        if (t < best) best = t;
        spent += t;
        ++reps;
    }
    return best;
}

int main(int argc, char **argv) {
    int json = 0, quick = 0;
    const char *only[64];
    int nonly = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (nonly < 64) only[nonly++] = argv[i];
    }
    const double budget = quick ? 0.05 : 0.3;
    float *src = malloc(sizeof(float) * NROWS * NCOLS);
    float *im = malloc(sizeof(float) * NCOLS);
    float *out = malloc(sizeof(float) * NROWS * NCOLS);
    uint8_t *dst = malloc(sizeof(float) * NROWS * NCOLS);
    if (!src || !im || !out || !dst) return 1;
    uint64_t s = 0x1234567;
    for (int64_t i = 0; i < (int64_t)NROWS * NCOLS; ++i) {
        const float g = qf_bench_gauss(&s) * 0.02f;
        src[i] = (qf_bench_rng(&s) % 512 == 0) ? g * 30.f : g;
    }
    for (int c = 0; c < NCOLS; ++c) im[c] = 0.05f + (float)(qf_bench_rng(&s) % 1000) * 0.004f;
    const double mb = (double)NROWS * NCOLS * sizeof(float) / 1e6;
    const double memcpy_gbps = qf_bench_memcpy_gbps();
    const int avx2 = qf_gguf_isa_supported(QF_GGUF_ISA_AVX2);
    const int fast = avx2 ? QF_GGUF_ISA_AVX2 : QF_GGUF_ISA_SCALAR;

    if (json) printf("{\"dispatched_isa\": \"%s\", \"memcpy_gbps\": %.2f, \"results\": [\n", qf_gguf_isa_name(), memcpy_gbps);
    else {
        printf("qf_gguf_quants: %d x %d floats, dispatched ISA %s, memcpy %.1f GB/s\n", NROWS, NCOLS,
               qf_gguf_isa_name(), memcpy_gbps);
        printf("%-8s %-7s | quantize MB/s: scalar 1t  simd 1t  simd 2t | dequant GB/s: scalar  simd (%% memcpy)\n",
               "type", "imatrix");
    }
    int first = 1;
    for (int type = 0; type < QF_GGUF_TYPE_COUNT; ++type) {
        if (!qf_gguf_can_quantize(type) || type == QF_GGUF_TYPE_F32) continue;
        const char *name = qf_gguf_type_name(type);
        if (nonly) {
            int hit = 0;
            for (int k = 0; k < nonly; ++k) hit |= !strcmp(only[k], name);
            if (!hit) continue;
        }
        for (int with_im = 0; with_im < 2; ++with_im) {
            const float *imp = with_im ? im : NULL;
            const double ts = best_of(budget, type, QF_GGUF_ISA_SCALAR, 1, src, imp, dst);
            const double tv1 = best_of(budget, type, fast, 1, src, imp, dst);
            const double tv2 = best_of(budget, type, fast, 2, src, imp, dst);
            double ds = 0, dv = 0;
            if (!with_im) {
                ds = dequant_best(budget / 3, type, QF_GGUF_ISA_SCALAR, dst, out);
                dv = dequant_best(budget / 3, type, fast, dst, out);
            }
            const double gb = mb / 1e3;
            if (json) {
                printf("%s  {\"type\": \"%s\", \"imatrix\": %s, \"quant_scalar_mbps\": %.1f, "
                       "\"quant_simd_1t_mbps\": %.1f, \"quant_simd_2t_mbps\": %.1f",
                       first ? "" : ",\n", name, with_im ? "true" : "false", mb / ts, mb / tv1, mb / tv2);
                if (!with_im) printf(", \"dequant_scalar_gbps\": %.2f, \"dequant_simd_gbps\": %.2f", gb / ds, gb / dv);
                printf("}");
                first = 0;
            } else {
                printf("%-8s %-7s | %22.1f %8.1f %8.1f |", name, with_im ? "yes" : "no", mb / ts, mb / tv1, mb / tv2);
                if (!with_im) {
                    printf(" %20.2f %5.2f (%3.0f%%)", gb / ds, gb / dv,
                           memcpy_gbps > 0 ? 100.0 * (gb / dv) / memcpy_gbps : 0.0);
                }
                printf("\n");
            }
            fflush(stdout);
        }
    }
    if (json) printf("\n]}\n");
    free(src);
    free(im);
    free(out);
    free(dst);
    return 0;
}
