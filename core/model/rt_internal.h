/*
 * Internals of the model runtime shared by the files of core/model/: the
 * qf_rt_model layout (resolved tensor slots with their lazily converted f32
 * copies), the KV cache, the numeric kernels (RMSNorm, RoPE, SwiGLU,
 * attention), the parallel-for helper and the tokenizer's hash maps.
 */
#ifndef QF_RT_INTERNAL_H
#define QF_RT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/qforge.h"

/* One checkpoint tensor used by the runtime and its f32 view. */
typedef struct qf__rt_slot {
  const qf_st_tensor *t;  /* NULL when the checkpoint lacks it */
  const float *ptr;       /* f32 data when resident (in place or conv) */
  float *conv;            /* owned converted copy, or NULL */
  uint64_t stamp;         /* last use, for LRU eviction */
} qf__rt_slot;

typedef struct qf__rt_layer {
  qf__rt_slot w[QF_RT_MODULE_COUNT];
  qf__rt_slot b[QF_RT_MODULE_COUNT];
  qf__rt_slot norm1;      /* input_layernorm */
  qf__rt_slot norm2;      /* post_attention_layernorm */
} qf__rt_layer;

struct qf_rt_model {
  qf_checkpoint *owned_ckpt;   /* set by qf_rt_open */
  const qf_checkpoint *ckpt;
  qf_rt_config cfg;
  qf__rt_slot embed, final_norm, lm_head; /* lm_head.t NULL when tied */
  qf__rt_layer *layers;
  int n_threads;
  uint64_t cache_budget, cache_used, clock;
  qf_rt_linear_fn hook;
  void *hook_user;
  unsigned hook_flags;
  float *scratch;              /* qf_rt_tensor_f32 of unslotted tensors */
  size_t scratch_n;
};

struct qf_rt_kv {
  int64_t batch, max_len, len, n_layers, kv_dim;
  float *k, *v;                /* [n_layers][batch][max_len][kv_dim] */
};

/* ---- model (rt_model.c) ---- */

/* The f32 view of a slot (converting and caching as needed) into *out.
 * Borrowed until the next slot fetch may evict it: use it before fetching
 * another. */
qf_status qf__rt_slot_f32(qf_rt_model *m, qf__rt_slot *s, const float **out,
                          qf_error *err);
/* The slot of a runtime tensor name, or NULL. "lm_head.weight" resolves to
 * the embeddings when tied. */
qf__rt_slot *qf__rt_find_slot(qf_rt_model *m, const char *name);
/* y[M,N] = x[M,K] · Wᵀ (+ bias) for module `mod` of `layer`, honouring the
 * block options (overrides, float_weights) and the model's hook. */
qf_status qf__rt_linear(qf_rt_model *m, const qf_rt_block_opts *o, int layer,
                        qf_rt_module mod, const float *x, int64_t M, float *y,
                        qf_error *err);
/* The block index of a "model.layers.<i>.…" name, or -1. */
int qf__rt_name_layer(const char *name);
/* The override for tensor `name` in the block options, or NULL. */
const float *qf__rt_override(const qf_rt_block_opts *o, const char *name);
/* Output / input features of a module. */
int64_t qf__rt_module_n(const qf_rt_config *c, qf_rt_module mod);
int64_t qf__rt_module_k(const qf_rt_config *c, qf_rt_module mod);

/* ---- forward with a cache (rt_forward.c) ---- */
qf_status qf__rt_block_kv(qf_rt_model *m, int layer, float *x, int64_t batch,
                          int64_t len, qf_rt_kv *kv, const qf_rt_block_opts *o,
                          qf_error *err);

/* ---- kernels (rt_ops.c) ---- */
void qf__rmsnorm(const float *x, const float *w, int64_t M, int64_t H,
                 double eps, float *out);
/* g[i] = silu(g[i]) * u[i] */
void qf__silu_mul(float *g, const float *u, int64_t n);
/* cos/sin tables [len, head_dim/2] for positions pos0 .. pos0+len-1. */
void qf__rope_table(const qf_rt_config *c, int64_t pos0, int64_t len,
                    float *cos_t, float *sin_t);
/* Rotate x[batch·len, n_heads·head_dim] in place (HF rotate_half pairing). */
void qf__rope_apply(float *x, int64_t batch, int64_t len, int64_t n_heads,
                    int64_t head_dim, const float *cos_t, const float *sin_t);
void qf__add_bias(float *y, const float *b, int64_t M, int64_t N);

typedef void (*qf__task_fn)(void *ctx, int64_t task, int thread);
/* Run fn(ctx, task, thread) for task in [0, n_tasks) on up to n_threads
 * threads (thread ids 0..n_threads-1). Falls back to the calling thread. */
void qf__parallel_for(int n_threads, int64_t n_tasks, qf__task_fn fn,
                      void *ctx);

/* ---- attention (rt_attention.c) ----
 * q[batch·len, n_heads·hd] at positions pos0+t; keys/values of batch b,
 * position j at row b·kv_rows + j of k/v ([., n_kv·hd]), j < pos0 + len.
 * out[batch·len, n_heads·hd]. Causal (and sliding window when set). */
qf_status qf__rt_attention(const qf_rt_config *c, int n_threads,
                           const float *q, int64_t batch, int64_t len,
                           int64_t pos0, const float *k, const float *v,
                           int64_t kv_rows, float *out, qf_error *err);

/* ---- tokens (tokens_io.c) ---- */
/* Deep copy of a token set (sequences rebased to offset 0). */
qf_status qf__tokens_copy(const qf_token_set *in, qf_token_set **out,
                          qf_error *err);

#endif /* QF_RT_INTERNAL_H */
