/*
 * Model runtime benchmark: forward-pass throughput (tokens/s) of the
 * reference CPU runtime on the generated demo model (full forward over a
 * batch of sequences, and KV-cache decoding) and on a Llama-3.2-1B-shaped
 * random model, measured block by block so that a model written with only a
 * few of its 16 layers (to keep disk and time small) still gives the
 * full-model estimate (16 × block + embedding/head); plus peak RSS.
 *
 * Usage: model_bench [--threads N] [--tokens L] [--batch B]
 *                    [--layers-1b N] [--skip-1b] [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "qforge/qforge.h"

typedef struct opts {
  int threads, tokens, batch, layers_1b, skip_1b, json;
} opts;

static char *tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  char *p = malloc(512);
  snprintf(p, 512, "%s/qf_bench_%s_XXXXXX", base && *base ? base : "/tmp", tag);
  if (!mkdtemp(p)) {
    perror("mkdtemp");
    exit(1);
  }
  return p;
}

static void rmtree(const char *dir) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void die(const char *what, const qf_error *err) {
  fprintf(stderr, "model_bench: %s: %s\n", what, err->message);
  exit(1);
}

typedef struct result {
  double full_tok_s, decode_tok_s, block_ms, head_ms, est_tok_s;
} result;

/* Full forward of batch × len tokens, best of `reps`. */
static double time_forward(qf_rt_model *m, const int32_t *tok, int B, int L,
                           int reps) {
  const qf_rt_config *c = qf_rt_get_config(m);
  float *lg = malloc((size_t)B * (size_t)L * (size_t)c->vocab * sizeof(float));
  qf_error err = {.struct_size = sizeof err};
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = qf_bench_now();
    if (qf_rt_forward(m, tok, B, L, NULL, lg, 0, &err)) die("forward", &err);
    t = qf_bench_now() - t;
    if (t < best) best = t;
  }
  free(lg);
  return best;
}

static double time_decode(qf_rt_model *m, int steps) {
  const qf_rt_config *c = qf_rt_get_config(m);
  float *lg = malloc((size_t)c->vocab * sizeof(float));
  qf_rt_kv *kv;
  qf_error err = {.struct_size = sizeof err};
  if (qf_rt_kv_new(m, 1, steps, &kv, &err)) die("kv", &err);
  int32_t t0 = 1;
  double t = qf_bench_now();
  for (int i = 0; i < steps; i++) {
    if (qf_rt_forward(m, &t0, 1, 1, kv, lg, QF_RT_LOGITS_LAST, &err))
      die("decode", &err);
    t0 = (int32_t)qf_eval_argmax(lg, c->vocab);
  }
  t = qf_bench_now() - t;
  qf_rt_kv_free(kv);
  free(lg);
  return t;
}

/* Per-block and head time for B × L tokens (second pass: weights cached). */
static void time_blocks(qf_rt_model *m, const int32_t *tok, int B, int L,
                        double *block_s, double *head_s) {
  const qf_rt_config *c = qf_rt_get_config(m);
  size_t M = (size_t)B * (size_t)L;
  float *x = malloc(M * (size_t)c->hidden * sizeof(float));
  float *lg = malloc(M * (size_t)c->vocab * sizeof(float));
  qf_error err = {.struct_size = sizeof err};
  for (int pass = 0; pass < 2; pass++) {
    if (qf_rt_embed(m, tok, (int64_t)M, x, &err)) die("embed", &err);
    double t = qf_bench_now();
    for (int l = 0; l < c->n_layers; l++)
      if (qf_rt_block(m, l, x, B, L, NULL, &err)) die("block", &err);
    *block_s = (qf_bench_now() - t) / (double)c->n_layers;
    t = qf_bench_now();
    if (qf_rt_head(m, x, (int64_t)M, lg, &err)) die("head", &err);
    *head_s = qf_bench_now() - t;
  }
  free(x);
  free(lg);
}

