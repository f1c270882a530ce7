/*
 * Internals of the tokenizer shared by tokenizer.c (tokenizer.json, BPE,
 * encode/decode) and tok_pretok.c (UTF-8, Unicode classes, the byte-level
 * alphabet and the hand-written pre-tokenizer splitters).
 */
#ifndef QF_TOK_INTERNAL_H
#define QF_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Pre-tokenizer regexes implemented by hand. */
typedef enum qf__pretok {
  QF__PRETOK_NONE = 0,
  QF__PRETOK_GPT2 = 1,   /* 's|'t|…| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
  QF__PRETOK_LLAMA3 = 2  /* (?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}|… */
} qf__pretok;

/* The regex text → splitter (and the digit run length for LLAMA3-style:
 * 3 for Llama 3, 1 for Qwen2). Returns 0 if the pattern is not known. */
int qf__pretok_from_regex(const char *re, qf__pretok *style, int *max_digits);

/* Decode UTF-8 into code points; cp[i] starts at byte off[i] (off[n] = len).
 * Invalid bytes decode to U+FFFD, one per byte. cp/off need len + 1 slots.
 * Returns the number of code points. */
size_t qf__utf8_decode(const char *s, size_t len, uint32_t *cp, size_t *off);
/* Encode one code point; returns its byte count (1..4). */
int qf__utf8_encode(uint32_t cp, char *out);

/* Unicode classes used by the regexes: 'L' letter, 'N' number, 'S' white
 * space, 'O' anything else. Tables cover the common scripts. */
char qf__uni_class(uint32_t cp);

/* Split cp[0..n) into pieces per `style`; writes each piece's end index to
 * ends (capacity n) and returns the number of pieces. */
size_t qf__pretok_split(qf__pretok style, int max_digits, const uint32_t *cp,
                        size_t n, size_t *ends);

/* GPT-2's bytes_to_unicode: the code point standing for byte b, and back
 * (-1 when cp stands for no byte). */
uint32_t qf__byte_to_cp(unsigned b);
int qf__cp_to_byte(uint32_t cp);

/* ---- hash maps (tok_hash.c) ---- */

/* Byte strings → int32 (keys borrowed; must outlive the map). */
typedef struct qf__strmap {
  const char **keys;
  size_t *lens;
  int32_t *vals;
  size_t cap, n;
} qf__strmap;
/* Insert (first insertion of a key wins). Returns 0, or -1 on no memory. */
int qf__strmap_put(qf__strmap *h, const char *key, size_t len, int32_t val);
/* The value, or -1. */
int32_t qf__strmap_get(const qf__strmap *h, const char *key, size_t len);
void qf__strmap_free(qf__strmap *h);

/* Token-id pairs → (merge rank, merged id). */
typedef struct qf__pairmap {
  uint64_t *keys;    /* (a << 32 | b) + 1; 0 = empty */
  int32_t *rank, *merged;
  size_t cap, n;
} qf__pairmap;
/* Insert (first insertion wins). Returns 0, or -1 on no memory. */
int qf__pairmap_put(qf__pairmap *h, int32_t a, int32_t b, int32_t rank,
                    int32_t merged);
/* 1 and fills rank/merged when the pair merges, else 0. */
int qf__pairmap_get(const qf__pairmap *h, int32_t a, int32_t b,
                    int32_t *rank, int32_t *merged);
void qf__pairmap_free(qf__pairmap *h);

#endif /* QF_TOK_INTERNAL_H */
