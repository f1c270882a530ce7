/*
 * qforge plugin ABI, version 1.1 (1.0 plus the container and calibration
 * additions marked "since 1.1").
 *
 * This header is the whole contract between libqforge (the host) and a
 * quantization-scheme plugin (a dynamically loaded .so). It mirrors the
 * lifecycle of Hugging Face transformers' HfQuantizer in C: the host creates a
 * quantizer from a `quantization_config` JSON text, asks it to validate the
 * environment, lets it adjust dtypes and device maps, hands it every tensor of
 * the checkpoint (quantizing the ones it claims), and finally asks for the
 * config to serialize. Loading a pre-quantized checkpoint takes the same path
 * with `pre_quantized` set and the missing/unexpected-key hooks in play.
 *
 * Rules (see DESIGN.md):
 *  - A plugin exports `qf_plugin_init` and, optionally, `qf_plugin_score`.
 *    Nothing else needs to be visible.
 *  - Every struct that crosses the boundary starts with `struct_size`. A
 *    reader honours only the fields that fit inside the size it was given;
 *    tables grow only at the end (append-only), so an older minor version is
 *    served by the fields it declares. Majors must match.
 *  - No slot aborts. Each returns a qf_status; on failure it fills the
 *    caller-provided qf_error (plugin name, operation, message).
 *  - Whoever allocates, frees. Tensors passed into a call are borrowed
 *    DLTensors valid for that call only. Text a plugin returns to the host
 *    is allocated with the host table's `alloc` and freed by the host.
 *  - Optional slots may be NULL; NULL means "identity" for the update/adjust
 *    hooks and "unsupported" for dequantize / linear_forward. Never stub a
 *    slot that returns "unimplemented": leave it NULL.
 *
 * Lifetimes: the descriptor returned by qf_plugin_init is static data of the
 * .so and lives until the library is unloaded (the host never unloads a
 * plugin whose GPU context may be alive). A quantizer lives from `create` to
 * `destroy`. A model handle lives as long as the host says (across the whole
 * lifecycle run).
 */
#ifndef QFORGE_PLUGIN_H
#define QFORGE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QF_ABI_MAJOR 1
#define QF_ABI_MINOR 1

/* Visibility of the two entry symbols; everything else stays hidden. */
#if defined(__GNUC__)
#define QF_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define QF_PLUGIN_EXPORT
#endif

/* Size of a struct up to and including `field` (independent of tail padding).
 * Hosts and plugins fill struct_size with the full sizeof; readers test with
 * QF_HAS_FIELD before touching a field that came in a later minor. */
#define QF_STRUCT_SIZE_TO(type, field) \
  (offsetof(type, field) + sizeof(((type *)0)->field))
#define QF_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= QF_STRUCT_SIZE_TO(type, field))

/* ---------------------------------------------------------------- status */

typedef enum qf_status {
  QF_OK = 0,
  QF_ERR_INVALID_ARGUMENT = 1, /* bad config, bad tensor, bad name */
  QF_ERR_UNSUPPORTED = 2,      /* valid request this plugin can't serve */
  QF_ERR_NO_MEMORY = 3,
  QF_ERR_IO = 4,
  QF_ERR_FORMAT = 5,           /* malformed file or checkpoint content */
  QF_ERR_ENVIRONMENT = 6,      /* missing runtime/device/library */
  QF_ERR_ABI = 7,              /* version or struct-size mismatch */
  QF_ERR_NOT_FOUND = 8,        /* a named tensor/module/key does not exist */
  QF_ERR_NUMERIC = 9,          /* numerical failure (e.g. Cholesky) */
  QF_ERR_INTERNAL = 10
} qf_status;

/* Caller-allocated error object. The callee writes into it on failure; no
 * allocation happens, so there is nothing to free. `plugin` and `op` name
 * who failed and in which call; `message` says what was expected. */
