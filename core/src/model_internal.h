/*
 * Layout of the host-side qf_model, shared by model.c (storage, lookup) and
 * host.c (the host table's model_* callbacks).
 */
#ifndef QF_MODEL_INTERNAL_H
#define QF_MODEL_INTERNAL_H

#include <pthread.h>

#include "qforge/qforge.h"

typedef struct qf__tensor_slot {
  char *name;
  void *owned_data;            /* NULL when aliasing caller/mmap memory */
  int64_t shape[QF_MAX_DIMS];
  qf_dtype st_dtype;
  qf_tensor_info info;         /* info.tensor.shape points at shape[] */
} qf__tensor_slot;

typedef struct qf__name_index {
  size_t *table;               /* slot indices, SIZE_MAX = empty */
  size_t cap, n;
} qf__name_index;

typedef struct qf__tensor_list {
  qf__tensor_slot **slots;     /* each slot allocated on its own */
  size_t n, cap;
  qf__name_index index;
} qf__tensor_list;

struct qf_model {
  const qf_checkpoint *ckpt;   /* borrowed, may be NULL */
  char *config;
  qf__tensor_list inputs;
  qf__tensor_list outputs;
  qf_model_sink_fn sink;
  void *sink_user;
  pthread_mutex_t lock;        /* guards outputs */
};

qf_status qf__model_find(const qf_model *m, const char *name,
                         qf_tensor_info *out, qf_error *err);
qf_status qf__model_put(qf_model *m, const char *name, const DLTensor *t,
                        qf_error *err);
size_t qf__dl_nbytes(const DLTensor *t);
/* Has a tensor of that name been emitted (and kept)? */
int qf__model_has_output(const qf_model *m, const char *name);
qf_status qf__model_set_config(qf_model *m, const char *json, qf_error *err);

#endif /* QF_MODEL_INTERNAL_H */
