/*
 * test_malformed.c — the GGUF reader against broken files.
 *
 * Purpose: every check of spec §1 is exercised by a hand-built file that
 * breaks exactly that rule (truncations at section boundaries and inside
 * fields, impossible counts, oversized strings and arrays, bad value and
 * tensor types, shapes, offsets, alignment, overlaps, duplicates); each must
 * be refused with QF_ERR_FORMAT and a message naming the file, the offset and
 * the field. Valid-but-unusual files (version 2, n_dims 0, free tensor order,
 * trailing bytes, ggml's alignment quirk) must be accepted. Finally, valid
 * files truncated at every length and with single bytes flipped must never
 * crash the reader.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_file.h"
#include "gguf_test_util.h"

static qf_error err;

/* Open `b` from memory as "bad.gguf"; expect failure with all substrings. */
static void expect_fail(tb *b, const char *s1, const char *s2) {
  qf_gguf_file *f = (qf_gguf_file *)1;
  memset(&err, 0, sizeof err);
  qf_status st = qf_gguf_open_memory(b->p, b->n, "bad.gguf", &f, &err);
  cr_assert_eq(st, QF_ERR_FORMAT, "accepted (status %d), expected an error containing '%s'", st,
               s1);
  cr_assert_null(f);
  cr_assert_eq(err.code, QF_ERR_FORMAT);
  cr_assert_str_eq(err.plugin, "gguf");
  cr_assert(strncmp(err.message, "bad.gguf: offset ", 17) == 0, "message: %s", err.message);
  cr_assert(strstr(err.message, s1), "message '%s' lacks '%s'", err.message, s1);
  if (s2) cr_assert(strstr(err.message, s2), "message '%s' lacks '%s'", err.message, s2);
  tb_free(b);
}

static qf_gguf_file *expect_ok(tb *b) {
  qf_gguf_file *f = NULL;
  memset(&err, 0, sizeof err);
  qf_status st = qf_gguf_open_memory(b->p, b->n, "ok.gguf", &f, &err);
  cr_assert_eq(st, QF_OK, "refused: %s", err.message);
  return f;
}

/* A file with one tensor (header, one u32 KV unless kv == 0, the info, padding, data). */
static void one_tensor(tb *b, const char *name, uint32_t nd, const int64_t *ne, int32_t type,
                       uint64_t offset, size_t data_bytes) {
  tb_header(b, 3, 1, 1);
  tb_kv_u32(b, "k", 1);
  tb_tensor(b, name, nd, ne, type, offset);
  tb_pad(b, 32);
  tb_zeros(b, data_bytes);
}

/* ------------------------------------------------------------ header */

Test(malformed, empty_file) {
  tb b = {0};
  tb_zeros(&b, 0);
  expect_fail(&b, "offset 0: file is 0 bytes, too short for the GGUF magic", NULL);
}

Test(malformed, bad_magic) {
  tb b = {0};
  tb_bytes(&b, "GGML", 4);
  tb_u32(&b, 3);
  tb_zeros(&b, 16);
  expect_fail(&b, "offset 0: bad magic 'GGML'", "not a GGUF file");
}