#define QF_ERROR_MESSAGE_MAX 1024
typedef struct qf_error {
  size_t struct_size;
  qf_status code;
  char plugin[64];
  char op[64];
  char message[QF_ERROR_MESSAGE_MAX];
} qf_error;

/* ---------------------------------------------------------------- enums */

typedef enum qf_backend {
  QF_BACKEND_CPU = 1,
  QF_BACKEND_CUDA = 2,
  QF_BACKEND_HIP = 3
} qf_backend;

typedef enum qf_log_level {
  QF_LOG_DEBUG = 0,
  QF_LOG_INFO = 1,
  QF_LOG_WARN = 2,
  QF_LOG_ERROR = 3
} qf_log_level;

/* Capability flags of a descriptor (the HfQuantizer class attributes). */
#define QF_CAP_REQUIRES_CALIBRATION (1u << 0) /* needs a qf_calib to quantize */
#define QF_CAP_SERIALIZABLE         (1u << 1) /* get_config_json + tensors form a checkpoint */
#define QF_CAP_TRAINABLE            (1u << 2)
#define QF_CAP_PREQUANTIZED_LOAD    (1u << 3) /* can load checkpoints it did not write */
#define QF_CAP_DEQUANTIZE           (1u << 4) /* dequantize slot is set */
#define QF_CAP_LINEAR_FORWARD       (1u << 5) /* linear_forward slot is set */
#define QF_CAP_PARAMETERS_QUANTIZATION (1u << 6) /* requires_parameters_quantization */
/* Calibration capture order (GPTQ feeds block i+1 from the quantized block i,
 * AWQ from the float block i). Only meaningful with REQUIRES_CALIBRATION. */
#define QF_CAP_CALIB_SEQUENTIAL_QUANTIZED (1u << 7)

/* ---------------------------------------------------------------- opaque handles */

typedef struct qf_quantizer qf_quantizer; /* plugin-defined */
typedef struct qf_model qf_model;         /* host-defined */
typedef struct qf_calib qf_calib;         /* host-defined */
typedef struct qf_host qf_host;

/* A view of a model tensor: a borrowed DLTensor plus its checkpoint name.
 * Shapes point into host memory and live as long as the model. */
typedef struct qf_tensor_info {
  size_t struct_size;
  const char *name;
  DLTensor tensor; /* data may be NULL when only metadata is asked for */
} qf_tensor_info;

/* What validate_environment is told. Any field may be "unknown" (0 / NULL):
 * transformers calls validate_environment a second time with only the
 * device map, and plugins must tolerate such partial environments. */
typedef struct qf_env {
  size_t struct_size;
  qf_backend backend;        /* build the host chose; 0 = unknown */
  int device_count;          /* GPUs visible to this build; -1 = unknown */
  int device_id;             /* device the model runs on */
  uint64_t device_memory;    /* bytes on that device; 0 = unknown */
  DLDataType compute_dtype;  /* bits == 0: unknown */
  const char *device_map_json; /* e.g. {"": "cpu"}; NULL = unknown */
  int n_threads;             /* CPU threads the host allows; 0 = unknown */
} qf_env;

/* ---------------------------------------------------------------- host table */

/* Functions the plugin may call back into. Valid from qf_plugin_init until
 * the library is unloaded. All are thread-safe unless stated. */
struct qf_host {
  size_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /* Logging: one line, no trailing newline needed. `plugin` is the scheme
   * name (used as prefix). */
  void (*log)(const qf_host *host, qf_log_level level, const char *plugin,
              const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 4, 5)))
