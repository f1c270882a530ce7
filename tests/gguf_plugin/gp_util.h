/*
 * gp_util.h — helpers shared by the GGUF plugin suites: scratch folders in
 * the build tree, running the built `qforge` CLI, reading files, and a tiny
 * deterministic Llama / Qwen2 checkpoint (safetensors written with the
 * core's writer, config.json, optionally a byte-level BPE tokenizer.json).
 */
#ifndef GP_UTIL_H
#define GP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "qforge/qforge.h"

typedef struct gp_model_opts {
  const char *model_type; /* "llama" (default), "mistral", "qwen2" */
  int layers, hidden, inter, heads, kv_heads, vocab;
  int tie;        /* no lm_head.weight, tie_word_embeddings true */
  int bias;       /* q/k/v biases */
  qf_dtype dtype; /* F32 (default), F16, BF16 */
  int tokenizer;  /* write tokenizer.json + tokenizer_config.json */
  uint64_t seed;
} gp_model_opts;

/* Defaults: llama, 4 layers, hidden 256, intermediate 512, 4 / 2 heads,
 * vocab 512, f32, untied. */
void gp_model_defaults(gp_model_opts *o);
/* Write the model into `dir` (created). Fails the running test on error. */
void gp_write_model(const char *dir, const gp_model_opts *o);

/* A fresh scratch folder under $QF_BUILD_DIR/tests (caller-owned buffer). */
void gp_tmpdir(char *out, size_t n);
/* Run `$QF_CLI <args>`; stdout into out (may be NULL), stderr into
 * <dir>/stderr.txt. Returns the exit status. */
int gp_cli(const char *dir, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The stderr text of the last gp_cli in `dir` (static buffer). */
const char *gp_stderr(const char *dir);
/* Whole file, malloc'd (caller frees), NULL if unreadable. */
void *gp_read(const char *path, size_t *n);
/* Tensor of a checkpoint as floats (malloc'd). */
float *gp_f32(const qf_st_tensor *t);
/* Path of the gguf-cpu build. */
const char *gp_plugin_path(void);

#endif /* GP_UTIL_H */
