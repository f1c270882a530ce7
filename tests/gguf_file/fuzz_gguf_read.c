/*
 * fuzz_gguf_read.c — libFuzzer entry point for the GGUF and imatrix readers.
 *
 * Purpose: feed arbitrary bytes to qf_gguf_open_memory and
 * qf_gguf_imatrix_load_memory and, when a file is accepted, touch everything
 * it exposes (every key/value element, every string, every tensor's first and
 * last data byte, the lookups), so the sanitizers see any out-of-bounds
 * access. Built as a libFuzzer target with clang (QF_FUZZ=ON) and, in normal
 * builds, linked into a replay program that runs the checked-in corpus.
 * Fuzzing: configure with CC=clang -DQF_FUZZ=ON, then run
 *   fuzz_gguf_read -max_len=4096 <work folder> tests/gguf_file/corpus
 * (libFuzzer writes new inputs into the first folder: keep it a scratch one,
 * and fold useful finds back with -merge=1).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf_file.h"
#include "gguf_imatrix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qf_gguf_file *f = NULL;
  qf_error err;
  unsigned acc = 0;
  if (qf_gguf_open_memory(data, size, "fuzz.gguf", &f, &err) == QF_OK) {
    for (size_t i = 0; i < qf_gguf_kv_count(f); i++) {
      const qf_gguf_kv *kv = qf_gguf_kv_at(f, i);
      acc += (qf_gguf_find_kv(f, kv->key) == kv);
      for (uint64_t e = 0; e < kv->n; e++) {
        qf_gguf_value v = qf_gguf_kv_elem(kv, e);
        if (kv->elem_type == QF_GGUF_VT_STRING) {
          if (v.str.len)
            acc += (unsigned char)v.str.data[0] + (unsigned char)v.str.data[v.str.len - 1];
        } else {
          acc += v.u8;
        }
      }
      uint8_t buf[64];
      (void)qf_gguf_kv_copy(kv, buf, sizeof buf);
    }
    for (size_t i = 0; i < qf_gguf_tensor_count(f); i++) {
      const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
      acc += (qf_gguf_find_tensor(f, t->name) == t);
      if (t->nbytes) {
        const uint8_t *p = t->data;
        acc += p[0] + p[t->nbytes - 1];
      }
    }
    uint32_t u32;
    (void)qf_gguf_get_u32(f, "general.alignment", &u32, &err);
    qf_gguf_close(f);
  }
  qf_gguf_imatrix *m = NULL;
  if (qf_gguf_imatrix_load_memory(data, size, "fuzz.imatrix", &m, &err) == QF_OK) {
    for (size_t i = 0; i < qf_gguf_imatrix_count(m); i++) {
      const qf_gguf_imatrix_entry *e = qf_gguf_imatrix_at(m, i);
      uint32_t bits;
      memcpy(&bits, &e->values[e->n - 1], sizeof bits);
      acc += bits + (qf_gguf_imatrix_find(m, e->name) == e);
    }
    qf_gguf_imatrix_free(m);
  }
  sink = acc;
  return 0;
}