#endif
      ;
  /* Progress of long work: `done` of `total` units of `what`. The host draws
   * a bar on a terminal and stays silent otherwise. */
  void (*progress)(const qf_host *host, const char *what, uint64_t done,
                   uint64_t total);

  /* Memory that crosses the boundary (returned JSON text, key lists). 64-byte
   * aligned. free(NULL) is a no-op. */
  void *(*alloc)(size_t size);
  void (*free)(void *ptr);

  /* ---- model access. The model is the checkpoint being quantized or loaded:
   * its config.json text and its tensors. */

  /* config.json of the model as UTF-8 JSON text; lives as long as the model. */
  const char *(*model_config_json)(const qf_model *model);
  /* Number of tensors in the (input) checkpoint. */
  size_t (*model_tensor_count)(const qf_model *model);
  /* Metadata and data of tensor #index (0-based, checkpoint order). The
   * DLTensor is CPU memory, borrowed, valid as long as the model. */
  qf_status (*model_tensor_at)(const qf_model *model, size_t index,
                               qf_tensor_info *out, qf_error *err);
  /* Same by name; QF_ERR_NOT_FOUND (with err filled) if absent. Tensors the
   * plugin produced with model_put_tensor are found too. */
  qf_status (*model_find_tensor)(const qf_model *model, const char *name,
                                 qf_tensor_info *out, qf_error *err);
  /* Emit an output tensor of the quantized checkpoint. The host copies
   * `tensor` (CPU, compact row-major) before returning; the caller keeps
   * ownership of its buffer. A second put of the same name replaces it. */
  qf_status (*model_put_tensor)(qf_model *model, const char *name,
                                const DLTensor *tensor, qf_error *err);

  /* ---- calibration (NULL calib = none). */

  /* The accumulated Hessian for the linear module whose weight is `name`
   * (H = 2/n · Σ XᵀX as GPTQ's add_batch accumulates it), K×K float32
   * row-major; borrowed, valid until the next call on this calib. */
  qf_status (*calib_hessian)(qf_calib *calib, const char *name,
                             const float **h, int64_t *k, qf_error *err);
  /* An importance vector (llama.cpp imatrix: mean of x² per input column)
   * for the tensor `name`: K float32, borrowed as above. QF_ERR_NOT_FOUND if
   * the calibration has none for that tensor. */
  qf_status (*calib_importance)(qf_calib *calib, const char *name,
                                const float **v, int64_t *k, qf_error *err);

  /* Threads the plugin may use for CPU work (>= 1). */
  int (*n_threads)(const qf_host *host);

  /* ---- since 1.1 (check with QF_HAS_FIELD(host, qf_host, field)) ---- */

  /* Replace the model's config.json text (copied). Used by container
   * import to describe what it emitted (an HF config.json object). */
  qf_status (*model_set_config_json)(qf_model *model, const char *json,
                                     qf_error *err);
  /* The inputs that reach the linear module whose weight is `name` in the
   * block being calibrated now: tokens × K float32 row-major, borrowed until
   * the next calib call. */
  qf_status (*calib_inputs)(qf_calib *calib, const char *name,
                            const float **x, int64_t *tokens, int64_t *k,
                            qf_error *err);
  /* Run the decoder block that holds `name` (the block being calibrated)
   * on its captured inputs with trial weights: `n` tensors named by their
   * checkpoint names replace the block's own for this call only. `out`
   * (tokens × hidden float32, caller-owned; size from calib_block_shape)
   * receives the block output. n = 0 gives the float block's output. */
  qf_status (*calib_block_forward)(qf_calib *calib, const char *name,
                                   const char *const *names,
                                   const DLTensor *weights, size_t n,
                                   float *out, qf_error *err);
  /* tokens and hidden size of that block's output. */
  qf_status (*calib_block_shape)(qf_calib *calib, const char *name,
                                 int64_t *tokens, int64_t *hidden,
                                 qf_error *err);
  /* Report a number about the tensor being quantized (e.g. "gptq_loss");
   * the host prints it per block and writes it to its quantization report.
   * Thread-safe; never fails. */
  void (*report_metric)(const qf_host *host, const char *tensor,
                        const char *metric, double value);
  /* Run one part (QF_CALIB_PART_*) of the decoder block that holds `name`
   * (the block being calibrated) on that part's captured input: ATTN is
   * o_proj(attention(x)) with x the input of q/k/v (after input_layernorm),
   * MLP is down(silu(gate(x)) * up(x)) with x the input of gate/up (after
   * post_attention_layernorm), BLOCK is the whole block from its input
   * (residuals included; the same as calib_block_forward). Trial weights as
   * in calib_block_forward: `n` tensors of that block, named by checkpoint
   * names, replace its own for this call only; a trial tensor outside the
   * part has no effect. `out` (tokens × hidden float32, caller-owned; size
   * from calib_block_shape) receives the part's output. n = 0 gives the
   * float part's output. */
  qf_status (*calib_part_forward)(qf_calib *calib, const char *name, int part,
                                  const char *const *names,
                                  const DLTensor *weights, size_t n,
                                  float *out, qf_error *err);
};

