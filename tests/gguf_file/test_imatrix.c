/*
 * test_imatrix.c — importance-matrix files in both formats.
 *
 * Purpose: the legacy .dat format (values divided by ncall, optional trailer)
 * and the GGUF form (in_sum2 / counts per matrix, 1.0 for matrices without
 * data, optional in_sum, required metadata) give the vectors llama-quantize
 * would compute; malformed files are refused with messages naming the file
 * and the field.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_file.h"
#include "gguf_imatrix.h"
#include "gguf_test_util.h"

static qf_error err;

#define OK(call) cr_assert_eq((call), QF_OK, "%s: %s", #call, err.message)

static void legacy_entry(tb *b, const char *name, int32_t ncall, const float *v, int32_t n) {
  tb_u32(b, (uint32_t)strlen(name));
  tb_bytes(b, name, strlen(name));
  tb_u32(b, (uint32_t)ncall);
  tb_u32(b, (uint32_t)n);
  for (int32_t i = 0; i < n; i++) tb_f32(b, v[i]);
}

static void assert_values(const qf_gguf_imatrix_entry *e, const float *want, int64_t n) {
  cr_assert_eq(e->n, n, "%s: %lld values", e->name, (long long)e->n);
  for (int64_t i = 0; i < n; i++)
    cr_assert_eq(e->values[i], want[i], "%s[%lld] = %g, want %g", e->name, (long long)i,
                 e->values[i], want[i]);
}

Test(imatrix, legacy_with_trailer) {
  tb b = {0};
  tb_u32(&b, 2);
  const float v1[] = {4.0f, 8.0f, 2.0f};
  const float v2[] = {3.0f, 5.0f};
  legacy_entry(&b, "blk.0.ffn_up.weight", 4, v1, 3);
  legacy_entry(&b, "a.weight", 0, v2, 2);
  tb_u32(&b, 10);
  tb_u32(&b, 9);
  tb_bytes(&b, "wiki.txt", 9); /* with its NUL, as llama-imatrix wrote it */
  const char *dir = temp_dir();
  char path[1024];
  snprintf(path, sizeof path, "%s/imatrix.dat", dir);
  FILE *fp = fopen(path, "wb");
  fwrite(b.p, 1, b.n, fp);
  fclose(fp);
  qf_gguf_imatrix *m;
  OK(qf_gguf_imatrix_load(path, &m, &err));
  cr_assert(qf_gguf_imatrix_is_legacy(m));
  cr_assert_eq(qf_gguf_imatrix_count(m), 2);
  cr_assert_eq(qf_gguf_imatrix_chunk_count(m), 10);
  cr_assert_eq(qf_gguf_imatrix_chunk_size(m), 0);
  cr_assert_eq(qf_gguf_imatrix_dataset_count(m), 1);
  cr_assert_str_eq(qf_gguf_imatrix_dataset(m, 0), "wiki.txt");
  cr_assert_null(qf_gguf_imatrix_dataset(m, 1));
  /* sorted by name */
  cr_assert_str_eq(qf_gguf_imatrix_at(m, 0)->name, "a.weight");
  cr_assert_str_eq(qf_gguf_imatrix_at(m, 1)->name, "blk.0.ffn_up.weight");
  const qf_gguf_imatrix_entry *e = qf_gguf_imatrix_find(m, "blk.0.ffn_up.weight");
  cr_assert_not_null(e);
  const float w1[] = {1.0f, 2.0f, 0.5f};
  assert_values(e, w1, 3);
  cr_assert(e->ne0 == 3 && e->n_mat == 1 && e->counts[0] == 4 && e->activations == NULL);
  e = qf_gguf_imatrix_find(m, "a.weight");
  assert_values(e, v2, 2); /* ncall 0: values as stored */
  cr_assert_null(qf_gguf_imatrix_find(m, "nope"));
  qf_gguf_imatrix_free(m);
  remove_dir(dir);

  /* without the trailer */
  b.n = 4 + (4 + 19 + 8 + 12) + (4 + 8 + 8 + 8);
  OK(qf_gguf_imatrix_load_memory(b.p, b.n, "old.dat", &m, &err));
  cr_assert_eq(qf_gguf_imatrix_chunk_count(m), 0);
  cr_assert_eq(qf_gguf_imatrix_dataset_count(m), 0);
  cr_assert_eq(qf_gguf_imatrix_count(m), 2);
  qf_gguf_imatrix_free(m);
  tb_free(&b);
}

static void legacy_fails(tb *b, const char *want) {
  qf_gguf_imatrix *m = (qf_gguf_imatrix *)1;
  memset(&err, 0, sizeof err);
  cr_assert_eq(qf_gguf_imatrix_load_memory(b->p, b->n, "bad.dat", &m, &err), QF_ERR_FORMAT,
               "accepted; wanted '%s'", want);
  cr_assert_null(m);
  cr_assert(strncmp(err.message, "bad.dat: ", 9) == 0, "%s", err.message);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
  tb_free(b);
}