Test(malformed, versions) {
  static const struct {
    uint32_t v;
    const char *msg;
  } cases[] = {{0, "version 0 is invalid"},
               {1, "GGUF version 1 is no longer supported"},
               {4, "version 4 is newer than this reader"},
               {0x03000000u, "version 0x03000000 looks byte-swapped"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tb b = {0};
    tb_header(&b, cases[i].v, 0, 0);
    expect_fail(&b, "offset 4: ", cases[i].msg);
  }
}

Test(malformed, truncated_header_fields) {
  tb b = {0};
  tb_bytes(&b, "GGUF\x03\x00", 6);
  expect_fail(&b, "offset 4: truncated: version needs 4 bytes, only 2 left in the 6-byte file",
              NULL);
  tb_header(&b, 3, 0, 0);
  b.n = 11; /* mid tensor count */
  expect_fail(&b, "offset 8: truncated: tensor count needs 8 bytes, only 3 left", NULL);
  tb_header(&b, 3, 0, 0);
  b.n = 16; /* section boundary: kv count missing */
  expect_fail(&b, "offset 16: truncated: kv count needs 8 bytes, only 0 left", NULL);
}

Test(malformed, huge_tensor_count) {
  tb b = {0};
  tb_header(&b, 3, 1ull << 60, 0);
  tb_zeros(&b, 100);
  expect_fail(&b,
              "bad.gguf: offset 8: tensor count 1152921504606846976 exceeds what a 124-byte file "
              "can hold",
              NULL);
  tb_header(&b, 3, UINT64_MAX, 0);
  expect_fail(&b, "offset 8: tensor count 18446744073709551615 is negative as int64", NULL);
}

Test(malformed, huge_kv_count) {
  tb b = {0};
  tb_header(&b, 3, 0, 1ull << 40);
  tb_kv_u32(&b, "k", 1);
  expect_fail(&b, "offset 16: kv count 1099511627776 exceeds what a 41-byte file can hold", NULL);
  /* room for the KVs is what is left after the tensor infos' minimum */
  tb_header(&b, 3, 1, 2);
  tb_kv_u32(&b, "k", 1);
  tb_zeros(&b, 10);
  expect_fail(&b, "offset 16: kv count 2 exceeds", NULL);
}

/* ------------------------------------------------------------ key/value */

Test(malformed, key_problems) {
  tb b = {0};
  tb_header(&b, 3, 0, 1);
  tb_u64(&b, 0); /* empty key */
  tb_u32(&b, 4);
  tb_u32(&b, 1);
  expect_fail(&b, "offset 24: key of kv #0 is empty", NULL);

  tb_header(&b, 3, 0, 1);
  tb_u64(&b, 1ull << 40); /* absurd key length */
  tb_zeros(&b, 20);
  expect_fail(
      &b, "offset 24: key of kv #0 is 1099511627776 bytes long, more than the 65535 allowed", NULL);

  tb_header(&b, 3, 0, 1);
  tb_u64(&b, 100); /* key longer than the file */
  tb_bytes(&b, "abc", 3);
  tb_zeros(&b, 11);
  expect_fail(&b, "offset 24: the key of kv #0 has length 100 but only 14 bytes are left", NULL);

  tb_header(&b, 3, 0, 1);
  tb_u64(&b, 3);
  tb_bytes(&b, "a\0b", 3);
  tb_u32(&b, 4);
  tb_u32(&b, 1);
  expect_fail(&b, "key of kv #0 ('a\\x00b') contains a NUL byte", NULL);
}

Test(malformed, huge_string_length) {
  tb b = {0};
  tb_header(&b, 3, 0, 1);
  tb_str(&b, "s");
  tb_u32(&b, 8);
  tb_u64(&b, 1ull << 31); /* 2 GiB string */
  tb_zeros(&b, 8);
  expect_fail(&b, "offset 37: key 's' has length 2147483648, more than the 1 GiB limit", NULL);
  tb_header(&b, 3, 0, 1);
  tb_str(&b, "s");
  tb_u32(&b, 8);
  tb_u64(&b, 9); /* one byte more than the file holds */
  tb_bytes(&b, "12345678", 8);
  expect_fail(&b, "offset 37: key 's' has length 9 but only 8 bytes are left in the 53-byte file",
              NULL);
}

Test(malformed, value_types) {
  tb b = {0};
  tb_header(&b, 3, 0, 1);
  tb_str(&b, "k");
  tb_u32(&b, 13);
  tb_u32(&b, 0);
  expect_fail(&b, "offset 33: key 'k' has unknown value type 13", NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "k");
  tb_u32(&b, (uint32_t)-1);
  tb_u32(&b, 0);
  expect_fail(&b, "key 'k' has unknown value type -1", NULL);

  tb_header(&b, 3, 0, 1); /* nested array */
  tb_str(&b, "k");
  tb_u32(&b, 9);
  tb_u32(&b, 9);
  tb_u64(&b, 1);
  tb_u32(&b, 4);
  tb_u64(&b, 1);
  tb_u32(&b, 7);
  expect_fail(&b, "offset 37: key 'k' is an array of arrays; nested arrays are not supported",
              NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "k");
  tb_u32(&b, 9);
  tb_u32(&b, 77);
  tb_u64(&b, 0);
  expect_fail(&b, "key 'k' has unknown array element type 77", NULL);
}

Test(malformed, array_counts) {
  tb b = {0};
  tb_header(&b, 3, 0, 1);
  tb_str(&b, "arr");
  tb_u32(&b, 9);
  tb_u32(&b, 0);
  tb_u64(&b, (1ull << 30) + 1);
  tb_zeros(&b, 64);
  expect_fail(&b,
              "offset 43: key 'arr' is an array of 1073741825 elements, more than the 2^30 limit",
              NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "arr");
  tb_u32(&b, 9);
  tb_u32(&b, 8); /* strings: at least 8 bytes each */
  tb_u64(&b, 1000);
  tb_zeros(&b, 64);
  expect_fail(&b,
              "key 'arr' is an array of 1000 str elements needing at least 8000 bytes, but only 64",
              NULL);
}

Test(malformed, truncated_values) {
  tb b = {0};
  tb_header(&b, 3, 0, 1);
  tb_str(&b, "k");
  tb_u32(&b, 10);
  tb_bytes(&b, "\1\2\3", 3); /* u64 cut after 3 bytes */
  expect_fail(&b, "offset 37: truncated: value of key 'k' needs 8 bytes, only 3 left", NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "k");
  tb_u32(&b, 9);
  tb_u32(&b, 6);
  tb_u64(&b, 4);
  tb_zeros(&b, 12); /* 3 of 4 floats */
  expect_fail(
      &b, "offset 41: key 'k' is an array of 4 f32 elements needing at least 16 bytes, but only 12",
      NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "toks");
  tb_u32(&b, 9);
  tb_u32(&b, 8);
  tb_u64(&b, 2);
  tb_str(&b, "ab");
  tb_u64(&b, 5);
  tb_bytes(&b, "xy", 2); /* second string cut */
  expect_fail(&b, "string #1 of key 'toks' has length 5 but only 2 bytes are left", NULL);

  /* section boundaries: the file ends after a whole record */
  const char *longval = "0123456789012345678901234567890123456789012345678";
  tb_header(&b, 3, 0, 2);
  tb_str(&b, "k");
  tb_u32(&b, 8);
  tb_str(&b, longval);
  expect_fail(&b, "offset 94: truncated: length of the key of kv #1 needs 8 bytes, only 0 left",
              NULL);
  tb_header(&b, 3, 1, 1);
  tb_str(&b, "k");
  tb_u32(&b, 8);
  tb_str(&b, longval);
  expect_fail(
      &b, "offset 94: truncated: length of the name of tensor #0 needs 8 bytes, only 0 left", NULL);
}

Test(malformed, duplicate_key) {
  tb b = {0};
  tb_header(&b, 3, 0, 2);
  tb_kv_u32(&b, "k", 1);
  tb_kv_u32(&b, "k", 2);
  expect_fail(&b, "offset 41: duplicate key 'k' (kv #1 repeats kv #0 at offset 24)", NULL);
}

Test(malformed, alignment_key) {
  tb b = {0};
  tb_header(&b, 3, 0, 1);
  tb_str(&b, "general.alignment");
  tb_u32(&b, 5);
  tb_u32(&b, 32);
  expect_fail(&b, "offset 24: key 'general.alignment' must be of type u32 but is i32", NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "general.alignment");
  tb_u32(&b, 10);
  tb_u64(&b, 32);
  expect_fail(&b, "must be of type u32 but is u64", NULL);

  tb_header(&b, 3, 0, 1);
  tb_str(&b, "general.alignment");
  tb_u32(&b, 9);
  tb_u32(&b, 4);
  tb_u64(&b, 1);
  tb_u32(&b, 32);
  expect_fail(&b, "must be of type u32 but is arr[u32]", NULL);

  tb_header(&b, 3, 0, 1);
  tb_kv_u32(&b, "general.alignment", 48);
  expect_fail(&b, "offset 53: key 'general.alignment' is 48, not a non-zero power of two", NULL);

  tb_header(&b, 3, 0, 1);
  tb_kv_u32(&b, "general.alignment", 0);
  expect_fail(&b, "key 'general.alignment' is 0, not a non-zero power of two", NULL);
}

/* ------------------------------------------------------------ tensor infos */

Test(malformed, tensor_names) {
  tb b = {0};
  char n64[65];
  memset(n64, 'w', 64);
  n64[64] = '\0';
  const int64_t ne[] = {8};
  one_tensor(&b, n64, 1, ne, 0, 0, 32);
  expect_fail(&b, "offset 41: name of tensor #0 is 64 bytes long; at most 63 are allowed", NULL);

  tb_header(&b, 3, 1, 0);
  tb_u64(&b, 3);
  tb_bytes(&b, "w\0x", 3);
  tb_u32(&b, 1);
  tb_u64(&b, 8);
  tb_u32(&b, 0);
  tb_u64(&b, 0);
  tb_pad(&b, 32);
  tb_zeros(&b, 32);
  expect_fail(&b, "name of tensor #0 ('w\\x00x') contains a NUL byte", NULL);

  tb_header(&b, 3, 2, 0);
  tb_tensor(&b, "a", 1, ne, 0, 0);
  tb_tensor(&b, "a", 1, ne, 0, 32);
  tb_pad(&b, 32);
  tb_zeros(&b, 64);
  expect_fail(&b, "offset 57: duplicate tensor name 'a' (tensor #1 repeats tensor #0 at offset 24)",
              NULL);
}

Test(malformed, tensor_shapes) {
  tb b = {0};
  const int64_t ne5[] = {8, 1, 1, 1, 1};
  one_tensor(&b, "w", 5, ne5, 0, 0, 32);
  expect_fail(&b, "offset 50: tensor 'w' has n_dims 5; at most 4 dimensions are supported", NULL);

  const int64_t neg[] = {8, -3};
  one_tensor(&b, "w", 2, neg, 0, 0, 32);
  expect_fail(&b, "offset 62: tensor 'w' has ne[1] = -3, a negative dimension", NULL);

  const int64_t big[] = {1ll << 32, 1ll << 32};
  one_tensor(&b, "w", 2, big, 0, 0, 32);
  expect_fail(&b,
              "offset 54: tensor 'w' has shape 4294967296 x 4294967296 x 1 x 1 whose element "
              "count overflows int64",
              NULL);

  /* the element count fits int64 but the byte count does not */
  const int64_t wide[] = {(1ll << 62) + 4};
  one_tensor(&b, "w", 1, wide, 0, 0, 32);
  expect_fail(&b, "offset 62: tensor 'w' of type f32 has a size in bytes that overflows", NULL);
  const int64_t wide2[] = {1ll << 31, 1ll << 31};
  one_tensor(&b, "w", 2, wide2, 0, 0, 32);
  expect_fail(&b, "tensor 'w' of type f32 has a size in bytes that overflows", NULL);

  const int64_t odd[] = {100, 2};
  one_tensor(&b, "w", 2, odd, 12, 0, 1024);
  expect_fail(&b,
              "offset 70: tensor 'w' of type q4_K has ne[0] = 100, not a multiple of its block "
              "size 256",
              NULL);

  const int64_t q40[] = {33};
  one_tensor(&b, "w", 1, q40, 2, 0, 64);
  expect_fail(&b, "tensor 'w' of type q4_0 has ne[0] = 33, not a multiple of its block size 32",
              NULL);

  /* truncated inside the dims */
  tb_header(&b, 3, 1, 0);
  tb_str(&b, "w");
  tb_u32(&b, 2);
  tb_u64(&b, 8);
  tb_u32(&b, 1);
  expect_fail(&b, "offset 45: truncated: ne[1] of tensor 'w' needs 8 bytes, only 4 left", NULL);
}

Test(malformed, tensor_types) {
  tb b = {0};
  const int64_t ne[] = {256};
  one_tensor(&b, "blk.0.w", 1, ne, 43, 0, 1024);
  expect_fail(&b,
              "offset 68: tensor 'blk.0.w' has unknown ggml type id 43 (this build knows ids 0 to "
              "42; written by a newer ggml?)",
              NULL);
  one_tensor(&b, "w", 1, ne, 1000, 0, 1024);
  expect_fail(&b, "tensor 'w' has unknown ggml type id 1000", NULL);
  one_tensor(&b, "w", 1, ne, -1, 0, 1024);
  expect_fail(&b, "tensor 'w' has unknown ggml type id -1", NULL);
  one_tensor(&b, "w", 1, ne, 4, 0, 1024);
  expect_fail(&b, "tensor 'w' has ggml type id 4 (q4_2), which ggml removed", NULL);
  one_tensor(&b, "w", 1, ne, 36, 0, 1024);
  expect_fail(&b, "tensor 'w' has ggml type id 36 (iq4_nl_4_4), which ggml removed", NULL);
}

/* ------------------------------------------------------------ data layout */

Test(malformed, offsets) {
  tb b = {0};
  const int64_t ne[] = {8};
  one_tensor(&b, "w", 1, ne, 0, 16, 64);
  expect_fail(&b, "offset 66: tensor 'w' has offset 16, not a multiple of the alignment 32", NULL);

  one_tensor(&b, "w", 1, ne, 0, 64, 64);
  expect_fail(&b,
              "offset 66: tensor 'w' (32 bytes at data offset 64) runs past the end of the "
              "160-byte file (data section starts at 96)",
              NULL);

  one_tensor(&b, "w", 1, ne, 0, UINT64_MAX - 31, 64);
  expect_fail(&b, "runs past the end", NULL);

  /* data section itself past the end: infos end at 66, padding needs 96 */
  tb_header(&b, 3, 1, 1);
  tb_kv_u32(&b, "k", 1);
  const int64_t zero[] = {0};
  tb_tensor(&b, "w", 1, zero, 0, 0);
  expect_fail(&b,
              "offset 74: the data section would start at 96 (padded to 32), past the end of "
              "the 74-byte file",
              NULL);

  /* truncated at the section boundary before the data */
  one_tensor(&b, "w", 1, ne, 0, 0, 0);
  expect_fail(&b, "tensor 'w' (32 bytes at data offset 0) runs past the end of the 96-byte file",
              NULL);

  /* truncated inside the tensor info's offset field */
  tb_header(&b, 3, 1, 0);
  tb_tensor(&b, "w", 1, ne, 0, 0);
  b.n -= 5;
  expect_fail(&b, "offset 49: truncated: offset of tensor 'w' needs 8 bytes, only 3 left", NULL);

  /* custom alignment 64: 16 fails at 64 and at the 32 fallback */
  tb_header(&b, 3, 1, 1);
  tb_kv_u32(&b, "general.alignment", 64);
  tb_tensor(&b, "w", 1, ne, 0, 16);
  tb_pad(&b, 64);
  tb_zeros(&b, 64);
  expect_fail(&b, "tensor 'w' has offset 16, not a multiple of the alignment 64", NULL);
}

Test(malformed, overlapping_data) {
  tb b = {0};
  const int64_t ne[] = {16}; /* 64 bytes of f32 */
  tb_header(&b, 3, 2, 0);
  tb_tensor(&b, "a", 1, ne, 0, 0);
  tb_tensor(&b, "b", 1, ne, 0, 32);
  tb_pad(&b, 32);
  tb_zeros(&b, 128);
  expect_fail(&b, "tensor 'b' data [32, 96) overlaps tensor 'a' [0, 64)", NULL);

  /* identical offsets overlap too; an empty tensor overlaps nothing */
  const int64_t zero[] = {0, 3};
  tb_header(&b, 3, 3, 0);
  tb_tensor(&b, "a", 1, ne, 0, 64);
  tb_tensor(&b, "e", 2, zero, 0, 64);
  tb_tensor(&b, "c", 1, ne, 0, 64);
  tb_pad(&b, 32);
  tb_zeros(&b, 128);
  expect_fail(&b, "tensor 'c' data [64, 128) overlaps tensor 'a' [64, 128)", NULL);
}

/* ------------------------------------------------------------ accepted */

Test(accepted, unusual_but_valid) {
  /* version 2, n_dims 0, tensors in free (non-running) order, trailing bytes */
  tb b = {0};
  const int64_t ne[] = {16};
  tb_header(&b, 2, 3, 1);
  tb_kv_u32(&b, "k", 1);
  tb_tensor(&b, "late", 1, ne, 0, 128);
  tb_tensor(&b, "early", 1, ne, 0, 0);
  tb_tensor(&b, "scalar", 0, ne, 0, 64);
  tb_pad(&b, 32);
  tb_zeros(&b, 192 + 7);
  qf_gguf_file *f = expect_ok(&b);
  cr_assert_eq(qf_gguf_version(f), 2);
  cr_assert_eq(qf_gguf_is_strict_layout(f), 0);
  const qf_gguf_tensor *t = qf_gguf_find_tensor(f, "scalar");
  cr_assert(t->n_dims == 0 && t->ne[0] == 1 && t->ne[3] == 1 && t->nbytes == 4);
  qf_gguf_close(f);
  tb_free(&b);

  /* no tensors: no padding is required after the KVs */
  tb_header(&b, 3, 0, 1);
  tb_kv_u32(&b, "k", 1);
  f = expect_ok(&b);
  cr_assert_eq(qf_gguf_data_offset(f), b.n);
  qf_gguf_close(f);
  tb_free(&b);

  /* general.alignment 64 with a layout valid only at 32: ggml's C writer */
  const int64_t ne8[] = {8};
  tb_header(&b, 3, 2, 1);
  tb_kv_u32(&b, "general.alignment", 64);
  tb_tensor(&b, "a", 1, ne8, 0, 0);
  tb_tensor(&b, "b", 1, ne, 0, 32);
  tb_pad(&b, 32);
  size_t data_at = b.n;
  for (int i = 0; i < 96; i++) tb_u8(&b, (uint8_t)(i + 1));
  f = expect_ok(&b);
  cr_assert_eq(qf_gguf_alignment(f), 64);
  cr_assert_eq(qf_gguf_data_alignment(f), 32);
  cr_assert_eq(qf_gguf_data_offset(f), data_at);
  cr_assert(qf_gguf_is_strict_layout(f));
  cr_assert_not_null(qf_gguf_layout_note(f));
  cr_assert_eq(((const uint8_t *)qf_gguf_find_tensor(f, "b")->data)[0], 33);
  qf_gguf_close(f);
  /* ... but not when it is anything other than exactly that writer's output */
  tb_u8(&b, 0); /* one trailing byte */
  expect_fail(&b, "tensor 'b' has offset 32, not a multiple of the alignment 64", NULL);
  tb_header(&b, 3, 2, 1);
  tb_kv_u32(&b, "general.alignment", 64);
  tb_tensor(&b, "a", 1, ne8, 0, 0);
  tb_tensor(&b, "b", 1, ne, 0, 32);
  tb_pad(&b, 32);
  b.p[b.n - 1] = 1; /* non-zero padding before the data */
  tb_zeros(&b, 96);
  expect_fail(&b, "not a multiple of the alignment 64", NULL);
}

Test(malformed, through_the_file_system) {
  const char *dir = temp_dir();
  char path[1024];
  qf_gguf_file *f;
  snprintf(path, sizeof path, "%s/missing.gguf", dir);
  cr_assert_eq(qf_gguf_open(path, &f, &err), QF_ERR_IO);
  cr_assert(strstr(err.message, "missing.gguf: cannot open"), "%s", err.message);
  cr_assert_eq(qf_gguf_open(dir, &f, &err), QF_ERR_IO);
  cr_assert(strstr(err.message, "not a regular file"), "%s", err.message);
  snprintf(path, sizeof path, "%s/empty.gguf", dir);
  FILE *fp = fopen(path, "wb");
  fclose(fp);
  cr_assert_eq(qf_gguf_open(path, &f, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message, "empty.gguf: offset 0: file is 0 bytes"), "%s", err.message);
  snprintf(path, sizeof path, "%s/x.gguf", dir);
  tb b = {0};
  tb_header(&b, 3, 1ull << 60, 0);
  tb_zeros(&b, 1210);
  fp = fopen(path, "wb");
  fwrite(b.p, 1, b.n, fp);
  fclose(fp);
  cr_assert_eq(qf_gguf_open(path, &f, &err), QF_ERR_FORMAT);
  cr_assert(strstr(err.message,
                   "x.gguf: offset 8: tensor count 1152921504606846976 exceeds what "
                   "a 1234-byte file can hold"),
            "%s", err.message);
  tb_free(&b);
  remove_dir(dir);
}

/* ------------------------------------------------------------ never crash */

/* A valid file with every record kind, built by hand. */
static void rich_file(tb *b) {
  const int64_t ne1[] = {64, 2}, ne2[] = {256}, ne3[] = {5};
  tb_header(b, 3, 3, 5);
  tb_str(b, "general.architecture");
  tb_u32(b, 8);
  tb_str(b, "llama");
  tb_kv_u32(b, "general.alignment", 64);
  tb_str(b, "toks");
  tb_u32(b, 9);
  tb_u32(b, 8);
  tb_u64(b, 3);
  tb_str(b, "a");
  tb_str(b, "");
  tb_str(b, "ccc");
  tb_str(b, "f");
  tb_u32(b, 9);
  tb_u32(b, 6);
  tb_u64(b, 2);
  tb_f32(b, 1.5f);
  tb_f32(b, -2.0f);
  tb_str(b, "d");
  tb_u32(b, 12);
  tb_f64(b, 0.25);
  tb_tensor(b, "q8", 2, ne1, 8, 0);     /* 136 bytes */
  tb_tensor(b, "q4k", 1, ne2, 12, 192); /* 144 bytes */
  tb_tensor(b, "i8", 1, ne3, 24, 384);  /* 5 bytes */
  tb_pad(b, 64);
  for (int i = 0; i < 384 + 5; i++) tb_u8(b, (uint8_t)(i * 7 + 1));
}

static void truncate_everywhere(const uint8_t *data, size_t size, const char *name) {
  qf_gguf_file *f;
  cr_assert_eq(qf_gguf_open_memory(data, size, name, &f, &err), QF_OK, "%s", err.message);
  uint64_t need = qf_gguf_data_offset(f);
  for (size_t i = 0; i < qf_gguf_tensor_count(f); i++) {
    const qf_gguf_tensor *t = qf_gguf_tensor_at(f, i);
    uint64_t end = qf_gguf_data_offset(f) + t->offset + t->nbytes;
    if (end > need) need = end;
  }
  qf_gguf_close(f);
  for (size_t len = 0; len < size; len++) {
    uint8_t *copy = malloc(len ? len : 1); /* exact size: sanitizers see over-reads */
    memcpy(copy, data, len);
    memset(&err, 0, sizeof err);
    qf_status st = qf_gguf_open_memory(len ? copy : NULL, len, name, &f, &err);
    if (len < need) {
      cr_assert_eq(st, QF_ERR_FORMAT, "%s truncated to %zu bytes was accepted", name, len);
      cr_assert(strncmp(err.message, name, strlen(name)) == 0 && strstr(err.message, ": offset "),
                "%s at %zu: %s", name, len, err.message);
    } else {
      cr_assert_eq(st, QF_OK, "%s truncated to %zu bytes (after the data): %s", name, len,
                   err.message);
      qf_gguf_close(f);
    }
    free(copy);
  }
}

Test(robust, truncated_at_every_length) {
  tb b = {0};
  rich_file(&b);
  truncate_everywhere(b.p, b.n, "rich.gguf");
  tb_free(&b);
  size_t size;
  uint8_t *g = read_all(golden_path("tiny-llama-gguf-py.gguf"), &size);
  truncate_everywhere(g, size, "tiny.gguf");
  free(g);
  g = read_all(golden_path("kquants-ggml.gguf"), &size);
  truncate_everywhere(g, size, "kquants.gguf");
  free(g);
}

/* Every metadata byte replaced by a few values: accepted or refused, never a crash. */
Test(robust, byte_flips) {
  tb b = {0};
  rich_file(&b);
  qf_gguf_file *f;
  cr_assert_eq(qf_gguf_open_memory(b.p, b.n, "rich.gguf", &f, &err), QF_OK);
  size_t meta = (size_t)qf_gguf_data_offset(f);
  qf_gguf_close(f);
  static const uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f, 0x01, 0x40};
  uint8_t *copy = malloc(b.n);
  for (size_t i = 0; i < meta; i++) {
    for (size_t v = 0; v < sizeof vals; v++) {
      memcpy(copy, b.p, b.n);
      copy[i] = vals[v];
      qf_status st = qf_gguf_open_memory(copy, b.n, "flip.gguf", &f, &err);
      cr_assert(st == QF_OK || st == QF_ERR_FORMAT, "byte %zu = 0x%02x: status %d", i, vals[v], st);
      if (st == QF_OK) {
        for (size_t k = 0; k < qf_gguf_kv_count(f); k++) {
          const qf_gguf_kv *kv = qf_gguf_kv_at(f, k);
          for (uint64_t e = 0; e < kv->n; e++) (void)qf_gguf_kv_elem(kv, e);
        }
        qf_gguf_close(f);
      }
    }
  }
  free(copy);
  tb_free(&b);
}