static result run(const qf_demo_config *cfg, int full_layers, const opts *o,
                  const char *label) {
  result r = {0};
  char *dir = tmpdir(label);
  qf_error err = {.struct_size = sizeof err};
  double t = qf_bench_now();
  if (qf_demo_write(dir, cfg, &err)) die("demo_write", &err);
  if (!o->json)
    fprintf(stderr, "%s: model written in %.1f s\n", label, qf_bench_now() - t);
  qf_rt_options ro = {sizeof ro, o->threads, 0};
  qf_rt_model *m;
  if (qf_rt_open(dir, &ro, &m, &err)) die("open", &err);
  int B = o->batch, L = o->tokens;
  int32_t *tok = malloc((size_t)B * (size_t)L * sizeof(int32_t));
  uint64_t s = 42;
  for (int i = 0; i < B * L; i++)
    tok[i] = (int32_t)(qf_bench_rng(&s) % (uint64_t)cfg->vocab);
  double block_s, head_s;
  time_blocks(m, tok, B, L, &block_s, &head_s);
  r.block_ms = 1e3 * block_s;
  r.head_ms = 1e3 * head_s;
  r.est_tok_s = (double)B * L / (full_layers * block_s + head_s);
  if (cfg->n_layers == full_layers)
    r.full_tok_s = (double)B * L / time_forward(m, tok, B, L, 3);
  int steps = cfg->n_layers == full_layers ? 64 : 8;
  r.decode_tok_s = (double)steps / time_decode(m, steps) *
                   (cfg->n_layers * block_s + head_s) /
                   (full_layers * block_s + head_s);
  free(tok);
  qf_rt_free(m);
  rmtree(dir);
  free(dir);
  return r;
}

static void report(const char *label, const result *r, int layers,
                   const opts *o, int last) {
  if (o->json) {
    printf("  \"%s\": {\"forward_tok_s\": %.1f, \"estimated_tok_s\": %.1f, "
           "\"decode_tok_s\": %.2f, \"block_ms\": %.3f, \"head_ms\": %.3f, "
           "\"layers\": %d}%s\n",
           label, r->full_tok_s, r->est_tok_s, r->decode_tok_s, r->block_ms,
           r->head_ms, layers, last ? "" : ",");
  } else {
    printf("%-10s %d layers: forward %8.1f tok/s (estimated %8.1f), "
           "decode %7.2f tok/s, %.2f ms/block, head %.2f ms\n",
           label, layers, r->full_tok_s, r->est_tok_s, r->decode_tok_s,
           r->block_ms, r->head_ms);
  }
}

int main(int argc, char **argv) {
  opts o = {0, 128, 4, 2, 0, 0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) o.tokens = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc) o.batch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--layers-1b") && i + 1 < argc) o.layers_1b = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--skip-1b")) o.skip_1b = 1;
    else if (!strcmp(argv[i], "--json")) o.json = 1;
    else {
      fprintf(stderr, "usage: %s [--threads N] [--tokens L] [--batch B] "
              "[--layers-1b N] [--skip-1b] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (o.tokens < 1 || o.batch < 1 || o.layers_1b < 1) return 2;
  qf_demo_config demo, one_b;
  qf_demo_config_default(&demo);
  demo.tokenizer = 0;
  qf_demo_config_1b(&one_b);
  one_b.n_layers = o.layers_1b;
  if (o.json) printf("{\n");
  result r = run(&demo, (int)demo.n_layers, &o, "demo");
  report("demo", &r, (int)demo.n_layers, &o, o.skip_1b);
  if (!o.skip_1b) {
    result r1 = run(&one_b, 16, &o, "1b");
    report("1b-shape", &r1, 16, &o, 1);
  }
  if (o.json)
    printf("  ,\"peak_rss_mib\": %.1f, \"batch\": %d, \"tokens\": %d\n}\n",
           qf_bench_peak_rss_mib(), o.batch, o.tokens);
  else
    printf("peak RSS %.1f MiB (batch %d x %d tokens)\n", qf_bench_peak_rss_mib(),
           o.batch, o.tokens);
  return 0;
}