/* Parts for qf_host.calib_part_forward. */
#define QF_CALIB_PART_ATTN 0
#define QF_CALIB_PART_MLP 1
#define QF_CALIB_PART_BLOCK 2

/* ---------------------------------------------------------------- quantizer table */

/* The lifecycle. Every slot receives `err` (never NULL) and returns a status.
 * Order of calls made by the host (transformers' from_pretrained order):
 *   create → validate_environment(full env) → update_dtype →
 *   update_device_map → preprocess_model → adjust_target_dtype /
 *   param_element_size / adjust_max_memory (memory planning) →
 *   validate_environment(device map only) →
 *   [pre-quantized: update_missing_keys → update_unexpected_keys] →
 *   for every checkpoint tensor: param_needs_quantization →
 *     (true and not pre-quantized) create_quantized_param | copy as is →
 *   postprocess_model → get_config_json (when saving) → destroy.
 * After postprocess_model, dequantize and linear_forward may be called any
 * number of times, from several threads at once for different modules. */
typedef struct qf_quantizer_vtable {
  size_t struct_size;

  /* REQUIRED. __init__(quantization_config, pre_quantized). `config_json` is
   * the quantization_config object as JSON text (borrowed). Unknown keys are
   * ignored as transformers does; a missing or ill-typed required key is
   * QF_ERR_INVALID_ARGUMENT naming the key. On success *out is a new
   * quantizer owned by the caller (free with destroy). */
  qf_status (*create)(const qf_host *host, const char *config_json,
                      int pre_quantized, qf_quantizer **out, qf_error *err);
  /* REQUIRED. Frees a quantizer and everything it owns. NULL is a no-op. */
  void (*destroy)(qf_quantizer *q);

  /* REQUIRED. May the scheme run here? Called twice: once with the full env,
   * once with only device_map_json set. */
  qf_status (*validate_environment)(qf_quantizer *q, const qf_env *env,
                                    qf_error *err);

  /* Optional (NULL = identity). The dtype the unquantized parts of the
   * model load in; *dtype is in/out (bits == 0 means "not given"). */
  qf_status (*update_dtype)(qf_quantizer *q, DLDataType *dtype, qf_error *err);
  /* Optional (NULL = identity). `in_json` is the device map ({"": "cpu"}
   * form, NULL if none). To change it, set *out_json to text allocated with
   * host->alloc (the host frees it); leave NULL to keep the input. */
  qf_status (*update_device_map)(qf_quantizer *q, const char *in_json,
                                 char **out_json, qf_error *err);
  /* Optional (NULL = identity). Storage dtype of a quantized param for
   * memory planning (bnb: int8; 4-bit schemes report bits = 4). */
  qf_status (*adjust_target_dtype)(qf_quantizer *q, DLDataType *dtype,
                                   qf_error *err);
  /* Optional (NULL = identity). Scale per-device byte budgets in place. */
  qf_status (*adjust_max_memory)(qf_quantizer *q, uint64_t *budgets,
                                 size_t n_devices, qf_error *err);
  /* Optional (NULL = dtype size of the tensor). Bytes per element the
   * parameter will occupy once loaded (0.5 for 4-bit). */
  qf_status (*param_element_size)(qf_quantizer *q, const qf_model *model,
                                  const char *name, double *bytes,
                                  qf_error *err);

  /* Optional (NULL = nothing to do). _process_model_before_weight_loading:
   * decide modules_to_not_convert from the model's config and tensor names;
   * validate shapes. */
  qf_status (*preprocess_model)(qf_quantizer *q, qf_model *model,
                                qf_error *err);

  /* REQUIRED. Does the checkpoint tensor `name` become quantized tensors?
   * (e.g. "model.layers.0.mlp.up_proj.weight" → 1, its bias → 0.) */
  qf_status (*param_needs_quantization)(qf_quantizer *q, const qf_model *model,
                                        const char *name, int *out,
                                        qf_error *err);
  /* REQUIRED when quantizing (may be NULL for load-only plugins).
   * Quantize `value` (borrowed, CPU, f32/f16/bf16) of the tensor `name` and
   * emit the checkpoint tensors with host->model_put_tensor. `calib` is NULL
   * for zero-shot schemes. Rows are output features, columns inputs. */
  qf_status (*create_quantized_param)(qf_quantizer *q, qf_model *model,
                                      const char *name, const DLTensor *value,
                                      qf_calib *calib, qf_error *err);

  /* Optional (NULL = identity). Pre-quantized loading: the host lists keys
   * the float model expects but the checkpoint lacks (missing) or keys the
   * checkpoint has that the float model does not (unexpected). Set
   * keep[i] = 0 for every key the plugin accounts for. */
  qf_status (*update_missing_keys)(qf_quantizer *q, const qf_model *model,
                                   const char *const *keys, size_t n,
                                   uint8_t *keep, qf_error *err);
  qf_status (*update_unexpected_keys)(qf_quantizer *q, const qf_model *model,
                                      const char *const *keys, size_t n,
                                      uint8_t *keep, qf_error *err);

  /* Optional (NULL = nothing). _process_model_after_weight_loading: check
   * that every quantized module has consistent tensors, repack for kernels. */
  qf_status (*postprocess_model)(qf_quantizer *q, qf_model *model,
                                 qf_error *err);

  /* REQUIRED. quantization_config.to_dict() as JSON text allocated with
   * host->alloc; the host frees it. */
  qf_status (*get_config_json)(qf_quantizer *q, char **out_json, qf_error *err);

  /* Optional (NULL = unsupported). Reconstruct the float32 weight whose
   * checkpoint name is `name` (e.g. "x.weight") into `out` (caller-owned,
   * f32, shape [rows, cols] of the original weight, CPU). */
  qf_status (*dequantize)(qf_quantizer *q, const qf_model *model,
                          const char *name, DLTensor *out, qf_error *err);

  /* Optional (NULL = unsupported). y = x · Wᵀ (+ bias) for the quantized
   * linear whose weight is `name`. x: [M, K] f32, y: [M, N] f32, both
   * caller-owned, compact, on the device of this build (CPU tensors are
   * accepted by every build and copied as needed). */
  qf_status (*linear_forward)(qf_quantizer *q, const qf_model *model,
                              const char *name, const DLTensor *x, DLTensor *y,
                              qf_error *err);

  /* ---- since 1.1: container formats (a plugin that owns a file format,
   * like GGUF, declares its extensions in the descriptor) ---- */

  /* Optional. Write `model` (a float HF checkpoint) into the plugin's own
   * format at `out_path`, quantizing as the quantizer's config says. `model`
   * is NULL when the config names a source file of the plugin's own format
   * ("requantize_from": path). Streams tensor by tensor; the file appears
   * atomically (temp + fsync + rename) or not at all. */
  qf_status (*container_export)(qf_quantizer *q, qf_model *model,
                                const char *out_path, qf_error *err);
  /* Optional. Read the plugin's file at `in_path` and emit it as an HF
   * checkpoint into `model`: tensors with HF names via model_put_tensor
   * (dequantized to float unless the quantizer's config asks to keep the
   * quantized blocks) and an HF config.json via model_set_config_json. */
  qf_status (*container_import)(qf_quantizer *q, const char *in_path,
                                qf_model *model, qf_error *err);
  /* Optional. Describe the file at `in_path` as JSON text allocated with
   * host->alloc: {"format": "...", "version": N, "metadata": {key: value},
   * "tensors": [{"name", "type", "shape", "bytes", "bits_per_weight"}],
   * "bits_per_weight": overall}. */
  qf_status (*container_describe)(qf_quantizer *q, const char *in_path,
                                  char **out_json, qf_error *err);

  /* Optional (since 1.1). Re-express the pre-quantized checkpoint `in`
   * (after the load lifecycle ran on it) in the layout of the scheme
   * `target` (e.g. AWQ → "gptq"), without requantizing. Emit every tensor
   * of the new checkpoint into `out` with model_put_tensor — unchanged
   * tensors too, in input order — and set *out_config_json (allocated with
   * host->alloc) to the new quantization_config. QF_ERR_UNSUPPORTED names
   * the targets the plugin knows when `target` is not one of them. */
  qf_status (*convert_format)(qf_quantizer *q, const qf_model *in,
                              qf_model *out, const char *target,
                              char **out_config_json, qf_error *err);

  /* Optional (since 1.1). Extra JSON files the scheme's ecosystem expects
   * beside config.json (AutoGPTQ's quantize_config.json): a JSON object
   * {"file name": {…content…}} allocated with host->alloc, or NULL for none.
   * Called after get_config_json when the host writes a checkpoint. */
  qf_status (*get_side_files_json)(qf_quantizer *q, char **out_json,
                                   qf_error *err);
} qf_quantizer_vtable;

