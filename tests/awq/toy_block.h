/*
 * A toy Llama-like decoder block for the AWQ block tests: RMSNorm → q, k, v
 * → an attention stand-in linear in v (a = (1 + tanh(q·k / n)) · v) → o →
 * residual → RMSNorm → gate, up → silu(gate)·up → down → residual. Every
 * fold AWQ makes (norm ÷ s into the next linears' columns, v rows ÷ s into
 * o's columns, up rows ÷ s into down's columns) leaves it unchanged.
 */
#ifndef QF_AWQ_TOY_BLOCK_H
#define QF_AWQ_TOY_BLOCK_H

#include <stdint.h>

typedef struct toy_block {
  int64_t t, h, nq, nkv, inter;
  float *x;          /* block input [t, h] */
  float *w[7];       /* q, k, v, o, gate, up, down (float, original) */
  float *ln1, *ln2;  /* norms [h] */
} toy_block;

/* Random block; nkv == h makes v and o the same shape (MHA). Salient input
 * channels every 13th hidden dim. Free with toy_free. */
void toy_make(toy_block *b, int64_t t, int64_t h, int64_t nq, int64_t nkv,
              int64_t inter, uint64_t seed);
void toy_free(toy_block *b);

/* Forward with the given weights / norms (NULL entries = the block's own).
 * Captures (any may be NULL): qkv input [t, h], o input [t, nkv], mlp input
 * [t, h], down input [t, inter]. out [t, h]. */
void toy_forward(const toy_block *b, float *const *w, const float *ln1,
                 const float *ln2, float *out, float *cap_qkv, float *cap_o,
                 float *cap_mlp, float *cap_down);

double toy_mse(const float *a, const float *b, int64_t n);

#endif
