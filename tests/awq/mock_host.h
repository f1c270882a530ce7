/*
 * A minimal in-memory host for driving the AWQ plugin .so without
 * libqforge: a model is a list of input tensors (the checkpoint) plus the
 * tensors the plugin emits; the calibration handle holds one Hessian.
 */
#ifndef QF_AWQ_MOCK_HOST_H
#define QF_AWQ_MOCK_HOST_H

#include "qforge/plugin.h"

#define MOCK_MAX_TENSORS 32

typedef struct mock_tensor {
  char name[256];
  DLTensor t;
  int64_t shape[4];
  void *data;
} mock_tensor;

struct qf_model {
  mock_tensor in[MOCK_MAX_TENSORS];
  size_t n_in;
  mock_tensor out[MOCK_MAX_TENSORS];
  size_t n_out;
};

struct toy_block;

struct qf_calib {
  const float *h; /* K x K, or NULL: no Hessian for any tensor */
  int64_t k;
  int calls;
  /* ABI 1.1 block calibration over a toy block (NULL: none) */
  struct toy_block *toy;
  const char *prefix; /* the toy block's checkpoint prefix */
  float *cap[4];      /* captured inputs: qkv, o, mlp, down */
  int forwards;
};

/* Fill calib->cap from the toy block's float forward (caller frees cap[]). */
void mock_calib_capture(qf_calib *c);

extern qf_host mock_host;
extern qf_plugin_init_fn mock_awq_init; /* set by mock_load_awq */
extern char mock_last_log[1024];

/* Adds a copy of `data` as an input tensor (the model owns the copy). */
void mock_add(qf_model *m, const char *name, DLDataType dt, int ndim,
              const int64_t *shape, const void *data);
/* Emitted (or else input) tensor by name; NULL if absent. */
const DLTensor *mock_get(const qf_model *m, const char *name);
void mock_free(qf_model *m);

/* dlopen()s <QF_PLUGIN_DIR>/awq-cpu.so and returns its descriptor (fails
 * the test when it cannot). */
const qf_plugin_desc *mock_load_awq(void);

#endif