/* ---------------------------------------------------------------- descriptor */

typedef struct qf_plugin_desc {
  size_t struct_size;
  uint16_t abi_major;   /* QF_ABI_MAJOR the plugin was built against */
  uint16_t abi_minor;   /* QF_ABI_MINOR the plugin was built against */
  const char *name;     /* scheme name, e.g. "rtn", "gguf" */
  const char *version;  /* plugin's own version string */
  const char *description; /* one line for `qforge plugins` */
  /* NULL-terminated list of quantization_config.quant_method values served
   * (e.g. {"bitsandbytes", NULL}). */
  const char *const *quant_methods;
  qf_backend backend;   /* what this build runs on */
  uint32_t caps;        /* QF_CAP_* */
  /* Error bound the scheme promises for a quantize→dequantize round trip,
   * relative to the absmax of each row (used by the conformance kit);
   * 0 means "not declared". */
  double declared_rel_error;
  /* JSON text of a small valid config the conformance kit can use. */
  const char *example_config_json;
  const qf_quantizer_vtable *vtable;

  /* ---- since 1.1 ---- */
  /* NULL-terminated file extensions this plugin owns as a container
   * (e.g. {".gguf", NULL}); NULL = none. */
  const char *const *container_extensions;
} qf_plugin_desc;

/* ---------------------------------------------------------------- entry points */

/* REQUIRED export. Called once after dlopen. `host` lives until unload.
 * Fill *out with the plugin's static descriptor. Return QF_ERR_ABI (with a
 * message naming both versions) if host->abi_major differs. */
typedef qf_status (*qf_plugin_init_fn)(const qf_host *host,
                                       const qf_plugin_desc **out,
                                       qf_error *err);
#define QF_PLUGIN_INIT_SYMBOL "qf_plugin_init"

/* OPTIONAL export. Probe hardware without initialising anything heavy.
 * 0 = unusable here (e.g. a CUDA build with no device); higher is better.
 * Absent = 1. */
typedef int (*qf_plugin_score_fn)(void);
#define QF_PLUGIN_SCORE_SYMBOL "qf_plugin_score"

#ifdef __cplusplus
}
#endif

#endif /* QFORGE_PLUGIN_H */