Test(imatrix, legacy_malformed) {
  tb b = {0};
  tb_bytes(&b, "ab", 2);
  legacy_fails(&b, "file is 2 bytes");
  tb_u32(&b, 0);
  legacy_fails(&b, "offset 0: legacy imatrix has no data (entry count 0)");
  tb_u32(&b, 1);
  tb_u32(&b, (uint32_t)-5);
  legacy_fails(&b, "offset 4: name length -5 of entry #0 is negative or past the end");
  tb_u32(&b, 1);
  tb_u32(&b, 1);
  tb_bytes(&b, "w", 1);
  tb_u32(&b, 1);
  tb_u32(&b, 0);
  legacy_fails(&b, "offset 13: entry 'w' has 0 values");
  const float v[] = {1, 2};
  tb_u32(&b, 1);
  legacy_entry(&b, "w", 1, v, 2);
  b.n -= 3;
  legacy_fails(&b, "truncated: the 2 values of entry 'w' need 8 bytes, 5 left");
  tb_u32(&b, 2);
  legacy_entry(&b, "w", 1, v, 2);
  legacy_fails(&b, "truncated: name length of entry #1");
}

/* A GGUF imatrix written with our writer. */
static void gguf_imatrix(tb *out, int with_meta, int counts_type, int drop_counts) {
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_set_str(w, "general.type", "imatrix", &err));
  if (with_meta) {
    const char *ds[] = {"d1.txt", "d2.txt"};
    OK(qf_gguf_writer_set_arr_str(w, "imatrix.datasets", ds, 2, &err));
    OK(qf_gguf_writer_set_u32(w, "imatrix.chunk_count", 5, &err));
    OK(qf_gguf_writer_set_u32(w, "imatrix.chunk_size", 512, &err));
  }
  static const float q_sum2[] = {2, 4, 6, 8}, q_cnt[] = {2.0f};
  static const float e_sum2[] = {3, 6, 9, 1, 2, 3}, e_cnt[] = {3.0f, 0.0f};
  static const float e_sum[] = {3, 3, 3, 5, 5, 5};
  static const float r_sum2[] = {5, 10}, r_cnt[] = {2.6f}; /* counts are rounded: 3 */
  static const uint16_t q_cnt16[] = {0x4000};
  const int64_t ne_q[] = {4, 1}, ne_qc[] = {1, 1}, ne_e[] = {3, 2}, ne_ec[] = {1, 2},
                ne_r[] = {2, 1}, ne_other[] = {4};
  OK(qf_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.in_sum2", 0, 2, ne_q, q_sum2, &err));
  if (!drop_counts) {
    if (counts_type == 1)
      OK(qf_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.counts", 1, 2, ne_qc, q_cnt16, &err));
    else
      OK(qf_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.counts", 0, 2, ne_qc, q_cnt, &err));
  }
  OK(qf_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight.in_sum", 0, 2, ne_e, e_sum, &err));
  OK(qf_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight.in_sum2", 0, 2, ne_e, e_sum2, &err));
  OK(qf_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight.counts", 0, 2, ne_ec, e_cnt, &err));
  OK(qf_gguf_writer_add_tensor(w, "a.weight.in_sum2", 0, 2, ne_r, r_sum2, &err));
  OK(qf_gguf_writer_add_tensor(w, "a.weight.counts", 0, 2, ne_qc, r_cnt, &err));
  OK(qf_gguf_writer_add_tensor(w, "unrelated", 0, 1, ne_other, q_sum2, &err));
  const char *dir = temp_dir();
  char path[1024];
  snprintf(path, sizeof path, "%s/imatrix.gguf", dir);
  OK(qf_gguf_writer_write_file(w, path, &err));
  size_t size;
  uint8_t *p = read_all(path, &size);
  *out = (tb){p, size, size};
  qf_gguf_writer_free(w);
  remove_dir(dir);
}

Test(imatrix, gguf_form) {
  tb b;
  gguf_imatrix(&b, 1, 0, 0);
  qf_gguf_imatrix *m;
  OK(qf_gguf_imatrix_load_memory(b.p, b.n, "imatrix.gguf", &m, &err));
  cr_assert(!qf_gguf_imatrix_is_legacy(m));
  cr_assert_eq(qf_gguf_imatrix_chunk_count(m), 5);
  cr_assert_eq(qf_gguf_imatrix_chunk_size(m), 512);
  cr_assert_eq(qf_gguf_imatrix_dataset_count(m), 2);
  cr_assert_str_eq(qf_gguf_imatrix_dataset(m, 1), "d2.txt");
  cr_assert_eq(qf_gguf_imatrix_count(m), 3);
  cr_assert_str_eq(qf_gguf_imatrix_at(m, 0)->name, "a.weight");
  cr_assert_str_eq(qf_gguf_imatrix_at(m, 1)->name, "blk.0.attn_q.weight");
  cr_assert_str_eq(qf_gguf_imatrix_at(m, 2)->name, "blk.0.ffn_up_exps.weight");

  const qf_gguf_imatrix_entry *e = qf_gguf_imatrix_find(m, "blk.0.attn_q.weight");
  const float wq[] = {1, 2, 3, 4};
  assert_values(e, wq, 4);
  cr_assert(e->ne0 == 4 && e->n_mat == 1 && e->counts[0] == 2 && !e->activations);

  e = qf_gguf_imatrix_find(m, "blk.0.ffn_up_exps.weight");
  const float we[] = {1, 2, 3, 1, 1, 1}; /* expert 1 saw no data: 1.0 */
  assert_values(e, we, 6);
  cr_assert(e->ne0 == 3 && e->n_mat == 2 && e->counts[0] == 3 && e->counts[1] == 0);
  cr_assert_not_null(e->activations);
  const float wa[] = {1, 1, 1, 0, 0, 0};
  for (int i = 0; i < 6; i++) cr_assert_eq(e->activations[i], wa[i]);

  e = qf_gguf_imatrix_find(m, "a.weight");
  cr_assert_eq(e->counts[0], 3);
  cr_assert_eq(e->values[0], 5.0f / 3.0f);
  cr_assert_eq(e->values[1], 10.0f / 3.0f);
  qf_gguf_imatrix_free(m);
  free(b.p);
}

static void gguf_fails(tb *b, const char *want) {
  qf_gguf_imatrix *m = (qf_gguf_imatrix *)1;
  memset(&err, 0, sizeof err);
  qf_status st = qf_gguf_imatrix_load_memory(b->p, b->n, "im.gguf", &m, &err);
  cr_assert_eq(st, QF_ERR_FORMAT, "status %d; wanted '%s'", st, want);
  cr_assert_null(m);
  cr_assert(strncmp(err.message, "im.gguf: ", 9) == 0, "%s", err.message);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
  free(b->p);
}

Test(imatrix, gguf_malformed) {
  tb b;
  gguf_imatrix(&b, 0, 0, 0);
  gguf_fails(&b, "missing imatrix metadata");
  gguf_imatrix(&b, 1, 1, 0);
  gguf_fails(&b, "tensor 'blk.0.attn_q.weight.counts' must be F32");
  gguf_imatrix(&b, 1, 0, 1);
  gguf_fails(&b, "imatrix entry 'blk.0.attn_q.weight' has no counts tensor");
  /* a broken GGUF is reported as such (not as a legacy file) */
  gguf_imatrix(&b, 1, 0, 0);
  b.n = 100;
  gguf_fails(&b, "im.gguf: offset ");
}

Test(imatrix, gguf_metadata_types_and_counts) {
  qf_gguf_writer *w;
  OK(qf_gguf_writer_create(&w, &err));
  OK(qf_gguf_writer_set_str(w, "imatrix.datasets", "not an array", &err));
  OK(qf_gguf_writer_set_u32(w, "imatrix.chunk_count", 1, &err));
  OK(qf_gguf_writer_set_u32(w, "imatrix.chunk_size", 1, &err));
  const float s[] = {1, 2, 3}, c[] = {1, 1};
  const int64_t ne_s[] = {3, 1}, ne_c[] = {1, 2};
  OK(qf_gguf_writer_add_tensor(w, "w.in_sum2", 0, 2, ne_s, s, &err));
  OK(qf_gguf_writer_add_tensor(w, "w.counts", 0, 2, ne_c, c, &err));
  const char *dir = temp_dir();
  char path[1024];
  snprintf(path, sizeof path, "%s/m.gguf", dir);
  OK(qf_gguf_writer_write_file(w, path, &err));
  qf_gguf_imatrix *m;
  cr_assert_eq(qf_gguf_imatrix_load(path, &m, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "key 'imatrix.datasets' has type str, expected arr[str]"), "%s",
            err.message);
  const char *ds[] = {"x"};
  OK(qf_gguf_writer_set_arr_str(w, "imatrix.datasets", ds, 1, &err));
  OK(qf_gguf_writer_write_file(w, path, &err));
  cr_assert_eq(qf_gguf_imatrix_load(path, &m, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "imatrix entry 'w': 3 in_sum2 values, 2 counts do not match"), "%s",
            err.message);
  snprintf(path, sizeof path, "%s/absent.gguf", dir);
  cr_assert_eq(qf_gguf_imatrix_load(path, &m, &err), QF_ERR_IO);
  qf_gguf_writer_free(w);
  remove_dir(dir);
}
