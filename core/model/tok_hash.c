/*
 * Open-addressing hash maps used by the tokenizer: token text → id (the
 * vocabulary, keys borrowed from the tokenizer's token table) and token-id
 * pair → (merge rank, merged id) (the BPE merges). Linear probing, load
 * factor at most 1/2, FNV-1a / splitmix hashing.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* ---------------------------------------------------------------- strings */

static int strmap_grow(qf__strmap *h) {
  size_t cap = h->cap ? h->cap * 2 : 64;
  qf__strmap g = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(size_t)),
                  calloc(cap, sizeof(int32_t)), cap, 0};
  if (!g.keys || !g.lens || !g.vals) {
    qf__strmap_free(&g);
    return -1;
  }
  for (size_t i = 0; i < h->cap; i++)
    if (h->keys[i]) qf__strmap_put(&g, h->keys[i], h->lens[i], h->vals[i]);
  qf__strmap_free(h);
  *h = g;
  return 0;
}

int qf__strmap_put(qf__strmap *h, const char *key, size_t len, int32_t val) {
  if ((h->n + 1) * 2 > h->cap && strmap_grow(h)) return -1;
  size_t i = (size_t)hash_bytes(key, len) & (h->cap - 1);
  while (h->keys[i]) {
    if (h->lens[i] == len && !memcmp(h->keys[i], key, len)) return 0;
    i = (i + 1) & (h->cap - 1);
  }
  h->keys[i] = key;
  h->lens[i] = len;
  h->vals[i] = val;
  h->n++;
  return 0;
}

int32_t qf__strmap_get(const qf__strmap *h, const char *key, size_t len) {
  if (!h->cap) return -1;
  size_t i = (size_t)hash_bytes(key, len) & (h->cap - 1);
  while (h->keys[i]) {
    if (h->lens[i] == len && !memcmp(h->keys[i], key, len)) return h->vals[i];
    i = (i + 1) & (h->cap - 1);
  }
  return -1;
}

void qf__strmap_free(qf__strmap *h) {
  free(h->keys);
  free(h->lens);
  free(h->vals);
  memset(h, 0, sizeof *h);
}

/* ---------------------------------------------------------------- pairs */

static uint64_t pair_key(int32_t a, int32_t b) {
  return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

static int pairmap_grow(qf__pairmap *h) {
  size_t cap = h->cap ? h->cap * 2 : 64;
  qf__pairmap g = {calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(int32_t)),
                   calloc(cap, sizeof(int32_t)), cap, 0};
  if (!g.keys || !g.rank || !g.merged) {
    qf__pairmap_free(&g);
    return -1;
  }
  for (size_t i = 0; i < h->cap; i++)
    if (h->keys[i]) {
      uint64_t k = h->keys[i] - 1;
      qf__pairmap_put(&g, (int32_t)(k >> 32), (int32_t)(uint32_t)k,
                      h->rank[i], h->merged[i]);
    }
  qf__pairmap_free(h);
  *h = g;
  return 0;
}

int qf__pairmap_put(qf__pairmap *h, int32_t a, int32_t b, int32_t rank,
                    int32_t merged) {
  if ((h->n + 1) * 2 > h->cap && pairmap_grow(h)) return -1;
  uint64_t k = pair_key(a, b);
  size_t i = (size_t)mix64(k) & (h->cap - 1);
  while (h->keys[i]) {
    if (h->keys[i] == k) return 0;
    i = (i + 1) & (h->cap - 1);
  }
  h->keys[i] = k;
  h->rank[i] = rank;
  h->merged[i] = merged;
  h->n++;
  return 0;
}

int qf__pairmap_get(const qf__pairmap *h, int32_t a, int32_t b, int32_t *rank,
                    int32_t *merged) {
  if (!h->cap) return 0;
  uint64_t k = pair_key(a, b);
  size_t i = (size_t)mix64(k) & (h->cap - 1);
  while (h->keys[i]) {
    if (h->keys[i] == k) {
      *rank = h->rank[i];
      *merged = h->merged[i];
      return 1;
    }
    i = (i + 1) & (h->cap - 1);
  }
  return 0;
}

void qf__pairmap_free(qf__pairmap *h) {
  free(h->keys);
  free(h->rank);
  free(h->merged);
  memset(h, 0, sizeof *h);
}
