/*
 * Quantizing a whole HF model folder into a new one: the lifecycle over the
 * mmap'ed checkpoint, streamed into a sharded safetensors writer, with
 * config.json (+ quantization_config) and the tokenizer files beside it.
 * Calibrated schemes (GPTQ, AWQ) get a sequential capture from the model
 * runtime: tensors are processed in forward order, one decoder block at a
 * time; for schemes that declare QF_CAP_CALIB_SEQUENTIAL_QUANTIZED the next
 * block's inputs come from the already-quantized block. The output appears
 * atomically: built in `<out>.partial-XXXXXX`, renamed when complete.
 */
#ifndef QFORGE_QUANTIZE_H
#define QFORGE_QUANTIZE_H

#include "qforge/lifecycle.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef QF_API
#define QF_API __attribute__((visibility("default")))
#endif

typedef struct qf_quantize_request {
  size_t struct_size;
  qf_plugin *plugin;           /* borrowed: the chosen build */
  const char *config_json;     /* quantization_config for create() */
  const char *in_dir;          /* float HF folder */
  const char *out_dir;         /* must not exist unless force */
  const char *calib_path;      /* tokens (.u32/.npy/.json) or text; NULL = none */
  int64_t calib_seq_len;       /* window length (0 = 512) */
  int64_t calib_max_seqs;      /* windows used (0 = 128) */
  uint64_t shard_bytes;        /* 0 = never shard */
  int force;                   /* replace out_dir */
  int progress;                /* draw a bar on a terminal */
} qf_quantize_request;

typedef struct qf_quantize_result {
  double seconds;
  uint64_t bytes_in, bytes_out;
  size_t tensors_in, tensors_quantized;
  char *config_json;           /* the written quantization_config (malloc'ed) */
  char *metrics_json;          /* {tensor: {metric: value}} plugins reported
                                  (e.g. GPTQ's per-layer loss), malloc'ed */
} qf_quantize_result;

QF_API qf_status qf_quantize_folder(const qf_quantize_request *req,
                                    qf_quantize_result *res, qf_error *err);
QF_API void qf_quantize_result_clear(qf_quantize_result *r);

/* Write `dir`/config.json: the input config.json text with its
 * quantization_config set to `qcfg` (JSON text), atomically. */
QF_API qf_status qf_write_hf_config(const char *in_cfg, const char *qcfg,
                                    const char *dir, qf_error *err);
/* Copy the tokenizer / generation files of an HF folder (those present). */
QF_API qf_status qf_copy_side_files(const char *src, const char *dst,
                                    qf_error *err);

#ifdef __cplusplus
}
#endif
#endif /* QFORGE_QUANTIZE_H */
